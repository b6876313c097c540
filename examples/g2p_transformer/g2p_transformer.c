/* Grapheme-to-phoneme conversion with the encoder-decoder Transformer
 * (zoo.h) on the CMU pronouncing dictionary: letters in, phones out.
 *
 *     ./examples/g2p_transformer/g2p_transformer              # 60 minutes
 *     ./examples/g2p_transformer/g2p_transformer --quick      # a smoke run
 *     ./examples/g2p_transformer/g2p_transformer --minutes 20 --threads 1 --out /tmp/g2p
 *     ./examples/g2p_transformer/g2p_transformer --help
 *
 * Data: /usr/share/festival/dicts/cmu/cmudict-0.4.out (Debian package
 * festlex-cmu), split by crc32 of the word into 99,295 training, 1,062 dev
 * and 5,307 test words (examples/common/cmudict.h).
 *
 * Legend: B = batch, S = letters, T = phones + 1, V = 43 target tokens.
 *
 *     logits = transformer(src, bos + phones)     // (B, S), (B, T) -> (B, T, V)
 *     loss   = cross_entropy(logits, phones + eos, label smoothing, pad ignored)
 *
 * The training run (length-bucketed batches, AdamW with warm-up and a
 * cosine decay fitted to the time budget, clipping, dev scores and a
 * checkpoint every epoch, test scores greedy and with a beam, pictures,
 * the JSON line) is examples/common/g2p.c. The pictures of attention show
 * the last decoder layer's cross-attention, averaged over the heads.
 */
#include <cformer/cformer.h>

#include "../common/g2p.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    cf_transformer *m;
    int dec_layers;
} model;

/* src [B, S], tgt [B, T + 1] = bos, phones, eos, pad: teacher forcing on
 * tgt[:, :-1] against tgt[:, 1:]. */
static cf_tensor *loss_fn(void *ud, cf_tensor *src, cf_tensor *tgt, float smoothing)
{
    model *md = ud;
    int64_t T = tgt->shape[1] - 1;
    cf_tensor *tin = cf_contiguous(cf_slice(tgt, 1, 0, T, 1));
    cf_tensor *tout = cf_contiguous(cf_slice(tgt, 1, 1, T + 1, 1));
    cf_tensor *logits = cf_transformer_forward(md->m, src, tin, NULL); /* (B, T, V) */
    cf_loss_opts lo = {.label_smoothing = smoothing, .ignore = true, .ignore_index = CMUDICT_PAD};
    return cf_cross_entropy(cf_reshape(logits, CF_SHAPE(-1, CMUDICT_TGT_VOCAB)),
                            cf_reshape(tout, CF_SHAPE(-1)), &lo);
}

static cf_status greedy_fn(void *ud, cf_tensor *src, int max_len, int32_t *out)
{
    return cf_transformer_greedy(((model *)ud)->m, src, max_len, out);
}

static cf_status beam_fn(void *ud, cf_tensor *src, int beam, float alpha, int max_len, int32_t *out)
{
    return cf_transformer_beam(((model *)ud)->m, src, beam, alpha, max_len, out);
}

/* The last decoder layer's cross-attention [n, S], heads averaged, while
 * the decoder reads bos, hyp[0..n-1). */
static cf_tensor *attention_fn(void *ud, cf_tensor *src, const int32_t *hyp, int n)
{
    model *md = ud;
    cf_module *mod = cf_transformer_module(md->m);
    cf_tensor *tin = cf_empty(CF_I32, CF_SHAPE(1, n));
    if (!tin)
        return NULL;
    int32_t *t = tin->data;
    t[0] = CMUDICT_BOS;
    for (int i = 1; i < n; i++)
        t[i] = hyp[i - 1];
    cf_tensor *cross[64] = {0};
    cf_transformer_maps maps = {.cross = cross};
    bool was = mod->training;
    cf_module_train(mod, false);
    cf_tensor *logits = cf_transformer_forward(md->m, src, tin, &maps);
    cf_module_train(mod, was);
    if (!logits)
        return NULL;
    cf_tensor *w = cross[md->dec_layers - 1]; /* (1, H, n, S) */
    return cf_reshape(cf_mean(w, CF_DIMS(1), false), CF_SHAPE(n, src->shape[1]));
}

