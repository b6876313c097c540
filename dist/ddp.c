/* Data-parallel gradient averaging with communication hidden behind
 * backward.
 *
 * Parameters are grouped into buckets in reverse creation order, which is
 * about the order backward finishes them. The grad-ready hook copies each
 * final gradient (times this rank's weight) into its bucket; a full bucket
 * is sent at once, as long as every earlier bucket has been: all ranks must
 * start collectives in the same order, and a graph that finishes parameters
 * in a data-dependent order must not reorder them. Each hook call also
 * polls the requests in flight, because Open MPI moves a non-blocking
 * collective forward only inside MPI calls.
 *
 * The ordered sum is a reduce-scatter and an all-gather, as in a ring
 * all-reduce, but with the additions done by us: an all-to-all hands rank
 * r the r-th slice of every rank's bucket, rank r adds them in rank order,
 * and an all-gather (on a second communicator, so the two phases' starts
 * cannot interleave differently on different ranks) gives everyone the
 * sums. Each rank sends and receives 2 (N - 1) / N of the bucket, the same
 * as MPI's ring. */
#include "dist/internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BUCKET_BYTES (1u << 20)

enum { IDLE, FIRST, GATHER, DONE };

typedef struct {
    int first, count; /* parameters p[first .. first + count) */
    int64_t numel;
    float *buf;       /* [numel]: weighted gradients, then their sum */
    float *stage;     /* ordered: [size][slice of this rank] */
    int *cnt, *off;   /* ordered: each rank's slice length and offset */
    int *rcnt, *roff; /* ordered: what this rank receives from each */
    int ready;        /* parameters packed this step */
    int phase;
    MPI_Request req;
} bucket;

struct cf_ddp {
    cf_dist *d;
    cf_ddp_opts o;
    int np;
    cf_tensor **p; /* [np] reverse creation order */
    int *pb;       /* [np] bucket of each parameter */
    int64_t *poff; /* [np] offset in its bucket */
    bool *packed;  /* [np] this step */
    int nb;
    bucket *b;
    int hcap; /* pointer -> index table (open addressing) */
    cf_tensor **hkey;
    int *hval;
    float weight;
    int next_launch, next_first, next_gather; /* bucket cursors */
    bool broken;                              /* a wait failed: requests may never complete */
    cf_ddp_stats st;
};

/* ---- Parameter lookup ---- */

static size_t hslot(const cf_ddp *g, const cf_tensor *t)
{
    return (size_t)(((uintptr_t)t >> 4) * 0x9E3779B97F4A7C15ull) & (size_t)(g->hcap - 1);
}

static int lookup(const cf_ddp *g, const cf_tensor *t)
{
    for (size_t i = hslot(g, t);; i = (i + 1) & (size_t)(g->hcap - 1)) {
        if (g->hkey[i] == t)
            return g->hval[i];
        if (!g->hkey[i])
            return -1;
    }
}

static void insert(cf_ddp *g, cf_tensor *t, int v)
{
    size_t i = hslot(g, t);
    while (g->hkey[i])
        i = (i + 1) & (size_t)(g->hcap - 1);
    g->hkey[i] = t;
    g->hval[i] = v;
}

/* ---- Creation ---- */

typedef struct {
    int n, cap;
    cf_tensor **t;
    bool nomem;
} plist;

