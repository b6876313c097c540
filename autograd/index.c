/* Indexing: embedding, index_select and gather. All three move elements along
 * one dim d under an int32 index, so they share one kernel: a gather
 * (plain[p] = indexed[p with d replaced by idx[p]]) for the forward and the
 * matching scatter-add for the backward. Indices are checked before anything
 * is written. The scatter-add is deterministic for any thread count: every
 * element of the indexed gradient belongs to one task, which adds its
 * contributions in index order. */
#include "autograd/internal.h"

#include <string.h>

/* Columns of the last dim a task handles. */
#define TILE 64

typedef struct {
    int nd, d;                  /* dims of the index space; the indexed dim */
    int64_t shape[CF_MAX_DIMS]; /* the index space: one point per move */
    int64_t si[CF_MAX_DIMS];    /* strides of the index over the space */
    int64_t sp[CF_MAX_DIMS];    /* strides of the plain side over the space */
    int64_t sx[CF_MAX_DIMS];    /* strides of the indexed side; along d the
                                   index value steps */
    const int32_t *idx;
    float *plain, *indexed;
    int64_t lim;  /* size of the indexed side along d */
    int64_t skip; /* an index value whose moves a scatter drops, or -1 */
    bool scatter; /* false: plain = indexed[idx]; true: indexed[idx] += plain */
} plan;

/* Points of the space are split into tasks of (group, tile, part): a group
 * fixes every dim but d and the last, a tile is TILE columns of the last dim
 * (when it is not d), and a part is a range of positions along d (gather) or
 * of index values (scatter: parts then own disjoint rows of the indexed
 * side). */
static void run(const plan *P)
{
    int nd = P->nd, d = P->d, t = d == nd - 1 ? -1 : nd - 1;
    int64_t K = P->shape[d], cols = t >= 0 ? P->shape[t] : 1;
    int64_t ngroups = 1, ntiles = (cols + TILE - 1) / TILE;
    for (int i = 0; i < nd; i++)
        if (i != d && i != t)
            ngroups *= P->shape[i];
    int64_t points = ngroups * K * cols;
    if (points == 0)
        return;
    int nt = cf__threads_for(points);
    int64_t span = P->scatter ? P->lim : K;
    int64_t nparts = (nt + ngroups * ntiles - 1) / (ngroups * ntiles);
    nparts = nparts < 1 ? 1 : nparts > span ? span : nparts;
    int64_t ti = t >= 0 ? P->si[t] : 0, tp = t >= 0 ? P->sp[t] : 0, tx = t >= 0 ? P->sx[t] : 0;
    int64_t ntasks = ngroups * ntiles * nparts;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t task = 0; task < ntasks; task++) {
        int64_t grp = task / (ntiles * nparts), tile = task / nparts % ntiles, part = task % nparts;
        int64_t oi = 0, op = 0, ox = 0, rest = grp;
        for (int i = nd - 1; i >= 0; i--) {
            if (i == d || i == t)
                continue;
            int64_t c = rest % P->shape[i];
            rest /= P->shape[i];
            oi += c * P->si[i];
            op += c * P->sp[i];
            ox += c * P->sx[i];
        }
        int64_t j0 = tile * TILE, nj = cols - j0 < TILE ? cols - j0 : TILE;
        oi += j0 * ti;
        op += j0 * tp;
        ox += j0 * tx;
        int64_t lo = span * part / nparts, hi = span * (part + 1) / nparts;
        /* One index value for a whole unit-stride tile (embedding,
         * index_select): move the tile as a block. */
        bool rows = ti == 0 && tp == 1 && tx == 1;
        if (rows && !P->scatter) {
            for (int64_t k = lo; k < hi; k++) {
                int64_t v = P->idx[oi + k * P->si[d]];
                memcpy(P->plain + op + k * P->sp[d], P->indexed + ox + v * P->sx[d],
                       sizeof(float) * nj);
            }
        } else if (rows) {
            for (int64_t k = 0; k < K; k++) {
                int64_t v = P->idx[oi + k * P->si[d]];
                if (v < lo || v >= hi || v == P->skip)
                    continue;
                float *restrict dst = P->indexed + ox + v * P->sx[d];
                const float *restrict src = P->plain + op + k * P->sp[d];
                for (int64_t j = 0; j < nj; j++)
                    dst[j] += src[j];
            }
        } else if (!P->scatter) {
            for (int64_t k = lo; k < hi; k++)
                for (int64_t j = 0; j < nj; j++) {
                    int64_t v = P->idx[oi + k * P->si[d] + j * ti];
                    P->plain[op + k * P->sp[d] + j * tp] = P->indexed[ox + v * P->sx[d] + j * tx];
                }
        } else {
            for (int64_t k = 0; k < K; k++)
                for (int64_t j = 0; j < nj; j++) {
                    int64_t v = P->idx[oi + k * P->si[d] + j * ti];
                    if (v < lo || v >= hi || v == P->skip)
                        continue;
                    P->indexed[ox + v * P->sx[d] + j * tx] += P->plain[op + k * P->sp[d] + j * tp];
                }
        }
    }
}

