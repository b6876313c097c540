/* cformer/zoo.h: three models built only from nn.h and the public API.
 *
 *  - cf_transformer: the encoder-decoder Transformer of "Attention Is All
 *    You Need", with the parameter names of torch.nn.Transformer.
 *  - cf_vit: a Vision Transformer encoder with timm's layout and names.
 *  - cf_seq2seq: a GRU encoder-decoder with additive (Bahdanau) attention.
 *
 * Training and greedy decoding: the Transformer in full, the ViT and the
 * seq2seq in brief (whole programs for each, built and run by `make
 * check`: examples/snippets/transformer.c, vit.c and seq2seq.c):
 *
 *     cf_transformer_config cfg = cf_transformer_small(20, 20); // pad 0, bos 1, eos 2
 *     cf_transformer *m = cf_transformer_new(&cfg, &rng);      // NULL: see cf_error()
 *     cf_optim *opt = cf_adam_new(cf_transformer_module(m),
 *                                 &(cf_adam_opts){.lr = 1e-3f, .beta2 = 0.98f, .eps = 1e-9f});
 *     for (...) {
 *         // src [B, S]; tgt_in = tgt[:, :-1], tgt_out = tgt[:, 1:], int32, padded with 0
 *         cf_tensor *logits = cf_transformer_forward(m, src, tgt_in, NULL);  // [B, T, V]
 *         cf_tensor *loss = cf_cross_entropy(cf_reshape(logits, CF_SHAPE(-1, V)),
 *                                            cf_reshape(tgt_out, CF_SHAPE(-1)),
 *                                            &(cf_loss_opts){.ignore = true,
 *                                                            .ignore_index = cfg.pad_id,
 *                                                            .label_smoothing = 0.1f});
 *         cf_optim_zero_grad(opt);
 *         cf_backward(loss);
 *         cf_optim_step(opt);
 *         cf_arena_reset(step);
 *     }
 *     int32_t out[B * 20];
 *     cf_transformer_greedy(m, src, 20, out);  // row b: out[b * 20 ...]
 *     cf_optim_free(opt);
 *     cf_module_free(cf_transformer_module(m));
 *
 *     cf_vit *v = cf_vit_new(&vit_cfg, &rng);
 *     cf_tensor *logits = cf_vit_forward(v, images, maps);   // [B, classes]
 *     cf_tensor *where = cf_vit_rollout(v, maps);            // [B, patches]
 *
 *     cf_seq2seq *s = cf_seq2seq_new(&s2s_cfg, &rng);
 *     cf_tensor *logits = cf_seq2seq_forward(s, src, tgt, 1, NULL, NULL); // predicts tgt[:, 1:]
 *     cf_seq2seq_greedy(s, src, 20, out, &weights);          // weights [B, 20, S]
 *
 * Each model is a cf_module: cf_transformer_module(m), cf_vit_module(m) and
 * cf_seq2seq_module(m) return it (the types are opaque). Save and load it
 * with cf_module_save / cf_module_load, which refuse a file whose tensors
 * have the wrong shape or miss a name, naming the parameter; hand it to an
 * optimizer; switch it with cf_module_train. Token tensors are int32
 * [B, T]; outputs are arena tensors. A model made here belongs to the
 * caller: free it with cf_module_free(cf_transformer_module(m)) (or
 * cf_vit_module, cf_seq2seq_module), which frees its parameters too. A
 * NULL model is CF_ERR_ARG, as for the modules of nn.h.
 */
#ifndef CFORMER_ZOO_H
#define CFORMER_ZOO_H

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Encoder-decoder Transformer ---- */

typedef struct {
    int src_vocab, tgt_vocab;
    int d_model, heads, enc_layers, dec_layers, ff;
    float dropout;
    cf_activation act;
    bool pre_norm; /* false: post-norm as in the paper */
    float eps;     /* layer-norm eps */
    int max_len;   /* longest sequence (positions, generation) */
    int pad_id, bos_id, eos_id;
    bool share_embeddings; /* one table for source and target */
    bool tie_output;       /* generator.weight is the target embedding */
    /* false (the default): each embedding table's pad_id row starts at zero
     * and gets no gradient (torch.nn.Embedding's padding_idx = pad_id);
     * true: it is an ordinary learned row (padding_idx None). */
    bool no_padding_idx;
} cf_transformer_config;

