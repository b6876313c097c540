/* Matrix product speed: cformer's cf_matmul against BLIS called directly.
 *
 *     make bench                        # CF_NUM_THREADS threads, else all cores
 *     ./bench/matmul --threads 1
 *
 * Shapes are written M x K x N for C[M, N] = A[M, K] @ B[K, N], with the batch
 * dims in front for a batched product. Each case times the forward product
 * only, as an inference loop runs it: recording off (CF_NO_GRAD) and the step
 * arena reset after every call. BLIS gets the same data, shapes and thread
 * count through bli_sgemm_ex, writing into a buffer allocated once.
 *
 * Method (bench/harness.h): a warm-up, then BENCH_REPS repetitions of each
 * side, interleaved so both see the same machine state. A repetition is as
 * many calls as fill about TARGET_SECONDS / BENCH_REPS; the median
 * repetition is reported as GFLOP/s (2 M N K per matrix). The two outputs
 * are compared once per case, so a fast wrong answer fails the run.
 */
#include "cformer/cformer.h"
#include "bench/harness.h"

#include <blis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define TARGET_SECONDS 0.3 /* per side and case */
#define WARMUP_SECONDS 0.05

/* One benchmark case: the operands twice, as cformer tensors and as the
 * pointers and strides a BLIS user would pass for matrix i of the batch. */
typedef struct {
    const char *name;
    int64_t batch, m, k, n;
    cf_tensor *a, *b; /* cformer operands; views where the case says so */
    const float *pa, *pb;
    trans_t ta, tb;
    inc_t rsa, csa, bsa; /* row, column and batch strides of the stored A */
    inc_t rsb, csb, bsb;
    float *c; /* (batch, m, n), BLIS output */
} mm_case;

typedef struct {
    mm_case *cs;
    cf_arena *step; /* holds cformer's outputs; reset after every call */
    rntm_t rntm;    /* BLIS with nt threads */
    rntm_t rntm1;   /* BLIS with one thread, for the batch-parallel loop */
    int nt;
    bool failed; /* a cformer call returned NULL */
} bench;

static void run_cformer(void *state, int calls)
{
    bench *b = state;
    CF_NO_GRAD
    {
        for (int i = 0; i < calls; i++) {
            if (!cf_matmul(b->cs->a, b->cs->b))
                b->failed = true;
            cf_arena_reset(b->step);
        }
    }
}

/* C_i = op(A_i) op(B_i) for each matrix of the batch, one call each. */
static void gemm_one(const mm_case *c, int64_t i, rntm_t *rntm)
{
    float one = 1.0f, zero = 0.0f;
    bli_sgemm_ex(c->ta, c->tb, c->m, c->n, c->k, &one, (float *)c->pa + i * c->bsa, c->rsa, c->csa,
                 (float *)c->pb + i * c->bsb, c->rsb, c->csb, &zero, c->c + i * c->m * c->n, c->n,
                 1, NULL, rntm);
}

/* What a plain user writes: a loop over the batch, every call on nt threads. */
static void run_blis(void *state, int calls)
{
    bench *b = state;
    for (int it = 0; it < calls; it++)
        for (int64_t i = 0; i < b->cs->batch; i++)
            gemm_one(b->cs, i, &b->rntm);
}

/* The batch split over nt threads, one BLIS thread per product: the strategy
 * cformer uses for many small products. BLIS copies the rntm it is handed,
 * so the threads can share it. */
static void run_blis_batch_parallel(void *state, int calls)
{
    bench *b = state;
    for (int it = 0; it < calls; it++) {
#pragma omp parallel for num_threads(b->nt) schedule(static)
        for (int64_t i = 0; i < b->cs->batch; i++)
            gemm_one(b->cs, i, &b->rntm1);
    }
}

/* Largest |cformer - BLIS| over max(1, |BLIS|); NAN when cformer failed. */
static double check(bench *b)
{
    mm_case *c = b->cs;
    int64_t n = c->batch * c->m * c->n;
    double worst = NAN;
    run_blis(b, 1);
    CF_NO_GRAD
    {
        cf_tensor *out = cf_matmul(c->a, c->b);
        float *got = malloc(sizeof(float) * n);
        if (out && got && cf_numel(out) == n) {
            cf_copy_to(out, got);
            worst = 0;
            for (int64_t i = 0; i < n; i++) {
                double d = fabs((double)got[i] - c->c[i]) / fmax(1.0, fabs(c->c[i]));
                worst = d > worst ? d : worst;
            }
        }
        free(got);
        cf_arena_reset(b->step);
    }
    return worst;
}

