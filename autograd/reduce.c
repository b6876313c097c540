/* Reductions over dims: sum and mean. */
#include "autograd/internal.h"

#include <string.h>

/* Parses dims into a mask; false with CF_ERR_DIM. */
static bool dim_mask(const char *op, const cf_tensor *a, int ndims, const int *dims,
                     bool *mask)
{
    memset(mask, 0, sizeof(bool) * CF_MAX_DIMS);
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
static int reduced_shape(const cf_tensor *a, const bool *mask, bool keepdim,
                         int64_t *kshape, int64_t *shape)
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