/* t's strides as nd entries (a 0-d tensor is one element of a 1-d space). */
static void strides_of(const cf_tensor *t, int nd, int64_t *st)
{
    for (int i = 0; i < nd; i++)
        st[i] = i < t->ndim ? t->stride[i] : 0;
}

/* The index as a contiguous int32 tensor (itself when it already is one);
 * NULL with CF_ERR_DTYPE naming op for another dtype. */
static cf_tensor *index_dense(const char *op, const cf_tensor *index)
{
    if (index->dtype != CF_I32) {
        cf__error(CF_ERR_DTYPE, "%s: indices must be int32, got %s", op,
                  cf_dtype_name(index->dtype));
        return NULL;
    }
    if (cf_is_contiguous(index))
        return (cf_tensor *)index;
    cf_tensor *c = cf__alloc(op, CF_I32, index->ndim, index->shape);
    if (c)
        cf__copy(c, index);
    return c;
}

/* False with CF_ERR_INDEX naming op, the first bad value and its position
 * unless every index is in [0, lim). `what` says what is indexed. */
static bool in_range(const char *op, const cf_tensor *idx, int64_t lim, const char *what)
{
    const int32_t *v = idx->data;
    int64_t n = cf_numel(idx);
    for (int64_t i = 0; i < n; i++) {
        if (v[i] < 0 || v[i] >= lim) {
            cf__error(CF_ERR_INDEX, "%s: index %d (at position %lld) out of range [0, %lld) %s", op,
                      (int)v[i], (long long)i, (long long)lim, what);
            return false;
        }
    }
    return true;
}

/* ---- embedding ---- */

static cf_status embedding_backward(cf_tensor *out)
{
    cf_tensor *w = out->src[0], *gw = cf_grad_for(w);
    if (!gw)
        return cf_error();
    cf_tensor *idx = out->saved[0];
    int64_t D = w->shape[1];
    plan P = {.nd = 2,
              .d = 0,
              .shape = {cf_numel(idx), D},
              .si = {1, 0},
              .sp = {D, 1},
              .sx = {gw->stride[0], gw->stride[1]},
              .idx = idx->data,
              .plain = out->grad->data,
              .indexed = gw->data,
              .lim = w->shape[0],
              .skip = out->iparam[0],
              .scatter = true};
    run(&P);
    return cf_error();
}

static const cf_op embedding_op = {"embedding", embedding_backward};

cf_tensor *cf_embedding(cf_tensor *weight, cf_tensor *indices, int padding_idx)
{
    cf_tensor *in[2] = {weight, indices};
    if (!cf__check("cf_embedding", 2, in) || !ag__need_float("cf_embedding", weight))
        return NULL;
    char b[CF_SHAPE_BUF], what[CF_SHAPE_BUF + 32];
    if (weight->ndim != 2) {
        cf__error(CF_ERR_SHAPE, "cf_embedding: weight of shape %s is not 2-d [V, D]",
                  cf_shape_str(weight, b, sizeof b));
        return NULL;
    }
    int64_t V = weight->shape[0], D = weight->shape[1];
    if (padding_idx < -1 || padding_idx >= V) {
        cf__error(CF_ERR_INDEX, "cf_embedding: padding_idx %d out of range [0, %lld) (-1: none)",
                  padding_idx, (long long)V);
        return NULL;
    }
    cf_tensor *idx = index_dense("cf_embedding", indices);
    snprintf(what, sizeof what, "for a weight of shape %s", cf_shape_str(weight, b, sizeof b));
    if (!idx || !in_range("cf_embedding", idx, V, what))
        return NULL;
    int64_t shape[CF_MAX_DIMS + 1];
    memcpy(shape, indices->shape, sizeof(int64_t) * indices->ndim);
    shape[indices->ndim] = D;
    cf_tensor *out = cf__alloc("cf_embedding", CF_F32, indices->ndim + 1, shape);
    if (!out)
        return NULL;
    plan P = {.nd = 2,
              .d = 0,
              .shape = {cf_numel(idx), D},
              .si = {1, 0},
              .sp = {D, 1},
              .sx = {weight->stride[0], weight->stride[1]},
              .idx = idx->data,
              .plain = out->data,
              .indexed = weight->data,
              .lim = V,
              .skip = -1};
    run(&P);
    out->saved[0] = idx;
    out->iparam[0] = padding_idx;
    return cf_op_record(out, &embedding_op, 1, &weight);
}

/* ---- index_select and gather ----
 * Both keep the dim in iparam[0] and the contiguous index in saved[0]; the
 * space is out's shape, and out->iparam[1] says whether the index is 1-d
 * along d (index_select) or has the space's shape (gather). */