/* Embeddings. A token enters as its table row (~ N(0, 1/d_model) at
 * creation) scaled by sqrt(d_model), plus the sinusoidal encoding of its
 * position (cf_sinusoidal_encoding, positions from 0; nothing learned),
 * then dropout. Source and target do the same, with one table when
 * share_embeddings.
 *
 * Padding. pad_id positions are masked as keys in every attention (encoder
 * self-attention, decoder cross-attention over src, decoder
 * self-attention), and decoder self-attention is causal: a row padded at
 * its end gets, at its real positions, the outputs it gets alone (the
 * outputs at padded positions are computed but meaningless). Greedy and
 * beam decoding give a row the tokens it gets alone, and never produce
 * pad_id before eos. tests/test_transformer.c checks both to 1e-5. */

/* The paper's base model: 6+6 layers, d_model 512, 8 heads, ff 2048,
 * dropout 0.1, ReLU, post-norm, eps 1e-5, vocabularies of the given size. */
CF_API cf_transformer_config cf_transformer_base(int src_vocab, int tgt_vocab);
/* A small model for examples and tests: 2+2 layers, d_model 128, 4 heads,
 * ff 512. */
CF_API cf_transformer_config cf_transformer_small(int src_vocab, int tgt_vocab);

/* Per-layer attention maps, filled on request ([B, H, Tq, Tk] each). */
typedef struct {
    cf_tensor **enc_self; /* enc_layers entries */
    cf_tensor **dec_self; /* dec_layers entries */
    cf_tensor **cross;    /* dec_layers entries */
} cf_transformer_maps;

typedef struct cf_transformer cf_transformer; /* opaque; a cf_module first */

/* Parameter names: src_embed.weight, tgt_embed.weight (absent when shared),
 * encoder.layers.{i}.{self_attn.in_proj_weight, self_attn.in_proj_bias,
 * self_attn.out_proj.weight, self_attn.out_proj.bias, linear1.weight,
 * linear1.bias, linear2.weight, linear2.bias, norm1.weight, norm1.bias,
 * norm2.weight, norm2.bias}, encoder.norm.{weight,bias},
 * decoder.layers.{i}.{self_attn.*, multihead_attn.*, linear1.*, linear2.*,
 * norm1.*, norm2.*, norm3.*}, decoder.norm.*, generator.weight (absent when
 * tied), generator.bias. Returns NULL with CF_ERR_ARG for an invalid
 * config. */
CF_API cf_transformer *cf_transformer_new(const cf_transformer_config *cfg, cf_rng *g);
CF_API cf_module *cf_transformer_module(cf_transformer *m);
CF_API const cf_transformer_config *cf_transformer_cfg(const cf_transformer *m);
/* Encoder output [B, S, d_model] for src [B, S]; pad_id positions are
 * masked as keys. maps may be NULL. */
CF_API cf_tensor *cf_transformer_encode(cf_transformer *m, cf_tensor *src,
                                        cf_transformer_maps *maps);
/* Decoder output [B, T, d_model] for tgt [B, T] over memory [B, S, d]. */
CF_API cf_tensor *cf_transformer_decode(cf_transformer *m, cf_tensor *tgt, cf_tensor *memory,
                                        cf_tensor *src, cf_transformer_maps *maps);
/* Teacher-forced logits [B, T, tgt_vocab] for the decoder input tgt [B, T]
 * (bos first): position t predicts the token after tgt[:, t], so train on
 * tgt[:, :-1] against tgt[:, 1:]. */
CF_API cf_tensor *cf_transformer_forward(cf_transformer *m, cf_tensor *src, cf_tensor *tgt,
                                         cf_transformer_maps *maps);
/* Greedy decoding with a key/value cache: out[b * max_len + t] receives the
 * tokens after bos (eos included, then pad). Returns CF_OK or the error. */
