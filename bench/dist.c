/* Data-parallel training step time and the share spent communicating.
 *
 *     make bench-dist     # 2 ranks x 1 thread, then 1 process x 2 threads
 *     mpirun -np N ./bench/dist [--threads T]
 *
 * Model: an encoder-decoder Transformer, d_model 256, 4 heads, 2 + 2
 * layers, ff 1024, vocabularies of 4000 (6.2 M parameters, 24 MiB of
 * gradients), dropout 0.1; a global batch of 16 pairs of 32-token
 * sequences, split over the ranks; AdamW. Each rank times the same number
 * of steps (rank 0 chooses it from a warm-up), in REPS repetitions,
 * and reports the median step. With more than one rank it times the
 * gradient averaging three ways: ordered sum overlapped with backward
 * (the default), MPI's sum overlapped, and the ordered sum started only
 * after backward (what the overlap saves), and the averaging alone, with
 * no backward to hide behind. "Communication" is the time spent in
 * cformer_dist during a step: packing and starting messages inside
 * backward, and waiting for the last ones after it (which includes
 * waiting for a slower rank).
 */
#include "cformer/cformer.h"
#include "cformer/dist.h"
#include "bench/harness.h"

#include <stdlib.h>
#include <time.h>

#define TARGET_SECONDS 2.0 /* per repetition set */
#define REPS           5
#define BATCH          16
#define LEN            32
#define VOCAB          4000

typedef struct {
    cf_dist *d;
    cf_transformer *m;
    cf_optim *opt;
    cf_ddp *ddp;
    cf_arena *step;
    cf_tensor *src, *tgt, *labels; /* this rank's slice; heap */
} bench;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fail(bench *b) { cf_dist_abort(b->d, cf_error_message()); }

