/* An ablation study of the Transformer's design choices, with the zoo's
 * research knobs (zoo.h): each textbook claim is one run per setting with
 * the same seed, data and time budget, scored on held-out data.
 *
 *     ./examples/ablation/ablation                      # ~1 hour on 2 cores
 *     ./examples/ablation/ablation --minutes 3 --threads 1 --out /tmp/abl
 *     ./examples/ablation/ablation --only transformer   # one family
 *     ./examples/ablation/ablation --quick              # every switch, < 2 minutes
 *     ./examples/ablation/ablation --list
 *
 * Settings (docs/ablation.md gives the claims behind them):
 *   G2P Transformer (the g2p_transformer recipe: d_model 128, 4 heads,
 *   3+3 layers, ff 512, dropout 0.1, post-norm): the paper's model, then
 *   BatchNorm, RMSNorm, no positional encoding, no 1/sqrt(d_k), no
 *   residuals, pre-norm, one change each.
 *   G2P seq2seq (the g2p_seq2seq recipe: emb 128, hidden 256, attention
 *   256): GRU with additive attention, then LSTM, dot-product and general
 *   (bilinear) scores.
 *   ViT on Fashion-MNIST (vit_fashion's recipe: patches 7, dim 64, 4
 *   blocks, 4 heads): LayerNorm, BatchNorm, RMSNorm.
 * --small halves the G2P models' widths (Transformer d_model 64, ff 256,
 * 2+2 layers; seq2seq emb 64, hidden and attention 128), so that a loaded
 * or slow machine still takes enough steps in the budget.
 *
 * The G2P runs are examples/common/g2p.c's whole run (length-bucketed
 * batches, AdamW with warm-up and a cosine fitted to the budget, dev
 * scores each epoch, greedy WER and PER on dev and test at the end). The
 * ViT runs train on the first 55,000 training images with AdamW, a
 * warm-up and a cosine over the budget's time, and score accuracy on the
 * last 5,000 (dev) and on the 10,000 test images.
 *
 * Writes to --out: results.md and results.json (a row per setting: dev
 * and test scores, steps, training and wall time, the load average around
 * the run), curves.png (every setting's training loss against steps) and
 * a folder per G2P setting (g2p.c's checkpoint, pictures, model). The
 * three are rewritten after every run, so a study cut short keeps what it
 * finished. Ends with a JSON line like the other examples.
 */
#include <cformer/cformer.h>
#include <cformer/viz.h>

#include "../common/g2p.h"
#include "../common/idx.h"
#include "../common/progress.h"
#include "../common/report.h"
#include "../common/runstate.h"
#include "../common/strbuf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FASHION_DATA    "/usr/share/datasets/fashion-mnist"
#define FASHION_PACKAGE "dataset-fashion-mnist"
#define SIDE            28
#define PIXELS          (SIDE * SIDE)
#define CLASSES         10
#define DEV_IMAGES      5000 /* the last training images, held out */
#define CURVE_POINTS    60   /* points per curve in curves.png */

/* ---- Settings ---- */

typedef enum { TRANSFORMER, SEQ2SEQ, VIT } family;

static const char *const family_names[] = {"G2P Transformer", "G2P seq2seq", "ViT Fashion-MNIST"};

typedef struct {
    const char *name; /* also the folder of its outputs */
    family fam;
    const char *change; /* what differs from the family's first setting */
    cf_norm_kind norm;
    cf_pos_kind pos;
    bool pre_norm, unscaled, no_residual;
    cf_rnn_cell cell;
    cf_attn_score score;
} setting;

static const setting settings[] = {
    {"transformer", TRANSFORMER, "the paper's: LayerNorm, post-norm, sinusoids, 1/sqrt(d_k)",
     .norm = CF_NORM_LAYER},
    {"transformer-batchnorm", TRANSFORMER, "BatchNorm", .norm = CF_NORM_BATCH},
    {"transformer-rmsnorm", TRANSFORMER, "RMSNorm", .norm = CF_NORM_RMS},
    {"transformer-no-positions", TRANSFORMER, "no positional encoding", .pos = CF_POS_NONE},
    {"transformer-unscaled", TRANSFORMER, "scores not divided by sqrt(d_k)", .unscaled = true},
    {"transformer-no-residual", TRANSFORMER, "no residual connections", .no_residual = true},
    {"transformer-pre-norm", TRANSFORMER, "pre-norm", .pre_norm = true},
    {"seq2seq", SEQ2SEQ, "GRU, additive attention", .cell = CF_CELL_GRU},
    {"seq2seq-lstm", SEQ2SEQ, "LSTM", .cell = CF_CELL_LSTM},
    {"seq2seq-dot", SEQ2SEQ, "dot-product attention (decoder state 2H)", .score = CF_SCORE_DOT},
    {"seq2seq-general", SEQ2SEQ, "general (bilinear) attention", .score = CF_SCORE_GENERAL},
    {"vit", VIT, "LayerNorm (timm's)", .norm = CF_NORM_LAYER},
    {"vit-batchnorm", VIT, "BatchNorm", .norm = CF_NORM_BATCH},
    {"vit-rmsnorm", VIT, "RMSNorm", .norm = CF_NORM_RMS},
};
enum { NSETTINGS = sizeof settings / sizeof settings[0] };

