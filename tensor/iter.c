/* Strided loops: the engine under every elementwise kernel, copies and
 * broadcast-reducing sums. */
#include "tensor/internal.h"

#include <string.h>

/* Elements per parallel chunk; fixed so chunking never depends on threads. */
#define CHUNK 16384
/* Elements of the reduced space summed by one task before partial sums are
 * combined (in order) by cf__sum_to. */
#define SUM_BLOCK 8192
/* Columns a task of the column-wise sum keeps in registers' reach. */
#define SUM_COLS 256

typedef struct {
    int nops, nd;
    int64_t shape[CF_MAX_DIMS];
    int64_t st[CF_LOOP_MAX][CF_MAX_DIMS];
    char *base[CF_LOOP_MAX];
} nest;

/* Drops size-1 dims and merges dims that are contiguous for every operand. */
static void nest_init(nest *L, int nops, int ndim, const int64_t *shape,
                      int64_t (*strides)[CF_MAX_DIMS], char *const *base)
{
    L->nops = nops;
    L->nd = 0;
    for (int o = 0; o < nops; o++)
        L->base[o] = base[o];
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 1)
            continue;
        int d = L->nd;
        bool merge = d > 0;
        for (int o = 0; o < nops && merge; o++)
            merge = L->st[o][d - 1] == strides[o][i] * shape[i];
        if (merge) {
            L->shape[d - 1] *= shape[i];
            for (int o = 0; o < nops; o++)
                L->st[o][d - 1] = strides[o][i];
        } else {
            L->shape[d] = shape[i];
            for (int o = 0; o < nops; o++)
                L->st[o][d] = strides[o][i];
            L->nd++;
        }
    }
    if (L->nd == 0) {
        L->nd = 1;
        L->shape[0] = 1;
        for (int o = 0; o < nops; o++)
            L->st[o][0] = 0;
    }
}

/* Runs fn over the elements [lo, hi) of the nest in row-major order. */
static void nest_range(const nest *L, int64_t lo, int64_t hi, cf__row_fn fn, const void *ud)
{
    int nd = L->nd, nops = L->nops;
    int64_t n_in = L->shape[nd - 1];
    int64_t row = lo / n_in, col = lo % n_in;
    int64_t idx[CF_MAX_DIMS];
    char *rowp[CF_LOOP_MAX], *p[CF_LOOP_MAX];
    int64_t s[CF_LOOP_MAX];
    for (int o = 0; o < nops; o++) {
        rowp[o] = L->base[o];
        s[o] = L->st[o][nd - 1];
    }
    for (int d = nd - 2; d >= 0; d--) {
        idx[d] = row % L->shape[d];
        row /= L->shape[d];
        for (int o = 0; o < nops; o++)
            rowp[o] += idx[d] * L->st[o][d];
    }
    while (lo < hi) {
        int64_t n = n_in - col < hi - lo ? n_in - col : hi - lo;
        for (int o = 0; o < nops; o++)
            p[o] = rowp[o] + col * s[o];
        fn(n, p, s, ud);
        lo += n;
        col = 0;
        for (int d = nd - 2; d >= 0; d--) {
            for (int o = 0; o < nops; o++)
                rowp[o] += L->st[o][d];
            if (++idx[d] < L->shape[d])
                break;
            for (int o = 0; o < nops; o++)
                rowp[o] -= L->st[o][d] * L->shape[d];
            idx[d] = 0;
        }
    }
}

void cf__loop(int nops, int ndim, const int64_t *shape, int64_t (*strides)[CF_MAX_DIMS],
              char *const *base, cf__row_fn fn, const void *ud)
{
    nest L;
    nest_init(&L, nops, ndim, shape, strides, base);
    int64_t total = cf__prod(L.nd, L.shape);
    if (total == 0)
        return;
    int nt = cf__threads_for(total);
    if (nt == 1) {
        nest_range(&L, 0, total, fn, ud);
        return;
    }
    int64_t nchunks = (total + CHUNK - 1) / CHUNK;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t lo = c * CHUNK, hi = lo + CHUNK < total ? lo + CHUNK : total;
        nest_range(&L, lo, hi, fn, ud);
    }
}

/* Byte strides of t viewed as `shape` (broadcasting). */
static void byte_strides(const cf_tensor *t, int ndim, const int64_t *shape, int64_t *out)
{
    cf__expand_strides(t, ndim, shape, out);
    for (int i = 0; i < ndim; i++)
        out[i] *= (int64_t)cf_dtype_size(t->dtype);
}

