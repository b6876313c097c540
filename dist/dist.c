/* Processes, broadcasts, metrics and checkpoints over MPI. Every wait polls
 * with a deadline, so a rank that stops answering becomes an error on the
 * others rather than a hang. */
#include "dist/internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_TIMEOUT 300.0
#define MSG_MAX         512

double dist__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double dist__timeout(double opt)
{
    if (opt > 0)
        return opt;
    const char *env = getenv("CF_DIST_TIMEOUT");
    double t = env ? strtod(env, NULL) : 0;
    return t > 0 ? t : DEFAULT_TIMEOUT;
}

cf_status dist__mpi_error(const cf_dist *d, int rc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, s, &len);
    cf_error_set(CF_ERR_IO, "%s: rank %d of %d: MPI error: %s", what, d->rank, d->size, s);
    return CF_ERR_IO;
}

bool dist__test(const cf_dist *d, MPI_Request *req, const char *what, cf_status *err)
{
    int done = 0;
    int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
        *err = dist__mpi_error(d, rc, what);
        return false;
    }
    return done != 0;
}

void dist__pause(int *spins)
{
    /* Spinning answers fastest; after a millisecond or so, yield the core
     * (ranks may share cores with each other and with OpenMP threads). */
    if ((*spins)++ < 1000)
        return;
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
}

cf_status dist__wait(const cf_dist *d, MPI_Request *req, double timeout, const char *what)
{
    double deadline = dist__now() + dist__timeout(timeout);
    cf_status err = CF_OK;
    for (int spins = 0;;) {
        if (dist__test(d, req, what, &err))
            return CF_OK;
        if (err != CF_OK)
            return err;
        if (dist__now() > deadline) {
            cf_error_set(CF_ERR_IO,
                         "%s: rank %d of %d: no answer after %.0f s: another rank died, "
                         "stopped or is not making the same calls",
                         what, d->rank, d->size, dist__timeout(timeout));
            return CF_ERR_IO;
        }
        dist__pause(&spins);
    }
}

/* ---- Processes ---- */

static cf_status make(MPI_Comm comm, bool own, cf_dist **out)
{
    *out = NULL;
    cf_dist *d = calloc(1, sizeof *d);
    if (!d) {
        cf_error_set(CF_ERR_NOMEM, "cf_dist_init: out of memory");
        return CF_ERR_NOMEM;
    }
    d->own_mpi = own;
    MPI_Comm_rank(comm, &d->rank);
    MPI_Comm_size(comm, &d->size);
    int rc = MPI_Comm_dup(comm, &d->comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_dup(comm, &d->comm2);
    if (rc != MPI_SUCCESS) {
        cf_status st = dist__mpi_error(d, rc, "cf_dist_init");
        free(d);
        return st;
    }
    /* Errors come back as codes (turned into cf errors), not as aborts. */
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(d->comm2, MPI_ERRORS_RETURN);
    *out = d;
    return CF_OK;
}

cf_status cf_dist_init(int *argc, char ***argv, cf_dist **out)
{
    if (!out) {
        cf_error_set(CF_ERR_ARG, "cf_dist_init: out is NULL");
        return CF_ERR_ARG;
    }
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided;
        /* Only the thread that runs backward talks to MPI, one call at a
         * time; OpenMP threads inside kernels never do. */
        if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
            *out = NULL;
            cf_error_set(CF_ERR_IO, "cf_dist_init: MPI_Init_thread failed");
            return CF_ERR_IO;
        }
    }
    return make(MPI_COMM_WORLD, !inited, out);
}

cf_status cf_dist_from_comm(MPI_Comm comm, cf_dist **out)
{
    if (!out) {
        cf_error_set(CF_ERR_ARG, "cf_dist_from_comm: out is NULL");
        return CF_ERR_ARG;
    }
    return make(comm, false, out);
}

void cf_dist_finalize(cf_dist *d)
{
    if (!d)
        return;
    MPI_Comm_free(&d->comm);
    MPI_Comm_free(&d->comm2);
    if (d->own_mpi)
        MPI_Finalize();
    free(d);
}

int cf_dist_rank(const cf_dist *d) { return d ? d->rank : 0; }

int cf_dist_size(const cf_dist *d) { return d ? d->size : 1; }