typedef struct {
    double minutes; /* time budget of each run, scoring included */
    int threads;
    uint64_t seed;
    const char *out, *cmudict, *fashion, *only;
    bool quick, small, list;
} options;

/* What a run measured. */
typedef struct {
    bool done;
    double dev[2], test[2]; /* G2P: WER and PER; ViT: accuracy in [0] */
    int64_t steps, params;
    double train_seconds, wall_seconds, load_before, load_after;
    float *loss; /* each step's training loss */
    int64_t nloss;
} result;

/* Whether s is selected by --only (comma-separated names or prefixes). */
static bool selected(const options *o, const setting *s)
{
    if (!o->only)
        return true;
    const char *p = o->only;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n && !strncmp(s->name, p, n))
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

/* The one-minute load average, or NAN. */
static double load_average(void)
{
    double v = NAN;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &v) != 1)
            v = NAN;
        fclose(f);
    }
    return v;
}

/* ---- G2P runs (examples/common/g2p.c) ---- */

typedef struct {
    cf_transformer *t; /* one of the two */
    cf_seq2seq *s;
    int dec_layers;
} g2p_net;

/* src [B, S], tgt [B, T + 1] = bos, phones, eos, pad: predicts tgt[:, 1:]. */
static cf_tensor *g2p_loss(void *ud, cf_tensor *src, cf_tensor *tgt, float smoothing)
{
    g2p_net *n = ud;
    int64_t T = tgt->shape[1] - 1;
    cf_tensor *logits; /* (B, T, V) */
    if (n->t)
        logits = cf_transformer_forward(n->t, src, cf_contiguous(cf_slice(tgt, 1, 0, T, 1)), NULL);
    else
        logits = cf_seq2seq_forward(n->s, src, tgt, 1, NULL, NULL);
    cf_tensor *labels = cf_contiguous(cf_slice(tgt, 1, 1, T + 1, 1));
    cf_loss_opts lo = {.label_smoothing = smoothing, .ignore = true, .ignore_index = CMUDICT_PAD};
    return cf_cross_entropy(cf_reshape(logits, CF_SHAPE(-1, CMUDICT_TGT_VOCAB)),
                            cf_reshape(labels, CF_SHAPE(-1)), &lo);
}

static cf_status g2p_greedy(void *ud, cf_tensor *src, int max_len, int32_t *out)
{
    g2p_net *n = ud;
    return n->t ? cf_transformer_greedy(n->t, src, max_len, out)
                : cf_seq2seq_greedy(n->s, src, max_len, out, NULL);
}

static cf_status g2p_beam(void *ud, cf_tensor *src, int beam, float alpha, int max_len,
                          int32_t *out)
{
    g2p_net *n = ud;
    return n->t ? cf_transformer_beam(n->t, src, beam, alpha, max_len, out)
                : cf_seq2seq_beam(n->s, src, beam, alpha, max_len, out);
}

/* The attention [n, S] while the decoder reads bos, hyp[0..n-1): the
 * Transformer's last cross-attention (heads averaged) or the seq2seq's. */
static cf_tensor *g2p_attention(void *ud, cf_tensor *src, const int32_t *hyp, int n)
{
    g2p_net *net = ud;
    cf_module *mod = net->t ? cf_transformer_module(net->t) : cf_seq2seq_module(net->s);
    cf_tensor *tgt = cf_empty(CF_I32, CF_SHAPE(1, n + 1));
    if (!tgt)
        return NULL;
    int32_t *t = tgt->data;
    t[0] = CMUDICT_BOS;
    for (int i = 0; i < n; i++)
        t[i + 1] = hyp[i];
    bool was = mod->training;
    cf_module_train(mod, false);
    cf_tensor *w = NULL;
    if (net->t) {
        cf_tensor *cross[64] = {0};
        cf_transformer_maps maps = {.cross = cross};
        cf_tensor *tin = cf_contiguous(cf_slice(tgt, 1, 0, n, 1));
        if (cf_transformer_forward(net->t, src, tin, &maps))
            w = cf_mean(cross[net->dec_layers - 1], CF_DIMS(1), false); /* (1, n, S) */
    } else if (!cf_seq2seq_forward(net->s, src, tgt, 1, NULL, &w)) {
        w = NULL;
    }
    cf_module_train(mod, was);
    return w ? cf_reshape(w, CF_SHAPE(n, src->shape[1])) : NULL;
}