static void steps(bench *b, int n)
{
    for (int i = 0; i < n; i++) {
        cf_tensor *logits = cf_transformer_forward(b->m, b->src, b->tgt, NULL);
        cf_tensor *loss = cf_cross_entropy(cf_reshape(logits, CF_SHAPE(-1, VOCAB)),
                                           cf_reshape(b->labels, CF_SHAPE(-1)),
                                           &(cf_loss_opts){.ignore = true, .ignore_index = 0});
        cf_optim_zero_grad(b->opt);
        if (!loss || cf_backward(loss) != CF_OK)
            fail(b);
        if (b->ddp && cf_ddp_finish(b->ddp) != CF_OK)
            fail(b);
        cf_optim_step(b->opt);
        cf_arena_reset(b->step);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds per step and communication seconds per step. */
static void measure(bench *b, double *step_s, double *comm_s)
{
    steps(b, 2);
    double t0 = now();
    steps(b, 1);
    double per = now() - t0;
    int n = (int)(TARGET_SECONDS / REPS / per) + 1;
    if (cf_dist_broadcast(b->d, &n, sizeof n, 0) != CF_OK)
        fail(b);
    double rep[REPS], comm[REPS];
    for (int r = 0; r < REPS; r++) {
        cf_ddp_stats s0 = b->ddp ? cf_ddp_get_stats(b->ddp) : (cf_ddp_stats){0};
        t0 = now();
        steps(b, n);
        rep[r] = (now() - t0) / n;
        cf_ddp_stats s1 = b->ddp ? cf_ddp_get_stats(b->ddp) : (cf_ddp_stats){0};
        comm[r] = (s1.hook_s + s1.wait_s - s0.hook_s - s0.wait_s) / n;
    }
    /* The communication of the median repetition. */
    double sorted[REPS];
    for (int r = 0; r < REPS; r++)
        sorted[r] = rep[r];
    qsort(sorted, REPS, sizeof *sorted, cmp_double);
    *step_s = sorted[REPS / 2];
    for (int r = 0; r < REPS; r++)
        if (rep[r] == *step_s)
            *comm_s = comm[r];
    /* Rank 0's view is the job's: the ranks move in lock step. */
    double v[2] = {*step_s, *comm_s};
    if (cf_dist_broadcast(b->d, v, sizeof v, 0) != CF_OK)
        fail(b);
    *step_s = v[0];
    *comm_s = v[1];
}

static cf_tensor *tokens(cf_rng *g, int64_t rows)
{
    cf_tensor *u = cf_uniform(g, 1, VOCAB, CF_SHAPE(BATCH, LEN));
    cf_tensor *t = cf_tensor_new(CF_I32, CF_SHAPE(rows, LEN));
    if (!u || !t)
        return NULL;
    int32_t *p = t->data;
    const float *f = u->data;
    for (int64_t i = 0; i < rows * LEN; i++)
        p[i] = (int32_t)f[i];
    return t;
}

int main(int argc, char **argv)
{
    bench b = {0};
    if (cf_dist_init(&argc, &argv, &b.d) != CF_OK) {
        fprintf(stderr, "%s\n", cf_error_message());
        return 1;
    }
    if (!bench_parse_args(argc, argv, NULL))
        cf_dist_abort(b.d, "usage: bench/dist [--threads N]");
    int rank = cf_dist_rank(b.d), size = cf_dist_size(b.d);
    b.step = cf_arena_new(0);
    cf_arena_use(b.step);
    cf_transformer_config c = cf_transformer_small(VOCAB, VOCAB);
    c.d_model = 256;
    c.heads = 4;
    c.ff = 1024;
    c.enc_layers = c.dec_layers = 2;
    c.max_len = LEN + 1;
    cf_rng g;
    cf_rng_init(&g, 1);
    b.m = cf_transformer_new(&c, &g);
    if (!b.m)
        fail(&b);
    cf_module *mod = cf_transformer_module(b.m);
    b.opt = cf_adamw_new(
        mod, &(cf_adamw_opts){.lr = 1e-4f, .beta2 = 0.98f, .eps = 1e-9f, .weight_decay = 0.01f});
    /* This rank's rows of the global batch. */
    int64_t rows = BATCH * (rank + 1) / size - BATCH * rank / size;
    cf_rng_init(&g, 100 + (uint64_t)rank);
    b.src = tokens(&g, rows);
    b.tgt = tokens(&g, rows);
    b.labels = tokens(&g, rows);
    if (!b.opt || !b.src || !b.tgt || !b.labels)
        fail(&b);
    cf_arena_reset(b.step);
    cf_dist_split_rngs(b.d, mod);

    if (rank == 0) {
        bench_note_load();
        printf("bench/dist: %d rank%s x %d thread%s, Transformer of %.1f M parameters "
               "(%.0f MiB of gradients), global batch %d x %d tokens\n",
               size, size > 1 ? "s" : "", cf_get_num_threads(), cf_get_num_threads() > 1 ? "s" : "",
               (double)cf_module_num_params(mod) / 1e6,
               (double)cf_module_num_params(mod) * 4 / (1 << 20), BATCH, LEN);
    }
    double step_s, comm_s;
    if (size == 1) {
        measure(&b, &step_s, &comm_s);
        printf("  one process: %.1f ms per step\n", step_s * 1e3);
    } else {
        static const struct {
            const char *name;
            cf_ddp_opts o;
        } modes[] = {
            {"ordered sum, overlapped", {.reduce = CF_DDP_ORDERED}},
            {"MPI sum, overlapped", {.reduce = CF_DDP_MPI_SUM}},
            {"ordered sum, after backward", {.reduce = CF_DDP_ORDERED, .no_overlap = true}},
        };
        for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
            b.ddp = cf_ddp_new(b.d, mod, &modes[i].o);
            if (!b.ddp)
                fail(&b);
            measure(&b, &step_s, &comm_s);
            if (rank == 0)
                printf("  %-28s %.1f ms per step, communication %.1f ms (%.0f%%), %d buckets\n",
                       modes[i].name, step_s * 1e3, comm_s * 1e3, 100 * comm_s / step_s,
                       cf_ddp_get_stats(b.ddp).buckets);
            cf_ddp_free(b.ddp);
            b.ddp = NULL;
        }
        /* The averaging alone: finish with no backward sends every bucket. */
        b.ddp = cf_ddp_new(b.d, mod, NULL);
        if (!b.ddp || cf_ddp_finish(b.ddp) != CF_OK)
            fail(&b);
        double t0 = now();
        for (int i = 0; i < 10; i++)
            if (cf_ddp_finish(b.ddp) != CF_OK)
                fail(&b);
        double alone = (now() - t0) / 10;
        if (rank == 0)
            printf("  %-28s %.1f ms per step (%.2f GB/s of gradients)\n", "averaging alone",
                   alone * 1e3, (double)cf_ddp_get_stats(b.ddp).bytes / alone / 1e9);
        cf_ddp_free(b.ddp);
        b.ddp = NULL;
    }
    fflush(stdout);
    cf_tensor_free(b.src);
    cf_tensor_free(b.tgt);
    cf_tensor_free(b.labels);
    cf_optim_free(b.opt);
    cf_module_free(mod);
    cf_arena_free(b.step);
    cf_dist_finalize(b.d);
    return 0;
}
