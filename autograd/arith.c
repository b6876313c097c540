/* Arithmetic with broadcasting: add, sub, mul, div, neg, the scalar forms and
 * square. Each op's forward and backward expressions sit on adjacent lines. */
#include "autograd/internal.h"

/* ---- Binary ---- */

static cf_tensor *binary(const char *name, cf_tensor *a, cf_tensor *b,
                         cf__row_fn fwd, const cf_op *op)
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

static cf_status binary_backward(cf_tensor *out, cf__row_fn da, cf__row_fn db)
{
    cf_tensor *ops[4] = {out->grad, out->src[0], out->src[1], out};
    ag__pointwise_grad(out, out->src[0], 4, ops, da, NULL);
    ag__pointwise_grad(out, out->src[1], 4, ops, db, NULL);
    return cf_error();
}

#define BINARY(name_, FWD, DA, DB)                                             \
    AG_BINARY_FWD(name_##_fwd, FWD)                                            \
    AG_BINARY_BWD(name_##_da, DA)                                              \
    AG_BINARY_BWD(name_##_db, DB)                                              \
    static cf_status name_##_backward(cf_tensor *out)                          \
    {                                                                          \
        return binary_backward(out, name_##_da, name_##_db);                   \
    }                                                                          \
    static const cf_op name_##_op = {#name_, name_##_backward};                \
    cf_tensor *cf_##name_(cf_tensor *a, cf_tensor *b)                          \
    {                                                                          \
        return binary("cf_" #name_, a, b, name_##_fwd, &name_##_op);           \
    }

BINARY(add, a + b, g, g)
BINARY(sub, a - b, g, -g)
BINARY(mul, a * b, g * b, g * a)
BINARY(div, a / b, g / b, -g * y / b)

/* ---- Unary with an optional scalar k ---- */

AG_UNARY_OP(neg, -x, -g)
AG_UNARY_OP(add_scalar, x + k, g)
AG_UNARY_OP(mul_scalar, x * k, g * k)
AG_UNARY_OP(rsub_scalar, k - x, -g)
AG_UNARY_OP(rdiv_scalar, k / x, -g * y / x)
AG_UNARY_OP(square, x * x, 2.0f * g * x)

cf_tensor *cf_neg(cf_tensor *a) { return ag__unary("cf_neg", a, 0, neg_fwd, &neg_op); }
cf_tensor *cf_square(cf_tensor *a) { return ag__unary("cf_square", a, 0, square_fwd, &square_op); }

cf_tensor *cf_add_scalar(cf_tensor *a, float s)
{
    return ag__unary("cf_add_scalar", a, s, add_scalar_fwd, &add_scalar_op);
}

cf_tensor *cf_mul_scalar(cf_tensor *a, float s)
{
    return ag__unary("cf_mul_scalar", a, s, mul_scalar_fwd, &mul_scalar_op);
}

cf_tensor *cf_rsub_scalar(cf_tensor *a, float s)
{
    return ag__unary("cf_rsub_scalar", a, s, rsub_scalar_fwd, &rsub_scalar_op);
}

cf_tensor *cf_rdiv_scalar(cf_tensor *a, float s)
{
    return ag__unary("cf_rdiv_scalar", a, s, rdiv_scalar_fwd, &rdiv_scalar_op);
}