/* Bytes one cf_matmul takes from the arena beyond its output: a copy of an
 * operand would show here. */
static size_t extra_bytes(bench *b)
{
    size_t used = 0;
    CF_NO_GRAD
    {
        if (cf_matmul(b->cs->a, b->cs->b))
            used = cf_arena_used(b->step);
        cf_arena_reset(b->step);
    }
    size_t out = sizeof(float) * (size_t)(b->cs->batch * b->cs->m * b->cs->n);
    return used > out ? used - out : 0;
}

static double gflops(const mm_case *c, double seconds)
{
    return 2.0 * (double)(c->batch * c->m * c->n * c->k) / seconds * 1e-9;
}

/* A heap tensor of uniform values in [-1, 1). */
static cf_tensor *rand_tensor(cf_rng *g, int ndim, const int64_t *shape)
{
    cf_tensor *t = cf_tensor_new(CF_F32, ndim, shape);
    if (t)
        cf_fill_uniform(g, t, -1.0f, 1.0f);
    return t;
}

/* A plain product of contiguous A[m, k] and B[k, n]. */
static mm_case plain(const char *name, cf_rng *g, int64_t m, int64_t k, int64_t n)
{
    mm_case c = {.name = name, .batch = 1, .m = m, .k = k, .n = n};
    c.a = rand_tensor(g, CF_SHAPE(m, k));
    c.b = rand_tensor(g, CF_SHAPE(k, n));
    c.ta = c.tb = BLIS_NO_TRANSPOSE;
    c.rsa = k, c.csa = 1, c.rsb = n, c.csb = 1;
    return c;
}

