/* Views: reshape, permute, transpose, slice, expand, squeeze, unsqueeze,
 * and the copies contiguous and clone. A view's backward applies the same
 * view to the source's (contiguous) gradient and adds into it. */
#include "autograd/internal.h"

#include <string.h>

cf_tensor *ag__restride(const char *op, const cf_tensor *t, int ndim, const int64_t *shape,
                        const int64_t *stride)
{
    cf_tensor *v = cf__view_of(op, t);
    if (!v)
        return NULL;
    v->ndim = ndim;
    for (int i = 0; i < CF_MAX_DIMS; i++) {
        v->shape[i] = i < ndim ? shape[i] : 1;
        v->stride[i] = i < ndim ? stride[i] : 0;
    }
    return v;
}

/* Strides that give t the new shape without moving data, following the
 * chunks of dims that are contiguous with each other; false if none. */
static bool view_strides(const cf_tensor *t, int nd, const int64_t *shape, int64_t *stride)
{
    if (t->ndim == 0 || cf_numel(t) == 0) {
        cf__contiguous_strides(nd, shape, stride);
        return true;
    }
    int vd = nd - 1;
    int64_t base = t->stride[t->ndim - 1], tnumel = 1, vnumel = 1;
    for (int td = t->ndim - 1; td >= 0; td--) {
        tnumel *= t->shape[td];
        if (td == 0 || (t->shape[td - 1] != 1 && t->stride[td - 1] != tnumel * base)) {
            while (vd >= 0 && (vnumel < tnumel || shape[vd] == 1)) {
                stride[vd] = vnumel * base;
                vnumel *= shape[vd];
                vd--;
            }
            if (vnumel != tnumel)
                return false;
            if (td > 0) {
                base = t->stride[td - 1];
                tnumel = vnumel = 1;
            }
        }
    }
    return vd == -1;
}

/* Resolves a -1 size and checks the element count. */
static bool infer_shape(const char *op, const cf_tensor *a, int nd, const int64_t *in,
                        int64_t *shape)
{
    char b1[CF_SHAPE_BUF], b2[CF_SHAPE_BUF];
    if (nd < 0 || nd > CF_MAX_DIMS) {
        cf__error(CF_ERR_DIM, "%s: %d dims (at most %d)", op, nd, CF_MAX_DIMS);
        return false;
    }
    if (nd > 0 && !in) {
        cf__error(CF_ERR_ARG, "%s: shape is NULL for %d dims", op, nd);
        return false;
    }
    int infer = -1;
    int64_t known = 1;
    bool zero = false;
    for (int i = 0; i < nd; i++) {
        shape[i] = in[i];
        if (in[i] == -1 && infer < 0)
            infer = i;
        else if (in[i] < 0)
            goto bad;
        else if (in[i] == 0)
            zero = true;
        else if (known > CF__MAX_NUMEL / in[i])
            goto bad; /* more elements than any tensor holds */
        else
            known *= in[i];
    }
    known = zero ? 0 : known;
    if (infer >= 0) {
        if (known == 0 || cf_numel(a) % known)
            goto bad;
        shape[infer] = cf_numel(a) / known;
    }
    if (cf__prod(nd, shape) == cf_numel(a))
        return true;
bad:
    cf__error(CF_ERR_SHAPE, "%s: cannot view a tensor of shape %s as %s", op,
              cf_shape_str(a, b1, sizeof b1), cf__shape_str(nd, in, b2, sizeof b2));
    return false;
}

/* Row-major order is the same on both sides: the output's gradient is the
 * source's, reshaped, and changes hands when the source has none yet. */
static cf_status reshape_backward(cf_tensor *out)
{
    cf_tensor *a = out->src[0];
    if (ag__can_take(out, a)) {
        ag__take_grad(out, a);
        return cf_error();
    }
    bool fresh;
    cf_tensor *ga = ag__grad(a, &fresh);
    if (!ga)
        return cf_error();
    int64_t st[CF_MAX_DIMS];
    cf__contiguous_strides(out->ndim, out->shape, st);
    cf_tensor *v = ag__restride("backward", ga, out->ndim, out->shape, st);
    if (v && fresh)
        cf__copy(v, out->grad);
    else if (v)
        cf__acc(v, out->grad);
    return cf_error();
}

static const cf_op view_op = {"view", reshape_backward};
static const cf_op reshape_op = {"reshape", reshape_backward};
static const cf_op squeeze_op = {"squeeze", reshape_backward};
static const cf_op unsqueeze_op = {"unsqueeze", reshape_backward};
static const cf_op contiguous_op = {"contiguous", reshape_backward};

