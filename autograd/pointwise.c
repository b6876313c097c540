/* The loops under every pointwise op and its backward. */
#include "autograd/internal.h"

static void strides_in(const cf_tensor *t, const cf_tensor *shape_of, int64_t *st)
{
    cf__expand_strides(t, shape_of->ndim, shape_of->shape, st);
    for (int i = 0; i < shape_of->ndim; i++)
        st[i] *= 4;
}

static void run(cf_tensor *dst, const cf_tensor *shape_of, int nin, cf_tensor *const *in,
                cf__row_fn fn, const void *ud)
{
    int64_t st[CF_LOOP_MAX][CF_MAX_DIMS];
    char *base[CF_LOOP_MAX];
    strides_in(dst, shape_of, st[0]);
    base[0] = dst->data;
    for (int i = 0; i < nin; i++) {
        strides_in(in[i], shape_of, st[i + 1]);
        base[i + 1] = in[i]->data;
    }
    cf__loop(nin + 1, shape_of->ndim, shape_of->shape, st, base, fn, ud);
}

void ag__pointwise(cf_tensor *out, int nin, cf_tensor *const *in, cf__row_fn fn, const void *ud)
{
    run(out, out, nin, in, fn, ud);
}

cf_status ag__pointwise_grad(const cf_tensor *out, cf_tensor *target, int nops,
                             cf_tensor *const *ops, cf__row_fn fn, const void *ud)
{
    cf_tensor *g = cf_grad_for(target);
    if (!g)
        return cf_error();
    if (cf_same_shape(g, out)) {
        run(g, out, nops, ops, fn, ud);
        return cf_error();
    }
    cf_tensor *tmp = ag__zeros_like("backward", out);
    if (!tmp)
        return cf_error();
    run(tmp, out, nops, ops, fn, ud);
    cf__sum_to(g, tmp, 1.0, true);
    cf__release(tmp);
    return cf_error();
}

cf_status ag__pointwise_grad_set(cf_tensor *out, cf_tensor *target, int nops, cf_tensor *const *ops,
                                 cf__row_fn acc, cf__row_fn set, const void *ud, bool last)
{
    if (!(target->flags & CF_REQUIRES_GRAD))
        return cf_error();
    bool same = cf_same_shape(target, out);
    if (same && last && ops[0] == out->grad && ag__can_take(out, target)) {
        if (set)
            run(out->grad, out, nops, ops, set, ud);
        ag__take_grad(out, target);
        return cf_error();
    }
    bool fresh;
    cf_tensor *g = ag__grad(target, &fresh);
    if (!g)
        return cf_error();
    if (same) {
        if (!fresh)
            run(g, out, nops, ops, acc, ud);
        else if (set)
            run(g, out, nops, ops, set, ud);
        else
            cf__copy(g, ops[0]);
        return cf_error();
    }
    /* Broadcast target: the contribution over out's shape, then summed. */
    cf_tensor *tmp = ops[0];
    if (set) {
        tmp = cf__alloc("backward", CF_F32, out->ndim, out->shape);
        if (!tmp)
            return cf_error();
        run(tmp, out, nops, ops, set, ud);
    }
    cf__sum_to(g, tmp, 1.0, !fresh);
    if (set)
        cf__release(tmp);
    return cf_error();
}

cf_tensor *ag__unary(const char *name, cf_tensor *a, float k, cf__row_fn fwd, const cf_op *op)
{
    if (!cf__check(name, 1, &a) || !ag__need_float(name, a))
        return NULL;
    cf_tensor *out = cf__alloc(name, CF_F32, a->ndim, a->shape);
    if (!out)
        return NULL;
    out->fparam[0] = k;
    ag__pointwise(out, 1, &a, fwd, &k);
    return cf_op_record(out, op, 1, &a);
}

cf_tensor *ag__binary(const char *name, cf_tensor *a, cf_tensor *b, cf__row_fn fwd, const cf_op *op)
{
    cf_tensor *ab[2] = {a, b};
    if (!cf__check(name, 2, ab) || !ag__need_float(name, a) || !ag__need_float(name, b))
        return NULL;
    int nd;
    int64_t shape[CF_MAX_DIMS];
    if (!cf__broadcast(name, a, b, &nd, shape))
        return NULL;
    cf_tensor *out = cf__alloc(name, CF_F32, nd, shape);
    if (!out)
        return NULL;
    ag__pointwise(out, 2, ab, fwd, NULL);
    return cf_op_record(out, op, 2, ab);
}

cf_status ag__binary_backward(cf_tensor *out, cf__row_fn da, cf__row_fn da_set, cf__row_fn db,
                              cf__row_fn db_set)
{
    /* b first: a's contribution may then take over out->grad. */
    cf_tensor *ops[4] = {out->grad, out->src[0], out->src[1], out};
    ag__pointwise_grad_set(out, out->src[1], 4, ops, db, db_set, NULL, false);
    ag__pointwise_grad_set(out, out->src[0], 4, ops, da, da_set, NULL, true);
    return cf_error();
}