CF_API cf_status cf_transformer_greedy(cf_transformer *m, cf_tensor *src, int max_len,
                                       int32_t *out);
/* Beam search (width beam, length penalty ((5 + len) / 6)^alpha as in GNMT)
 * for each source sequence; out as for greedy. */
CF_API cf_status cf_transformer_beam(cf_transformer *m, cf_tensor *src, int beam, float alpha,
                                     int max_len, int32_t *out);

/* ---- Vision Transformer ---- */

typedef struct {
    int image_size, channels, patch_size;
    int dim, depth, heads;
    float mlp_ratio;
    int classes;
    float dropout;
} cf_vit_config;

typedef struct cf_vit cf_vit; /* opaque; a cf_module first */

/* timm names: patch_embed.proj.weight [D, C, P, P], patch_embed.proj.bias,
 * cls_token [1, 1, D], pos_embed [1, N + 1, D], blocks.{i}.norm1.*,
 * blocks.{i}.attn.qkv.{weight,bias}, blocks.{i}.attn.proj.*,
 * blocks.{i}.norm2.*, blocks.{i}.mlp.fc1.*, blocks.{i}.mlp.fc2.*, norm.*,
 * head.*; pre-norm blocks, exact GELU, layer-norm eps 1e-6.
 *
 * Embeddings. Each P x P patch goes through patch_embed.proj (a
 * convolution of stride P), the learned cls_token is put first, and the
 * learned pos_embed (one row per token, CLS included) is added, without
 * scaling; then dropout. No padding: each image's logits are those it gets
 * alone (tests/test_vit.c checks this to 1e-5).
 *
 * Returns the model, or NULL with CF_ERR_ARG naming the first invalid
 * field (a size below 1, image_size not a multiple of patch_size, dim not a
 * multiple of heads, mlp_ratio giving no hidden unit, dropout outside
 * [0, 1], a NULL config) or CF_ERR_NOMEM. g NULL: the global generator. */
CF_API cf_vit *cf_vit_new(const cf_vit_config *cfg, cf_rng *g);
CF_API cf_module *cf_vit_module(cf_vit *m);
/* Logits [B, classes] for images [B, C, H, W]. maps (if not NULL) receives
 * depth tensors [B, H, N+1, N+1]. */
CF_API cf_tensor *cf_vit_forward(cf_vit *m, cf_tensor *images, cf_tensor **maps);
/* Attention rollout (Abnar & Zuidema 2020) of the CLS token from maps:
 * [B, N], heads averaged, identity added and rows renormalised per layer. */
CF_API cf_tensor *cf_vit_rollout(const cf_vit *m, cf_tensor *const *maps);

/* ---- Seq2seq with additive attention ---- */

typedef struct {
    int src_vocab, tgt_vocab;
    int emb, hidden, attn; /* embedding, GRU hidden, attention sizes */
    int enc_layers;
    float dropout;
    int pad_id, bos_id, eos_id;
} cf_seq2seq_config;

typedef struct cf_seq2seq cf_seq2seq; /* opaque; a cf_module first */

