/* Shape arithmetic: dims, strides, broadcasting. */
#include "tensor/internal.h"

#include <string.h>

int64_t cf__prod(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

bool cf__valid_sizes(const char *op, int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        char b[CF_SHAPE_BUF];
        if (shape[i] < 0) {
            cf__error(CF_ERR_DIM, "%s: negative size in shape %s", op,
                      cf__shape_str(ndim, shape, b, sizeof b));
            return false;
        }
        /* Zero sizes are left out: strides are products of the others. */
        if (shape[i] > 1 && n > CF__MAX_NUMEL / shape[i]) {
            cf__error(CF_ERR_DIM, "%s: shape %s is too large (more than 2^60 elements)", op,
                      cf__shape_str(ndim, shape, b, sizeof b));
            return false;
        }
        n *= shape[i] ? shape[i] : 1;
    }
    return true;
}

int64_t cf_numel(const cf_tensor *t) { return t ? cf__prod(t->ndim, t->shape) : 0; }

void cf__contiguous_strides(int ndim, const int64_t *shape, int64_t *stride)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s *= shape[i];
    }
}

bool cf_is_contiguous(const cf_tensor *t)
{
    if (!t)
        return false;
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s)
            return false;
        s *= t->shape[i];
    }
    return true;
}

bool cf_same_shape(const cf_tensor *a, const cf_tensor *b)
{
    return a && b && a->ndim == b->ndim &&
           memcmp(a->shape, b->shape, sizeof(int64_t) * a->ndim) == 0;
}

char *cf__shape_str(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t n = 0;
    n += snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
    return buf;
}

char *cf_shape_str(const cf_tensor *t, char *buf, size_t size)
{
    if (!t) {
        snprintf(buf, size, "NULL");
        return buf;
    }
    return cf__shape_str(t->ndim, t->shape, buf, size);
}

int cf__dim(const char *op, int dim, int ndim)
{
    /* A 0-d tensor takes dim 0 or -1, as in PyTorch. */
    int n = ndim ? ndim : 1;
    int d = dim < 0 ? dim + n : dim;
    if (d < 0 || d >= n) {
        cf__error(CF_ERR_DIM, "%s: dim %d out of range for a %d-d tensor", op, dim, ndim);
        return -1;
    }
    return d;
}

bool cf__broadcast(const char *op, const cf_tensor *a, const cf_tensor *b, int *ndim,
                   int64_t *shape)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < n; i++) {
        int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
        int64_t sa = ia >= 0 ? a->shape[ia] : 1;
        int64_t sb = ib >= 0 ? b->shape[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char ba[CF_SHAPE_BUF], bb[CF_SHAPE_BUF];
            cf__error(CF_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", op,
                      cf_shape_str(a, ba, sizeof ba), cf_shape_str(b, bb, sizeof bb));
            return false;
        }
        shape[i] = sa == 1 ? sb : sa;
    }
    *ndim = n;
    return true;
}

void cf__expand_strides(const cf_tensor *t, int ndim, const int64_t *shape, int64_t *stride)
{
    for (int i = 0; i < ndim; i++) {
        int it = i - (ndim - t->ndim);
        stride[i] = (it < 0 || (t->shape[it] == 1 && shape[i] != 1)) ? 0 : t->stride[it];
    }
}
