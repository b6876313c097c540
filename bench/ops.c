/* Speed of softmax, layer norm, cross entropy and attention against PyTorch
 * on the same shapes and thread count, in one run.
 *
 *     make bench                        # CF_NUM_THREADS threads, else all cores
 *     ./bench/ops --threads 1
 *
 * When /usr/bin/python3 can import torch, bench/ops_torch.py times each
 * workload with the same --threads just before it is timed here, so both
 * sides of a row see about the same load on a shared machine; each row
 * shows both times and the ratio cformer / torch (lower is better). Without
 * torch only cformer's column is filled.
 *
 * Passes: "fwd" is the forward with recording off (CF_NO_GRAD, torch.no_grad)
 * as inference runs it; for attention that is the blockwise online-softmax
 * path. "fwd+bwd" is the forward with recording on, then the backward from a
 * fixed upstream gradient (cf_backward_with; cf_backward for the scalar
 * cross entropy) into every input, as a training step computes it. Inputs
 * are heap tensors, so their gradients are allocated once and accumulate;
 * the step arena is reset after every call.
 *
 * Method (bench/harness.h): a warm-up, then the median of BENCH_REPS
 * repetitions, each as many calls as fill about TARGET_SECONDS.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* pclose */
#endif
#include "cformer/cformer.h"
#include "bench/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef OPS_TORCH
#define OPS_TORCH "bench/ops_torch.py"
#endif

#define TARGET_SECONDS 0.3 /* per repetition */
#define WARMUP_SECONDS 0.1
#define MAX_ROWS       2 /* torch rows per workload: its passes */

typedef enum { SOFTMAX, LAYER_NORM, CROSS_ENTROPY, ATTENTION } kind;

/* One op on one set of inputs, timed in one or both passes. The names match
 * bench/ops_torch.py's. */
typedef struct {
    const char *op, *shape;
    kind kind;
    bool causal;
    bool fwd_only;
    int ndim;
    int64_t dims[4]; /* of the first input */
} workload;

static const workload workloads[] = {
    {"softmax", "[8192,1024]", SOFTMAX, false, false, 2, {8192, 1024}},
    {"softmax", "[32768,128]", SOFTMAX, false, false, 2, {32 * 8 * 128, 128}},
    {"layer_norm", "[8192,768]", LAYER_NORM, false, false, 2, {8192, 768}},
    {"cross_entropy", "[4096,8192]", CROSS_ENTROPY, false, false, 2, {4096, 8192}},
    {"attention", "[32,8,128,64]", ATTENTION, false, false, 4, {32, 8, 128, 64}},
    {"attention_causal", "[32,8,128,64]", ATTENTION, true, false, 4, {32, 8, 128, 64}},
    {"attention", "[4,8,1024,64]", ATTENTION, false, true, 4, {4, 8, 1024, 64}},
    /* The zoo's small heads: the ViT's (16 patches + CLS) and a G2P decoder's. */
    {"attention", "[128,4,17,32]", ATTENTION, false, false, 4, {128, 4, 17, 32}},
    {"attention_causal", "[128,4,10,32]", ATTENTION, true, false, 4, {128, 4, 10, 32}},
    {"attention_causal", "[4,8,1024,64]", ATTENTION, true, true, 4, {4, 8, 1024, 64}},
};

typedef struct {
    const workload *w;
    cf_tensor *in[3];  /* heap; x / logits / q, then weight, bias / k, v */
    cf_tensor *target; /* cross entropy: int32 classes */
    cf_tensor *dout;   /* upstream gradient; NULL for a scalar output */
    cf_arena *step;
    bool failed;
} bench;

/* torch's time for one row, read from bench/ops_torch.py. */
typedef struct {
    char op[32], shape[32], pass[16];
    double ms;
} torch_row;

static cf_tensor *forward(bench *b)
{
    const workload *w = b->w;
    switch (w->kind) {
    case SOFTMAX: return cf_softmax(b->in[0], -1);
    case LAYER_NORM: return cf_layer_norm(b->in[0], 1, b->in[1], b->in[2], 1e-5f);
    case CROSS_ENTROPY: return cf_cross_entropy(b->in[0], b->target, NULL);
    case ATTENTION:
        return cf_attention(b->in[0], b->in[1], b->in[2],
                            &(cf_attention_opts){.causal = w->causal});
    }
    return NULL;
}

static void run_fwd(void *state, int calls)
{
    bench *b = state;
    CF_NO_GRAD
    {
        for (int i = 0; i < calls; i++) {
            if (!forward(b))
                b->failed = true;
            cf_arena_reset(b->step);
        }
    }
}

static void run_fwd_bwd(void *state, int calls)
{
    bench *b = state;
    for (int i = 0; i < calls; i++) {
        cf_tensor *out = forward(b);
        if (!out || (b->dout ? cf_backward_with(out, b->dout) : cf_backward(out)) != CF_OK)
            b->failed = true;
        cf_arena_reset(b->step);
    }
}

/* The workload's inputs as heap tensors that require a gradient, and the
 * upstream gradient; false when out of memory. */
