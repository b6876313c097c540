/* Joining and splitting. cat and stack copy their inputs once into one output,
 * and the backward adds each input's slice of the output gradient into its
 * gradient. split and chunk return views made by cf_slice, whose backward
 * routes the gradients. */
#include "autograd/internal.h"

#include <limits.h>
#include <string.h>

/* A view of t with the given shape and t's strides (minus dim `drop`, or -1),
 * starting `off` elements along dim d. */
static cf_tensor *part_of(const char *name, const cf_tensor *t, int ndim, const int64_t *shape,
                          int drop, int d, int64_t off)
{
    int64_t st[CF_MAX_DIMS];
    for (int i = 0, j = 0; i < t->ndim; i++)
        if (i != drop)
            st[j++] = t->stride[i];
    cf_tensor *v = ag__restride(name, t, ndim, shape, st);
    if (v && off > 0)
        v->data = (char *)t->data + off * t->stride[d] * (int64_t)cf_dtype_size(t->dtype);
    return v;
}

static cf_status cat_backward(cf_tensor *out)
{
    int d = (int)out->iparam[0];
    int64_t off = 0;
    for (int i = 0; i < out->nsrc; i++) {
        cf_tensor *s = out->src[i], *gs = cf_grad_for(s);
        if (gs) {
            cf_tensor *g = part_of("backward", out->grad, s->ndim, s->shape, -1, d, off);
            if (!g)
                return cf_error();
            cf__acc(gs, g);
        }
        off += s->shape[d];
    }
    return cf_error();
}

static cf_status stack_backward(cf_tensor *out)
{
    int d = (int)out->iparam[0];
    for (int i = 0; i < out->nsrc; i++) {
        cf_tensor *s = out->src[i], *gs = cf_grad_for(s);
        if (!gs)
            continue;
        cf_tensor *g = part_of("backward", out->grad, s->ndim, s->shape, d, d, i);
        if (!g)
            return cf_error();
        cf__acc(gs, g);
    }
    return cf_error();
}

static const cf_op cat_op = {"cat", cat_backward};
static const cf_op stack_op = {"stack", stack_backward};

/* Records out = op(ts[0..n)) along d. A node holds at most CF_MAX_SRC
 * inputs, so more are grouped under intermediate nodes, each a view of its
 * part of out recorded as op of its group, and out becomes their cat: the
 * data is still copied once. */
static cf_tensor *record(cf_tensor *out, const cf_op *op, int n, cf_tensor *const *ts, int d)
{
    out->iparam[0] = d;
    if (n <= CF_MAX_SRC)
        return cf_op_record(out, op, n, ts);
    cf_tensor *parts[CF_MAX_SRC];
    int per = (n + CF_MAX_SRC - 1) / CF_MAX_SRC, np = 0;
    int64_t off = 0;
    for (int i = 0; i < n; i += per) {
        int m = n - i < per ? n - i : per;
        int64_t len = m;
        if (op == &cat_op) {
            len = 0;
            for (int j = i; j < i + m; j++)
                len += ts[j]->shape[d];
        }
        int64_t shape[CF_MAX_DIMS];
        memcpy(shape, out->shape, sizeof shape);
        shape[d] = len;
        cf_tensor *v = part_of(op->name, out, out->ndim, shape, -1, d, off);
        if (!v || !(parts[np++] = record(v, op, m, ts + i, d)))
            return NULL;
        off += len;
    }
    return cf_op_record(out, &cat_op, np, parts);
}

/* False with CF_ERR_ARG, CF_ERR_DTYPE or CF_ERR_DIM unless ts holds n >= 1
 * tensors of one dtype, the first with at least min_ndim dims. */
static bool check_list(const char *op, int n, cf_tensor *const *ts, int min_ndim)
{
    if (n < 1 || !ts) {
        cf__error(CF_ERR_ARG, "%s: %d tensors (need at least one)", op, n);
        return false;
    }
    if (!cf__check(op, n, ts))
        return false;
    for (int i = 1; i < n; i++) {
        if (ts[i]->dtype != ts[0]->dtype) {
            cf__error(CF_ERR_DTYPE, "%s: tensor %d is %s, tensor 0 is %s", op, i,
                      cf_dtype_name(ts[i]->dtype), cf_dtype_name(ts[0]->dtype));
            return false;
        }
    }
    if (ts[0]->ndim < min_ndim) {
        cf__error(CF_ERR_DIM, "%s: cannot join 0-d tensors", op);
        return false;
    }
    return true;
}

cf_tensor *cf_cat(int n, cf_tensor *const *ts, int dim)
{
    if (!check_list("cf_cat", n, ts, 1))
        return NULL;
    const cf_tensor *t0 = ts[0];
    int d = cf__dim("cf_cat", dim, t0->ndim);
    if (d < 0)
        return NULL;
    int64_t shape[CF_MAX_DIMS];
    memcpy(shape, t0->shape, sizeof shape);
    shape[d] = 0;
    for (int i = 0; i < n; i++) {
        const cf_tensor *t = ts[i];
        bool ok = t->ndim == t0->ndim;
        for (int j = 0; ok && j < t0->ndim; j++)
            ok = j == d || t->shape[j] == t0->shape[j];
        if (!ok) {
            char b1[CF_SHAPE_BUF], b2[CF_SHAPE_BUF];
            cf__error(CF_ERR_SHAPE,
                      "cf_cat: tensor %d of shape %s does not match tensor 0 of shape %s "
                      "outside dim %d",
                      i, cf_shape_str(t, b1, sizeof b1), cf_shape_str(t0, b2, sizeof b2), d);
            return NULL;
        }
        shape[d] += t->shape[d];
    }
    cf_tensor *out = cf__alloc("cf_cat", t0->dtype, t0->ndim, shape);
    if (!out)
        return NULL;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        cf_tensor *v = part_of("cf_cat", out, ts[i]->ndim, ts[i]->shape, -1, d, off);
        if (!v)
            return NULL;
        cf__copy(v, ts[i]);
        off += ts[i]->shape[d];
    }
    return record(out, &cat_op, n, ts, d);
}