void cf_dist_abort(const cf_dist *d, const char *msg)
{
    fprintf(stderr, "cf_dist: rank %d of %d: %s\n", d ? d->rank : 0, d ? d->size : 1,
            msg ? msg : "aborted");
    fflush(stderr);
    MPI_Abort(d ? d->comm : MPI_COMM_WORLD, 1);
    /* MPI_Abort does not return in Open MPI; this is for others. */
    exit(1);
}

cf_status cf_dist_barrier(cf_dist *d)
{
    MPI_Request req;
    int rc = MPI_Ibarrier(d->comm, &req);
    if (rc != MPI_SUCCESS)
        return dist__mpi_error(d, rc, "cf_dist_barrier");
    return dist__wait(d, &req, 0, "cf_dist_barrier");
}

cf_status cf_dist_broadcast(cf_dist *d, void *buf, size_t bytes, int root)
{
    if (root < 0 || root >= d->size) {
        cf_error_set(CF_ERR_ARG, "cf_dist_broadcast: root %d of %d ranks", root, d->size);
        return CF_ERR_ARG;
    }
    char *p = buf;
    do {
        int n = bytes > (size_t)INT_MAX / 2 ? INT_MAX / 2 : (int)bytes;
        MPI_Request req;
        int rc = MPI_Ibcast(p, n, MPI_BYTE, root, d->comm, &req);
        if (rc != MPI_SUCCESS)
            return dist__mpi_error(d, rc, "cf_dist_broadcast");
        cf_status st = dist__wait(d, &req, 0, "cf_dist_broadcast");
        if (st != CF_OK)
            return st;
        p += n;
        bytes -= (size_t)n;
    } while (bytes > 0);
    return CF_OK;
}

/* The trainable parameters under m, in cf_module_visit order. */
typedef struct {
    int n, cap;
    cf_tensor **t;
    bool nomem;
} param_list;

static void collect(const char *name, cf_tensor *p, void *ud)
{
    (void)name;
    param_list *l = ud;
    if (l->nomem)
        return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        cf_tensor **t = realloc(l->t, sizeof *t * (size_t)cap);
        if (!t) {
            l->nomem = true;
            return;
        }
        l->t = t;
        l->cap = cap;
    }
    l->t[l->n++] = p;
}

/* Agrees on a flag: true on every rank when ok on every rank. */
static cf_status all_ok(cf_dist *d, bool ok, bool *all, const char *what)
{
    int mine = ok, every = 0;
    MPI_Request req;
    int rc = MPI_Iallreduce(&mine, &every, 1, MPI_INT, MPI_MIN, d->comm, &req);
    if (rc != MPI_SUCCESS)
        return dist__mpi_error(d, rc, what);
    cf_status st = dist__wait(d, &req, 0, what);
    *all = every != 0;
    return st;
}