static cf_tensor *view_as(const char *name, const cf_op *op, cf_tensor *a, int nd,
                          const int64_t *shape, bool copy_ok)
{
    int64_t st[CF_MAX_DIMS];
    if (view_strides(a, nd, shape, st)) {
        cf_tensor *v = ag__restride(name, a, nd, shape, st);
        /* A reshape's backward reads no values either. */
        if (v)
            v->flags |= a->flags & CF__OUTPUT_UNREAD;
        return cf_op_record(v, op, 1, &a);
    }
    if (!copy_ok) {
        char b1[CF_SHAPE_BUF], b2[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE,
                  "%s: the strides of a tensor of shape %s cannot express shape %s "
                  "without a copy (use cf_reshape)",
                  name, cf_shape_str(a, b1, sizeof b1), cf__shape_str(nd, shape, b2, sizeof b2));
        return NULL;
    }
    cf_tensor *c = cf__alloc(name, a->dtype, a->ndim, a->shape);
    if (!c)
        return NULL;
    cf__copy(c, a);
    c->ndim = nd;
    memcpy(c->shape, shape, sizeof(int64_t) * nd);
    for (int i = nd; i < CF_MAX_DIMS; i++)
        c->shape[i] = 1;
    cf__contiguous_strides(nd, shape, c->stride);
    return cf_op_record(c, op, 1, &a);
}

cf_tensor *cf_view(cf_tensor *a, int ndim, const int64_t *shape)
{
    int64_t s[CF_MAX_DIMS];
    if (!cf__check("cf_view", 1, &a) || !infer_shape("cf_view", a, ndim, shape, s))
        return NULL;
    return view_as("cf_view", &view_op, a, ndim, s, false);
}

cf_tensor *cf_reshape(cf_tensor *a, int ndim, const int64_t *shape)
{
    int64_t s[CF_MAX_DIMS];
    if (!cf__check("cf_reshape", 1, &a) || !infer_shape("cf_reshape", a, ndim, shape, s))
        return NULL;
    return view_as("cf_reshape", &reshape_op, a, ndim, s, true);
}

cf_tensor *cf_squeeze(cf_tensor *a, int dim)
{
    if (!cf__check("cf_squeeze", 1, &a))
        return NULL;
    int d = cf__dim("cf_squeeze", dim, a->ndim);
    if (d < 0)
        return NULL;
    int64_t shape[CF_MAX_DIMS], st[CF_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < a->ndim; i++) {
        if (i == d && a->shape[i] == 1)
            continue;
        shape[n] = a->shape[i];
        st[n++] = a->stride[i];
    }
    return cf_op_record(ag__restride("cf_squeeze", a, n, shape, st), &squeeze_op, 1, &a);
}

cf_tensor *cf_unsqueeze(cf_tensor *a, int dim)
{
    if (!cf__check("cf_unsqueeze", 1, &a))
        return NULL;
    if (a->ndim == CF_MAX_DIMS) {
        cf__error(CF_ERR_DIM, "cf_unsqueeze: tensor already has %d dims", CF_MAX_DIMS);
        return NULL;
    }
    int d = cf__dim("cf_unsqueeze", dim, a->ndim + 1);
    if (d < 0)
        return NULL;
    int64_t shape[CF_MAX_DIMS], st[CF_MAX_DIMS];
    for (int i = 0, j = 0; i <= a->ndim; i++) {
        if (i == d) {
            shape[i] = 1;
            st[i] = d < a->ndim ? a->stride[d] * a->shape[d] : 1;
        } else {
            shape[i] = a->shape[j];
            st[i] = a->stride[j++];
        }
    }
    return cf_op_record(ag__restride("cf_unsqueeze", a, a->ndim + 1, shape, st), &unsqueeze_op, 1,
                        &a);
}

cf_tensor *cf_contiguous(cf_tensor *a)
{
    if (!cf__check("cf_contiguous", 1, &a))
        return NULL;
    return cf_is_contiguous(a) ? a : cf_clone(a);
}

cf_tensor *cf_clone(cf_tensor *a)
{
    if (!cf__check("cf_clone", 1, &a))
        return NULL;
    cf_tensor *c = cf__alloc("cf_clone", a->dtype, a->ndim, a->shape);
    if (!c)
        return NULL;
    cf__copy(c, a);
    return cf_op_record(c, &contiguous_op, 1, &a);
}

/* ---- permute / transpose ---- */

static cf_status permute_backward(cf_tensor *out)
{
    bool fresh;
    cf_tensor *a = out->src[0], *ga = ag__grad(a, &fresh);
    if (!ga)
        return cf_error();
    int64_t st[CF_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++)
        st[i] = ga->stride[out->iparam[i]];
    cf_tensor *v = ag__restride("backward", ga, out->ndim, out->shape, st);
    if (v && fresh)
        cf__copy(v, out->grad);
    else if (v)
        cf__acc(v, out->grad);
    return cf_error();
}

static const cf_op permute_op = {"permute", permute_backward};