/* Builds the setting's model (the examples' recipes, or small ones for
 * --quick) into n; a description into desc. NULL with the error recorded. */
static cf_module *g2p_model_new(const setting *s, const options *o, cf_rng *g, g2p_net *n,
                                char *desc, size_t size)
{
    *n = (g2p_net){0};
    if (s->fam == TRANSFORMER) {
        cf_transformer_config c = cf_transformer_base(CMUDICT_SRC_VOCAB, CMUDICT_TGT_VOCAB);
        c.d_model = o->quick ? 32 : o->small ? 64 : 128;
        c.heads = o->quick ? 2 : 4;
        c.ff = 4 * c.d_model;
        c.enc_layers = c.dec_layers = o->quick ? 1 : o->small ? 2 : 3;
        c.max_len = G2P_MAX_OUT + 1;
        c.pad_id = CMUDICT_PAD, c.bos_id = CMUDICT_BOS, c.eos_id = CMUDICT_EOS;
        c.norm = s->norm, c.pos = s->pos, c.pre_norm = s->pre_norm;
        c.unscaled = s->unscaled, c.no_residual = s->no_residual;
        snprintf(desc, size, "Transformer d_model %d, %d heads, %d+%d layers, ff %d; %s", c.d_model,
                 c.heads, c.enc_layers, c.dec_layers, c.ff, s->change);
        n->dec_layers = c.dec_layers;
        n->t = cf_transformer_new(&c, g);
        return cf_transformer_module(n->t);
    }
    cf_seq2seq_config c = {.src_vocab = CMUDICT_SRC_VOCAB,
                           .tgt_vocab = CMUDICT_TGT_VOCAB,
                           .emb = o->quick   ? 16
                                  : o->small ? 64
                                             : 128,
                           .hidden = o->quick   ? 32
                                     : o->small ? 128
                                                : 256,
                           .attn = o->quick   ? 32
                                   : o->small ? 128
                                              : 256,
                           .enc_layers = 1,
                           .dropout = 0.1f,
                           .pad_id = CMUDICT_PAD,
                           .bos_id = CMUDICT_BOS,
                           .eos_id = CMUDICT_EOS,
                           .cell = s->cell,
                           .score = s->score};
    snprintf(desc, size, "seq2seq emb %d, hidden %d, attention %d; %s", c.emb, c.hidden, c.attn,
             s->change);
    n->s = cf_seq2seq_new(&c, g);
    return cf_seq2seq_module(n->s);
}

static int run_g2p(const setting *s, const options *o, result *r, int argc, char **argv)
{
    char dir[4096], desc[256];
    snprintf(dir, sizeof dir, "%s/%s", o->out, s->name);
    g2p_opts go = g2p_defaults(dir);
    go.c.data = o->cmudict;
    go.c.minutes = o->minutes;
    go.c.threads = o->threads;
    go.c.seed = o->seed;
    go.c.quick = o->quick;
    go.beam = 1; /* greedy scores: the beam would only add time */
    if (o->quick)
        go.c.batch = 64;
    g2p_result gr = {0};
    go.result = &gr;
    cf_rng g;
    cf_rng_init(&g, o->seed);
    g2p_net net;
    cf_module *mod = g2p_model_new(s, o, &g, &net, desc, sizeof desc);
    go.settings = desc;
    cf_optim *opt = mod ? cf_adamw_new(mod, &(cf_adamw_opts){.lr = go.c.lr,
                                                             .beta2 = go.beta2,
                                                             .eps = 1e-9f,
                                                             .weight_decay = go.weight_decay,
                                                             .decays = cf_decay_matrices})
                        : NULL;
    if (!opt) {
        fprintf(stderr, "ablation: %s: model: %s\n", s->name, cf_error_message());
        cf_module_free(mod);
        return 1;
    }
    g2p_model gm = {.name = s->name,
                    .module = mod,
                    .ud = &net,
                    .loss = g2p_loss,
                    .greedy = g2p_greedy,
                    .beam = g2p_beam,
                    .attention = g2p_attention,
                    .attention_what = net.t ? "phones (last cross-attention)" : "phones"};
    int status = g2p_main(&go, &gm, opt, argc, argv);
    if (gr.nloss) {
        r->dev[0] = g2p_wer(&gr.dev), r->dev[1] = g2p_per(&gr.dev);
        r->test[0] = g2p_wer(&gr.test_greedy), r->test[1] = g2p_per(&gr.test_greedy);
        r->steps = gr.steps;
        r->train_seconds = gr.train_seconds;
        r->loss = gr.loss, r->nloss = gr.nloss;
        r->params = cf_module_num_params(mod);
        r->done = status == 0;
    }
    cf_optim_free(opt);
    cf_module_free(mod);
    return status;
}