static void copy_row(int64_t n, char *const *p, const int64_t *s, const void *ud)
{
    size_t es = *(const size_t *)ud;
    if (s[0] == (int64_t)es && s[1] == (int64_t)es) {
        memcpy(p[0], p[1], n * es);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        memcpy(p[0] + i * s[0], p[1] + i * s[1], es);
}

void cf__copy(cf_tensor *dst, const cf_tensor *src)
{
    int64_t st[2][CF_MAX_DIMS];
    byte_strides(dst, dst->ndim, dst->shape, st[0]);
    byte_strides(src, dst->ndim, dst->shape, st[1]);
    char *base[2] = {dst->data, src->data};
    size_t es = cf_dtype_size(dst->dtype);
    cf__loop(2, dst->ndim, dst->shape, st, base, copy_row, &es);
}

static void acc_row(int64_t n, char *const *p, const int64_t *s, const void *ud)
{
    (void)ud;
    float *d = (float *)p[0];
    const float *a = (const float *)p[1];
    if (s[0] == 4 && s[1] == 4) {
        for (int64_t i = 0; i < n; i++)
            d[i] += a[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            *(float *)(p[0] + i * s[0]) += *(const float *)(p[1] + i * s[1]);
    }
}

void cf__acc(cf_tensor *dst, const cf_tensor *src)
{
    int64_t st[2][CF_MAX_DIMS];
    byte_strides(dst, dst->ndim, dst->shape, st[0]);
    byte_strides(src, dst->ndim, dst->shape, st[1]);
    char *base[2] = {dst->data, src->data};
    cf__loop(2, dst->ndim, dst->shape, st, base, acc_row, NULL);
}

/* ---- Broadcast-reducing sum ---- */

typedef struct {
    int nk, nr; /* kept and reduced dims */
    int64_t kshape[CF_MAX_DIMS], ks[CF_MAX_DIMS], kd[CF_MAX_DIMS];
    int64_t rshape[CF_MAX_DIMS], rs[CF_MAX_DIMS];
    int64_t nout, nred;
} sumplan;

/* Merges adjacent dims of a (shape, stride...) list where contiguous. */
static int merge_dims(int n, int64_t *shape, int64_t *s1, int64_t *s2)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m > 0 && s1[m - 1] == s1[i] * shape[i] && (!s2 || s2[m - 1] == s2[i] * shape[i])) {
            shape[m - 1] *= shape[i];
            s1[m - 1] = s1[i];
            if (s2)
                s2[m - 1] = s2[i];
        } else {
            shape[m] = shape[i];
            s1[m] = s1[i];
            if (s2)
                s2[m] = s2[i];
            m++;
        }
    }
    return m;
}

/* Offset (elements) of the k-th element of a row-major index space. */
static int64_t offset_of(int64_t k, int n, const int64_t *shape, const int64_t *st)
{
    int64_t off = 0;
    for (int d = n - 1; d >= 0; d--) {
        off += (k % shape[d]) * st[d];
        k /= shape[d];
    }
    return off;
}

