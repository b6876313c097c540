/* Reductions over dims: sum and mean through cf__sum_to; max, min, argmax,
 * var, std and logsumexp with kernels of their own. */
#include "autograd/internal.h"

#include <math.h>
#include <string.h>

/* Parses dims into a mask; false with CF_ERR_DIM. */
static bool dim_mask(const char *op, const cf_tensor *a, int ndims, const int *dims, bool *mask)
{
    memset(mask, 0, sizeof(bool) * CF_MAX_DIMS);
    if (ndims < 0 || (ndims > 0 && !dims)) {
        cf__error(CF_ERR_ARG, "%s: %s", op, ndims < 0 ? "negative number of dims" : "dims is NULL");
        return false;
    }
    if (ndims == 0) {
        for (int i = 0; i < a->ndim; i++)
            mask[i] = true;
        return true;
    }
    for (int i = 0; i < ndims; i++) {
        int d = cf__dim(op, dims[i], a->ndim);
        if (d < 0)
            return false;
        if (mask[d]) {
            cf__error(CF_ERR_DIM, "%s: dim %d listed twice", op, dims[i]);
            return false;
        }
        mask[d] = true;
    }
    return true;
}

/* The reduced shape with kept size-1 dims (kshape) and as returned. */
static int reduced_shape(const cf_tensor *a, const bool *mask, bool keepdim, int64_t *kshape,
                         int64_t *shape)
{
    int n = 0;
    for (int i = 0; i < a->ndim; i++) {
        kshape[i] = mask[i] ? 1 : a->shape[i];
        if (!mask[i] || keepdim)
            shape[n++] = kshape[i];
    }
    return n;
}

static cf_status reduce_backward(cf_tensor *out)
{
    cf_tensor *a = out->src[0];
    cf_tensor *ga = cf_grad_for(a);
    if (!ga)
        return cf_error();
    /* View the output gradient with the reduced dims kept, then broadcast. */
    int64_t kshape[CF_MAX_DIMS], kstride[CF_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++)
        kshape[i] = out->iparam[i] ? 1 : a->shape[i];
    cf__contiguous_strides(a->ndim, kshape, kstride);
    cf_tensor *g = ag__restride("backward", out->grad, a->ndim, kshape, kstride);
    if (!g)
        return cf_error();
    float scale = out->fparam[0];
    if (scale == 1.0f) {
        cf__acc(ga, g);
        return cf_error();
    }
    cf_tensor *gs = cf_mul_scalar(g, scale);
    if (gs)
        cf__acc(ga, gs);
    return cf_error();
}

static const cf_op sum_op = {"sum", reduce_backward};
static const cf_op mean_op = {"mean", reduce_backward};

static cf_tensor *reduce(const char *name, const cf_op *op, cf_tensor *a, int ndims,
                         const int *dims, bool keepdim, bool mean)
{
    bool mask[CF_MAX_DIMS];
    if (!cf__check(name, 1, &a) || !ag__need_float(name, a) ||
        !dim_mask(name, a, ndims, dims, mask))
        return NULL;
    int64_t kshape[CF_MAX_DIMS], shape[CF_MAX_DIMS], kstride[CF_MAX_DIMS];
    int nd = reduced_shape(a, mask, keepdim, kshape, shape);
    cf_tensor *out = cf__alloc(name, CF_F32, nd, shape);
    if (!out)
        return NULL;
    int64_t count = cf_numel(a) / (cf_numel(out) ? cf_numel(out) : 1);
    double scale = mean ? 1.0 / (double)count : 1.0;
    cf__contiguous_strides(a->ndim, kshape, kstride);
    cf_tensor *kept = ag__restride(name, out, a->ndim, kshape, kstride);
    if (!kept)
        return NULL;
    cf__sum_to(kept, a, scale, false);
    for (int i = 0; i < a->ndim; i++)
        out->iparam[i] = mask[i];
    out->fparam[0] = (float)scale;
    return cf_op_record(out, op, 1, &a);
}

cf_tensor *cf_sum(cf_tensor *a, int ndims, const int *dims, bool keepdim)
{
    return reduce("cf_sum", &sum_op, a, ndims, dims, keepdim, false);
}