cf_status cf_dist_broadcast_module(cf_dist *d, cf_module *m, int root)
{
    param_list l = {0};
    cf_module_visit(m, collect, &l);
    /* Sizes first, so that a rank with another model fails on every rank
     * instead of deadlocking in mismatched broadcasts. */
    int64_t *sizes = calloc((size_t)l.n + 1, sizeof *sizes);
    int64_t *mine = calloc((size_t)l.n + 1, sizeof *mine);
    cf_status st = CF_OK;
    if (l.nomem || !sizes || !mine) {
        cf_error_set(CF_ERR_NOMEM, "cf_dist_broadcast_module: out of memory");
        st = CF_ERR_NOMEM;
        goto out;
    }
    int64_t n = l.n;
    if ((st = cf_dist_broadcast(d, &n, sizeof n, root)) != CF_OK)
        goto out;
    bool ok = n == l.n;
    if (ok) {
        for (int i = 0; i < l.n; i++)
            mine[i] = sizes[i] = cf_numel(l.t[i]);
        if ((st = cf_dist_broadcast(d, sizes, sizeof *sizes * (size_t)l.n, root)) != CF_OK)
            goto out;
        ok = memcmp(sizes, mine, sizeof *sizes * (size_t)l.n) == 0;
    }
    bool all;
    if ((st = all_ok(d, ok, &all, "cf_dist_broadcast_module")) != CF_OK)
        goto out;
    if (!all) {
        cf_error_set(CF_ERR_SHAPE,
                     "cf_dist_broadcast_module: rank %d: the ranks' models differ (rank %d has %d "
                     "parameter tensors%s)",
                     d->rank, root, (int)n, ok ? "; another rank's differ" : ", of other sizes");
        st = CF_ERR_SHAPE;
        goto out;
    }
    for (int i = 0; i < l.n && st == CF_OK; i++)
        st = cf_dist_broadcast(d, l.t[i]->data, sizeof(float) * (size_t)cf_numel(l.t[i]), root);
out:
    free(l.t);
    free(sizes);
    free(mine);
    return st;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void split_rngs(cf_module *m, int rank)
{
    for (; m; m = m->next) {
        if (m->rng)
            m->rng->seed = mix64(m->rng->seed ^ mix64((uint64_t)rank));
        split_rngs(m->first_child, rank);
    }
}

void cf_dist_split_rngs(const cf_dist *d, cf_module *m)
{
    if (!d || !m || d->rank == 0)
        return;
    if (m->rng)
        m->rng->seed = mix64(m->rng->seed ^ mix64((uint64_t)d->rank));
    split_rngs(m->first_child, d->rank);
}

cf_status cf_dist_allreduce_sum(cf_dist *d, double *v, int n)
{
    if (n <= 0)
        return CF_OK;
    /* Gathering everything and adding in rank order keeps the sum the same
     * bits on every rank; metrics are a handful of numbers. */
    double *all = malloc(sizeof *all * (size_t)n * (size_t)d->size);
    if (!all) {
        cf_error_set(CF_ERR_NOMEM, "cf_dist_allreduce_sum: out of memory");
        return CF_ERR_NOMEM;
    }
    MPI_Request req;
    int rc = MPI_Iallgather(v, n, MPI_DOUBLE, all, n, MPI_DOUBLE, d->comm, &req);
    cf_status st = rc == MPI_SUCCESS ? dist__wait(d, &req, 0, "cf_dist_allreduce_sum")
                                     : dist__mpi_error(d, rc, "cf_dist_allreduce_sum");
    if (st == CF_OK) {
        for (int j = 0; j < n; j++) {
            double s = all[j];
            for (int r = 1; r < d->size; r++)
                s += all[(size_t)r * (size_t)n + (size_t)j];
            v[j] = s;
        }
    }
    free(all);
    return st;
}

/* ---- Checkpoints ---- */

typedef struct {
    int status;
    char msg[MSG_MAX];
} outcome;

cf_status cf_dist_save(cf_dist *d, cf_module *m, const char *mpath, const cf_optim *o,
                       const char *opath)
{
    outcome r = {CF_OK, ""};
    if (d->rank == 0) {
        cf_status st = cf_module_save(m, mpath);
        if (st == CF_OK && o)
            st = cf_optim_save(o, opath);
        r.status = st;
        if (st != CF_OK)
            snprintf(r.msg, sizeof r.msg, "%s", cf_error_message());
    }
    cf_status st = cf_dist_broadcast(d, &r, sizeof r, 0);
    if (st != CF_OK)
        return st;
    if (r.status != CF_OK && d->rank != 0)
        cf_error_set((cf_status)r.status, "cf_dist_save: rank 0: %s", r.msg);
    return (cf_status)r.status;
}

cf_status cf_dist_load(cf_dist *d, cf_module *m, const char *mpath, bool strict, cf_optim *o,
                       const char *opath)
{
    cf_status st = cf_module_load(m, mpath, strict);
    if (st == CF_OK && o)
        st = cf_optim_load(o, opath);
    int *all = malloc(sizeof *all * (size_t)d->size);
    if (!all) {
        cf_error_set(CF_ERR_NOMEM, "cf_dist_load: out of memory");
        return CF_ERR_NOMEM;
    }
    int mine = st;
    MPI_Request req;
    int rc = MPI_Iallgather(&mine, 1, MPI_INT, all, 1, MPI_INT, d->comm, &req);
    cf_status cst = rc == MPI_SUCCESS ? dist__wait(d, &req, 0, "cf_dist_load")
                                      : dist__mpi_error(d, rc, "cf_dist_load");
    int first = -1;
    for (int r = 0; cst == CF_OK && r < d->size && first < 0; r++)
        if (all[r] != CF_OK)
            first = r;
    free(all);
    if (cst != CF_OK)
        return cst;
    if (first < 0)
        return CF_OK;
    outcome r = {st, ""};
    if (d->rank == first)
        snprintf(r.msg, sizeof r.msg, "%s", cf_error_message());
    if ((cst = cf_dist_broadcast(d, &r, sizeof r, first)) != CF_OK)
        return cst;
    cf_error_clear();
    cf_error_set((cf_status)r.status, "cf_dist_load: rank %d: %s", first, r.msg);
    return (cf_status)r.status;
}