/* ---- ViT runs ---- */

typedef struct {
    ex_idx_set train, test;
    int64_t ntrain, ndev, ntest; /* dev: the ndev images after the first ntrain */
    float mean, inv_std;         /* of the training pixels in [0, 1] */
} fashion;

static cf_status fashion_load(fashion *d, const options *o)
{
    *d = (fashion){0};
    cf_status st = ex_idx_load_set(o->fashion, "train", CLASSES, FASHION_PACKAGE, &d->train);
    if (!st)
        st = ex_idx_load_set(o->fashion, "t10k", CLASSES, FASHION_PACKAGE, &d->test);
    if (!st && (d->train.rows != SIDE || d->train.cols != SIDE || d->test.rows != SIDE ||
                d->test.cols != SIDE || d->train.n <= DEV_IMAGES)) {
        cf_error_set(CF_ERR_FORMAT, "%s: expected 28 x 28 images and over %d training images",
                     o->fashion, DEV_IMAGES);
        st = CF_ERR_FORMAT;
    }
    if (st)
        return st;
    d->ntrain = d->train.n - DEV_IMAGES;
    d->ndev = DEV_IMAGES;
    d->ntest = d->test.n;
    if (o->quick)
        d->ntrain = 2000, d->ndev = 500, d->ntest = 500;
    double s = 0, ss = 0, n = (double)d->ntrain * PIXELS;
    for (int64_t i = 0; i < d->ntrain * PIXELS; i++) {
        double v = d->train.images[i] / 255.0;
        s += v, ss += v * v;
    }
    d->mean = (float)(s / n);
    d->inv_std = (float)(1 / sqrt(ss / n - (s / n) * (s / n)));
    return CF_OK;
}

static void fashion_free(fashion *d)
{
    ex_idx_set_free(&d->train);
    ex_idx_set_free(&d->test);
}

/* Arena tensors x (n, 1, 28, 28), normalised, and y (n) for the images
 * idx[0..n) of set. */
static bool vit_batch(const fashion *d, const ex_idx_set *set, const int32_t *idx, int64_t n,
                      cf_tensor **x, cf_tensor **y)
{
    *x = cf_empty(CF_F32, CF_SHAPE(n, 1, SIDE, SIDE));
    *y = cf_empty(CF_I32, CF_SHAPE(n));
    if (!*x || !*y)
        return false;
    float *xp = (*x)->data, scale = d->inv_std / 255.0f, shift = -d->mean * d->inv_std;
    int32_t *yp = (*y)->data;
    for (int64_t b = 0; b < n; b++) {
        const uint8_t *img = set->images + (int64_t)idx[b] * PIXELS;
        for (int p = 0; p < PIXELS; p++)
            xp[b * PIXELS + p] = (float)img[p] * scale + shift;
        yp[b] = set->labels[idx[b]];
    }
    return true;
}

/* Accuracy over images first .. first + n - 1 of set, in eval mode. */
static double vit_accuracy(cf_vit *m, const fashion *d, const ex_idx_set *set, int64_t first,
                           int64_t n, cf_arena *arena)
{
    enum { EB = 500 };
    int32_t idx[EB];
    int64_t right = 0;
    cf_module_train(cf_vit_module(m), false);
    for (int64_t s = 0; s < n; s += EB) {
        int64_t b = n - s < EB ? n - s : EB;
        for (int64_t i = 0; i < b; i++)
            idx[i] = (int32_t)(first + s + i);
        cf_tensor *x, *y, *pred = NULL;
        if (!vit_batch(d, set, idx, b, &x, &y))
            return NAN;
        CF_NO_GRAD { pred = cf_argmax(cf_vit_forward(m, x, NULL), -1, false); }
        if (!pred)
            return NAN;
        for (int64_t i = 0; i < b; i++)
            right += ((int32_t *)pred->data)[i] == ((int32_t *)y->data)[i];
        cf_arena_reset(arena);
    }
    cf_module_train(cf_vit_module(m), true);
    return (double)right / (double)n;
}