/* The plan of out = a[.., idx, ..] (or its scatter-add) over out's shape. */
static plan index_plan(const cf_tensor *out, const cf_tensor *idx, const cf_tensor *a, float *plain,
                       float *indexed, const int64_t *sx, bool scatter)
{
    int d = (int)out->iparam[0];
    plan P = {.nd = out->ndim > 0 ? out->ndim : 1,
              .d = d,
              .idx = idx->data,
              .plain = plain,
              .indexed = indexed,
              .lim = a->ndim > 0 ? a->shape[d] : 1,
              .skip = -1,
              .scatter = scatter};
    for (int i = 0; i < P.nd; i++) {
        P.shape[i] = out->ndim > 0 ? out->shape[i] : 1;
        P.sx[i] = sx[i];
    }
    strides_of(out, P.nd, P.sp);
    if (out->iparam[1]) {
        memset(P.si, 0, sizeof P.si);
        P.si[d] = 1;
    } else {
        strides_of(idx, P.nd, P.si);
    }
    return P;
}

static cf_status index_backward(cf_tensor *out)
{
    cf_tensor *a = out->src[0], *ga = cf_grad_for(a);
    if (!ga)
        return cf_error();
    int64_t sx[CF_MAX_DIMS];
    strides_of(ga, ga->ndim > 0 ? ga->ndim : 1, sx);
    /* out->grad is contiguous like out, so out's strides walk it. */
    plan P = index_plan(out, out->saved[0], a, out->grad->data, ga->data, sx, true);
    run(&P);
    return cf_error();
}

static const cf_op index_select_op = {"index_select", index_backward};
static const cf_op gather_op = {"gather", index_backward};

static cf_tensor *index_forward(const char *name, const cf_op *op, cf_tensor *a, int d,
                                cf_tensor *idx, bool select, int ndim, const int64_t *shape)
{
    char b[CF_SHAPE_BUF], what[CF_SHAPE_BUF + 48];
    snprintf(what, sizeof what, "for dim %d of a tensor of shape %s", d,
             cf_shape_str(a, b, sizeof b));
    if (!in_range(name, idx, a->ndim > 0 ? a->shape[d] : 1, what))
        return NULL;
    cf_tensor *out = cf__alloc(name, CF_F32, ndim, shape);
    if (!out)
        return NULL;
    out->iparam[0] = d;
    out->iparam[1] = select;
    int64_t sx[CF_MAX_DIMS];
    strides_of(a, a->ndim > 0 ? a->ndim : 1, sx);
    plan P = index_plan(out, idx, a, out->data, a->data, sx, false);
    run(&P);
    out->saved[0] = idx;
    return cf_op_record(out, op, 1, &a);
}

cf_tensor *cf_index_select(cf_tensor *a, int dim, cf_tensor *index)
{
    cf_tensor *in[2] = {a, index};
    if (!cf__check("cf_index_select", 2, in) || !ag__need_float("cf_index_select", a))
        return NULL;
    char b1[CF_SHAPE_BUF];
    if (a->ndim == 0) {
        cf__error(CF_ERR_DIM, "cf_index_select: cannot select from a 0-d tensor");
        return NULL;
    }
    int d = cf__dim("cf_index_select", dim, a->ndim);
    if (d < 0)
        return NULL;
    cf_tensor *idx = index_dense("cf_index_select", index);
    if (!idx)
        return NULL;
    if (index->ndim > 1) {
        cf__error(CF_ERR_SHAPE, "cf_index_select: index of shape %s is not 1-d",
                  cf_shape_str(index, b1, sizeof b1));
        return NULL;
    }
    int64_t shape[CF_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[d] = cf_numel(index);
    return index_forward("cf_index_select", &index_select_op, a, d, idx, true, a->ndim, shape);
}

cf_tensor *cf_gather(cf_tensor *a, int dim, cf_tensor *index)
{
    cf_tensor *in[2] = {a, index};
    if (!cf__check("cf_gather", 2, in) || !ag__need_float("cf_gather", a))
        return NULL;
    int d = cf__dim("cf_gather", dim, a->ndim);
    if (d < 0)
        return NULL;
    cf_tensor *idx = index_dense("cf_gather", index);
    if (!idx)
        return NULL;
    bool fits = index->ndim == a->ndim;
    for (int i = 0; fits && i < a->ndim; i++)
        fits = i == d || index->shape[i] <= a->shape[i];
    if (!fits) {
        char b1[CF_SHAPE_BUF], b2[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE,
                  "cf_gather: index of shape %s does not fit a tensor of shape %s along dim %d "
                  "(same number of dims, sizes no larger off dim %d)",
                  cf_shape_str(index, b1, sizeof b1), cf_shape_str(a, b2, sizeof b2), dim, dim);
        return NULL;
    }
    return index_forward("cf_gather", &gather_op, a, d, idx, false, index->ndim, index->shape);
}
