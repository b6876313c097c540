/* Speed of a small encoder-decoder Transformer, for comparison with
 * bench/transformer_torch.py (the same model in PyTorch).
 *
 *     make bench                        # CF_NUM_THREADS threads, else all cores
 *     ./bench/transformer --threads 1
 *     ./bench/transformer --worker train|infer|base-train   # for bench/suite
 *     ./bench/transformer --sweep [--threads N]             # make bench-sweep
 *
 * Model: d_model 256, 4 heads, 3 + 3 layers, ff 1024, ReLU, post-norm,
 * dropout 0.1, vocabularies of 8000; batch B = 32 of source and target
 * sequences of 64 random tokens (no padding; the masks are still built).
 *  - train: teacher-forced forward, mean cross entropy (ignore_index pad),
 *    zero_grad, backward, AdamW step (lr 1e-4, betas 0.9 0.98, eps 1e-9,
 *    weight decay 0.01), arena reset;
 *  - infer: eval mode, recording off, the same forward, arena reset;
 *  - base-train (worker only): the train step of the paper's base model
 *    (6+6 layers, d_model 512, 8 heads, ff 2048) at batch 8 x 64;
 *  - sweep (standalone): the small model's train step with one of batch,
 *    sequence length and width changed at a time, to show how its cost
 *    grows with each (docs/performance.md).
 *
 * Method (bench/harness.h): a warm-up, then BENCH_REPS repetitions of about
 * TARGET_SECONDS / BENCH_REPS each; the median repetition is reported in
 * milliseconds per step.
 */
#include "cformer/cformer.h"
#include "bench/harness.h"

#include <stdio.h>
#include <string.h>

#define TARGET_SECONDS 5.0 /* per measurement */
#define WARMUP_SECONDS 1.0
#define BATCH          32
#define BASE_BATCH     8
#define LEN            64
#define VOCAB          8000

typedef struct {
    cf_transformer *m;
    cf_optim *opt;
    cf_arena *step;
    cf_tensor *src, *tgt, *labels; /* heap: survive the arena resets */
    bool failed;
} bench;

/* The small model of the header, or another width (heads 4, ff 4 x width). */
static cf_transformer_config small_config(int64_t width)
{
    cf_transformer_config cfg = cf_transformer_base(VOCAB, VOCAB);
    cfg.d_model = width;
    cfg.heads = 4;
    cfg.enc_layers = cfg.dec_layers = 3;
    cfg.ff = 4 * width;
    return cfg;
}

static void train_steps(void *state, int n)
{
    bench *b = state;
    for (int i = 0; i < n; i++) {
        cf_tensor *logits = cf_transformer_forward(b->m, b->src, b->tgt, NULL);
        cf_tensor *loss = cf_cross_entropy(cf_reshape(logits, CF_SHAPE(-1, VOCAB)),
                                           cf_reshape(b->labels, CF_SHAPE(-1)),
                                           &(cf_loss_opts){.ignore = true, .ignore_index = 0});
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
            if (!cf_transformer_forward(b->m, b->src, b->tgt, NULL))
                b->failed = true;
            cf_arena_reset(b->step);
        }
    }
}

/* Random tokens in [3, VOCAB): 0, 1, 2 are pad, bos and eos. */
static cf_tensor *tokens(cf_rng *g, int64_t batch, int64_t len)
{
    cf_tensor *u = cf_uniform(g, 3, VOCAB, CF_SHAPE(batch, len));
    cf_tensor *t = cf_tensor_new(CF_I32, CF_SHAPE(batch, len));
    if (!u || !t)
        return NULL;
    for (int64_t i = 0; i < batch * len; i++)
        ((int32_t *)t->data)[i] = (int32_t)((float *)u->data)[i];
    return t;
}

/* The model, its optimizer and a batch; false (with b->failed) on failure. */
static bool setup(bench *b, const cf_transformer_config *cfg, int64_t batch, int64_t len)
{
    cf_rng g;
    cf_rng_init(&g, 1234);
    *b = (bench){.m = cf_transformer_new(cfg, &g), .step = cf_arena_new(0)};
    cf_arena_use(b->step);
    b->opt =
        b->m ? cf_adamw_new(cf_transformer_module(b->m),
                            &(cf_adamw_opts){
                                .lr = 1e-4f, .beta2 = 0.98f, .eps = 1e-9f, .weight_decay = 0.01f})
             : NULL;
    b->src = tokens(&g, batch, len);
    b->tgt = tokens(&g, batch, len);
    b->labels = tokens(&g, batch, len);
    cf_arena_reset(b->step);
    b->failed = !b->m || !b->opt || !b->step || !b->src || !b->tgt || !b->labels;
    return !b->failed;
}

static void teardown(bench *b)
{
    cf_arena_use(NULL);
    cf_arena_free(b->step);
    cf_tensor_free(b->src);
    cf_tensor_free(b->tgt);
    cf_tensor_free(b->labels);
    cf_optim_free(b->opt);
    cf_module_free(cf_transformer_module(b->m));
}