/* Trains until 90% of the budget has passed (the rest pays for the
 * scoring), or 40 steps with --quick; the learning rate warms up over 200
 * steps, then follows a cosine over the budget's time to 1e-5. */
static int run_vit(const setting *s, const options *o, const fashion *d, result *r)
{
    const float lr_max = 2e-3f, lr_min = 1e-5f, smoothing = 0.1f;
    const int64_t B = o->quick ? 64 : 128, warmup = o->quick ? 5 : 200;
    cf_vit_config c = {.image_size = SIDE,
                       .channels = 1,
                       .patch_size = 7,
                       .dim = o->quick ? 32 : 64,
                       .depth = o->quick ? 1 : 4,
                       .heads = o->quick ? 2 : 4,
                       .mlp_ratio = 2,
                       .classes = CLASSES,
                       .norm = s->norm};
    cf_rng g, data_rng;
    cf_rng_init(&g, o->seed);
    cf_rng_init(&data_rng, o->seed + 1);
    cf_vit *m = cf_vit_new(&c, &g);
    cf_module *mod = cf_vit_module(m);
    cf_optim *opt = mod ? cf_adamw_new(mod, &(cf_adamw_opts){.lr = lr_max,
                                                             .weight_decay = 0.05f,
                                                             .decays = cf_decay_matrices})
                        : NULL;
    cf_arena *arena = cf_arena_new(0);
    int32_t *order = malloc(sizeof *order * (size_t)d->ntrain);
    ex_series loss = {.name = "loss"};
    if (!opt || !arena || !order) {
        fprintf(stderr, "ablation: %s: %s\n", s->name,
                cf_error() ? cf_error_message() : "out of memory");
        cf_optim_free(opt), cf_module_free(mod), cf_arena_free(arena), free(order);
        return 1;
    }
    cf_arena *prev = cf_arena_use(arena);
    if (o->threads > 0)
        cf_set_num_threads(o->threads);
    printf("%s: ViT dim %d, %d blocks, %d heads, patches %d; %s; %lld parameters\n", s->name, c.dim,
           c.depth, c.heads, c.patch_size, s->change, (long long)cf_module_num_params(mod));
    fflush(stdout);
    double t0 = ex_now(), budget = o->minutes * 60;
    int64_t step = 0, pos = d->ntrain; /* pos: next image of the epoch's order */
    int status = 0;
    for (;;) {
        double frac = (ex_now() - t0) / (0.9 * budget);
        if (o->quick ? step >= 40 : frac >= 1)
            break;
        if (pos + B > d->ntrain) { /* a new epoch: shuffle (Fisher-Yates) */
            cf_tensor *u = cf_uniform(&data_rng, 0, 1, CF_SHAPE(d->ntrain));
            for (int64_t i = 0; i < d->ntrain; i++)
                order[i] = (int32_t)i;
            for (int64_t i = d->ntrain - 1; u && i > 0; i--) {
                int64_t j = (int64_t)((double)((float *)u->data)[i] * (double)(i + 1));
                j = j > i ? i : j;
                int32_t t = order[i];
                order[i] = order[j], order[j] = t;
            }
            pos = 0;
        }
        if (o->quick)
            frac = (double)step / 40;
        float lr = step < warmup ? lr_max * (float)(step + 1) / (float)warmup
                                 : lr_min + 0.5f * (lr_max - lr_min) *
                                                (1 + cosf(3.14159265f * (float)fmin(frac, 1)));
        cf_tensor *x, *y;
        float value = NAN;
        if (vit_batch(d, &d->train, order + pos, B, &x, &y)) {
            cf_tensor *l = cf_cross_entropy(cf_vit_forward(m, x, NULL), y,
                                            &(cf_loss_opts){.label_smoothing = smoothing});
            cf_optim_zero_grad(opt);
            if (l && cf_backward(l) == CF_OK) {
                cf_clip_grad_norm(mod, 1);
                cf_optim_set_lr(opt, lr);
                cf_optim_step(opt);
                value = cf_item(l);
            }
        }
        cf_arena_reset(arena);
        pos += B;
        if (isnan(value) && cf_error()) {
            fprintf(stderr, "ablation: %s: step %lld: %s\n", s->name, (long long)step,
                    cf_error_message());
            status = 1;
            break;
        }
        if (loss.n == loss.cap) {
            int64_t cap = loss.cap ? 2 * loss.cap : 1024;
            float *v = realloc(loss.v, sizeof *v * (size_t)cap);
            if (!v) {
                status = 1;
                break;
            }
            loss.v = v, loss.cap = cap;
        }
        loss.v[loss.n++] = value;
        step++;
        if (step % 100 == 0 || (o->quick && step % 10 == 0)) {
            printf("%s: step %lld  loss %.4f  lr %.2g  %.0f s\n", s->name, (long long)step, value,
                   (double)lr, ex_now() - t0);
            fflush(stdout);
        }
    }
    r->train_seconds = ex_now() - t0;
    if (!status) {
        r->dev[0] = vit_accuracy(m, d, &d->train, d->ntrain, d->ndev, arena);
        r->test[0] = vit_accuracy(m, d, &d->test, 0, d->ntest, arena);
        double first, last;
        if (isnan(r->dev[0]) || isnan(r->test[0])) {
            fprintf(stderr, "ablation: %s: scoring: %s\n", s->name, cf_error_message());
            status = 1;
        } else if (o->quick && !ex_series_fell(&loss, &first, &last)) {
            fprintf(stderr, "ablation: %s: the loss did not fall (%.4f -> %.4f)\n", s->name, first,
                    last);
            status = 1;
        }
        printf("%s: %lld steps in %.0f s; dev accuracy %.2f%%, test accuracy %.2f%%\n", s->name,
               (long long)step, r->train_seconds, 100 * r->dev[0], 100 * r->test[0]);
    }
    r->steps = step;
    r->params = cf_module_num_params(mod);
    r->loss = loss.v, r->nloss = loss.n;
    r->done = status == 0;
    cf_arena_use(prev);
    cf_arena_free(arena);
    cf_optim_free(opt);
    cf_module_free(mod);
    free(order);
    return status;
}

