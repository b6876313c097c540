/* Trains a small Vision Transformer on Fashion-MNIST within a time budget,
 * then draws its curves, where its CLS token looks and what it confuses.
 *
 *     vit_fashion                          # 15 minutes
 *     vit_fashion --quick                  # a smoke run of a few seconds
 *     vit_fashion --minutes 5 --threads 2 --out /tmp/vf
 *     vit_fashion --minutes 0 --epochs 30  # no budget: resumable bit for bit
 *     mpirun -np 2 vit_fashion --threads 1 # data-parallel (--with-mpi)
 *
 * Data: the IDX files of the Debian package dataset-fashion-mnist (gzip or
 * plain), 60000 training and 10000 test images of 28x28 pixels, 10 classes.
 * Images are scaled to [0, 1] and normalised with the training set's mean
 * and standard deviation; training batches are reshuffled every epoch and
 * each image is shifted by up to --crop pixels each way (a random crop of
 * the image padded with background; --flip also mirrors half of them).
 *
 * Legend: B = batch, N = patches, D = width, K = 10 classes.
 *
 *     logits = vit(images)                  // (B, 1, 28, 28) -> (B, K)
 *     loss   = cross_entropy(logits, labels, label smoothing)
 *
 * One step: forward, loss, backward, gradient clipping, AdamW at the
 * scheduled learning rate (linear warm-up over half an epoch, then a cosine
 * decay that ends when the epochs or the time budget run out, whichever
 * comes first, as projected from the pace so far), then one reset of the
 * step arena, which frees everything the step made. After each epoch the
 * test set is classified in eval mode without recording a graph.
 *
 * Data-parallel under mpirun (cformer configured --with-mpi): every rank
 * draws the same batches and augmentations and trains on its slice of each
 * batch; gradients, losses and counts are summed over the ranks, the time
 * budget uses the ranks' mean elapsed times, and rank 0 prints and writes
 * (the checkpoint resumes on any number of ranks).
 *
 * Writes to --out (default vit_fashion_out): checkpoint.safetensors (the
 * whole run after each epoch, for --resume), vit_fashion.safetensors (the
 * final model under timm's names, reloaded to check it), loss.png (the
 * training loss per step and the test loss per epoch), accuracy.png (test
 * and training accuracy per epoch), attention.png (the first test image of
 * each class with the attention rollout of the CLS token over it, captioned
 * with the prediction) and confusion.png (for each true class, the share
 * of its test images given each class). Ends with one JSON line; besides
 * the test accuracy it gives test_accuracy_mirrored, that of the mean
 * logits of each test image and its mirror image.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkdir */
#endif
#include <cformer/cformer.h>
#include <cformer/viz.h>

#include "../common/dist_opt.h"
#include "../common/flags.h"
#include "../common/idx.h"
#include "../common/progress.h"
#include "../common/report.h"
#include "../common/runstate.h"
#include "../common/threads.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SIDE         28
#define PIXELS       (SIDE * SIDE)
#define CLASSES      10
#define MAX_DEPTH    32
#define PACKAGE      "dataset-fashion-mnist"
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
#define EVAL_BATCH   500
#define QUICK_TRAIN  2000 /* images */
#define QUICK_TEST   1000

static const char *const CLASS_NAMES[CLASSES] = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",  "Shirt",   "Sneaker",  "Bag",   "Boot"};

typedef struct {
    ex_common c;
    int patch, dim, depth, heads, crop;
    float min_lr, weight_decay, clip, smoothing;
    bool flip, wd_matrices;
} options;

/* ---- Batches ---- */

typedef struct {
    const uint8_t *images; /* (n, 28, 28), 0 = background */
    const uint8_t *labels;
    int64_t n;
} dataset;

typedef struct {
    float mean, inv_std; /* of the training pixels scaled to [0, 1] */
} norm;

static norm pixel_stats(const dataset *d)
{
    double s = 0, ss = 0, n = (double)d->n * PIXELS;
    for (int64_t i = 0; i < d->n * PIXELS; i++) {
        double v = d->images[i] / 255.0;
        s += v, ss += v * v;
    }
    double mean = s / n;
    return (norm){(float)mean, (float)(1 / sqrt(ss / n - mean * mean))};
}

/* A uniformly random order of 0..n-1 (Fisher-Yates) from n draws of g
 * (draws: a float tensor of n elements owned by the caller). */
static void shuffle(cf_rng *g, cf_tensor *draws, int32_t *order, int64_t n)
{
    cf_fill_uniform(g, draws, 0, 1);
    const float *u = draws->data;
    for (int64_t i = 0; i < n; i++)
        order[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)((double)u[i] * (double)(i + 1));
        j = j > i ? i : j;
        int32_t t = order[i];
        order[i] = order[j], order[j] = t;
    }
}