static void collect(const char *name, cf_tensor *p, void *ud)
{
    (void)name;
    plist *l = ud;
    if (l->nomem || !(p->flags & CF_REQUIRES_GRAD))
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

void cf_ddp_free(cf_ddp *g)
{
    if (!g)
        return;
    cf_set_grad_ready_hook(NULL, NULL);
    for (int k = 0; k < g->nb; k++) {
        bucket *b = &g->b[k];
        /* Buffers of a request in flight must outlive it; after a failed
         * wait it may never complete, so they are left behind. */
        if ((b->phase == FIRST || b->phase == GATHER) &&
            (g->broken || MPI_Wait(&b->req, MPI_STATUS_IGNORE) != MPI_SUCCESS))
            continue;
        free(b->buf);
        free(b->stage);
        free(b->cnt);
        free(b->off);
        free(b->rcnt);
        free(b->roff);
    }
    free(g->b);
    free(g->p);
    free(g->pb);
    free(g->poff);
    free(g->packed);
    free(g->hkey);
    free(g->hval);
    free(g);
}

/* Allocates bucket k's buffers and, for the ordered sum, its slices. */
static bool bucket_init(cf_ddp *g, bucket *b)
{
    int size = g->d->size, rank = g->d->rank;
    b->buf = malloc(sizeof(float) * (size_t)b->numel);
    if (!b->buf)
        return false;
    if (g->o.reduce != CF_DDP_ORDERED || size == 1)
        return true;
    b->cnt = malloc(sizeof(int) * (size_t)size);
    b->off = malloc(sizeof(int) * (size_t)size);
    b->rcnt = malloc(sizeof(int) * (size_t)size);
    b->roff = malloc(sizeof(int) * (size_t)size);
    if (!b->cnt || !b->off || !b->rcnt || !b->roff)
        return false;
    for (int r = 0; r < size; r++) {
        int64_t lo = b->numel * r / size, hi = b->numel * (r + 1) / size;
        b->off[r] = (int)lo;
        b->cnt[r] = (int)(hi - lo);
    }
    for (int r = 0; r < size; r++) {
        b->rcnt[r] = b->cnt[rank];
        b->roff[r] = r * b->cnt[rank];
    }
    b->stage = malloc(sizeof(float) * ((size_t)size * (size_t)b->cnt[rank] + 1));
    return b->stage != NULL;
}

static cf_status ready_hook(cf_tensor *leaf, void *ud);

cf_ddp *cf_ddp_new(cf_dist *d, cf_module *m, const cf_ddp_opts *opts)
{
    if (!d || !m) {
        cf_error_set(CF_ERR_ARG, "cf_ddp_new: %s is NULL", d ? "the module" : "the cf_dist");
        return NULL;
    }
    if (opts && !cf_check_reserved("cf_ddp_new", "cf_ddp_opts", opts->reserved, CF_RESERVED_WORDS))
        return NULL;
    cf_ddp *g = calloc(1, sizeof *g);
    plist l = {0};
    if (!g)
        goto nomem;
    g->d = d;
    if (opts)
        g->o = *opts;
    if (g->o.bucket_bytes == 0)
        g->o.bucket_bytes = DEFAULT_BUCKET_BYTES;
    g->o.timeout = dist__timeout(g->o.timeout);
    g->weight = 1.0f / (float)d->size;
    cf_module_visit(m, collect, &l);
    if (l.nomem)
        goto nomem;
    g->np = l.n;
    g->p = malloc(sizeof *g->p * (size_t)(l.n + 1));
    g->pb = malloc(sizeof *g->pb * (size_t)(l.n + 1));
    g->poff = malloc(sizeof *g->poff * (size_t)(l.n + 1));
    g->packed = calloc((size_t)l.n + 1, sizeof *g->packed);
    g->b = calloc((size_t)l.n + 1, sizeof *g->b);
    for (g->hcap = 16; g->hcap < 2 * l.n; g->hcap *= 2)
        ;
    g->hkey = calloc((size_t)g->hcap, sizeof *g->hkey);
    g->hval = calloc((size_t)g->hcap, sizeof *g->hval);
    if (!g->p || !g->pb || !g->poff || !g->packed || !g->b || !g->hkey || !g->hval)
        goto nomem;
    /* Buckets of at least bucket_bytes each (a big parameter fills one
     * alone), in the order backward finishes parameters. */
    size_t limit = g->o.bucket_bytes / sizeof(float);
    for (int i = 0; i < l.n; i++) {
        cf_tensor *t = l.t[l.n - 1 - i];
        g->p[i] = t;
        insert(g, t, i);
        bucket *b = &g->b[g->nb];
        if (b->count == 0)
            b->first = i;
        g->pb[i] = g->nb;
        g->poff[i] = b->numel;
        b->numel += cf_numel(t);
        b->count++;
        if ((size_t)b->numel >= limit || i == l.n - 1)
            g->nb++;
        if (b->numel > INT_MAX) {
            cf_error_set(CF_ERR_ARG, "cf_ddp_new: a bucket of %lld gradients (MPI counts are int)",
                         (long long)b->numel);
            cf_ddp_free(g);
            free(l.t);
            return NULL;
        }
    }
    for (int k = 0; k < g->nb; k++)
        if (!bucket_init(g, &g->b[k]))
            goto nomem;
    free(l.t);
    g->st.buckets = g->nb;
    for (int k = 0; k < g->nb; k++)
        g->st.bytes += (int64_t)sizeof(float) * g->b[k].numel;
    cf_set_grad_ready_hook(ready_hook, g);
    return g;
nomem:
    free(l.t);
    cf_ddp_free(g);
    cf_error_set(CF_ERR_NOMEM, "cf_ddp_new: out of memory");
    return NULL;
}

void cf_ddp_set_weight(cf_ddp *g, float weight)
{
    if (g)
        g->weight = weight;
}

cf_ddp_stats cf_ddp_get_stats(const cf_ddp *g) { return g->st; }

/* ---- One step ---- */

static void pack(cf_ddp *g, int i)
{
    bucket *b = &g->b[g->pb[i]];
    float *dst = b->buf + g->poff[i];
    int64_t n = cf_numel(g->p[i]);
    const cf_tensor *grad = g->p[i]->grad;
    if (grad) {
        const float *src = grad->data, w = g->weight;
        for (int64_t j = 0; j < n; j++)
            dst[j] = w * src[j];
    } else {
        memset(dst, 0, sizeof(float) * (size_t)n);
    }
    g->packed[i] = true;
    b->ready++;
}

static cf_status launch(cf_ddp *g, bucket *b)
{
    const cf_dist *d = g->d;
    int rc;
    if (d->size == 1) {
        b->phase = DONE;
        return CF_OK;
    }
    if (g->o.reduce == CF_DDP_MPI_SUM)
        rc = MPI_Iallreduce(MPI_IN_PLACE, b->buf, (int)b->numel, MPI_FLOAT, MPI_SUM, d->comm,
                            &b->req);
    else
        rc = MPI_Ialltoallv(b->buf, b->cnt, b->off, MPI_FLOAT, b->stage, b->rcnt, b->roff,
                            MPI_FLOAT, d->comm, &b->req);
    if (rc != MPI_SUCCESS)
        return dist__mpi_error(d, rc, "cf_ddp");
    b->phase = FIRST;
    return CF_OK;
}

/* Rank-order sum of this rank's slice, then the all-gather of all slices. */
static cf_status gather(cf_ddp *g, bucket *b)
{
    const cf_dist *d = g->d;
    int c = b->cnt[d->rank];
    float *out = b->buf + b->off[d->rank];
    memcpy(out, b->stage, sizeof(float) * (size_t)c);
    for (int r = 1; r < d->size; r++) {
        const float *in = b->stage + (size_t)r * (size_t)c;
        for (int j = 0; j < c; j++)
            out[j] += in[j];
    }
    int rc = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, b->buf, b->cnt, b->off, MPI_FLOAT,
                             d->comm2, &b->req);
    if (rc != MPI_SUCCESS)
        return dist__mpi_error(d, rc, "cf_ddp");
    b->phase = GATHER;
    return CF_OK;
}