int main(int argc, char **argv)
{
    if (!bench_parse_args(argc, argv, NULL))
        return 2;
    bench b = {0};
    b.nt = cf_get_num_threads();
    bli_rntm_init(&b.rntm);
    bli_rntm_set_num_threads(b.nt, &b.rntm);
    bli_rntm_init(&b.rntm1);
    bli_rntm_set_num_threads(1, &b.rntm1);

    /* The views live in a setup arena; outputs go to the step arena. */
    cf_arena *setup = cf_arena_new(0);
    b.step = cf_arena_new(0);
    cf_arena_use(setup);
    cf_rng g;
    cf_rng_init(&g, 1234);

    enum { NCASES = 5 };
    mm_case cases[NCASES];
    cases[0] = plain("512x512x512", &g, 512, 512, 512);
    cases[1] = plain("1024x1024x1024", &g, 1024, 1024, 1024);
    cases[2] = plain("64x512x2048", &g, 64, 512, 2048);

    /* Attention scores: Q[B, H, T, D] @ K^T with K^T a transposed view of
     * K[B, H, T, D]. A BLIS user passes K with BLIS_TRANSPOSE. */
    const int64_t B = 32, H = 8, T = 64, D = 64;
    cf_tensor *q = rand_tensor(&g, CF_SHAPE(B, H, T, D)); /* (B, H, T, D) */
    cf_tensor *k = rand_tensor(&g, CF_SHAPE(B, H, T, D)); /* (B, H, T, D) */
    cases[3] = (mm_case){.name = "[32,8] 64x64x64 Q@K^T", .batch = B * H, .m = T, .k = D, .n = T};
    cases[3].a = q;
    cases[3].b = cf_transpose(k, 2, 3); /* (B, H, D, T), a view */
    cases[3].ta = BLIS_NO_TRANSPOSE, cases[3].tb = BLIS_TRANSPOSE;
    cases[3].rsa = D, cases[3].csa = 1, cases[3].bsa = T * D;
    cases[3].rsb = D, cases[3].csb = 1, cases[3].bsb = T * D;

    /* A^T B with A stored as [K, M] and passed to cformer as a transposed
     * view. */
    const int64_t M = 1024, K = 512, N = 1024;
    cf_tensor *at = rand_tensor(&g, CF_SHAPE(K, M)); /* (K, M) */
    cases[4] = (mm_case){.name = "1024x512x1024 A^T@B", .batch = 1, .m = M, .k = K, .n = N};
    cases[4].a = cf_transpose(at, 0, 1); /* (M, K), a view */
    cases[4].b = rand_tensor(&g, CF_SHAPE(K, N));
    cases[4].ta = BLIS_TRANSPOSE, cases[4].tb = BLIS_NO_TRANSPOSE;
    cases[4].rsa = M, cases[4].csa = 1, cases[4].rsb = N, cases[4].csb = 1;

    for (int i = 0; i < NCASES; i++) {
        mm_case *c = &cases[i];
        c->pa = c->a ? c->a->data : NULL;
        c->pb = c->b ? c->b->data : NULL;
        /* 64-byte aligned like cformer's arena outputs, so both write alike. */
        size_t bytes = sizeof(float) * (size_t)(c->batch * c->m * c->n);
        c->c = aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (!c->c) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
    }
    if (cf_error()) {
        fprintf(stderr, "setup failed: %s\n", cf_error_message());
        return 1;
    }
    cf_arena_use(b.step);

    printf("threads: %d (cformer cf_get_num_threads, BLIS rntm)\n", b.nt);
    bli_init(); /* bli_arch_query_id before it aborts when BLIS_ARCH_TYPE is set */
    printf("cf_matmul forward vs BLIS %s (%s kernels) bli_sgemm_ex, median of %d repetitions\n",
           bli_info_get_version_str(), bli_arch_string(bli_arch_query_id()), BENCH_REPS);
    bench_note_load();
    printf("%-26s %16s %14s %14s\n", "M x K x N", "cformer GFLOP/s", "BLIS GFLOP/s",
           "cformer/BLIS");
    int status = 0;
    for (int i = 0; i < NCASES; i++) {
        b.cs = &cases[i];
        double err = check(&b);
        if (!(err < 1e-4)) {
            printf("%-26s cformer's result differs from BLIS (max rel. error %g): %s\n", b.cs->name,
                   err, cf_error() ? cf_error_message() : "");
            status = 1;
            cf_error_clear();
            continue;
        }
        size_t extra = extra_bytes(&b);
        bench_runner run[3] = {run_cformer, run_blis, run_blis_batch_parallel};
        double t[3];
        int nr = b.cs->batch > 1 && b.nt > 1 ? 3 : 2;
        bench_time_interleaved(nr, run, &b, WARMUP_SECONDS, TARGET_SECONDS / BENCH_REPS, t);
        if (b.failed) {
            printf("%-26s cf_matmul failed: %s\n", b.cs->name, cf_error_message());
            status = 1;
            b.failed = false;
            cf_error_clear();
            continue;
        }
        double gc = gflops(b.cs, t[0]), gb = gflops(b.cs, t[1]);
        printf("%-26s %16.1f %14.1f %14.2f\n", b.cs->name, gc, gb, gc / gb);
        if (nr == 3)
            printf("%-26s %16s %14.1f %14.2f\n", "  vs BLIS batch-parallel *", "",
                   gflops(b.cs, t[2]), gc / gflops(b.cs, t[2]));
        if (extra > ((size_t)1 << 20))
            printf("%-26s cf_matmul took %.1f MiB beyond its output: an operand was copied\n", "",
                   (double)extra / (1 << 20));
    }

    if (b.nt > 1)
        printf("* BLIS on the same batch the way cformer runs many small products: the\n"
               "  batch split over the threads, one single-threaded BLIS call each.\n");

    for (int i = 0; i < NCASES; i++)
        free(cases[i].c);
    cf_tensor_free(cases[0].a), cf_tensor_free(cases[0].b);
    cf_tensor_free(cases[1].a), cf_tensor_free(cases[1].b);
    cf_tensor_free(cases[2].a), cf_tensor_free(cases[2].b);
    cf_tensor_free(q), cf_tensor_free(k), cf_tensor_free(at), cf_tensor_free(cases[4].b);
    cf_arena_free(b.step);
    cf_arena_free(setup);
    return status;
}
