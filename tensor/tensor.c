/* Tensor creation, ownership and element access. */
#include "tensor/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t cf_dtype_size(cf_dtype dtype) { return dtype == CF_BOOL ? 1 : 4; }

const char *cf_dtype_name(cf_dtype dtype)
{
    switch (dtype) {
    case CF_F32: return "float32";
    case CF_I32: return "int32";
    case CF_BOOL: return "bool";
    }
    return "?";
}

static bool valid_shape(const char *op, cf_dtype dtype, int ndim, const int64_t *shape)
{
    if ((unsigned)dtype > CF_BOOL) {
        cf__error(CF_ERR_DTYPE, "%s: invalid dtype %d", op, (int)dtype);
        return false;
    }
    if (ndim < 0 || ndim > CF_MAX_DIMS) {
        cf__error(CF_ERR_DIM, "%s: %d dims (at most %d)", op, ndim, CF_MAX_DIMS);
        return false;
    }
    if (ndim > 0 && !shape) {
        cf__error(CF_ERR_ARG, "%s: shape is NULL for %d dims", op, ndim);
        return false;
    }
    return cf__valid_sizes(op, ndim, shape);
}

static void init_header(cf_tensor *t, cf_dtype dtype, int ndim, const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < CF_MAX_DIMS; i++)
        t->shape[i] = i < ndim ? shape[i] : 1;
    cf__contiguous_strides(ndim, shape, t->stride);
}

cf_tensor *cf__alloc(const char *op, cf_dtype dtype, int ndim, const int64_t *shape)
{
    if (!valid_shape(op, dtype, ndim, shape))
        return NULL;
    size_t bytes = (size_t)cf__prod(ndim, shape) * cf_dtype_size(dtype);
    /* One allocation for header and data keeps them together. */
    size_t head = (sizeof(cf_tensor) + 63) & ~(size_t)63;
    char *p = cf__arena_alloc(op, head + bytes);
    if (!p)
        return NULL;
    cf_tensor *t = (cf_tensor *)p;
    init_header(t, dtype, ndim, shape);
    t->data = p + head;
    t->flags = CF__OWN_BLOCK;
    return t;
}

void cf__release(cf_tensor *t)
{
    if (!t || !(t->flags & CF__OWN_BLOCK))
        return;
    size_t head = (sizeof(cf_tensor) + 63) & ~(size_t)63;
    t->flags &= ~CF__OWN_BLOCK;
    cf__arena_release(t, head + (size_t)cf_numel(t) * cf_dtype_size(t->dtype));
}

cf_tensor *cf__view_of(const char *op, const cf_tensor *t)
{
    cf_tensor *v = cf__arena_alloc(op, sizeof *v);
    if (!v)
        return NULL;
    init_header(v, t->dtype, t->ndim, t->shape);
    memcpy(v->stride, t->stride, sizeof v->stride);
    v->data = t->data;
    return v;
}

cf_tensor *cf_empty(cf_dtype dtype, int ndim, const int64_t *shape)
{
    return cf__alloc("cf_empty", dtype, ndim, shape);
}

cf_tensor *cf_full(float value, int ndim, const int64_t *shape)
{
    cf_tensor *t = cf__alloc("cf_full", CF_F32, ndim, shape);
    if (t)
        cf_fill(t, value);
    return t;
}

cf_tensor *cf_zeros(int ndim, const int64_t *shape)
{
    cf_tensor *t = cf__alloc("cf_zeros", CF_F32, ndim, shape);
    if (t)
        memset(t->data, 0, sizeof(float) * cf_numel(t));
    return t;
}

cf_tensor *cf_ones(int ndim, const int64_t *shape) { return cf_full(1.0f, ndim, shape); }

cf_tensor *cf_scalar(float v) { return cf_full(v, 0, NULL); }

cf_tensor *cf_arange(float start, float end, float step)
{
    if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step)) {
        cf__error(CF_ERR_ARG, "cf_arange: invalid range (%g, %g, step %g)", start, end, step);
        return NULL;
    }
    double n = ceil(((double)end - start) / step);
    if (n > (double)CF__MAX_NUMEL) {
        cf__error(CF_ERR_ARG, "cf_arange: (%g, %g, step %g) has %g elements, too large", start, end,
                  step, n);
        return NULL;
    }
    int64_t len = n > 0 ? (int64_t)n : 0;
    cf_tensor *t = cf__alloc("cf_arange", CF_F32, 1, &len);
    if (!t)
        return NULL;
    float *d = t->data;
    for (int64_t i = 0; i < len; i++)
        d[i] = (float)(start + (double)i * step);
    return t;
}

/* A copy of the 4-byte elements at data, which may be NULL only when there
 * are none. */
static cf_tensor *from_data(const char *op, cf_dtype dtype, const void *data, int ndim,
                            const int64_t *shape)
{
    cf_tensor *t = cf__alloc(op, dtype, ndim, shape);
    if (!t || cf_numel(t) == 0)
        return t;
    if (!data) {
        cf__error(CF_ERR_ARG, "%s: data is NULL", op);
        return NULL;
    }
    memcpy(t->data, data, 4 * (size_t)cf_numel(t));
    return t;
}

cf_tensor *cf_from_array(const float *data, int ndim, const int64_t *shape)
{
    return from_data("cf_from_array", CF_F32, data, ndim, shape);
}

cf_tensor *cf_from_ints(const int32_t *data, int ndim, const int64_t *shape)
{
    return from_data("cf_from_ints", CF_I32, data, ndim, shape);
}