int main(int argc, char **argv)
{
    g2p_opts o = g2p_defaults("g2p_transformer_out");
    int d_model = 128, heads = 4, enc_layers = 3, dec_layers = 3, ff = 512;
    float dropout = 0.1f;
    bool pre_norm = false;
    const ex_flag flags[] = {
        EX_COMMON_FLAGS(&o.c),
        G2P_FLAGS(&o),
        {"d-model", EX_INT, &d_model, 8, 4096, false, "model width"},
        {"heads", EX_INT, &heads, 1, 64, false, "attention heads (dividing d-model)"},
        {"enc-layers", EX_INT, &enc_layers, 1, 64, false, "encoder layers"},
        {"dec-layers", EX_INT, &dec_layers, 1, 64, false, "decoder layers"},
        {"ff", EX_INT, &ff, 1, 65536, false, "feed-forward width"},
        {"dropout", EX_FLOAT, &dropout, 0, 0.9, false, "dropout"},
        {"pre-norm", EX_BOOL, &pre_norm, 0, 0, false, "layer norm before each sublayer"},
    };
    switch (ex_flags_parse(flags, EX_COUNT(flags), argc, argv)) {
    case EX_FLAGS_HELP:
        ex_flags_usage(stdout, argv[0],
                       "Trains the encoder-decoder Transformer to spell words as phones (CMU "
                       "dictionary, Debian package festlex-cmu) and reports test WER and PER.",
                       flags, EX_COUNT(flags));
        return 0;
    case EX_FLAGS_ERROR: fprintf(stderr, "g2p_transformer: %s\n", cf_error_message()); return 2;
    case EX_FLAGS_OK: break;
    }
    if (d_model % heads) {
        fprintf(stderr, "g2p_transformer: --d-model %d is not a multiple of --heads %d\n", d_model,
                heads);
        return 2;
    }

    cf_transformer_config cfg = cf_transformer_base(CMUDICT_SRC_VOCAB, CMUDICT_TGT_VOCAB);
    cfg.d_model = d_model, cfg.heads = heads, cfg.ff = ff, cfg.dropout = dropout;
    cfg.enc_layers = enc_layers, cfg.dec_layers = dec_layers, cfg.pre_norm = pre_norm;
    cfg.max_len = G2P_MAX_OUT + 1;
    cfg.pad_id = CMUDICT_PAD, cfg.bos_id = CMUDICT_BOS, cfg.eos_id = CMUDICT_EOS;
    char settings[256];
    snprintf(settings, sizeof settings,
             "Transformer d_model %d, %d heads, %d+%d layers, ff %d, dropout %g, %s", d_model,
             heads, enc_layers, dec_layers, ff, (double)dropout,
             pre_norm ? "pre-norm" : "post-norm");
    o.settings = settings;

    cf_rng g;
    cf_rng_init(&g, o.c.seed);
    model md = {.m = cf_transformer_new(&cfg, &g), .dec_layers = dec_layers};
    cf_module *mod = cf_transformer_module(md.m);
    cf_optim *opt = mod ? cf_adamw_new(mod, &(cf_adamw_opts){.lr = o.c.lr,
                                                             .beta2 = o.beta2,
                                                             .eps = 1e-9f,
                                                             .weight_decay = o.weight_decay,
                                                             .decays = cf_decay_matrices})
                        : NULL;
    if (!opt) {
        fprintf(stderr, "g2p_transformer: model: %s\n", cf_error_message());
        cf_module_free(mod);
        return 1;
    }
    g2p_model gm = {.name = "g2p_transformer",
                    .module = mod,
                    .ud = &md,
                    .loss = loss_fn,
                    .greedy = greedy_fn,
                    .beam = beam_fn,
                    .attention = attention_fn,
                    .attention_what = "phones (last layer's cross-attention)"};
    int status = g2p_main(&o, &gm, opt, argc, argv);
    cf_optim_free(opt);
    cf_module_free(mod);
    return status;
}