cf_tensor *cf_mean(cf_tensor *a, int ndims, const int *dims, bool keepdim)
{
    return reduce("cf_mean", &mean_op, a, ndims, dims, keepdim, true);
}

cf_tensor *cf_sum_all(cf_tensor *a) { return cf_sum(a, 0, NULL, false); }

cf_tensor *cf_mean_all(cf_tensor *a) { return cf_mean(a, 0, NULL, false); }

/* ---- Reductions with kernels of their own: max, min, argmax, var, std and
 * logsumexp. One thread reduces each output element, in a fixed order. ---- */

/* a's kept and reduced dims, size 1 dropped and neighbours merged where a's
 * strides allow. Outputs enumerate the kept dims in row-major order. */
typedef struct {
    int nk, nr;
    int64_t kshape[CF_MAX_DIMS], ks[CF_MAX_DIMS];
    int64_t rshape[CF_MAX_DIMS], rs[CF_MAX_DIMS];
    int64_t nout, nred;
} plan;

static void push_dim(int *n, int64_t *shape, int64_t *stride, int64_t size, int64_t st)
{
    if (*n > 0 && stride[*n - 1] == st * size) {
        shape[*n - 1] *= size;
        stride[*n - 1] = st;
    } else {
        shape[*n] = size;
        stride[(*n)++] = st;
    }
}

static void plan_init(plan *P, const cf_tensor *a, const bool *mask)
{
    P->nk = P->nr = 0;
    P->nout = P->nred = 1;
    for (int i = 0; i < a->ndim; i++) {
        if (mask[i])
            P->nred *= a->shape[i];
        else
            P->nout *= a->shape[i];
        if (a->shape[i] == 1)
            continue;
        if (mask[i])
            push_dim(&P->nr, P->rshape, P->rs, a->shape[i], a->stride[i]);
        else
            push_dim(&P->nk, P->kshape, P->ks, a->shape[i], a->stride[i]);
    }
}

/* Offset in a of the first reduced element of output o. */
static int64_t kept_offset(const plan *P, int64_t o)
{
    int64_t off = 0;
    for (int d = P->nk - 1; d >= 0; d--) {
        off += o % P->kshape[d] * P->ks[d];
        o /= P->kshape[d];
    }
    return off;
}

/* Calls fn on the reduced elements around base, in row-major order, as runs
 * of n elements stride s apart. */
typedef void (*run_fn)(void *st, const float *p, int64_t n, int64_t s);

static void each_run(const plan *P, const float *base, run_fn fn, void *st)
{
    if (P->nr == 0) {
        fn(st, base, 1, 0);
        return;
    }
    int nr = P->nr;
    int64_t idx[CF_MAX_DIMS] = {0}, n = P->rshape[nr - 1];
    const float *p = base;
    for (int64_t done = 0; done < P->nred; done += n) {
        fn(st, p, n, P->rs[nr - 1]);
        for (int d = nr - 2; d >= 0; d--) {
            p += P->rs[d];
            if (++idx[d] < P->rshape[d])
                break;
            p -= P->rs[d] * P->rshape[d];
            idx[d] = 0;
        }
    }
}

typedef void (*out_fn)(const plan *P, const float *base, int64_t o, void *ctx);

static void each_output(const plan *P, const cf_tensor *a, out_fn fn, void *ctx)
{
    const float *x = a->data;
    int nt = cf__threads_for(P->nout * P->nred);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t o = 0; o < P->nout; o++)
        fn(P, x + kept_offset(P, o), o, ctx);
}

/* A contiguous view of t (out or its gradient) with the reduced dims of a
 * kept as size 1. */
static cf_tensor *kept_view(const cf_tensor *a, const bool *mask, const cf_tensor *t)
{
    int64_t kshape[CF_MAX_DIMS], kstride[CF_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++)
        kshape[i] = mask[i] ? 1 : a->shape[i];
    cf__contiguous_strides(a->ndim, kshape, kstride);
    return ag__restride("backward", t, a->ndim, kshape, kstride);
}

static void mask_of(const cf_tensor *out, const cf_tensor *a, bool *mask)
{
    for (int i = 0; i < a->ndim; i++)
        mask[i] = out->iparam[i] != 0;
}

