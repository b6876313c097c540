/* Trains the toy Transformer (tests/mpi/toy.h) for tests/mpi/run-tests:
 * data-parallel under mpirun, or in one process either on whole batches
 * (--plain) or the way N ranks would (--emulate). Rank 0 ends by printing
 * "hash <parameter bits>" and, with --compare, the largest parameter
 * difference from a saved model.
 *
 *   dist_train [--steps S] [--save P] [--resume P] [--reduce ordered|mpi]
 *              [--plain | --emulate N[:K:M]] [--die R:K] [--stop R:K]
 *              [--dropout p] [--sgd] [--compare FILE]
 *
 * The optimizer is Adam (lr 3e-3), or SGD with momentum (lr 0.05) with
 * --sgd. Adam turns the rounding noise in gradients that are zero in exact
 * arithmetic (the attention key biases: softmax ignores a shift) into
 * steps of size lr, so runs that differ only in rounding are compared with
 * SGD, which does not amplify it.
 *
 * --emulate N:K:M sums N shards per batch before step K and M after, as an
 * N-rank run resumed on M ranks at step K would. --die R:K kills rank R
 * (SIGKILL) and --stop R:K stops it (SIGSTOP) when it reaches step K. */
#include "cformer/dist.h"
#include "tests/mpi/toy.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define G 12

typedef struct {
    int steps;
    const char *save, *resume, *compare;
    cf_ddp_reduce reduce;
    bool plain, sgd;
    int em_n, em_k, em_m; /* em_n 0: not emulating */
    int die_rank, die_step, stop_rank, stop_step;
    float dropout;
} options;

static void usage(void)
{
    fprintf(stderr, "usage: dist_train [--steps S] [--save P] [--resume P] [--reduce ordered|mpi] "
                    "[--plain | --emulate N[:K:M]] [--die R:K] [--stop R:K] [--dropout p] "
                    "[--sgd] [--compare FILE]\n");
    exit(2);
}

static options parse(int argc, char **argv)
{
    options o = {.steps = 50, .die_rank = -1, .stop_rank = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--plain") || !strcmp(a, "--sgd")) {
            *(a[2] == 'p' ? &o.plain : &o.sgd) = true;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--steps"))
            o.steps = atoi(v);
        else if (!strcmp(a, "--save"))
            o.save = v;
        else if (!strcmp(a, "--resume"))
            o.resume = v;
        else if (!strcmp(a, "--compare"))
            o.compare = v;
        else if (!strcmp(a, "--reduce"))
            o.reduce = strcmp(v, "mpi") ? CF_DDP_ORDERED : CF_DDP_MPI_SUM;
        else if (!strcmp(a, "--dropout"))
            o.dropout = strtof(v, NULL);
        else if (!strcmp(a, "--emulate")) {
            if (sscanf(v, "%d:%d:%d", &o.em_n, &o.em_k, &o.em_m) != 3) {
                o.em_k = 1 << 30;
                o.em_m = o.em_n;
            }
        } else if (!strcmp(a, "--die"))
            sscanf(v, "%d:%d", &o.die_rank, &o.die_step);
        else if (!strcmp(a, "--stop"))
            sscanf(v, "%d:%d", &o.stop_rank, &o.stop_step);
        else
            usage();
    }
    return o;
}

static void check(cf_dist *d, bool ok)
{
    if (!ok)
        cf_dist_abort(d, cf_error_message());
}

typedef struct {
    double diff, big;
    cf_module *other;
} cmp;

static void compare_one(const char *name, cf_tensor *p, void *ud)
{
    cmp *c = ud;
    const cf_tensor *q = cf_module_find(c->other, name);
    const float *a = p->data, *b = q->data;
    for (int64_t i = 0; i < cf_numel(p); i++) {
        c->diff = fmax(c->diff, fabs((double)a[i] - b[i]));
        c->big = fmax(c->big, fabs((double)b[i]));
    }
}