cf_tensor *cf_tensor_new(cf_dtype dtype, int ndim, const int64_t *shape)
{
    if (!valid_shape("cf_tensor_new", dtype, ndim, shape))
        return NULL;
    size_t bytes = (size_t)cf__prod(ndim, shape) * cf_dtype_size(dtype);
    cf_tensor *t = cf_malloc(sizeof *t);
    void *data = cf_calloc(bytes ? bytes : 1, 1);
    if (!t || !data) {
        cf_free(t);
        cf_free(data);
        cf__error(CF_ERR_NOMEM, "cf_tensor_new: out of memory for %zu bytes", bytes);
        return NULL;
    }
    init_header(t, dtype, ndim, shape);
    t->data = t->alloc = data;
    t->flags = CF_HEAP;
    return t;
}

void cf_tensor_free(cf_tensor *t)
{
    if (!t || !(t->flags & CF_HEAP))
        return;
    if (t->grad && (t->grad->flags & CF_HEAP))
        cf_tensor_free(t->grad);
    cf_free(t->alloc);
    cf_free(t);
}

static char *elem_ptr(const cf_tensor *t, const int64_t *idx)
{
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++)
        off += idx[i] * t->stride[i];
    return (char *)t->data + off * (int64_t)cf_dtype_size(t->dtype);
}

/* Records an error naming op unless t and idx are given and idx lies
 * within t's shape. */
static bool index_ok(const char *op, const cf_tensor *t, const int64_t *idx)
{
    if (!t || !idx) {
        cf__error(CF_ERR_ARG, "%s: %s is NULL", op, t ? "idx" : "tensor");
        return false;
    }
    for (int i = 0; i < t->ndim; i++) {
        if (idx[i] < 0 || idx[i] >= t->shape[i]) {
            char bi[CF_SHAPE_BUF], bs[CF_SHAPE_BUF];
            cf__error(CF_ERR_INDEX, "%s: index %s out of range for shape %s", op,
                      cf__shape_str(t->ndim, idx, bi, sizeof bi), cf_shape_str(t, bs, sizeof bs));
            return false;
        }
    }
    return true;
}

static float load(cf_dtype dtype, const char *p)
{
    switch (dtype) {
    case CF_F32: return *(const float *)p;
    case CF_I32: return (float)*(const int32_t *)p;
    case CF_BOOL: return (float)*(const uint8_t *)p;
    }
    return 0;
}

static void store(cf_dtype dtype, char *p, float v)
{
    switch (dtype) {
    case CF_F32: *(float *)p = v; break;
    case CF_I32: *(int32_t *)p = (int32_t)v; break;
    case CF_BOOL: *(uint8_t *)p = v != 0; break;
    }
}

float cf_get(const cf_tensor *t, const int64_t *idx)
{
    return index_ok("cf_get", t, idx) ? load(t->dtype, elem_ptr(t, idx)) : NAN;
}

void cf_set(cf_tensor *t, const int64_t *idx, float v)
{
    if (index_ok("cf_set", t, idx))
        store(t->dtype, elem_ptr(t, idx), v);
}

float cf_item(const cf_tensor *t)
{
    if (!t) {
        cf__error(CF_ERR_ARG, "cf_item: tensor is NULL");
        return NAN;
    }
    if (cf_numel(t) != 1) {
        char b[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE, "cf_item: tensor of shape %s is not one element",
                  cf_shape_str(t, b, sizeof b));
        return NAN;
    }
    return load(t->dtype, t->data);
}

/* Visits every element in row-major order. */
#define FOR_EACH_INDEX(t, idx, body)                                                               \
    do {                                                                                           \
        int64_t idx[CF_MAX_DIMS] = {0};                                                            \
        int64_t n_ = cf_numel(t);                                                                  \
        for (int64_t k_ = 0; k_ < n_; k_++) {                                                      \
            body;                                                                                  \
            for (int d_ = (t)->ndim - 1; d_ >= 0; d_--) {                                          \
                if (++idx[d_] < (t)->shape[d_])                                                    \
                    break;                                                                         \
                idx[d_] = 0;                                                                       \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Records CF_ERR_ARG naming op unless t and the buffer p are given (p may
 * be NULL when t has no elements). */
static bool args_ok(const char *op, const cf_tensor *t, const void *p)
{
    if (t && (p || cf_numel(t) == 0))
        return true;
    cf__error(CF_ERR_ARG, "%s: %s is NULL", op, t ? "the buffer" : "tensor");
    return false;
}

void cf_copy_to(const cf_tensor *t, float *dst)
{
    if (!args_ok("cf_copy_to", t, dst))
        return;
    int64_t k = 0;
    FOR_EACH_INDEX(t, idx, dst[k++] = load(t->dtype, elem_ptr(t, idx)));
}

void cf_copy_from(cf_tensor *t, const float *src)
{
    if (!args_ok("cf_copy_from", t, src))
        return;
    int64_t k = 0;
    FOR_EACH_INDEX(t, idx, store(t->dtype, elem_ptr(t, idx), src[k++]));
}

static void fill_row(int64_t n, char *const *p, const int64_t *s, const void *ud)
{
    float v = *(const float *)ud;
    if (s[0] == sizeof(float)) {
        float *o = (float *)p[0];
        for (int64_t i = 0; i < n; i++)
            o[i] = v;
    } else {
        for (int64_t i = 0; i < n; i++)
            *(float *)(p[0] + i * s[0]) = v;
    }
}

void cf_fill(cf_tensor *t, float v)
{
    if (!t) {
        cf__error(CF_ERR_ARG, "cf_fill: tensor is NULL");
        return;
    }
    if (t->dtype != CF_F32) {
        FOR_EACH_INDEX(t, idx, store(t->dtype, elem_ptr(t, idx), v));
        return;
    }
    int64_t st[1][CF_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++)
        st[0][i] = t->stride[i] * (int64_t)sizeof(float);
    char *base = t->data;
    cf__loop(1, t->ndim, t->shape, st, &base, fill_row, &v);
}