/* Arena tensors x (n, 1, 28, 28), normalised, and y (n) for the items
 * idx[0..n). aug (NULL, or 3 draws in [0, 1) per item) shifts item b by
 * dx, dy in [-crop, crop] (pixels moved in from outside are background)
 * and, when flip, mirrors it if its third draw is below one half. */
static bool make_batch(const dataset *d, const int32_t *idx, int64_t n, norm nm, const float *aug,
                       int crop, bool flip, cf_tensor **x, cf_tensor **y)
{
    *x = cf_empty(CF_F32, CF_SHAPE(n, 1, SIDE, SIDE));
    *y = cf_empty(CF_I32, CF_SHAPE(n));
    if (!*x || !*y)
        return false;
    float *xp = (*x)->data;
    int32_t *yp = (*y)->data;
    float scale = nm.inv_std / 255.0f, shift = -nm.mean * nm.inv_std;
    for (int64_t b = 0; b < n; b++) {
        const uint8_t *img = d->images + (int64_t)idx[b] * PIXELS;
        int dx = 0, dy = 0;
        bool mirror = false;
        if (aug) {
            const float *u = aug + 3 * b;
            dx = (int)floorf(u[0] * (float)(2 * crop + 1)) - crop;
            dy = (int)floorf(u[1] * (float)(2 * crop + 1)) - crop;
            mirror = flip && u[2] < 0.5f;
        }
        for (int r = 0; r < SIDE; r++)
            for (int c = 0; c < SIDE; c++) {
                int sr = r + dy, sc = (mirror ? SIDE - 1 - c : c) + dx;
                uint8_t v = sr >= 0 && sr < SIDE && sc >= 0 && sc < SIDE ? img[sr * SIDE + sc] : 0;
                xp[b * PIXELS + r * SIDE + c] = (float)v * scale + shift;
            }
        yp[b] = d->labels[idx[b]];
    }
    return true;
}

/* ---- Training and evaluation ---- */

typedef struct {
    float loss;
    int64_t right; /* items of the batch classified right */
} step_result;

/* One step on the training items idx[0..b): forward, loss, backward,
 * clipping, AdamW at rate lr, arena reset. loss is NAN with the error
 * recorded on failure. */
static step_result train_step(cf_vit *vit, cf_optim *opt, const options *o, const dataset *train,
                              const int32_t *idx, int64_t b, norm nm, float lr, cf_rng *g,
                              cf_arena *arena)
{
    /* Every rank draws the whole batch's augmentations (the generators stay
     * in step) and trains on its slice [lo, hi) of the batch. */
    step_result r = {NAN, 0};
    bool augment = o->crop > 0 || o->flip;
    cf_tensor *aug = augment ? cf_uniform(g, 0, 1, CF_SHAPE(b, 3)) : NULL;
    int64_t lo, hi;
    dopt_range(b, &lo, &hi);
    double sum[2] = {0, 0}; /* loss * images, images right */
    bool ok = !augment || aug;
    cf_optim_zero_grad(opt);
    if (ok && hi > lo) {
        cf_tensor *x, *y;
        ok = make_batch(train, idx + lo, hi - lo, nm, aug ? (float *)aug->data + 3 * lo : NULL,
                        o->crop, o->flip, &x, &y);
        cf_tensor *logits = ok ? cf_vit_forward(vit, x, NULL) : NULL; /* (b, K) */
        cf_tensor *loss =
            ok ? cf_cross_entropy(logits, y, &(cf_loss_opts){.label_smoothing = o->smoothing})
               : NULL;
        cf_tensor *pred = cf_argmax(logits, 1, false); /* (b) */
        ok = loss && pred && cf_backward(loss) == CF_OK;
        if (ok) {
            sum[0] = cf_item(loss) * (double)(hi - lo);
            for (int64_t i = 0; i < hi - lo; i++)
                sum[1] += ((const int32_t *)pred->data)[i] == ((const int32_t *)y->data)[i];
        }
    }
    dopt_weight((float)(hi - lo) / (float)b);
    if (ok && dopt_finish() == CF_OK && dopt_sum(sum, 2) == CF_OK) {
        cf_clip_grad_norm(cf_vit_module(vit), o->clip);
        cf_optim_set_lr(opt, lr);
        cf_optim_step(opt);
        r.loss = (float)(sum[0] / (double)b);
        r.right = (int64_t)sum[1];
    }
    cf_arena_reset(arena);
    if (cf_error())
        r.loss = NAN;
    return r;
}