/* Sum of the reduced elements [lo, hi) around src element base. */
static double sum_range(const sumplan *P, const float *base, int64_t lo, int64_t hi)
{
    int nr = P->nr;
    if (nr == 0)
        return *base;
    int64_t n_in = P->rshape[nr - 1], s_in = P->rs[nr - 1];
    double acc[4] = {0, 0, 0, 0};
    while (lo < hi) {
        int64_t col = lo % n_in;
        int64_t n = n_in - col < hi - lo ? n_in - col : hi - lo;
        const float *p = base + offset_of(lo - col, nr, P->rshape, P->rs) + col * s_in;
        int64_t i = 0;
        if (s_in == 1) {
            for (; i + 4 <= n; i += 4) {
                acc[0] += p[i];
                acc[1] += p[i + 1];
                acc[2] += p[i + 2];
                acc[3] += p[i + 3];
            }
        }
        for (; i < n; i++)
            acc[0] += p[i * s_in];
        lo += n;
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

static void store_sum(float *d, double v, double scale, bool accumulate)
{
    *d = accumulate ? (float)(*d + v * scale) : (float)(v * scale);
}

/* Column-wise: the innermost src dim is kept and contiguous, so each task
 * adds whole rows of up to SUM_COLS columns in reduced-index order. */
static void sum_columns(const sumplan *P, float *dst, const float *src, double scale,
                        bool accumulate)
{
    int64_t ncols = P->kshape[P->nk - 1];
    int64_t outer = P->nout / ncols;
    int64_t ctiles = (ncols + SUM_COLS - 1) / SUM_COLS;
    int64_t tasks = outer * ctiles;
    int nt = cf__threads_for(P->nout * P->nred);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t o = t / ctiles, c0 = (t % ctiles) * SUM_COLS;
        int64_t nc = ncols - c0 < SUM_COLS ? ncols - c0 : SUM_COLS;
        int64_t ko = o * ncols + c0;
        const float *sb = src + offset_of(ko, P->nk, P->kshape, P->ks);
        float *db = dst + offset_of(ko, P->nk, P->kshape, P->kd);
        int64_t dstep = P->kd[P->nk - 1];
        double acc[SUM_COLS];
        for (int64_t j = 0; j < nc; j++)
            acc[j] = 0;
        for (int64_t r = 0; r < P->nred; r++) {
            const float *row = sb + offset_of(r, P->nr, P->rshape, P->rs);
            for (int64_t j = 0; j < nc; j++)
                acc[j] += row[j];
        }
        for (int64_t j = 0; j < nc; j++)
            store_sum(db + j * dstep, acc[j], scale, accumulate);
    }
}

void cf__sum_to(cf_tensor *dst, const cf_tensor *src, double scale, bool accumulate)
{
    sumplan P = {0};
    int n = src->ndim;
    int64_t dstr[CF_MAX_DIMS];
    cf__expand_strides(dst, n, src->shape, dstr);
    for (int i = 0; i < n; i++) {
        if (src->shape[i] == 1)
            continue;
        int id = i - (n - dst->ndim);
        bool reduced = id < 0 || dst->shape[id] == 1;
        if (reduced) {
            P.rshape[P.nr] = src->shape[i];
            P.rs[P.nr++] = src->stride[i];
        } else {
            P.kshape[P.nk] = src->shape[i];
            P.ks[P.nk] = src->stride[i];
            P.kd[P.nk++] = dstr[i];
        }
    }
    P.nr = merge_dims(P.nr, P.rshape, P.rs, NULL);
    P.nk = merge_dims(P.nk, P.kshape, P.ks, P.kd);
    P.nout = cf__prod(P.nk, P.kshape);
    P.nred = cf__prod(P.nr, P.rshape);
    float *d = dst->data;
    const float *s = src->data;
    if (P.nout == 0)
        return;
    if (P.nred == 0) {
        for (int64_t o = 0; o < P.nout; o++)
            store_sum(d + offset_of(o, P.nk, P.kshape, P.kd), 0, scale, accumulate);
        return;
    }
    if (P.nk > 0 && P.nr > 0 && P.ks[P.nk - 1] == 1 && P.rs[P.nr - 1] != 1) {
        sum_columns(&P, d, s, scale, accumulate);
        return;
    }
    int64_t nblk = (P.nred + SUM_BLOCK - 1) / SUM_BLOCK;
    int nt = cf__threads_for(P.nout * P.nred);
    if (nblk == 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t o = 0; o < P.nout; o++) {
            double v = sum_range(&P, s + offset_of(o, P.nk, P.kshape, P.ks), 0, P.nred);
            store_sum(d + offset_of(o, P.nk, P.kshape, P.kd), v, scale, accumulate);
        }
        return;
    }
    /* Long reductions: fixed blocks summed in parallel, then in order. */
    int64_t tasks = P.nout * nblk;
    double *part = cf__arena_alloc("sum", sizeof(double) * tasks);
    if (!part)
        return;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t o = t / nblk, b = t % nblk;
        int64_t lo = b * SUM_BLOCK, hi = lo + SUM_BLOCK < P.nred ? lo + SUM_BLOCK : P.nred;
        part[t] = sum_range(&P, s + offset_of(o, P.nk, P.kshape, P.ks), lo, hi);
    }
    for (int64_t o = 0; o < P.nout; o++) {
        double v = 0;
        for (int64_t b = 0; b < nblk; b++)
            v += part[o * nblk + b];
        store_sum(d + offset_of(o, P.nk, P.kshape, P.kd), v, scale, accumulate);
    }
}