/* ---- Reports ---- */

/* A value of a row in the markdown table: a percentage, or "-". */
static void md_pct(ex_buf *b, bool have, double v)
{
    if (have && isfinite(v))
        ex_buf_addf(b, " %.2f |", 100 * v);
    else
        ex_buf_add(b, " - |", 4);
}

static cf_status write_text(const char *path, const ex_buf *b)
{
    if (b->failed) {
        cf_error_set(CF_ERR_NOMEM, "%s: out of memory", path);
        return CF_ERR_NOMEM;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    bool ok = f && fputs(ex_buf_str(b), f) >= 0;
    ok = f && fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        cf_error_set(CF_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        return CF_ERR_IO;
    }
    return CF_OK;
}

static void json_num(ex_buf *b, const char *key, double v)
{
    ex_buf_json(b, key);
    if (isfinite(v))
        ex_buf_addf(b, ": %.6g, ", v);
    else
        ex_buf_add(b, ": null, ", 8);
}

/* results.md, results.json and curves.png from the runs done so far. */
static cf_status write_reports(const options *o, const result *res, double load_start)
{
    char path[4200];
    ex_buf md = {0}, js = {0};
    /* ex_buf_addf writes up to 255 bytes a call. */
    ex_buf_addf(
        &md,
        "# Ablation results\n\nBudget: %g minutes per run (training and scoring)%s, seed %llu, ",
        o->minutes, o->quick ? " (--quick: a few steps, slices of the data)" : "",
        (unsigned long long)o->seed);
    ex_buf_addf(&md, "threads %d (0: tuned)%s; load average %.2f at the start.\n", o->threads,
                o->small ? "; --small G2P models" : "", load_start);
    ex_buf_addf(&md, "G2P: greedy word and phone error rates (%%); ViT: accuracy (%%).\n\n");
    ex_buf_addf(&md,
                "| setting | model | change | parameters | steps | train s | wall s | load | ");
    ex_buf_addf(&md, "dev WER | dev PER | test WER | test PER | dev acc | test acc |\n");
    ex_buf_addf(&md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    ex_buf_add(&js, "{", 1);
    json_num(&js, "budget_minutes", o->minutes);
    ex_buf_addf(&js, "\"quick\": %s, \"small\": %s, \"seed\": %llu, \"threads\": %d, ",
                o->quick ? "true" : "false", o->small ? "true" : "false",
                (unsigned long long)o->seed, o->threads);
    json_num(&js, "load_average_start", load_start);
    ex_buf_add(&js, "\"settings\": [", 13);
    cf_series series[NSETTINGS];
    float *xy[NSETTINGS] = {0};
    int ns = 0, nj = 0;
    for (int i = 0; i < NSETTINGS; i++) {
        const result *r = &res[i];
        const setting *s = &settings[i];
        if (!r->done)
            continue;
        bool g2p = s->fam != VIT;
        ex_buf_addf(&md, "| %s | %s | %s | %lld | %lld | %.0f | %.0f | %.1f-%.1f |", s->name,
                    family_names[s->fam], s->change, (long long)r->params, (long long)r->steps,
                    r->train_seconds, r->wall_seconds, r->load_before, r->load_after);
        md_pct(&md, g2p, r->dev[0]);
        md_pct(&md, g2p, r->dev[1]);
        md_pct(&md, g2p, r->test[0]);
        md_pct(&md, g2p, r->test[1]);
        md_pct(&md, !g2p, r->dev[0]);
        md_pct(&md, !g2p, r->test[0]);
        ex_buf_add(&md, "\n", 1);

        ex_buf_add(&js, nj ? ", {" : "{", nj ? 3 : 1);
        nj++;
        ex_buf_json(&js, "name");
        ex_buf_add(&js, ": ", 2);
        ex_buf_json(&js, s->name);
        ex_buf_add(&js, ", \"model\": ", 11);
        ex_buf_json(&js, family_names[s->fam]);
        ex_buf_add(&js, ", \"change\": ", 12);
        ex_buf_json(&js, s->change);
        ex_buf_add(&js, ", ", 2);
        json_num(&js, "parameters", (double)r->params);
        json_num(&js, "steps", (double)r->steps);
        json_num(&js, "train_seconds", r->train_seconds);
        json_num(&js, "wall_seconds", r->wall_seconds);
        json_num(&js, "load_before", r->load_before);
        json_num(&js, "load_after", r->load_after);
        if (g2p) {
            json_num(&js, "dev_wer", r->dev[0]);
            json_num(&js, "dev_per", r->dev[1]);
            json_num(&js, "test_wer", r->test[0]);
            json_num(&js, "test_per", r->test[1]);
        } else {
            json_num(&js, "dev_accuracy", r->dev[0]);
            json_num(&js, "test_accuracy", r->test[0]);
        }
        js.len -= 2; /* the last ", " */
        ex_buf_add(&js, "}", 1);

        /* The loss in windows: mean per window, at the window's middle step. */
        int64_t w = r->nloss / CURVE_POINTS > 1 ? r->nloss / CURVE_POINTS : 1;
        int n = (int)((r->nloss + w - 1) / w);
        xy[ns] = malloc(sizeof(float) * (size_t)(2 * (n ? n : 1)));
        if (!xy[ns])
            continue;
        for (int k = 0; k < n; k++) {
            int64_t a = k * w, e = a + w < r->nloss ? a + w : r->nloss;
            double sum = 0;
            for (int64_t j = a; j < e; j++)
                sum += r->loss[j];
            xy[ns][k] = (float)((double)(a + e) / 2);
            xy[ns][n + k] = (float)(sum / (double)(e - a));
        }
        series[ns] = (cf_series){.label = s->name, .x = xy[ns], .y = xy[ns] + n, .n = n};
        ns++;
    }
    ex_buf_add(&js, "]}\n", 3);
    cf_status st;
    snprintf(path, sizeof path, "%s/results.md", o->out);
    st = write_text(path, &md);
    snprintf(path, sizeof path, "%s/results.json", o->out);
    if (!st)
        st = write_text(path, &js);
    if (!st && ns > 0) {
        char title[160];
        snprintf(title, sizeof title,
                 "Training loss per setting (label smoothing 0.1), %g min per run%s", o->minutes,
                 o->small ? ", small G2P models" : "");
        cf_plot_opts po = {.title = title,
                           .xlabel = "training step",
                           .ylabel = "cross entropy (window mean)",
                           .width = 1000,
                           .height = 640,
                           .log_y = true};
        snprintf(path, sizeof path, "%s/curves.png", o->out);
        st = cf_viz_lines(path, series, ns, &po);
    }
    for (int i = 0; i < ns; i++)
        free(xy[i]);
    ex_buf_free(&md);
    ex_buf_free(&js);
    return st;
}

/* ---- Main ---- */

static const char ABOUT[] =
    "Tests textbook claims about the Transformer by training one model per setting (same seed, "
    "data and time budget): BatchNorm vs LayerNorm vs RMSNorm, no positional encoding, no "
    "1/sqrt(d_k), no residuals, post- vs pre-norm on G2P (CMU dictionary, festlex-cmu); GRU vs "
    "LSTM and additive vs dot-product attention in the G2P seq2seq; the norms again in a ViT on "
    "Fashion-MNIST (dataset-fashion-mnist). Writes results.md, results.json and curves.png to "
    "--out.";

int main(int argc, char **argv)
{
    options o = {.minutes = 4,
                 .seed = 42,
                 .out = "ablation_out",
                 .cmudict = CMUDICT_PATH,
                 .fashion = FASHION_DATA};
    const ex_flag flags[] = {
        {"minutes", EX_DOUBLE, &o.minutes, 0, 1e5, true,
         "time budget of each run, scoring included"},
        {"threads", EX_INT, &o.threads, 0, 1024, false,
         "kernel threads (0: CF_NUM_THREADS or all cores; G2P runs tune between 1 and all)"},
        {"seed", EX_U64, &o.seed, 0, 9007199254740992.0, false, "the seed of every run"},
        {"out", EX_STRING, &o.out, 0, 0, false, "folder for the results"},
        {"cmudict", EX_STRING, &o.cmudict, 0, 0, false, "the CMU dictionary (festlex-cmu)"},
        {"fashion", EX_STRING, &o.fashion, 0, 0, false, "the Fashion-MNIST folder"},
        {"only", EX_STRING, &o.only, 0, 0, false,
         "run only these settings: names or prefixes, comma-separated"},
        {"small", EX_BOOL, &o.small, 0, 0, false,
         "G2P models of half the width (and 2+2 Transformer layers), for slow machines"},
        {"quick", EX_BOOL, &o.quick, 0, 0, false,
         "every setting for a few steps on slices of the data, tiny models"},
        {"list", EX_BOOL, &o.list, 0, 0, false, "list the settings and stop"},
    };
    switch (ex_flags_parse(flags, EX_COUNT(flags), argc, argv)) {
    case EX_FLAGS_HELP: ex_flags_usage(stdout, argv[0], ABOUT, flags, EX_COUNT(flags)); return 0;
    case EX_FLAGS_ERROR: fprintf(stderr, "ablation: %s\n", cf_error_message()); return 2;
    case EX_FLAGS_OK: break;
    }
    int chosen = 0;
    for (int i = 0; i < NSETTINGS; i++) {
        if (!selected(&o, &settings[i]))
            continue;
        chosen++;
        if (o.list)
            printf("%-26s %-18s %s\n", settings[i].name, family_names[settings[i].fam],
                   settings[i].change);
    }
    if (o.list)
        return 0;
    if (!chosen) {
        fprintf(stderr, "ablation: --only %s selects no setting (see --list)\n", o.only);
        return 2;
    }
    if (mkdir(o.out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "ablation: cannot create %s: %s\n", o.out, strerror(errno));
        return 1;
    }
    fashion data = {0};
    bool need_vit = false;
    for (int i = 0; i < NSETTINGS; i++)
        need_vit = need_vit || (settings[i].fam == VIT && selected(&o, &settings[i]));
    if (need_vit && fashion_load(&data, &o)) {
        fprintf(stderr, "ablation: %s\n", cf_error_message());
        return 1;
    }
    result res[NSETTINGS] = {{0}};
    double t0 = ex_now(), load_start = load_average();
    int failed = 0;
    for (int i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        if (!selected(&o, s))
            continue;
        printf("\n== %s (%s: %s), %g minutes\n", s->name, family_names[s->fam], s->change,
               o.minutes);
        fflush(stdout);
        result *r = &res[i];
        r->load_before = load_average();
        double t = ex_now();
        int st = s->fam == VIT ? run_vit(s, &o, &data, r) : run_g2p(s, &o, r, argc, argv);
        cf_error_clear();
        r->wall_seconds = ex_now() - t;
        r->load_after = load_average();
        if (st) {
            fprintf(stderr, "ablation: %s failed\n", s->name);
            failed++;
        }
        if (write_reports(&o, res, load_start)) {
            fprintf(stderr, "ablation: reports: %s\n", cf_error_message());
            failed++;
            cf_error_clear();
        }
    }
    printf("\nwrote %s/results.md, %s/results.json and %s/curves.png\n", o.out, o.out, o.out);
    ex_report rep;
    ex_report_init(&rep, "ablation");
    for (int i = 0; i < NSETTINGS; i++) {
        if (!res[i].done)
            continue;
        char key[96];
        snprintf(key, sizeof key, "%s_test_%s", settings[i].name,
                 settings[i].fam == VIT ? "accuracy" : "wer");
        ex_report_num(&rep, key, res[i].test[0]);
    }
    ex_report_int(&rep, "failed", failed);
    ex_report_print(&rep, stdout, ex_now() - t0, cf_get_num_threads(), 0, argc, argv);
    ex_report_free(&rep);
    for (int i = 0; i < NSETTINGS; i++)
        free(res[i].loss);
    fashion_free(&data);
    return failed ? 1 : 0;
}