/* ---- max, min, argmax ---- */

typedef struct {
    bool min;
    float best;
    int64_t at, pos;
} extreme;

/* The first strictly better value wins; the first NaN beats everything, as
 * in PyTorch. */
static void extreme_run(void *st, const float *p, int64_t n, int64_t s)
{
    extreme *e = st;
    for (int64_t i = 0; i < n; i++, e->pos++) {
        float v = p[i * s];
        bool better = e->min ? v < e->best : v > e->best;
        if (better || (v != v && e->best == e->best)) {
            e->best = v;
            e->at = e->pos;
        }
    }
}

typedef struct {
    bool min;
    float *val; /* NULL for argmax */
    int32_t *idx;
} extreme_ctx;

static void extreme_out(const plan *P, const float *base, int64_t o, void *ctx)
{
    const extreme_ctx *c = ctx;
    extreme e = {c->min, c->min ? INFINITY : -INFINITY, 0, 0};
    each_run(P, base, extreme_run, &e);
    if (c->val)
        c->val[o] = e.best;
    c->idx[o] = (int32_t)e.at;
}

/* The gradient goes to the position that won. */
static cf_status extreme_backward(cf_tensor *out)
{
    cf_tensor *a = out->src[0];
    cf_tensor *ga = cf_grad_for(a);
    if (!ga)
        return cf_error();
    int dim = (int)out->iparam[0];
    int64_t n = a->ndim ? a->shape[dim] : 1;
    int64_t inner = a->ndim ? cf__prod(a->ndim - dim - 1, a->shape + dim + 1) : 1;
    int64_t nout = cf_numel(out);
    const int32_t *idx = out->saved[0]->data;
    const float *g = out->grad->data;
    float *d = ga->data;
#pragma omp parallel for num_threads(cf__threads_for(nout)) schedule(static)
    for (int64_t o = 0; o < nout; o++)
        d[o / inner * n * inner + o % inner + idx[o] * inner] += g[o];
    return cf_error();
}

static const cf_op max_op = {"max", extreme_backward};
static const cf_op min_op = {"min", extreme_backward};

/* Values (unless want_values is false) and int32 positions of the extremes
 * of a along dim. */
static cf_tensor *extreme_along(const char *name, cf_tensor *a, int dim, bool keepdim, bool min,
                                bool want_values, cf_tensor **indices)
{
    if (!cf__check(name, 1, &a) || !ag__need_float(name, a))
        return NULL;
    int d = cf__dim(name, dim, a->ndim);
    if (d < 0)
        return NULL;
    int64_t n = a->ndim ? a->shape[d] : 1;
    if (n == 0 || n > INT32_MAX) {
        char b[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE, "%s: cannot reduce dim %d of size %lld (shape %s)", name, dim,
                  (long long)n, cf_shape_str(a, b, sizeof b));
        return NULL;
    }
    bool mask[CF_MAX_DIMS] = {false};
    mask[d] = a->ndim > 0;
    int64_t kshape[CF_MAX_DIMS], shape[CF_MAX_DIMS];
    int nd = reduced_shape(a, mask, keepdim, kshape, shape);
    cf_tensor *idx = cf__alloc(name, CF_I32, nd, shape);
    cf_tensor *val = want_values ? cf__alloc(name, CF_F32, nd, shape) : NULL;
    if (!idx || (want_values && !val))
        return NULL;
    plan P;
    plan_init(&P, a, mask);
    extreme_ctx ctx = {min, val ? val->data : NULL, idx->data};
    each_output(&P, a, extreme_out, &ctx);
    if (!want_values)
        return idx;
    if (indices)
        *indices = idx;
    val->iparam[0] = d;
    val->saved[0] = idx;
    return cf_op_record(val, min ? &min_op : &max_op, 1, &a);
}

cf_tensor *cf_max(cf_tensor *a, int dim, bool keepdim, cf_tensor **indices)
{
    return extreme_along("cf_max", a, dim, keepdim, false, true, indices);
}

cf_tensor *cf_min(cf_tensor *a, int dim, bool keepdim, cf_tensor **indices)
{
    return extreme_along("cf_min", a, dim, keepdim, true, true, indices);
}

