/* Speed of a tiny Vision Transformer of Fashion-MNIST size, for comparison
 * with bench/vit_torch.py (the same model in PyTorch).
 *
 *     make bench                        # CF_NUM_THREADS threads, else all cores
 *     ./bench/vit --threads 1
 *     ./bench/vit --worker train|infer      # for bench/suite
 *
 * Model: 28x28x1 images, patch 4 (49 patches + CLS), dim 64, depth 4,
 * heads 4, mlp_ratio 2, 10 classes, dropout 0; batch B = 128 of random
 * images and labels.
 *  - train: forward, mean cross entropy, zero_grad, backward, AdamW step
 *    (lr 1e-3, betas 0.9 0.999, eps 1e-8, weight decay 0.01), arena reset;
 *  - infer: eval mode, recording off, forward only, arena reset.
 *
 * Method (bench/harness.h): a warm-up, then BENCH_REPS repetitions of about
 * TARGET_SECONDS / BENCH_REPS each; the median repetition is reported in
 * milliseconds per step.
 */
#include "cformer/cformer.h"
#include "bench/harness.h"

#include <stdio.h>
#include <string.h>

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

static void train_steps(void *state, int n)
{
    bench *b = state;
    for (int i = 0; i < n; i++) {
        cf_tensor *logits = cf_vit_forward(b->m, b->images, NULL);
        cf_tensor *loss = cf_cross_entropy(logits, b->labels, NULL);
        cf_optim_zero_grad(b->opt);
        if (!loss || cf_backward(loss) != CF_OK)
            b->failed = true;
        cf_optim_step(b->opt);
        cf_arena_reset(b->step);
    }
}

static void infer_steps(void *state, int n)
{
    bench *b = state;
    CF_NO_GRAD
    {
        for (int i = 0; i < n; i++) {
            if (!cf_vit_forward(b->m, b->images, NULL))
                b->failed = true;
            cf_arena_reset(b->step);
        }
    }
}

/* Standalone mode: both workloads, timed in turn. */
static void report(bench *b)
{
    printf("threads: %d (cformer cf_get_num_threads)\n", cf_get_num_threads());
    printf("ViT 28x28x1 patch 4, dim 64, depth 4, heads 4, mlp 128, batch %d; "
           "%lld parameters; median of %d repetitions\n",
           BATCH, (long long)cf_module_num_params(cf_vit_module(b->m)), BENCH_REPS);
    cf_module_train(cf_vit_module(b->m), true);
    double train = 1e3 * bench_time(train_steps, b, WARMUP_SECONDS, TARGET_SECONDS / BENCH_REPS);
    cf_module_train(cf_vit_module(b->m), false);
    double infer = 1e3 * bench_time(infer_steps, b, WARMUP_SECONDS, TARGET_SECONDS / BENCH_REPS);
    printf("%-36s %10.2f ms/step\n", "train (fwd + bwd + AdamW)", train);
    printf("%-36s %10.2f ms/step\n", "inference (no grad, eval)", infer);
}

int main(int argc, char **argv)
{
    const char *worker;
    if (!bench_parse_args(argc, argv, &worker))
        return 2;
    if (worker && strcmp(worker, "train") != 0 && strcmp(worker, "infer") != 0) {
        fprintf(stderr, "%s: no workload '%s' (train, infer)\n", argv[0], worker);
        return 2;
    }
    cf_vit_config cfg = {.image_size = 28,
                         .channels = 1,
                         .patch_size = 4,
                         .dim = 64,
                         .depth = 4,
                         .heads = 4,
                         .mlp_ratio = 2,
                         .classes = 10};
    cf_rng g;
    cf_rng_init(&g, 1234);
    bench b = {.m = cf_vit_new(&cfg, &g), .step = cf_arena_new(0)};
    b.opt = cf_adamw_new(cf_vit_module(b.m), &(cf_adamw_opts){.lr = 1e-3f, .weight_decay = 0.01f});
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

    int status = 0;
    if (worker) {
        bool train = strcmp(worker, "train") == 0;
        cf_module_train(cf_vit_module(b.m), train);
        status = bench_serve(train ? train_steps : infer_steps, &b, WARMUP_SECONDS);
    } else {
        report(&b);
    }

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
    return status;
}