/* Sweep mode: the train step with one dimension changed at a time. */
static int sweep(void)
{
    static const struct {
        const char *what;
        int64_t batch, len, width;
    } runs[] = {
        {"batch", 8, LEN, 256},      {"batch", 16, LEN, 256},    {"batch", 32, LEN, 256},
        {"batch", 64, LEN, 256},     {"length", BATCH, 16, 256}, {"length", BATCH, 32, 256},
        {"length", BATCH, 128, 256}, {"width", BATCH, LEN, 128}, {"width", BATCH, LEN, 512},
    };
    printf("threads: %d (cformer cf_get_num_threads)\n", cf_get_num_threads());
    bench_note_load();
    printf("Transformer train step, 3+3 layers, 4 heads, ff 4 x width, vocab %d; one of batch, "
           "length, width changed from %d, %d, 256; median of %d repetitions\n",
           VOCAB, BATCH, LEN, BENCH_REPS);
    printf("%-8s %6s %6s %6s %12s %14s %10s %10s\n", "varied", "batch", "length", "width",
           "ms/step", "target tok/s", "mm GFLOP", "GFLOP/s");
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        bench b;
        cf_transformer_config cfg = small_config(runs[i].width);
        if (!setup(&b, &cfg, runs[i].batch, runs[i].len)) {
            fprintf(stderr, "setup failed: %s\n", cf_error_message());
            teardown(&b);
            return 1;
        }
        cf_module_train(cf_transformer_module(b.m), true);
        uint64_t f0 = cf_profile_matmul_flops();
        train_steps(&b, 1);
        double gflop = (double)(cf_profile_matmul_flops() - f0) * 1e-9;
        double sec = bench_time(train_steps, &b, 0.5, 0.3);
        printf("%-8s %6lld %6lld %6lld %12.1f %14.0f %10.1f %10.1f\n", runs[i].what,
               (long long)runs[i].batch, (long long)runs[i].len, (long long)runs[i].width,
               1e3 * sec, (double)(runs[i].batch * runs[i].len) / sec, gflop, gflop / sec);
        fflush(stdout);
        bool failed = b.failed;
        teardown(&b);
        if (failed || cf_error()) {
            fprintf(stderr, "a step failed: %s\n", cf_error_message());
            return 1;
        }
    }
    return 0;
}

/* Standalone mode: both workloads of the small model, timed in turn. */
static void report(bench *b)
{
    printf("threads: %d (cformer cf_get_num_threads)\n", cf_get_num_threads());
    printf("Transformer d_model 256, 4 heads, 3+3 layers, ff 1024, vocab %d, batch %d x %d; "
           "%lld parameters; median of %d repetitions\n",
           VOCAB, BATCH, LEN, (long long)cf_module_num_params(cf_transformer_module(b->m)),
           BENCH_REPS);
    cf_module_train(cf_transformer_module(b->m), true);
    double train = 1e3 * bench_time(train_steps, b, WARMUP_SECONDS, TARGET_SECONDS / BENCH_REPS);
    cf_module_train(cf_transformer_module(b->m), false);
    double infer = 1e3 * bench_time(infer_steps, b, WARMUP_SECONDS, TARGET_SECONDS / BENCH_REPS);
    printf("%-36s %10.2f ms/step\n", "train (fwd + bwd + AdamW)", train);
    printf("%-36s %10.2f ms/step\n", "inference (no grad, eval)", infer);
}

int main(int argc, char **argv)
{
    /* --sweep, first or last, is this program's own; the rest is the harness's. */
    bool sweeping = argc > 1 && strcmp(argv[argc - 1], "--sweep") == 0;
    if (sweeping)
        argc--;
    else if (argc > 1 && strcmp(argv[1], "--sweep") == 0) {
        sweeping = true;
        argv[1] = argv[0];
        argc--, argv++;
    }
    const char *worker;
    if (!bench_parse_args(argc, argv, sweeping ? NULL : &worker))
        return 2;
    if (sweeping)
        return sweep();
    bool base = worker && strcmp(worker, "base-train") == 0;
    if (worker && !base && strcmp(worker, "train") != 0 && strcmp(worker, "infer") != 0) {
        fprintf(stderr, "%s: no workload '%s' (train, infer, base-train)\n", argv[0], worker);
        return 2;
    }
    cf_transformer_config cfg = base ? cf_transformer_base(VOCAB, VOCAB) : small_config(256);
    bench b;
    if (!setup(&b, &cfg, base ? BASE_BATCH : BATCH, LEN)) {
        fprintf(stderr, "setup failed: %s\n", cf_error_message());
        teardown(&b);
        return 1;
    }

    int status = 0;
    if (worker) {
        bool train = strcmp(worker, "infer") != 0;
        cf_module_train(cf_transformer_module(b.m), train);
        status = bench_serve(train ? train_steps : infer_steps, &b, WARMUP_SECONDS);
    } else {
        report(&b);
    }
    bool failed = b.failed;
    teardown(&b);
    if (failed || cf_error()) {
        fprintf(stderr, "a step failed: %s\n", cf_error_message());
        return 1;
    }
    return status;
}