typedef struct {
    double accuracy, loss;
    int64_t confusion[CLASSES][CLASSES]; /* [true][predicted] */
} score;

/* Classifies the first n test items in eval mode without a graph (the
 * arena is reset after every batch); with mirrored, from the mean of the
 * logits of each image and of its mirror image (test-time augmentation by
 * the flip training uses). False with the error recorded. */
static bool evaluate(cf_vit *vit, const dataset *test, int64_t n, norm nm, cf_arena *arena,
                     bool mirrored, score *sc)
{
    static const float flip_all[3 * EVAL_BATCH]; /* crop 0: no shift; u < 0.5: mirror */
    cf_module *m = cf_vit_module(vit);
    int32_t idx[EVAL_BATCH];
    int64_t right = 0, lo, hi;
    dopt_range(n, &lo, &hi); /* this rank's test images */
    double loss_sum = 0;
    bool ok = true;
    memset(sc, 0, sizeof *sc);
    cf_module_train(m, false);
    CF_NO_GRAD
    {
        for (int64_t start = lo; ok && start < hi; start += EVAL_BATCH) {
            int64_t b = hi - start < EVAL_BATCH ? hi - start : EVAL_BATCH;
            for (int64_t i = 0; i < b; i++)
                idx[i] = (int32_t)(start + i);
            cf_tensor *x, *y, *xm = NULL;
            ok = make_batch(test, idx, b, nm, NULL, 0, false, &x, &y) &&
                 (!mirrored || make_batch(test, idx, b, nm, flip_all, 0, true, &xm, &y));
            cf_tensor *logits = ok ? cf_vit_forward(vit, x, NULL) : NULL;
            if (ok && mirrored)
                logits = cf_mul_scalar(cf_add(logits, cf_vit_forward(vit, xm, NULL)), 0.5f);
            cf_tensor *pred = cf_argmax(logits, 1, false);
            cf_tensor *loss =
                cf_cross_entropy(logits, y, &(cf_loss_opts){.reduction = CF_REDUCE_SUM});
            ok = pred && loss;
            for (int64_t i = 0; ok && i < b; i++) {
                int32_t p = ((const int32_t *)pred->data)[i], t = ((const int32_t *)y->data)[i];
                sc->confusion[t][p]++;
                right += p == t;
            }
            loss_sum += ok ? cf_item(loss) : 0;
            cf_arena_reset(arena);
        }
    }
    cf_module_train(m, true);
    /* Sums over the ranks: right, loss, failures, the confusion matrix. */
    double v[3 + CLASSES * CLASSES] = {(double)right, loss_sum, ok ? 0 : 1};
    for (int i = 0; i < CLASSES * CLASSES; i++)
        v[3 + i] = (double)sc->confusion[i / CLASSES][i % CLASSES];
    if (dopt_sum(v, 3 + CLASSES * CLASSES) != CF_OK || v[2] > 0)
        return false;
    for (int i = 0; i < CLASSES * CLASSES; i++)
        sc->confusion[i / CLASSES][i % CLASSES] = (int64_t)v[3 + i];
    sc->accuracy = v[0] / (double)n;
    sc->loss = v[1] / (double)n;
    return true;
}

/* ---- Pictures ---- */