cf_tensor *cf_argmax(cf_tensor *a, int dim, bool keepdim)
{
    return extreme_along("cf_argmax", a, dim, keepdim, false, false, NULL);
}

/* Whole-tensor forms: over the row-major flattening, as torch.max(a). */
static cf_tensor *flat(cf_tensor *a) { return a ? cf_reshape(a, CF_SHAPE(cf_numel(a))) : NULL; }

cf_tensor *cf_max_all(cf_tensor *a)
{
    return extreme_along("cf_max_all", flat(a), 0, false, false, true, NULL);
}

cf_tensor *cf_min_all(cf_tensor *a)
{
    return extreme_along("cf_min_all", flat(a), 0, false, true, true, NULL);
}

cf_tensor *cf_argmax_all(cf_tensor *a)
{
    return extreme_along("cf_argmax_all", flat(a), 0, false, false, false, NULL);
}

/* ---- var, std ---- */

/* Two passes in double: the mean, then the sum of squared deviations. */
typedef struct {
    double sum, mean;
} moments;

static void sum_run(void *st, const float *p, int64_t n, int64_t s)
{
    moments *m = st;
    for (int64_t i = 0; i < n; i++)
        m->sum += p[i * s];
}

static void squares_run(void *st, const float *p, int64_t n, int64_t s)
{
    moments *m = st;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)p[i * s] - m->mean;
        m->sum += d * d;
    }
}

typedef struct {
    double scale; /* 1 / (N - correction) */
    bool take_sqrt;
    float *out, *mean;
} var_ctx;

static void var_out(const plan *P, const float *base, int64_t o, void *ctx)
{
    const var_ctx *c = ctx;
    moments m = {0, 0};
    each_run(P, base, sum_run, &m);
    m.mean = m.sum / (double)P->nred;
    m.sum = 0;
    each_run(P, base, squares_run, &m);
    double v = m.sum * c->scale;
    c->out[o] = (float)(c->take_sqrt ? sqrt(v) : v);
    c->mean[o] = (float)m.mean;
}

/* d var / dx = 2 (x - mean) / (N - correction), k = 2 / (N - correction);
 * for std, g arrives divided by 2 std. y is the mean. */
AG_UNARY_BWD(var_dx, (x - y) * g * k)

static cf_status var_backward(cf_tensor *out)
{
    cf_tensor *a = out->src[0];
    if (!cf_grad_for(a))
        return cf_error();
    bool mask[CF_MAX_DIMS];
    mask_of(out, a, mask);
    cf_tensor *g = kept_view(a, mask, out->grad);
    cf_tensor *ops[3] = {g, a, out->saved[0]};
    return g ? ag__pointwise_grad(a, a, 3, ops, var_dx, &out->fparam[0]) : cf_error();
}

/* d std = d var / (2 std); PyTorch sets it to 0 where std is 0. */
static cf_status std_backward(cf_tensor *out)
{
    cf_tensor *a = out->src[0];
    if (!cf_grad_for(a))
        return cf_error();
    bool mask[CF_MAX_DIMS];
    mask_of(out, a, mask);
    cf_tensor *gv = cf__alloc("backward", CF_F32, out->ndim, out->shape);
    if (!gv)
        return cf_error();
    const float *g = out->grad->data, *sd = out->data;
    float *v = gv->data;
    int64_t n = cf_numel(out);
    for (int64_t i = 0; i < n; i++)
        v[i] = sd[i] == 0 ? 0 : g[i] / (2 * sd[i]);
    cf_tensor *gk = kept_view(a, mask, gv);
    cf_tensor *ops[3] = {gk, a, out->saved[0]};
    return gk ? ag__pointwise_grad(a, a, 3, ops, var_dx, &out->fparam[0]) : cf_error();
}

static const cf_op var_op = {"var", var_backward};
static const cf_op std_op = {"std", std_backward};

