/* Tensor creation, ownership and element access. */
#include "tensor/internal.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t cf_dtype_size(cf_dtype dtype)
{
    return dtype == CF_BOOL ? 1 : 4;
}

const char *cf_dtype_name(cf_dtype dtype)
{
    switch (dtype) {
    case CF_F32: return "float32";
    case CF_I32: return "int32";
    case CF_BOOL: return "bool";
    }
    return "?";
}

static bool valid_shape(const char *op, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > CF_MAX_DIMS) {
        cf__error(CF_ERR_DIM, "%s: %d dims (at most %d)", op, ndim, CF_MAX_DIMS);
        return false;
    }
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            char b[CF_SHAPE_BUF];
            cf__error(CF_ERR_DIM, "%s: negative size in shape %s", op,
                      cf__shape_str(ndim, shape, b, sizeof b));
            return false;
        }
    }
    return true;
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
    if (!valid_shape(op, ndim, shape))
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
    return t;
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
        cf__error(CF_ERR_ARG, "cf_arange: invalid range (%g, %g, step %g)",
                  start, end, step);
        return NULL;
    }
    double n = ceil(((double)end - start) / step);
    int64_t len = n > 0 ? (int64_t)n : 0;
    cf_tensor *t = cf__alloc("cf_arange", CF_F32, 1, &len);
    if (!t)
        return NULL;
    float *d = t->data;
    for (int64_t i = 0; i < len; i++)
        d[i] = (float)(start + (double)i * step);
    return t;
}

cf_tensor *cf_from_array(const float *data, int ndim, const int64_t *shape)
{
    cf_tensor *t = cf__alloc("cf_from_array", CF_F32, ndim, shape);
    if (t)
        memcpy(t->data, data, sizeof(float) * cf_numel(t));
    return t;
}

cf_tensor *cf_from_ints(const int32_t *data, int ndim, const int64_t *shape)
{
    cf_tensor *t = cf__alloc("cf_from_ints", CF_I32, ndim, shape);
    if (t)
        memcpy(t->data, data, sizeof(int32_t) * cf_numel(t));
    return t;
}

cf_tensor *cf_tensor_new(cf_dtype dtype, int ndim, const int64_t *shape)
{
    if (!valid_shape("cf_tensor_new", ndim, shape))
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
    for (int i = 0; i < t->ndim; i++) {
        assert(idx[i] >= 0 && idx[i] < t->shape[i]);
        off += idx[i] * t->stride[i];
    }
    return (char *)t->data + off * (int64_t)cf_dtype_size(t->dtype);
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

float cf_get(const cf_tensor *t, const int64_t *idx) { return load(t->dtype, elem_ptr(t, idx)); }

void cf_set(cf_tensor *t, const int64_t *idx, float v) { store(t->dtype, elem_ptr(t, idx), v); }

float cf_item(const cf_tensor *t)
{
    if (!t || cf_numel(t) != 1) {
        char b[CF_SHAPE_BUF] = "NULL";
        if (t)
            cf_shape_str(t, b, sizeof b);
        cf__error(CF_ERR_SHAPE, "cf_item: tensor of shape %s is not one element", b);
        return NAN;
    }
    return load(t->dtype, t->data);
}

/* Visits every element in row-major order. */
#define FOR_EACH_INDEX(t, idx, body)                                           \
    do {                                                                       \
        int64_t idx[CF_MAX_DIMS] = {0};                                        \
        int64_t n_ = cf_numel(t);                                              \
        for (int64_t k_ = 0; k_ < n_; k_++) {                                  \
            body;                                                              \
            for (int d_ = (t)->ndim - 1; d_ >= 0; d_--) {                      \
                if (++idx[d_] < (t)->shape[d_])                                \
                    break;                                                     \
                idx[d_] = 0;                                                   \
            }                                                                  \
        }                                                                      \
    } while (0)

void cf_copy_to(const cf_tensor *t, float *dst)
{
    int64_t k = 0;
    FOR_EACH_INDEX(t, idx, dst[k++] = cf_get(t, idx));
}

void cf_copy_from(cf_tensor *t, const float *src)
{
    int64_t k = 0;
    FOR_EACH_INDEX(t, idx, cf_set(t, idx, src[k++]));
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
    if (t->dtype != CF_F32) {
        FOR_EACH_INDEX(t, idx, cf_set(t, idx, v));
        return;
    }
    int64_t st[1][CF_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++)
        st[0][i] = t->stride[i] * (int64_t)sizeof(float);
    char *base = t->data;
    cf__loop(1, t->ndim, t->shape, st, &base, fill_row, &v);
}