/* Starts every bucket that is full and next in line. */
static cf_status launch_ready(cf_ddp *g)
{
    while (g->next_launch < g->nb && g->b[g->next_launch].ready == g->b[g->next_launch].count) {
        cf_status st = launch(g, &g->b[g->next_launch++]);
        if (st != CF_OK)
            return st;
    }
    return CF_OK;
}

/* Moves the requests in flight forward without blocking, in bucket order. */
static cf_status progress(cf_ddp *g)
{
    cf_status st = CF_OK;
    while (g->next_first < g->next_launch) {
        bucket *b = &g->b[g->next_first];
        if (b->phase == FIRST) {
            if (!dist__test(g->d, &b->req, "cf_ddp", &st))
                return st;
            if (g->o.reduce == CF_DDP_ORDERED) {
                if ((st = gather(g, b)) != CF_OK)
                    return st;
            } else {
                b->phase = DONE;
            }
        }
        g->next_first++;
    }
    while (g->next_gather < g->next_first) {
        bucket *b = &g->b[g->next_gather];
        if (b->phase == GATHER) {
            if (!dist__test(g->d, &b->req, "cf_ddp", &st))
                return st;
            b->phase = DONE;
        }
        g->next_gather++;
    }
    return CF_OK;
}

static cf_status ready_hook(cf_tensor *leaf, void *ud)
{
    cf_ddp *g = ud;
    int i = lookup(g, leaf);
    if (i < 0)
        return CF_OK;
    if (g->packed[i]) {
        cf_error_set(CF_ERR_STATE,
                     "cf_ddp: rank %d: a second backward before cf_ddp_finish (call finish "
                     "after each backward)",
                     g->d->rank);
        return CF_ERR_STATE;
    }
    double t0 = dist__now();
    pack(g, i);
    cf_status st = CF_OK;
    if (!g->o.no_overlap && (st = launch_ready(g)) == CF_OK)
        st = progress(g);
    g->st.hook_s += dist__now() - t0;
    if (st == CF_ERR_IO)
        g->broken = true;
    return st;
}

