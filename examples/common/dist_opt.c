/* The examples' optional data parallelism: libcformer_dist when built with
 * CF_HAVE_MPI, else one process. */
#include "examples/common/dist_opt.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef CF_HAVE_MPI
#include <cformer/dist.h>

static cf_dist *dist;
static cf_ddp *ddp;

void dopt_init(int *argc, char ***argv)
{
    if (cf_dist_init(argc, argv, &dist) != CF_OK) {
        fprintf(stderr, "%s\n", cf_error_message());
        exit(1);
    }
}

void dopt_finalize(void)
{
    cf_ddp_free(ddp);
    ddp = NULL;
    cf_dist_finalize(dist);
    dist = NULL;
}

int dopt_rank(void) { return cf_dist_rank(dist); }
int dopt_size(void) { return cf_dist_size(dist); }
void dopt_abort(const char *msg) { cf_dist_abort(dist, msg); }

cf_status dopt_attach(cf_module *m)
{
    cf_status st = cf_dist_broadcast_module(dist, m, 0);
    if (st != CF_OK)
        return st;
    cf_dist_split_rngs(dist, m);
    cf_ddp_free(ddp);
    ddp = cf_ddp_new(dist, m, NULL);
    return ddp ? CF_OK : cf_error();
}

void dopt_weight(float w) { cf_ddp_set_weight(ddp, w); }
cf_status dopt_finish(void) { return ddp ? cf_ddp_finish(ddp) : CF_OK; }
cf_status dopt_sum(double *v, int n) { return cf_dist_allreduce_sum(dist, v, n); }

cf_status dopt_save(cf_module *m, const char *mpath, const cf_optim *o, const char *opath)
{
    return cf_dist_save(dist, m, mpath, o, opath);
}

cf_status dopt_load(cf_module *m, const char *mpath, cf_optim *o, const char *opath)
{
    return cf_dist_load(dist, m, mpath, true, o, opath);
}

double dopt_comm_seconds(void)
{
    if (!ddp)
        return 0;
    cf_ddp_stats s = cf_ddp_get_stats(ddp);
    return s.hook_s + s.wait_s;
}

double dopt_wait_seconds(void) { return ddp ? cf_ddp_get_stats(ddp).wait_s : 0; }

#else

void dopt_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
}

void dopt_finalize(void) {}
int dopt_rank(void) { return 0; }
int dopt_size(void) { return 1; }

void dopt_abort(const char *msg)
{
    fprintf(stderr, "%s\n", msg);
    exit(1);
}

cf_status dopt_attach(cf_module *m)
{
    (void)m;
    return CF_OK;
}

void dopt_weight(float w) { (void)w; }
cf_status dopt_finish(void) { return CF_OK; }

cf_status dopt_sum(double *v, int n)
{
    (void)v;
    (void)n;
    return CF_OK;
}

cf_status dopt_save(cf_module *m, const char *mpath, const cf_optim *o, const char *opath)
{
    cf_status st = cf_module_save(m, mpath);
    return st == CF_OK && o ? cf_optim_save(o, opath) : st;
}

cf_status dopt_load(cf_module *m, const char *mpath, cf_optim *o, const char *opath)
{
    cf_status st = cf_module_load(m, mpath, true);
    return st == CF_OK && o ? cf_optim_load(o, opath) : st;
}

double dopt_comm_seconds(void) { return 0; }
double dopt_wait_seconds(void) { return 0; }

#endif

bool dopt_root(void) { return dopt_rank() == 0; }

void dopt_check(cf_status st)
{
    if (st != CF_OK)
        dopt_abort(cf_error_message());
}

void dopt_range(int64_t n, int64_t *lo, int64_t *hi)
{
    int r = dopt_rank(), s = dopt_size();
    *lo = n * r / s;
    *hi = n * (r + 1) / s;
}