static cf_tensor *variance(const char *name, const cf_op *op, cf_tensor *a, int ndims,
                           const int *dims, bool unbiased, bool keepdim)
{
    bool mask[CF_MAX_DIMS];
    if (!cf__check(name, 1, &a) || !ag__need_float(name, a) ||
        !dim_mask(name, a, ndims, dims, mask))
        return NULL;
    int64_t kshape[CF_MAX_DIMS], shape[CF_MAX_DIMS];
    int nd = reduced_shape(a, mask, keepdim, kshape, shape);
    cf_tensor *out = cf__alloc(name, CF_F32, nd, shape);
    cf_tensor *mean = cf__alloc(name, CF_F32, a->ndim, kshape);
    if (!out || !mean)
        return NULL;
    plan P;
    plan_init(&P, a, mask);
    /* N - correction <= 0 gives NaN, as in PyTorch. */
    double dof = (double)P.nred - (unbiased ? 1 : 0);
    var_ctx ctx = {dof > 0 ? 1.0 / dof : NAN, op == &std_op, out->data, mean->data};
    each_output(&P, a, var_out, &ctx);
    for (int i = 0; i < a->ndim; i++)
        out->iparam[i] = mask[i];
    out->fparam[0] = (float)(2 * ctx.scale);
    out->saved[0] = mean;
    return cf_op_record(out, op, 1, &a);
}

cf_tensor *cf_var(cf_tensor *a, int ndims, const int *dims, bool unbiased, bool keepdim)
{
    return variance("cf_var", &var_op, a, ndims, dims, unbiased, keepdim);
}

cf_tensor *cf_std(cf_tensor *a, int ndims, const int *dims, bool unbiased, bool keepdim)
{
    return variance("cf_std", &std_op, a, ndims, dims, unbiased, keepdim);
}

/* ---- logsumexp ---- */

typedef struct {
    float max;
    double sum;
} lse;

static void max_run(void *st, const float *p, int64_t n, int64_t s)
{
    lse *l = st;
    for (int64_t i = 0; i < n; i++)
        l->max = p[i * s] > l->max ? p[i * s] : l->max;
}

static void exp_run(void *st, const float *p, int64_t n, int64_t s)
{
    lse *l = st;
    for (int64_t i = 0; i < n; i++)
        l->sum += exp((double)p[i * s] - l->max);
}

/* m + log(sum(exp(x - m))) with m the max, or 0 when the max is infinite
 * (so that all -inf gives -inf and +inf gives +inf, as in PyTorch). NaN
 * reaches the sum. */
static void lse_out(const plan *P, const float *base, int64_t o, void *ctx)
{
    lse l = {-INFINITY, 0};
    each_run(P, base, max_run, &l);
    if (isinf(l.max))
        l.max = 0;
    each_run(P, base, exp_run, &l);
    ((float *)ctx)[o] = (float)(l.max + log(l.sum));
}

/* d/dx = exp(x - y) */
AG_UNARY_BWD(lse_dx, expf(x - y) * g)

static cf_status logsumexp_backward(cf_tensor *out)
{
    cf_tensor *a = out->src[0];
    if (!cf_grad_for(a))
        return cf_error();
    bool mask[CF_MAX_DIMS];
    mask_of(out, a, mask);
    cf_tensor *g = kept_view(a, mask, out->grad), *y = kept_view(a, mask, out);
    cf_tensor *ops[3] = {g, a, y};
    return g && y ? ag__pointwise_grad(a, a, 3, ops, lse_dx, NULL) : cf_error();
}

static const cf_op logsumexp_op = {"logsumexp", logsumexp_backward};

cf_tensor *cf_logsumexp(cf_tensor *a, int ndims, const int *dims, bool keepdim)
{
    const char *name = "cf_logsumexp";
    bool mask[CF_MAX_DIMS];
    if (!cf__check(name, 1, &a) || !ag__need_float(name, a) ||
        !dim_mask(name, a, ndims, dims, mask))
        return NULL;
    int64_t kshape[CF_MAX_DIMS], shape[CF_MAX_DIMS];
    int nd = reduced_shape(a, mask, keepdim, kshape, shape);
    cf_tensor *out = cf__alloc(name, CF_F32, nd, shape);
    if (!out)
        return NULL;
    plan P;
    plan_init(&P, a, mask);
    each_output(&P, a, lse_out, out->data);
    for (int i = 0; i < a->ndim; i++)
        out->iparam[i] = mask[i];
    return cf_op_record(out, &logsumexp_op, 1, &a);
}
