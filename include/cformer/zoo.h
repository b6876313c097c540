/* cformer/zoo.h: three models built only from nn.h and the public API.
 *
 *  - cf_transformer: the encoder-decoder Transformer of "Attention Is All
 *    You Need", with the parameter names of torch.nn.Transformer.
 *  - cf_vit: a Vision Transformer encoder with timm's layout and names.
 *  - cf_seq2seq: a GRU encoder-decoder with additive (Bahdanau) attention.
 *
 * Each model is a cf_module (its `base`): save and load it with
 * cf_module_save / cf_module_load, which refuse a file whose tensors have
 * the wrong shape or miss a name, naming the parameter. Token tensors are
 * int32 [B, T]; outputs are arena tensors. A model made here belongs to the
 * caller: free it with cf_module_free(&model->base). A NULL model is
 * CF_ERR_ARG, as for the modules of nn.h.
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
} cf_transformer_config;

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
/* Teacher-forced logits [B, T, tgt_vocab]. */
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
 * head.*; pre-norm blocks, exact GELU, layer-norm eps 1e-6. */
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
 * decoder.out.{weight,bias} (Linear [H + 2H + emb] -> tgt_vocab). */
CF_API cf_seq2seq *cf_seq2seq_new(const cf_seq2seq_config *cfg, cf_rng *g);
CF_API cf_module *cf_seq2seq_module(cf_seq2seq *m);
/* Training forward: logits [B, T, tgt_vocab] predicting tgt[:, 1:] from
 * tgt[:, :-1] (T = tgt length - 1); at each step the previous token is the
 * reference with probability teacher_forcing, else the model's own argmax
 * (drawn from g). weights (if not NULL) receives [B, T, S]. */
CF_API cf_tensor *cf_seq2seq_forward(cf_seq2seq *m, cf_tensor *src, cf_tensor *tgt,
                                     float teacher_forcing, cf_rng *g, cf_tensor **weights);
/* Greedy and beam decoding; out[b * max_len + t]; weights (if not NULL,
 * greedy only) receives [B, max_len, S]. */
CF_API cf_status cf_seq2seq_greedy(cf_seq2seq *m, cf_tensor *src, int max_len, int32_t *out,
                                   cf_tensor **weights);
CF_API cf_status cf_seq2seq_beam(cf_seq2seq *m, cf_tensor *src, int beam, float alpha, int max_len,
                                 int32_t *out);

#ifdef __cplusplus
}
#endif
#endif