/* Names: encoder.embedding.weight, encoder.rnn.* (nn.GRU, bidirectional,
 * enc_layers layers), bridge.{weight,bias} (last encoder states [2H] ->
 * decoder state [H], tanh), decoder.embedding.weight, decoder.attention.*
 * (query_proj, key_proj, v), decoder.rnn.* (GRUCell over [emb + 2H]),
 * decoder.out.{weight,bias} (Linear [H + 2H + emb] -> tgt_vocab).
 *
 * The model, with s_t the decoder state, y_t the target tokens (y_0 = bos)
 * and k_j the encoder outputs [2H] (forward then backward halves):
 *
 *   Embeddings: nn.Embedding rows ~ N(0, 1) with padding_idx = pad_id in
 *     both tables (that row zero, never updated); not scaled, no positions;
 *     dropout (the config's) on them and between encoder layers, in
 *     training only.
 *   Last encoder states: the last layer's, forward direction then backward
 *     direction, each row's forward state after its last real token and
 *     backward state after position 0: s_0 = tanh(bridge([fwd ; bwd])).
 *   Attention from the previous state: e_j = v^T tanh(query_proj(s_{t-1})
 *     + key_proj(k_j)); only key_proj has a bias (query_proj and v have
 *     none); pad_id positions are masked as keys; ctx_t = sum_j a_j k_j.
 *   s_t = GRUCell([emb(y_{t-1}) ; ctx_t], s_{t-1});
 *   logits_t = out([s_t ; ctx_t ; emb(y_{t-1})]).
 *
 * tests/golden/gen_seq2seq.py writes the same model in PyTorch.
 *
 * Padding. A source row's length runs up to its last token that is not
 * pad_id. The encoder GRU skips the positions after it, as torch.nn.GRU
 * does over pack_padded_sequence(emb, lengths, batch_first=True,
 * enforce_sorted=False): in every layer the forward direction stops at the
 * row's last real token (its state frozen there), the backward direction
 * starts from it; the encoder outputs (attention keys) at the positions
 * after it are zeros, as pad_packed_sequence gives. So a row's logits,
 * attention weights and decodings do not depend on how far its batch pads
 * it (tests/test_seq2seq.c checks this to 1e-5). A pad_id before a row's
 * last real token is fed to the GRU (its embedding row is zero) and masked
 * as a key. A row of pad_id only is refused with CF_ERR_ARG naming the row
 * (it would attend nowhere).
 *
 * Returns the model, or NULL with CF_ERR_ARG naming the first invalid
 * field, or CF_ERR_NOMEM. g NULL: the global generator. */
CF_API cf_seq2seq *cf_seq2seq_new(const cf_seq2seq_config *cfg, cf_rng *g);
CF_API cf_module *cf_seq2seq_module(cf_seq2seq *m);
/* Training forward: logits [B, T, tgt_vocab] predicting tgt[:, 1:] from
 * tgt[:, :-1] (T = tgt length - 1). At step 0 the previous token is
 * tgt[:, 0]; at each later step it is the reference tgt[:, t] with
 * probability teacher_forcing, else the model's own argmax at the step
 * before (one draw from g per step, for the whole batch). g is drawn from
 * only when 0 < teacher_forcing < 1 (NULL: the global generator), so it
 * may be NULL, and is left alone, when teacher_forcing is 0 or 1.
 * weights (if not NULL) receives the attention weights [B, T, S]. Errors:
 * CF_ERR_ARG (NULL model or tokens, teacher_forcing outside [0, 1], a
 * source row of padding only), CF_ERR_DTYPE / CF_ERR_SHAPE (tokens not
 * int32 [B, S] and [B, T + 1] with T >= 1), CF_ERR_INDEX (a token outside
 * its vocabulary). */
CF_API cf_tensor *cf_seq2seq_forward(cf_seq2seq *m, cf_tensor *src, cf_tensor *tgt,
                                     float teacher_forcing, cf_rng *g, cf_tensor **weights);
/* Greedy and beam decoding from bos, in eval mode without a graph (both
 * modes restored after): out[b * max_len + t] receives the tokens after
 * bos, eos included, then pad_id. Each step takes the argmax (greedy) or
 * the best continuations (beam, length penalty as cf_transformer_beam) over
 * the whole target vocabulary, pad_id included. weights (if not NULL,
 * greedy only) receives the attention weights [B, max_len, S], zero once a
 * row has ended. Returns CF_OK, or CF_ERR_ARG (NULL model or out, max_len
 * or beam below 1, alpha not finite, a source row of padding only) and the
 * token errors of cf_seq2seq_forward. */
CF_API cf_status cf_seq2seq_greedy(cf_seq2seq *m, cf_tensor *src, int max_len, int32_t *out,
                                   cf_tensor **weights);
CF_API cf_status cf_seq2seq_beam(cf_seq2seq *m, cf_tensor *src, int beam, float alpha, int max_len,
                                 int32_t *out);

#ifdef __cplusplus
}
#endif
#endif