static bool setup(bench *b, cf_rng *g)
{
    const workload *w = b->w;
    int64_t n = w->dims[w->ndim - 1];
    int nin = w->kind == ATTENTION || w->kind == LAYER_NORM ? 3 : 1;
    for (int i = 0; i < nin; i++) {
        bool param = w->kind == LAYER_NORM && i > 0;
        b->in[i] =
            param ? cf_tensor_new(CF_F32, CF_SHAPE(n)) : cf_tensor_new(CF_F32, w->ndim, w->dims);
        if (!b->in[i])
            return false;
        cf_fill_normal(g, b->in[i], 0, 1);
        cf_requires_grad(b->in[i], true);
    }
    if (w->kind == CROSS_ENTROPY) {
        b->target = cf_tensor_new(CF_I32, CF_SHAPE(w->dims[0]));
        if (!b->target)
            return false;
        /* Any spread of classes will do: a multiplicative hash of i. */
        for (int64_t i = 0; i < w->dims[0]; i++)
            ((int32_t *)b->target->data)[i] = (int32_t)((uint32_t)(i * 2654435761u) % (uint32_t)n);
        return true;
    }
    /* Every output but the loss has the first input's shape. */
    b->dout = cf_tensor_new(CF_F32, w->ndim, w->dims);
    if (!b->dout)
        return false;
    cf_fill_normal(g, b->dout, 0, 1);
    return true;
}

static void teardown(bench *b)
{
    for (int i = 0; i < 3; i++)
        cf_tensor_free(b->in[i]);
    cf_tensor_free(b->target);
    cf_tensor_free(b->dout);
}

/* Runs bench/ops_torch.py on workload w with nt threads; returns how many
 * rows it gave (up to max). */
static int run_torch(const workload *w, int nt, torch_row *rows, int max)
{
    FILE *p = bench_torch_open(OPS_TORCH, nt, "--only '%s' '%s'", w->op, w->shape);
    if (!p)
        return 0;
    int n = 0;
    char line[512];
    while (fgets(line, sizeof line, p)) {
        torch_row r;
        if (line[0] != '#' && n < max &&
            sscanf(line, "%31s %31s %15s %lf", r.op, r.shape, r.pass, &r.ms) == 4)
            rows[n++] = r;
    }
    if (pclose(p) != 0)
        printf("%s --only %s %s failed; its rows are left blank\n", OPS_TORCH, w->op, w->shape);
    return n;
}

static double torch_ms(const torch_row *rows, int n, const workload *w, const char *pass)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].op, w->op) && !strcmp(rows[i].shape, w->shape) &&
            !strcmp(rows[i].pass, pass))
            return rows[i].ms;
    return -1;
}

int main(int argc, char **argv)
{
    if (!bench_parse_args(argc, argv, NULL))
        return 2;
    int nt = cf_get_num_threads();
    printf("threads: %d (cformer cf_get_num_threads, torch.set_num_threads)\n", nt);
    printf("cformer: median of %d repetitions of ~%.1f s\n", BENCH_REPS, TARGET_SECONDS);
    bench_note_load();
    fflush(stdout);

    char version[64];
    bool torch = bench_torch_version(version, sizeof version);
    if (torch)
        printf("torch: PyTorch %s through %s, same method\n", version, OPS_TORCH);
    else
        printf("torch: %s cannot import torch; no comparison\n", BENCH_PYTHON);

    bench b = {.step = cf_arena_new(0)};
    if (!b.step) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    cf_arena_use(b.step);
    cf_rng g;
    cf_rng_init(&g, 1234);

    printf("%-17s %-14s %-8s %11s %11s %14s\n", "op", "shape", "pass", "cformer ms", "torch ms",
           "cformer/torch");
    int status = 0;
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++) {
        torch_row trows[MAX_ROWS];
        int ntorch = torch ? run_torch(&workloads[i], nt, trows, MAX_ROWS) : 0;
        b = (bench){.w = &workloads[i], .step = b.step};
        if (!setup(&b, &g)) {
            fprintf(stderr, "setup of %s %s failed: %s\n", b.w->op, b.w->shape, cf_error_message());
            return 1;
        }
        for (int pass = 0; pass < (b.w->fwd_only ? 1 : 2); pass++) {
            const char *name = pass ? "fwd+bwd" : "fwd";
            double ms =
                1e3 * bench_time(pass ? run_fwd_bwd : run_fwd, &b, WARMUP_SECONDS, TARGET_SECONDS);
            if (b.failed) {
                printf("%-17s %-14s %-8s failed: %s\n", b.w->op, b.w->shape, name,
                       cf_error_message());
                cf_error_clear();
                b.failed = false;
                status = 1;
                continue;
            }
            double tm = torch_ms(trows, ntorch, b.w, name);
            if (tm > 0)
                printf("%-17s %-14s %-8s %11.2f %11.2f %14.2f\n", b.w->op, b.w->shape, name, ms, tm,
                       ms / tm);
            else
                printf("%-17s %-14s %-8s %11.2f %11s %14s\n", b.w->op, b.w->shape, name, ms, "-",
                       "-");
            fflush(stdout);
        }
        teardown(&b);
    }
    cf_arena_use(NULL);
    cf_arena_free(b.step);
    return status;
}