cf_tensor *cf_permute(cf_tensor *a, const int *dims)
{
    if (!cf__check("cf_permute", 1, &a))
        return NULL;
    if (!dims && a->ndim > 0) {
        cf__error(CF_ERR_ARG, "cf_permute: dims is NULL");
        return NULL;
    }
    bool seen[CF_MAX_DIMS] = {0};
    int64_t shape[CF_MAX_DIMS], st[CF_MAX_DIMS];
    int perm[CF_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++) {
        int d = cf__dim("cf_permute", dims[i], a->ndim);
        if (d < 0)
            return NULL;
        if (seen[d]) {
            cf__error(CF_ERR_DIM, "cf_permute: dim %d listed twice", dims[i]);
            return NULL;
        }
        seen[d] = true;
        perm[i] = d;
        shape[i] = a->shape[d];
        st[i] = a->stride[d];
    }
    cf_tensor *v = ag__restride("cf_permute", a, a->ndim, shape, st);
    if (!v)
        return NULL;
    for (int i = 0; i < a->ndim; i++)
        v->iparam[i] = perm[i];
    return cf_op_record(v, &permute_op, 1, &a);
}

cf_tensor *cf_transpose(cf_tensor *a, int d0, int d1)
{
    if (!cf__check("cf_transpose", 1, &a))
        return NULL;
    int x = cf__dim("cf_transpose", d0, a->ndim), y = cf__dim("cf_transpose", d1, a->ndim);
    if (x < 0 || y < 0)
        return NULL;
    int perm[CF_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++)
        perm[i] = i == x ? y : i == y ? x : i;
    return cf_permute(a, perm);
}

/* ---- slice ---- */

static cf_status slice_backward(cf_tensor *out)
{
    cf_tensor *a = out->src[0], *ga = cf_grad_for(a);
    if (!ga)
        return cf_error();
    int d = (int)out->iparam[0];
    int64_t st[CF_MAX_DIMS];
    memcpy(st, ga->stride, sizeof st);
    st[d] *= out->iparam[2];
    cf_tensor *v = ag__restride("backward", ga, out->ndim, out->shape, st);
    if (!v)
        return cf_error();
    v->data = (float *)ga->data + out->iparam[1] * ga->stride[d];
    cf__acc(v, out->grad);
    return cf_error();
}

static const cf_op slice_op = {"slice", slice_backward};

cf_tensor *cf_slice(cf_tensor *a, int dim, int64_t start, int64_t end, int64_t step)
{
    if (!cf__check("cf_slice", 1, &a))
        return NULL;
    int d = cf__dim("cf_slice", dim, a->ndim);
    if (d < 0)
        return NULL;
    if (step < 1) {
        cf__error(CF_ERR_ARG, "cf_slice: step %lld (must be >= 1)", (long long)step);
        return NULL;
    }
    int64_t n = a->shape[d];
    if (start < 0)
        start += n;
    if (end < 0)
        end += n;
    start = start < 0 ? 0 : start > n ? n : start;
    end = end < start ? start : end > n ? n : end;
    /* Written so that no step, however large, overflows. */
    int64_t len = end > start ? (end - start - 1) / step + 1 : 0;
    int64_t shape[CF_MAX_DIMS], st[CF_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    memcpy(st, a->stride, sizeof st);
    shape[d] = len;
    if (len > 1)
        st[d] *= step;
    cf_tensor *v = ag__restride("cf_slice", a, a->ndim, shape, st);
    if (!v)
        return NULL;
    if (len > 0)
        v->data = (char *)a->data + start * a->stride[d] * (int64_t)cf_dtype_size(a->dtype);
    v->iparam[0] = d;
    v->iparam[1] = start;
    v->iparam[2] = step;
    return cf_op_record(v, &slice_op, 1, &a);
}

/* ---- expand ---- */

static cf_status expand_backward(cf_tensor *out) { return ag__acc_grad(out->src[0], out->grad); }

static const cf_op expand_op = {"expand", expand_backward};

cf_tensor *cf_expand(cf_tensor *a, int ndim, const int64_t *shape)
{
    if (!cf__check("cf_expand", 1, &a))
        return NULL;
    char b1[CF_SHAPE_BUF], b2[CF_SHAPE_BUF];
    if (ndim > 0 && !shape) {
        cf__error(CF_ERR_ARG, "cf_expand: shape is NULL for %d dims", ndim);
        return NULL;
    }
    if (ndim < a->ndim || ndim > CF_MAX_DIMS)
        goto bad;
    int64_t s[CF_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        int ia = i - (ndim - a->ndim);
        int64_t have = ia >= 0 ? a->shape[ia] : 1;
        s[i] = shape[i] == -1 && ia >= 0 ? have : shape[i];
        if (s[i] < 0 || (have != 1 && have != s[i]))
            goto bad;
    }
    if (!cf__valid_sizes("cf_expand", ndim, s))
        return NULL;
    int64_t st[CF_MAX_DIMS];
    cf__expand_strides(a, ndim, s, st);
    return cf_op_record(ag__restride("cf_expand", a, ndim, s, st), &expand_op, 1, &a);
bad:
    cf__error(CF_ERR_SHAPE, "cf_expand: cannot expand shape %s to %s",
              cf_shape_str(a, b1, sizeof b1), cf__shape_str(ndim, shape, b2, sizeof b2));
    return NULL;
}