/* loss.png and accuracy.png from the run's histories, against epochs. */
static cf_status draw_curves(ex_run *run, int64_t steps_per_epoch, const char *out)
{
    ex_series *loss = ex_run_series(run, "loss"), *test_loss = ex_run_series(run, "test_loss"),
              *test_acc = ex_run_series(run, "test_accuracy"),
              *train_acc = ex_run_series(run, "train_accuracy");
    if (!loss || !test_loss || !test_acc || !train_acc)
        return cf_error();
    int64_t n = loss->n, e = test_acc->n;
    float *x = malloc(sizeof *x * (size_t)(n + 1)), *ex = malloc(sizeof *ex * (size_t)(e + 1));
    float *pct = malloc(sizeof *pct * (size_t)(2 * e + 1));
    cf_status st = CF_OK;
    if (!x || !ex || !pct) {
        cf_error_set(CF_ERR_NOMEM, "out of memory for the curves");
        st = CF_ERR_NOMEM;
    }
    for (int64_t i = 0; !st && i < n; i++)
        x[i] = (float)(i + 1) / (float)steps_per_epoch;
    for (int64_t i = 0; !st && i < e; i++) {
        ex[i] = (float)(i + 1);
        pct[i] = 100 * test_acc->v[i], pct[e + i] = 100 * train_acc->v[i];
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/loss.png", out);
    cf_series ls[2] = {
        {.label = "training (label-smoothed), per step", .x = x, .y = loss->v, .n = (int)n},
        {.label = "test, per epoch", .x = ex, .y = test_loss->v, .n = (int)e}};
    cf_plot_opts lo = {.title = "ViT on Fashion-MNIST: loss",
                       .xlabel = "epoch",
                       .ylabel = "cross entropy (nats)",
                       .log_y = true};
    if (!st && n)
        st = cf_viz_lines(path, ls, e ? 2 : 1, &lo);
    snprintf(path, sizeof path, "%s/accuracy.png", out);
    cf_series as[2] = {
        {.label = "test", .x = ex, .y = pct, .n = (int)e},
        {.label = "training (augmented, during the epoch)", .x = ex, .y = pct + e, .n = (int)e}};
    cf_plot_opts ao = {.title = "ViT on Fashion-MNIST: accuracy",
                       .xlabel = "epoch",
                       .ylabel = "% classified right"};
    if (!st && e)
        st = cf_viz_lines(path, as, 2, &ao);
    free(x), free(ex), free(pct);
    return st;
}

/* attention.png: the first test image of each class, with the attention
 * rollout of the CLS token (cf_vit_rollout) over it. */
static cf_status draw_attention(const char *out, cf_vit *vit, const cf_vit_config *cfg,
                                const dataset *test, norm nm, cf_arena *arena)
{
    int32_t idx[CLASSES];
    int found = 0;
    for (int k = 0; k < CLASSES; k++)
        for (int64_t i = 0; i < test->n; i++)
            if (test->labels[i] == k) {
                idx[found++] = (int32_t)i;
                break;
            }
    if (!found)
        return CF_OK;
    int g = cfg->image_size / cfg->patch_size;
    char captions[CLASSES][40], path[4096];
    const char *labels[CLASSES];
    cf_status st = CF_OK;
    cf_module_train(cf_vit_module(vit), false);
    CF_NO_GRAD
    {
        cf_tensor *x, *y, *raw, *maps[MAX_DEPTH] = {0};
        /* The model reads normalised pixels; the picture shows them in
         * [0, 1]. */
        bool ok = make_batch(test, idx, found, nm, NULL, 0, false, &x, &y) &&
                  make_batch(test, idx, found, (norm){0, 1}, NULL, 0, false, &raw, &y);
        cf_tensor *shown = ok ? cf_reshape(raw, CF_SHAPE(found, SIDE, SIDE)) : NULL;
        cf_tensor *logits = ok ? cf_vit_forward(vit, x, maps) : NULL;
        cf_tensor *pred = cf_argmax(logits, 1, false);
        cf_tensor *roll = logits ? cf_vit_rollout(vit, maps) : NULL; /* (found, N) */
        cf_tensor *overlay = cf_reshape(roll, CF_SHAPE(found, g, g));
        if (!shown || !pred || !overlay) {
            st = cf_error();
        } else {
            for (int i = 0; i < found; i++) {
                int p = ((const int32_t *)pred->data)[i], t = test->labels[idx[i]];
                if (p == t)
                    snprintf(captions[i], sizeof captions[i], "%s", CLASS_NAMES[p]);
                else
                    snprintf(captions[i], sizeof captions[i], "%s (is %s)", CLASS_NAMES[p],
                             CLASS_NAMES[t]);
                labels[i] = captions[i];
            }
            snprintf(path, sizeof path, "%s/attention.png", out);
            cf_grid_opts go = {.title = "CLS attention rollout; captions: the prediction",
                               .labels = labels,
                               .cols = 5,
                               .scale = 5};
            st = cf_viz_image_grid(path, shown, overlay, &go);
        }
        cf_arena_reset(arena);
    }
    cf_module_train(cf_vit_module(vit), true);
    return st;
}

/* confusion.png: row t, column p is the share (%) of the test images of
 * class t classified as p. */
static cf_status draw_confusion(const char *out, const score *sc)
{
    float share[CLASSES * CLASSES];
    for (int t = 0; t < CLASSES; t++) {
        int64_t row = 0;
        for (int p = 0; p < CLASSES; p++)
            row += sc->confusion[t][p];
        for (int p = 0; p < CLASSES; p++)
            share[t * CLASSES + p] = row ? 100.0f * (float)sc->confusion[t][p] / (float)row : 0.0f;
    }
    cf_tensor *t = cf_from_array(share, CF_SHAPE(CLASSES, CLASSES));
    char path[4096];
    snprintf(path, sizeof path, "%s/confusion.png", out);
    cf_heatmap_opts ho = {.title = "test images: % of each true class given each class",
                          .row_labels = CLASS_NAMES,
                          .col_labels = CLASS_NAMES,
                          .xlabel = "predicted class",
                          .ylabel = "true class",
                          .vmin = 0,
                          .vmax = 100};
    return t ? cf_viz_heatmap(path, t, &ho) : cf_error();
}

/* ---- Checkpoint ---- */

/* Saves the model, loads the file into a fresh model and checks that both
 * give the same logits on a few test images. */
static cf_status save_and_check(const char *path, cf_vit *vit, const cf_vit_config *cfg,
                                const dataset *test, norm nm, cf_arena *arena)
{
    enum { N = 16 };
    cf_status st = cf_module_save(cf_vit_module(vit), path);
    if (st)
        return st;
    cf_rng g;
    cf_rng_init(&g, 0);
    cf_vit *copy = cf_vit_new(cfg, &g);
    if (!copy)
        return cf_error();
    st = cf_module_load(cf_vit_module(copy), path, true);
    int32_t idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = i;
    float want[N * CLASSES], got[N * CLASSES];
    cf_module_train(cf_vit_module(vit), false);
    cf_module_train(cf_vit_module(copy), false);
    CF_NO_GRAD
    {
        cf_tensor *x, *y;
        if (!st && make_batch(test, idx, N, nm, NULL, 0, false, &x, &y)) {
            cf_tensor *a = cf_vit_forward(vit, x, NULL), *b = cf_vit_forward(copy, x, NULL);
            if (a && b)
                cf_copy_to(a, want), cf_copy_to(b, got);
        }
        cf_arena_reset(arena);
    }
    cf_module_train(cf_vit_module(vit), true);
    cf_module_free(cf_vit_module(copy));
    if (!st && cf_error())
        st = cf_error();
    for (int i = 0; !st && i < N * CLASSES; i++)
        if (want[i] != got[i]) {
            cf_error_set(CF_ERR_FORMAT, "%s: the reloaded model's logit %d is %g, not %g", path, i,
                         (double)got[i], (double)want[i]);
            st = CF_ERR_FORMAT;
        }
    return st;
}

/* timm's weight-decay groups: weight matrices decay; biases, norm weights,
 * the position embedding and the class token do not. */
static bool decays(const char *name, const cf_tensor *param)
{
    return param->ndim >= 2 && !strstr(name, "pos_embed") && !strstr(name, "cls_token");
}

/* ---- Options ---- */

static const char ABOUT[] =
    "Trains a small Vision Transformer on Fashion-MNIST within a time budget, writes its\n"
    "checkpoint and pictures to --out and ends with one JSON line of results. The data\n"
    "comes with the Debian package " PACKAGE ".";

/* Returns 0 to go on, 1 after --help, 2 on a bad option. */
static int parse_args(int argc, char **argv, options *o)
{
    *o = (options){.c = ex_common_defaults(DEFAULT_DATA, "vit_fashion_out"),
                   .patch = 7,
                   .dim = 128,
                   .depth = 4,
                   .heads = 4,
                   .crop = 1,
                   .flip = true,
                   .min_lr = 1e-5f,
                   .weight_decay = 0.05f,
                   .clip = 1.0f,
                   .smoothing = 0.1f};
    o->c.epochs = 60, o->c.minutes = 15, o->c.batch = 128, o->c.lr = 2e-3f;
    const ex_flag flags[] = {
        EX_COMMON_FLAGS(&o->c),
        {"patch", EX_INT, &o->patch, 1, SIDE, false, "patch side (a divisor of 28)"},
        {"dim", EX_INT, &o->dim, 4, 4096, false, "model width"},
        {"depth", EX_INT, &o->depth, 1, MAX_DEPTH, false, "encoder blocks"},
        {"heads", EX_INT, &o->heads, 1, 64, false, "attention heads"},
        {"wd", EX_FLOAT, &o->weight_decay, 0, 1, false, "AdamW weight decay"},
        {"smoothing", EX_FLOAT, &o->smoothing, 0, 0.9, false, "label smoothing"},
        {"crop", EX_INT, &o->crop, 0, 8, false, "random shifts of up to this many pixels"},
        {"flip", EX_BOOL, &o->flip, 0, 0, false, "mirror half of the training images"},
        {"wd-matrices", EX_BOOL, &o->wd_matrices, 0, 0, false,
         "weight decay on weight matrices only (as timm)"},
    };
    switch (ex_flags_parse(flags, EX_COUNT(flags), argc, argv)) {
    case EX_FLAGS_HELP: ex_flags_usage(stdout, argv[0], ABOUT, flags, EX_COUNT(flags)); return 1;
    case EX_FLAGS_ERROR: fprintf(stderr, "vit_fashion: %s\n", cf_error_message()); return 2;
    case EX_FLAGS_OK: break;
    }
    if (SIDE % o->patch || o->dim % o->heads) {
        fprintf(stderr, "vit_fashion: %s\n",
                SIDE % o->patch ? "--patch must divide 28" : "--dim must be a multiple of --heads");
        return 2;
    }
    if (o->c.quick)
        o->c.epochs = 2;
    return 0;
}

static int fail(const char *what)
{
    fprintf(stderr, "vit_fashion: %s: %s (%s)\n", what, cf_error_message(),
            cf_status_str(cf_error()));
    return 1;
}

/* The ranks' mean of a duration each measured on its own clock (x itself
 * in one process): what steers the run must be the same on every rank. */
static double agreed(double seconds)
{
    dopt_check(dopt_sum(&seconds, 1));
    return seconds / dopt_size();
}

/* The steps the run will take: all its epochs, or, with a budget, as many
 * as the time left allows at this session's pace, whichever is fewer. */
static int64_t planned_steps(int64_t done, int64_t total, int64_t session_steps,
                             double session_seconds, double left)
{
    if (session_steps < 10 || session_seconds <= 0)
        return total;
    double projected = (double)done + (double)session_steps * left / session_seconds;
    return projected < (double)total ? (int64_t)projected : total;
}

int main(int argc, char **argv)
{
    dopt_init(&argc, &argv);
    if (!dopt_root() && !freopen("/dev/null", "w", stdout))
        return 1;
    double t_start = ex_now();
    options o;
    int r = parse_args(argc, argv, &o);
    if (r)
        return r == 1 ? 0 : 2;
    ex_tuner tune;
    ex_tuner_init(&tune, o.c.threads);

    ex_idx_set train_set, test_set;
    if (ex_idx_load_set(o.c.data, "train", CLASSES, PACKAGE, &train_set) ||
        ex_idx_load_set(o.c.data, "t10k", CLASSES, PACKAGE, &test_set))
        return fail("data");
    if (train_set.rows != SIDE || train_set.cols != SIDE || test_set.rows != SIDE ||
        test_set.cols != SIDE) {
        cf_error_set(CF_ERR_FORMAT, "%s: images are %dx%d and %dx%d, expected 28x28", o.c.data,
                     train_set.rows, train_set.cols, test_set.rows, test_set.cols);
        return fail("data");
    }
    dataset train = {train_set.images, train_set.labels, train_set.n};
    dataset test = {test_set.images, test_set.labels, test_set.n};
    norm nm = pixel_stats(&train);
    if (o.c.quick)
        train.n = QUICK_TRAIN < train.n ? QUICK_TRAIN : train.n;
    if (o.c.quick)
        test.n = QUICK_TEST < test.n ? QUICK_TEST : test.n;
    if (mkdir(o.c.out, 0777) != 0 && errno != EEXIST) {
        cf_error_set(CF_ERR_IO, "cannot create %s: %s", o.c.out, strerror(errno));
        return fail("output");
    }

    cf_vit_config cfg = {.image_size = SIDE,
                         .channels = 1,
                         .patch_size = o.patch,
                         .dim = o.dim,
                         .depth = o.depth,
                         .heads = o.heads,
                         .mlp_ratio = 2,
                         .classes = CLASSES,
                         .dropout = 0};
    cf_rng init;
    cf_rng_init(&init, o.c.seed);
    cf_vit *vit = cf_vit_new(&cfg, &init);
    if (!vit)
        return fail("model");
    cf_module *model = cf_vit_module(vit);
    cf_optim *opt = cf_adamw_new(model, &(cf_adamw_opts){.lr = o.c.lr,
                                                         .weight_decay = o.weight_decay,
                                                         .decays = o.wd_matrices ? decays : NULL});
    cf_arena *arena = cf_arena_new(0);
    int64_t B = o.c.batch, steps_per_epoch = (train.n + B - 1) / B;
    int64_t total = (int64_t)o.c.epochs * steps_per_epoch;
    int64_t warmup = o.c.quick ? 3 : steps_per_epoch / 2;
    int32_t *order = malloc(sizeof *order * (size_t)train.n);
    cf_tensor *draws = cf_tensor_new(CF_F32, CF_SHAPE(train.n));
    if (!opt || !arena || !order || !draws) {
        if (!cf_error())
            cf_error_set(CF_ERR_NOMEM, "out of memory");
        return fail("setup");
    }
    cf_arena_use(arena);

    /* Everything that changes the numbers must match on --resume. */
    char settings[512], path[4096];
    snprintf(settings, sizeof settings,
             "vit_fashion patch %d dim %d depth %d heads %d batch %lld lr %g min_lr %g wd %g "
             "clip %g smoothing %g crop %d flip %d wd_matrices %d epochs %d seed %llu quick %d",
             o.patch, o.dim, o.depth, o.heads, (long long)B, (double)o.c.lr, (double)o.min_lr,
             (double)o.weight_decay, (double)o.clip, (double)o.smoothing, o.crop, o.flip,
             o.wd_matrices, o.c.epochs, (unsigned long long)o.c.seed, o.c.quick);
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", o.c.out);
    ex_run run;
    ex_run_init(&run, o.c.seed ^ 0x9e3779b97f4a7c15ull);
    if (o.c.resume) {
        if (ex_run_load(&run, path, model, opt, settings) != CF_OK)
            return fail("resume");
        printf("resumed from %s after epoch %d (step %lld)\n", path, run.epoch,
               (long long)run.step);
    }
    /* After a resume, so that each rank's random streams are its own. */
    dopt_check(dopt_attach(model));
    if (dopt_size() > 1)
        printf("data-parallel: %d ranks, each on a slice of every batch\n", dopt_size());

    printf("Fashion-MNIST from %s: %lld training and %lld test images (pixel mean %.4f, std "
           "%.4f)\n",
           o.c.data, (long long)train.n, (long long)test.n, (double)nm.mean,
           1.0 / (double)nm.inv_std);
    printf("ViT: patch %d (%d patches + CLS), dim %d, depth %d, heads %d, mlp %d: %lld "
           "parameters; threads: %d%s\n",
           o.patch, (SIDE / o.patch) * (SIDE / o.patch), o.dim, o.depth, o.heads, 2 * o.dim,
           (long long)cf_module_num_params(model), cf_get_num_threads(),
           tune.many ? " or 1, the faster, chosen each epoch" : "");
    printf("AdamW lr %g (warm-up %lld steps, cosine to %g), weight decay %g%s, clip %g, label "
           "smoothing %g, shifts up to %d px, flips %s; batch %lld, at most %d epoch%s",
           (double)o.c.lr, (long long)warmup, (double)o.min_lr, (double)o.weight_decay,
           o.wd_matrices ? " (matrices only)" : "", (double)o.clip, (double)o.smoothing, o.crop,
           o.flip ? "on" : "off", (long long)B, o.c.epochs, o.c.epochs == 1 ? "" : "s");
    if (o.c.minutes > 0)
        printf(" or %g minutes", o.c.minutes);
    printf("\n");
    fflush(stdout);

    /* The budget covers this whole invocation: what is left for training
     * keeps back the time of the final evaluations (plain, then with the
     * mirror images: three passes over the test set) and the outputs,
     * measured by the first evaluation and guessed until then (inference
     * being about 3x faster than training). */
    ex_progress prog;
    ex_progress_init(&prog, stdout, o.c.epochs, "img", 10);
    ex_progress_plan(&prog, total, run.step);
    double budget = o.c.minutes * 60, t_train = ex_now(), eval_time = -1;
    int64_t session_steps = 0;
    score sc;
    bool scored = false, out_of_time = false;
    for (int epoch = run.epoch + 1; epoch <= o.c.epochs && !out_of_time; epoch++) {
        double t_epoch = ex_now(), loss_sum = 0;
        int64_t right = 0, seen = 0;
        shuffle(&run.data_rng, draws, order, train.n);
        for (int64_t s = 0; s < steps_per_epoch; s++) {
            double t = ex_now(), session = agreed(t - t_train);
            double per_step = session_steps ? session / (double)session_steps : 0;
            double reserve =
                2 + 3 * (eval_time >= 0 ? eval_time : (double)test.n / (double)B * per_step / 3);
            double left = budget - agreed(t - t_start) - reserve;
            if (budget > 0 && left <= 0) {
                out_of_time = true;
                break;
            }
            int64_t planned =
                budget > 0 ? planned_steps(run.step, total, session_steps, session, left) : total;
            if (budget > 0)
                ex_progress_plan(&prog, planned, run.step);
            float lr = cf_lr_cosine(run.step + 1, warmup, planned > warmup ? planned : warmup + 1,
                                    o.c.lr, o.min_lr);
            int64_t start = s * B, b = train.n - start < B ? train.n - start : B;
            ex_tuner_begin(&tune, s);
            step_result st =
                train_step(vit, opt, &o, &train, order + start, b, nm, lr, &run.data_rng, arena);
            if (isnan(st.loss) && cf_error())
                return fail("training step");
            ex_tuner_end(&tune, s, ex_now() - t);
            run.step++, session_steps++;
            loss_sum += st.loss, right += st.right, seen += b;
            if (ex_run_push(&run, "loss", st.loss))
                return fail("history");
            ex_progress_step(&prog, epoch, s + 1, steps_per_epoch, st.loss, b);
        }
        run.seconds += ex_now() - t_epoch;
        if (out_of_time)
            break;
        double t = ex_now();
        if (!evaluate(vit, &test, test.n, nm, arena, false, &sc))
            return fail("evaluation");
        scored = true;
        eval_time = agreed(ex_now() - t);
        if (ex_run_push(&run, "test_accuracy", (float)sc.accuracy) ||
            ex_run_push(&run, "test_loss", (float)sc.loss) ||
            ex_run_push(&run, "train_accuracy", (float)right / (float)seen))
            return fail("history");
        run.epoch = epoch;
        if (dopt_root() && ex_run_save(&run, path, model, opt, settings) != CF_OK)
            return fail("checkpoint");
        char threads[96] = "", t1[32];
        if (tune.trying && steps_per_epoch > 3)
            snprintf(threads, sizeof threads, "; %d threads (%.0f ms/step; %d: %.0f ms/step)",
                     tune.chosen, 1e3 * tune.ref, ex_tuner_other(&tune), 1e3 * tune.other);
        ex_progress_printf(&prog,
                           "epoch %d: training loss %.4f, test accuracy %.2f%% (loss %.4f), "
                           "evaluated in %.1f s, elapsed %s%s\n",
                           epoch, loss_sum / (double)steps_per_epoch, 100 * sc.accuracy, sc.loss,
                           eval_time, ex_clock(ex_now() - t_start, t1, sizeof t1), threads);
        if (epoch == o.c.stop_after)
            break;
    }
    ex_progress_done(&prog);
    if (out_of_time || !scored) {
        if (!evaluate(vit, &test, test.n, nm, arena, false, &sc))
            return fail("evaluation");
    }
    score mirrored;
    if (!evaluate(vit, &test, test.n, nm, arena, true, &mirrored))
        return fail("evaluation");
    char t1[32], t2[32];
    double epochs_done = (double)run.step / (double)steps_per_epoch;
    printf("test accuracy %.2f%% (with mirror images too: %.2f%%) after %.2f epochs (%lld "
           "steps) in %s, training %s\n",
           100 * sc.accuracy, 100 * mirrored.accuracy, epochs_done, (long long)run.step,
           ex_clock(ex_now() - t_start, t1, sizeof t1), ex_clock(run.seconds, t2, sizeof t2));

    if (!dopt_root()) { /* rank 0 writes the outputs */
        dopt_finalize();
        return 0;
    }
    printf("wrote %s\n", path);
    snprintf(path, sizeof path, "%s/vit_fashion.safetensors", o.c.out);
    if (save_and_check(path, vit, &cfg, &test, nm, arena))
        return fail("model file");
    printf("wrote %s (reloaded: same logits)\n", path);
    if (draw_curves(&run, steps_per_epoch, o.c.out) ||
        draw_attention(o.c.out, vit, &cfg, &test, nm, arena) || draw_confusion(o.c.out, &sc))
        return fail("pictures");
    printf("wrote %s/loss.png, accuracy.png, attention.png and confusion.png\n", o.c.out);

    int status = 0;
    ex_series *loss = ex_run_series(&run, "loss");
    double first = NAN, last = NAN;
    if (o.c.quick && !ex_series_fell(loss, &first, &last)) {
        fprintf(stderr,
                "vit_fashion: the loss did not fall (%.4f over the first quarter of the steps, "
                "%.4f over the last)\n",
                first, last);
        status = 1;
    }
    ex_report rep;
    ex_report_init(&rep, "vit_fashion");
    ex_report_num(&rep, "test_accuracy", sc.accuracy);
    ex_report_num(&rep, "test_loss", sc.loss);
    ex_report_num(&rep, "test_accuracy_mirrored", mirrored.accuracy);
    ex_report_num(&rep, "final_loss", loss && loss->n ? loss->v[loss->n - 1] : NAN);
    ex_report_num(&rep, "epochs", round(epochs_done * 100) / 100);
    ex_report_int(&rep, "steps", run.step);
    ex_report_num(&rep, "train_seconds", run.seconds);
    if (ex_report_print(&rep, stdout, ex_now() - t_start, cf_get_num_threads(),
                        cf_module_num_params(model), argc, argv) != CF_OK)
        status = fail("report");
    ex_report_free(&rep);

    ex_run_free(&run);
    cf_arena_use(NULL);
    cf_arena_free(arena);
    cf_tensor_free(draws);
    free(order);
    cf_optim_free(opt);
    cf_module_free(model);
    ex_idx_set_free(&train_set);
    ex_idx_set_free(&test_set);
    dopt_finalize();
    return status;
}