cf_status cf_ddp_finish(cf_ddp *g)
{
    if (g->broken) {
        cf_error_set(CF_ERR_IO, "cf_ddp_finish: rank %d: a communication error came first",
                     g->d->rank);
        return CF_ERR_IO;
    }
    double t0 = dist__now(), deadline = t0 + g->o.timeout;
    for (int i = 0; i < g->np; i++)
        if (!g->packed[i])
            pack(g, i);
    cf_status st = launch_ready(g);
    for (int spins = 0; st == CF_OK && g->next_gather < g->nb;) {
        if ((st = progress(g)) != CF_OK || g->next_gather == g->nb)
            break;
        if (dist__now() > deadline) {
            const bucket *b = &g->b[g->next_gather];
            cf_error_set(CF_ERR_IO,
                         "cf_ddp_finish: rank %d of %d: bucket %d of %d (%.2f MiB) not reduced "
                         "after %.0f s: another rank died, stopped or skipped a step",
                         g->d->rank, g->d->size, g->next_gather + 1, g->nb,
                         (double)b->numel * sizeof(float) / (1 << 20), g->o.timeout);
            st = CF_ERR_IO;
            break;
        }
        dist__pause(&spins);
    }
    if (st != CF_OK) {
        g->broken = true;
        return st;
    }
    for (int i = 0; i < g->np; i++) {
        cf_tensor *grad = cf_grad_for(g->p[i]);
        if (!grad)
            return cf_error();
        const bucket *b = &g->b[g->pb[i]];
        memcpy(grad->data, b->buf + g->poff[i], sizeof(float) * (size_t)cf_numel(grad));
        g->packed[i] = false;
    }
    for (int k = 0; k < g->nb; k++) {
        g->b[k].ready = 0;
        g->b[k].phase = IDLE;
    }
    g->next_launch = g->next_first = g->next_gather = 0;
    g->weight = 1.0f / (float)g->d->size;
    g->st.steps++;
    g->st.wait_s += dist__now() - t0;
    return CF_OK;
}