int main(int argc, char **argv)
{
    cf_dist *d;
    if (cf_dist_init(&argc, &argv, &d) != CF_OK) {
        fprintf(stderr, "%s\n", cf_error_message());
        return 1;
    }
    options o = parse(argc, argv);
    int rank = cf_dist_rank(d);
    bool alone = o.plain || o.em_n > 0;
    cf_transformer *m = toy_model(1, o.dropout);
    check(d, m != NULL);
    cf_module *mod = cf_transformer_module(m);
    cf_optim *opt =
        o.sgd ? cf_sgd_new(mod, &(cf_sgd_opts){.lr = 0.05f, .momentum = 0.9f})
              : cf_adam_new(mod, &(cf_adam_opts){.lr = 3e-3f, .beta2 = 0.98f, .eps = 1e-9f});
    char mpath[512], opath[512];
    if (o.resume) {
        snprintf(mpath, sizeof mpath, "%s.model.safetensors", o.resume);
        snprintf(opath, sizeof opath, "%s.optim.safetensors", o.resume);
        check(d, cf_dist_load(d, mod, mpath, true, opt, opath) == CF_OK);
    }
    check(d, cf_dist_broadcast_module(d, mod, 0) == CF_OK);
    cf_dist_split_rngs(d, mod);
    cf_ddp *ddp = NULL;
    if (!alone) {
        cf_ddp_opts dopts = {.reduce = o.reduce, .bucket_bytes = 16384};
        check(d, (ddp = cf_ddp_new(d, mod, &dopts)) != NULL);
    }
    cf_dist_sampler *s = alone ? cf_dist_sampler_new_for(0, 1, TOY_SAMPLES, G, 7, true)
                               : cf_dist_sampler_new(d, TOY_SAMPLES, G, 7, true);
    check(d, s != NULL);
    cf_dist_sampler_seek(s, cf_optim_steps(opt));
    cf_arena *arena = cf_arena_new(0);
    cf_arena_use(arena);
    double metric[2] = {0, 0}; /* loss sum, samples since the last print */
    for (int step = (int)cf_optim_steps(opt); step < o.steps; step++) {
        if (rank == o.die_rank && step == o.die_step)
            raise(SIGKILL);
        if (rank == o.stop_rank && step == o.stop_step)
            raise(SIGSTOP);
        int64_t idx[G];
        int64_t n = cf_dist_sampler_next(s, idx);
        if (n < 0) {
            cf_dist_sampler_set_epoch(s, cf_dist_sampler_epoch(s) + 1);
            n = cf_dist_sampler_next(s, idx);
        }
        if (o.em_n > 0) {
            float *g = toy_fold(m, idx, n, step < o.em_k ? o.em_n : o.em_m);
            check(d, g != NULL);
            free(g);
        } else {
            cf_optim_zero_grad(opt);
            if (ddp)
                cf_ddp_set_weight(ddp, cf_dist_sampler_weight(s));
            if (n > 0) {
                cf_tensor *loss = toy_loss(m, idx, n);
                check(d, loss && cf_backward(loss) == CF_OK);
                metric[0] += cf_item(loss) * (double)n;
                metric[1] += (double)n;
            }
            if (ddp)
                check(d, cf_ddp_finish(ddp) == CF_OK);
        }
        cf_clip_grad_norm(mod, 1.0f);
        cf_optim_step(opt);
        cf_arena_reset(arena);
        if ((step + 1) % 10 == 0 && o.em_n == 0) {
            check(d, cf_dist_allreduce_sum(d, metric, 2) == CF_OK);
            if (rank == 0)
                printf("step %d loss %.6f\n", step + 1, metric[0] / metric[1]);
            metric[0] = metric[1] = 0;
        }
    }
    if (o.save) {
        snprintf(mpath, sizeof mpath, "%s.model.safetensors", o.save);
        snprintf(opath, sizeof opath, "%s.optim.safetensors", o.save);
        check(d, cf_dist_save(d, mod, mpath, opt, opath) == CF_OK);
    }
    if (rank == 0) {
        printf("hash %016llx\n", (unsigned long long)toy_hash(mod));
        if (o.compare) {
            cmp c = {.other = cf_transformer_module(toy_model(1, 0))};
            check(d, cf_module_load(c.other, o.compare, true) == CF_OK);
            cf_module_visit(mod, compare_one, &c);
            printf("compare: largest parameter difference %.3g (%.3g of the largest parameter)\n",
                   c.diff, c.diff / c.big);
            cf_module_free(c.other);
        }
    }
    fflush(stdout);
    cf_dist_sampler_free(s);
    cf_ddp_free(ddp);
    cf_optim_free(opt);
    cf_module_free(mod);
    cf_arena_free(arena);
    cf_dist_finalize(d);
    return 0;
}