cf_tensor *cf_stack(int n, cf_tensor *const *ts, int dim)
{
    if (!check_list("cf_stack", n, ts, 0))
        return NULL;
    const cf_tensor *t0 = ts[0];
    for (int i = 1; i < n; i++) {
        if (!cf_same_shape(ts[i], t0)) {
            char b1[CF_SHAPE_BUF], b2[CF_SHAPE_BUF];
            cf__error(CF_ERR_SHAPE,
                      "cf_stack: tensor %d of shape %s differs from tensor 0 of shape %s", i,
                      cf_shape_str(ts[i], b1, sizeof b1), cf_shape_str(t0, b2, sizeof b2));
            return NULL;
        }
    }
    if (t0->ndim == CF_MAX_DIMS) {
        cf__error(CF_ERR_DIM, "cf_stack: tensors already have %d dims", CF_MAX_DIMS);
        return NULL;
    }
    int d = cf__dim("cf_stack", dim, t0->ndim + 1);
    if (d < 0)
        return NULL;
    int64_t shape[CF_MAX_DIMS];
    for (int i = 0, j = 0; i <= t0->ndim; i++)
        shape[i] = i == d ? n : t0->shape[j++];
    cf_tensor *out = cf__alloc("cf_stack", t0->dtype, t0->ndim + 1, shape);
    if (!out)
        return NULL;
    for (int i = 0; i < n; i++) {
        cf_tensor *v = part_of("cf_stack", out, t0->ndim, t0->shape, d, d, i);
        if (!v)
            return NULL;
        cf__copy(v, ts[i]);
    }
    return record(out, &stack_op, n, ts, d);
}

/* Writes up to max_out views of `size` along d (the last smaller) to out and
 * returns how many there are. */
static int split_views(const char *op, cf_tensor *a, int d, int64_t size, cf_tensor **out,
                       int max_out)
{
    int64_t n = a->shape[d];
    int64_t count = n == 0 ? 1 : (n + size - 1) / size;
    if (count > INT_MAX) {
        cf__error(CF_ERR_ARG, "%s: %lld parts (more than an int counts)", op, (long long)count);
        return -1;
    }
    for (int64_t i = 0; i < count && i < max_out; i++) {
        int64_t end = (i + 1) * size < n ? (i + 1) * size : n;
        if (!(out[i] = cf_slice(a, d, i * size, end, 1)))
            return -1;
    }
    return (int)count;
}

/* The dim to split a along, or -1 with the error recorded. */
static int split_dim(const char *op, const cf_tensor *a, int dim)
{
    if (a->ndim == 0) {
        cf__error(CF_ERR_DIM, "%s: cannot split a 0-d tensor", op);
        return -1;
    }
    return cf__dim(op, dim, a->ndim);
}

int cf_split(cf_tensor *a, int64_t size, int dim, cf_tensor **out, int max_out)
{
    if (!cf__check("cf_split", 1, &a))
        return -1;
    if (max_out < 0 || (max_out > 0 && !out)) {
        cf__error(CF_ERR_ARG, "cf_split: no room for the views (out %s, max_out %d)",
                  out ? "set" : "NULL", max_out);
        return -1;
    }
    int d = split_dim("cf_split", a, dim);
    if (d < 0)
        return -1;
    if (size < 0 || (size == 0 && a->shape[d] > 0)) {
        char b[CF_SHAPE_BUF];
        cf__error(CF_ERR_ARG, "cf_split: size %lld cannot split dim %d of a tensor of shape %s",
                  (long long)size, d, cf_shape_str(a, b, sizeof b));
        return -1;
    }
    return split_views("cf_split", a, d, size, out, max_out);
}

int cf_chunk(cf_tensor *a, int chunks, int dim, cf_tensor **out)
{
    if (!cf__check("cf_chunk", 1, &a))
        return -1;
    if (chunks < 1 || !out) {
        cf__error(CF_ERR_ARG, "cf_chunk: %d chunks into %s (need at least one, and room)", chunks,
                  out ? "an array" : "NULL");
        return -1;
    }
    int d = split_dim("cf_chunk", a, dim);
    if (d < 0)
        return -1;
    int64_t n = a->shape[d];
    if (n == 0) {
        /* As torch.chunk: an empty dim still gives `chunks` empty views. */
        for (int i = 0; i < chunks; i++)
            if (!(out[i] = cf_slice(a, d, 0, 0, 1)))
                return -1;
        return chunks;
    }
    return split_views("cf_chunk", a, d, (n + chunks - 1) / chunks, out, chunks);
}
