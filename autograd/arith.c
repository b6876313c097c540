/* Arithmetic with broadcasting: add, sub, mul, div, neg, the scalar forms and
 * square. Each op's forward and backward expressions sit on adjacent lines. */
#include "autograd/internal.h"

/* ---- Binary ---- */

AG_BINARY_OP(add, a + b, g, g)
AG_BINARY_OP(sub, a - b, g, -g)
AG_BINARY_OP(mul, a *b, g *b, g *a)
AG_BINARY_OP(div, a / b, g / b, -g *y / b)

/* ---- Unary with an optional scalar k ---- */

AG_UNARY_OP(neg, -x, -g)
AG_UNARY_OP(add_scalar, x + k, g)
AG_UNARY_OP(mul_scalar, x *k, g *k)
AG_UNARY_OP(rsub_scalar, k - x, -g)
AG_UNARY_OP(rdiv_scalar, k / x, -g *y / x)
AG_UNARY_OP(square, x *x, 2.0f * g * x)

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
