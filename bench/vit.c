/* Speed of a tiny Vision Transformer of Fashion-MNIST size, for comparison
 * with bench/vit_torch.py (the same model in PyTorch).
 *
 *     make bench                        # CF_NUM_THREADS threads, else all cores
 *     ./bench/vit --threads 1
 *
 * Model: 28x28x1 images, patch 4 (49 patches + CLS), dim 64, depth 4,
 * heads 4, mlp_ratio 2, 10 classes, dropout 0; batch B = 128 of random
 * images and labels.
 *  - train: forward, mean cross entropy, zero_grad, backward, AdamW step
 *    (lr 1e-3, betas 0.9 0.999, eps 1e-8, weight decay 0.01), arena reset;
 *  - infer: eval mode, recording off, forward only, arena reset.
 *
 * Method: a warm-up, then REPS repetitions of about TARGET_SECONDS / REPS
 * each; the median repetition is reported in milliseconds per step.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif
#include "cformer/cformer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPS           7
#define TARGET_SECONDS 3.0 /* per measurement */
#define WARMUP_SECONDS 0.5
#define BATCH          128

typedef struct {
    cf_vit *m;
    cf_optim *opt;
    cf_arena *step;
    cf_tensor *images, *labels; /* heap: survive the arena resets */
    bool failed;
} bench;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void train_steps(bench *b, int n)
{
    for (int i = 0; i < n; i++) {
        cf_tensor *logits = cf_vit_forward(b->m, b->images, NULL);
        cf_tensor *loss = cf_cross_entropy(logits, b->labels, -100, 0, CF_REDUCE_MEAN);
        cf_optim_zero_grad(b->opt);
        if (!loss || cf_backward(loss) != CF_OK)
            b->failed = true;
        cf_optim_step(b->opt);
        cf_arena_reset(b->step);
    }
}

static void infer_steps(bench *b, int n)
{
    CF_NO_GRAD
    {
        for (int i = 0; i < n; i++) {
            if (!cf_vit_forward(b->m, b->images, NULL))
                b->failed = true;
            cf_arena_reset(b->step);
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Milliseconds per step: the median of REPS repetitions. */
static double ms_per_step(bench *b, void (*run)(bench *, int))
{
    int n = 0;
    double t0 = now(), dt;
    do {
        run(b, 1);
        n++;
        dt = now() - t0;
    } while (dt < WARMUP_SECONDS || n < 2);
    int steps = (int)(TARGET_SECONDS / REPS / (dt / n));
    if (steps < 1)
        steps = 1;
    double t[REPS];
    for (int r = 0; r < REPS; r++) {
        t0 = now();
        run(b, steps);
        t[r] = (now() - t0) / steps;
    }
    qsort(t, REPS, sizeof t[0], cmp_double);
    return 1e3 * t[REPS / 2];
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0) {
            cf_set_num_threads(atoi(argv[++i]));
        } else {
            fprintf(stderr, "usage: %s [--threads N]\n", argv[0]);
            return 2;
        }
    }
    cf_vit_config cfg = {.image_size = 28, .channels = 1, .patch_size = 4, .dim = 64,
                         .depth = 4, .heads = 4, .mlp_ratio = 2, .classes = 10};
    cf_rng g;
    cf_rng_init(&g, 1234);
    bench b = {.m = cf_vit_new(&cfg, &g), .step = cf_arena_new(0)};
    b.opt = cf_adamw_new(cf_vit_module(b.m), 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
    b.images = cf_tensor_new(CF_F32, CF_SHAPE(BATCH, 1, 28, 28));
    b.labels = cf_tensor_new(CF_I32, CF_SHAPE(BATCH));
    if (!b.m || !b.opt || !b.step || !b.images || !b.labels) {
        fprintf(stderr, "setup failed: %s\n", cf_error_message());
        return 1;
    }
    cf_fill_normal(&g, b.images, 0, 1);
    for (int i = 0; i < BATCH; i++)
        ((int32_t *)b.labels->data)[i] = (int32_t)((i * 7 + 3) % cfg.classes);
    cf_arena_use(b.step);

    printf("threads: %d (cformer cf_get_num_threads)\n", cf_get_num_threads());
    printf("ViT 28x28x1 patch 4, dim 64, depth 4, heads 4, mlp 128, batch %d; "
           "%lld parameters; median of %d repetitions\n",
           BATCH, (long long)cf_module_num_params(cf_vit_module(b.m)), REPS);
    cf_module_train(cf_vit_module(b.m), true);
    double train = ms_per_step(&b, train_steps);
    cf_module_train(cf_vit_module(b.m), false);
    double infer = ms_per_step(&b, infer_steps);
    printf("%-36s %10.2f ms/step\n", "train (fwd + bwd + AdamW)", train);
    printf("%-36s %10.2f ms/step\n", "inference (no grad, eval)", infer);

    cf_arena_use(NULL);
    cf_arena_free(b.step);
    cf_tensor_free(b.images);
    cf_tensor_free(b.labels);
    cf_optim_free(b.opt);
    cf_module_free(cf_vit_module(b.m));
    if (b.failed || cf_error()) {
        fprintf(stderr, "a step failed: %s\n", cf_error_message());
        return 1;
    }
    return 0;
}
