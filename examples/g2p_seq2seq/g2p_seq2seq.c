/* Grapheme-to-phoneme conversion with the GRU encoder-decoder and additive
 * (Bahdanau) attention (zoo.h, cf_seq2seq) on the CMU pronouncing
 * dictionary: letters in, phones out. The same data, split, metrics and
 * training run as examples/g2p_transformer (examples/common/g2p.c).
 *
 *     ./examples/g2p_seq2seq/g2p_seq2seq              # 60 minutes
 *     ./examples/g2p_seq2seq/g2p_seq2seq --quick      # a smoke run
 *     ./examples/g2p_seq2seq/g2p_seq2seq --help
 *
 * Legend: B = batch, S = letters, T = phones + 1, V = 43 target tokens.
 *
 *     logits = seq2seq(src, bos + phones + eos)   // (B, S), (B, T + 1) -> (B, T, V)
 *     loss   = cross_entropy(logits, phones + eos, label smoothing, pad ignored)
 *
 * Teacher forcing throughout (the reference is always the previous token).
 * The encoder skips each word's padding (zoo.h), so the length buckets
 * change only the speed, not the numbers. The pictures of attention show
 * the decoder's additive attention over the letters at each output step.
 */
#include <cformer/cformer.h>

#include "../common/g2p.h"

#include <stdio.h>
#include <stdlib.h>

/* src [B, S], tgt [B, T + 1] = bos, phones, eos, pad: the model predicts
 * tgt[:, 1:] from tgt[:, :-1]. */
static cf_tensor *loss_fn(void *ud, cf_tensor *src, cf_tensor *tgt, float smoothing)
{
    int64_t T = tgt->shape[1] - 1;
    cf_tensor *logits = cf_seq2seq_forward(ud, src, tgt, 1, NULL, NULL); /* (B, T, V) */
    cf_tensor *labels = cf_contiguous(cf_slice(tgt, 1, 1, T + 1, 1));
    cf_loss_opts lo = {.label_smoothing = smoothing, .ignore = true, .ignore_index = CMUDICT_PAD};
    return cf_cross_entropy(cf_reshape(logits, CF_SHAPE(-1, CMUDICT_TGT_VOCAB)),
                            cf_reshape(labels, CF_SHAPE(-1)), &lo);
}

static cf_status greedy_fn(void *ud, cf_tensor *src, int max_len, int32_t *out)
{
    return cf_seq2seq_greedy(ud, src, max_len, out, NULL);
}

static cf_status beam_fn(void *ud, cf_tensor *src, int beam, float alpha, int max_len, int32_t *out)
{
    return cf_seq2seq_beam(ud, src, beam, alpha, max_len, out);
}

/* The attention weights [n, S] while the decoder reads bos, hyp[0..n-1)
 * and emits hyp[0..n). */
static cf_tensor *attention_fn(void *ud, cf_tensor *src, const int32_t *hyp, int n)
{
    cf_module *mod = cf_seq2seq_module(ud);
    cf_tensor *tgt = cf_empty(CF_I32, CF_SHAPE(1, n + 1));
    if (!tgt)
        return NULL;
    int32_t *t = tgt->data;
    t[0] = CMUDICT_BOS;
    for (int i = 0; i < n; i++)
        t[i + 1] = hyp[i];
    cf_tensor *w = NULL;
    bool was = mod->training;
    cf_module_train(mod, false);
    cf_tensor *logits = cf_seq2seq_forward(ud, src, tgt, 1, NULL, &w); /* w: (1, n, S) */
    cf_module_train(mod, was);
    return logits ? cf_reshape(w, CF_SHAPE(n, src->shape[1])) : NULL;
}

int main(int argc, char **argv)
{
    g2p_opts o = g2p_defaults("g2p_seq2seq_out");
    int emb = 128, hidden = 256, attn = 256, enc_layers = 1;
    float dropout = 0.1f;
    const ex_flag flags[] = {
        EX_COMMON_FLAGS(&o.c),
        G2P_FLAGS(&o),
        {"emb", EX_INT, &emb, 1, 4096, false, "embedding size (letters and phones)"},
        {"hidden", EX_INT, &hidden, 1, 4096, false, "GRU state size (each encoder direction)"},
        {"attn", EX_INT, &attn, 1, 4096, false, "additive attention size"},
        {"enc-layers", EX_INT, &enc_layers, 1, 16, false, "bidirectional encoder layers"},
        {"dropout", EX_FLOAT, &dropout, 0, 0.9, false, "dropout"},
    };
    switch (ex_flags_parse(flags, EX_COUNT(flags), argc, argv)) {
    case EX_FLAGS_HELP:
        ex_flags_usage(stdout, argv[0],
                       "Trains a GRU encoder-decoder with additive attention to spell words as "
                       "phones (CMU dictionary, Debian package festlex-cmu) and reports test WER "
                       "and PER.",
                       flags, EX_COUNT(flags));
        return 0;
    case EX_FLAGS_ERROR: fprintf(stderr, "g2p_seq2seq: %s\n", cf_error_message()); return 2;
    case EX_FLAGS_OK: break;
    }

    cf_seq2seq_config cfg = {.src_vocab = CMUDICT_SRC_VOCAB,
                             .tgt_vocab = CMUDICT_TGT_VOCAB,
                             .emb = emb,
                             .hidden = hidden,
                             .attn = attn,
                             .enc_layers = enc_layers,
                             .dropout = dropout,
                             .pad_id = CMUDICT_PAD,
                             .bos_id = CMUDICT_BOS,
                             .eos_id = CMUDICT_EOS};
    char settings[256];
    snprintf(settings, sizeof settings,
             "GRU seq2seq emb %d, hidden %d, attention %d, %d bidirectional encoder layer%s, "
             "dropout %g",
             emb, hidden, attn, enc_layers, enc_layers == 1 ? "" : "s", (double)dropout);
    o.settings = settings;

    cf_rng g;
    cf_rng_init(&g, o.c.seed);
    cf_seq2seq *s2s = cf_seq2seq_new(&cfg, &g);
    cf_module *mod = cf_seq2seq_module(s2s);
    cf_optim *opt = mod ? cf_adamw_new(mod, &(cf_adamw_opts){.lr = o.c.lr,
                                                             .beta2 = o.beta2,
                                                             .eps = 1e-9f,
                                                             .weight_decay = o.weight_decay,
                                                             .decays = cf_decay_matrices})
                        : NULL;
    if (!opt) {
        fprintf(stderr, "g2p_seq2seq: model: %s\n", cf_error_message());
        cf_module_free(mod);
        return 1;
    }
    g2p_model gm = {.name = "g2p_seq2seq",
                    .module = mod,
                    .ud = s2s,
                    .loss = loss_fn,
                    .greedy = greedy_fn,
                    .beam = beam_fn,
                    .attention = attention_fn,
                    .attention_what = "phones (additive attention)"};
    int status = g2p_main(&o, &gm, opt, argc, argv);
    cf_optim_free(opt);
    cf_module_free(mod);
    return status;
}
