/* More pointwise functions: pow, sqrt, rsqrt, abs, clamp, maximum, minimum,
 * where, masked_fill, comparisons, logical_not, gelu, silu. Gradients follow
 * PyTorch 1.13 at kinks and singular points, since that is what users port
 * their models against. */
#include "autograd/internal.h"
#include "tensor/vexp.h"

#include <math.h>

/* ---- Float binary ops ---- */

/* PyTorch zeroes d/da where b == 0 (even at a == 0, where b * a^(b-1) is
 * NaN) and d/db where a == 0 and b >= 0 (where a^b * log(a) is 0 * -inf). */
AG_BINARY_OP(pow, powf(a, b), b == 0.0f ? 0.0f : b * powf(a, b - 1.0f) * g,
             (a == 0.0f && b >= 0.0f) ? 0.0f : logf(a) * y * g)
/* NaN wins the forward; ties split the gradient; a NaN operand makes neither
 * comparison true, so both inputs then get all of it, as in PyTorch. */
AG_BINARY_OP(maximum, (a > b || a != a) ? a : b, a == b ? 0.5f * g : (a < b ? 0.0f : g),
             a == b ? 0.5f * g : (a > b ? 0.0f : g))
AG_BINARY_OP(minimum, (a < b || a != a) ? a : b, a == b ? 0.5f * g : (a > b ? 0.0f : g),
             a == b ? 0.5f * g : (a < b ? 0.0f : g))

/* ---- Float unary ops ---- */

/* An exponent of 0 has gradient 0 everywhere, even at x == 0. */
AG_UNARY_OP(pow_scalar, powf(x, k), k == 0.0f ? 0.0f : k * powf(x, k - 1.0f) * g)
AG_UNARY_OP(sqrt, sqrtf(x), g / (2.0f * y))
AG_UNARY_OP(rsqrt, 1.0f / sqrtf(x), -0.5f * g * (y * y * y))
AG_UNARY_OP(abs, fabsf(x), x > 0.0f ? g : (x < 0.0f ? -g : 0.0f))

/* Bounds lo, hi in fparam[0], fparam[1]. With lo > hi everything becomes hi
 * and no gradient passes (torch.clamp); NaN stays NaN. */
static void clamp_fwd(int64_t n, char *const *p, const int64_t *s, const void *ud)
{
    const float lo = ((const float *)ud)[0], hi = ((const float *)ud)[1];
    for (int64_t i = 0; i < n; i++) {
        float x = AG_F(i, 1), t = x < lo ? lo : x;
        *(float *)(p[0] + i * s[0]) = t > hi ? hi : t;
    }
}

static void clamp_dx(int64_t n, char *const *p, const int64_t *s, const void *ud)
{
    const float lo = ((const float *)ud)[0], hi = ((const float *)ud)[1];
    for (int64_t i = 0; i < n; i++) {
        float x = AG_F(i, 2);
        if (x >= lo && x <= hi)
            *(float *)(p[0] + i * s[0]) += AG_F(i, 1);
    }
}

static cf_status clamp_backward(cf_tensor *out)
{
    cf_tensor *ops[2] = {out->grad, out->src[0]};
    return ag__pointwise_grad(out, out->src[0], 2, ops, clamp_dx, out->fparam);
}

static const cf_op clamp_op = {"clamp", clamp_backward};

cf_tensor *cf_clamp(cf_tensor *a, float lo, float hi)
{
    if (!cf__check("cf_clamp", 1, &a) || !ag__need_float("cf_clamp", a))
        return NULL;
    if (isnan(lo) || isnan(hi)) {
        cf__error(CF_ERR_ARG, "cf_clamp: bounds [%g, %g] include NaN", lo, hi);
        return NULL;
    }
    cf_tensor *out = cf__alloc("cf_clamp", CF_F32, a->ndim, a->shape);
    if (!out)
        return NULL;
    out->fparam[0] = lo;
    out->fparam[1] = hi;
    ag__pointwise(out, 1, &a, clamp_fwd, out->fparam);
    return cf_op_record(out, &clamp_op, 1, &a);
}

#define SQRT_2_OVER_PI 0.7978845608028654f
#define INV_SQRT_2PI   0.3989422804014327f
#define GELU_C         0.044715f

/* d/dx x Phi(x) = Phi(x) + x phi(x), with Phi, phi the normal CDF and PDF. */
static inline float gelu_grad(float x)
{
    return 0.5f * (1.0f + cf__erf(x * (float)M_SQRT1_2)) +
           x * INV_SQRT_2PI * cf__exp_le0(-0.5f * x * x);
}

static inline float gelu_tanh_grad(float x)
{
    float t = cf__tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x));
    return 0.5f * (1.0f + t) +
           0.5f * x * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_C * x * x);
}

static inline float silu_grad(float x)
{
    float s = cf__sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}

AG_UNARY_OP(gelu, 0.5f * x * (1.0f + cf__erf(x * (float)M_SQRT1_2)), gelu_grad(x) * g)
AG_UNARY_OP(gelu_tanh, 0.5f * x * (1.0f + cf__tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x))),
            gelu_tanh_grad(x) * g)
AG_UNARY_OP(silu, cf__sigmoid(x) * x, silu_grad(x) * g)

cf_tensor *cf_pow_scalar(cf_tensor *a, float p)
{
    return ag__unary("cf_pow_scalar", a, p, pow_scalar_fwd, &pow_scalar_op);
}

cf_tensor *cf_sqrt(cf_tensor *a) { return ag__unary("cf_sqrt", a, 0, sqrt_fwd, &sqrt_op); }
cf_tensor *cf_rsqrt(cf_tensor *a) { return ag__unary("cf_rsqrt", a, 0, rsqrt_fwd, &rsqrt_op); }
cf_tensor *cf_abs(cf_tensor *a) { return ag__unary("cf_abs", a, 0, abs_fwd, &abs_op); }
cf_tensor *cf_silu(cf_tensor *a) { return ag__unary("cf_silu", a, 0, silu_fwd, &silu_op); }

cf_tensor *cf_gelu(cf_tensor *a, bool tanh_approx)
{
    if (tanh_approx)
        return ag__unary("cf_gelu", a, 0, gelu_tanh_fwd, &gelu_tanh_op);
    return ag__unary("cf_gelu", a, 0, gelu_fwd, &gelu_op);
}

/* ---- Ops with bool operands ----
 * Bool tensors hold one byte per element, so these kernels run over byte
 * strides scaled by each operand's own element size. */

/* Runs fn over shape_of's shape for dst and the inputs (broadcast to it). */
static void run_mixed(cf_tensor *dst, const cf_tensor *shape_of, int nin, cf_tensor *const *in,
                      cf__row_fn fn, const void *ud)
{
    int64_t st[CF_LOOP_MAX][CF_MAX_DIMS];
    char *base[CF_LOOP_MAX];
    for (int o = 0; o <= nin; o++) {
        const cf_tensor *t = o ? in[o - 1] : dst;
        int64_t es = (int64_t)cf_dtype_size(t->dtype);
        cf__expand_strides(t, shape_of->ndim, shape_of->shape, st[o]);
        for (int i = 0; i < shape_of->ndim; i++)
            st[o][i] *= es;
        base[o] = t->data;
    }
    cf__loop(nin + 1, shape_of->ndim, shape_of->shape, st, base, fn, ud);
}

/* Adds fn's contribution (in out's shape) into target's gradient, summed
 * over the dims target was broadcast along. */
static cf_status grad_mixed(const cf_tensor *out, cf_tensor *target, int nops,
                            cf_tensor *const *ops, cf__row_fn fn, const void *ud)
{
    cf_tensor *g = cf_grad_for(target);
    if (!g)
        return cf_error();
    if (cf_same_shape(g, out)) {
        run_mixed(g, out, nops, ops, fn, ud);
        return cf_error();
    }
    cf_tensor *tmp = ag__zeros_like("backward", out);
    if (!tmp)
        return cf_error();
    run_mixed(tmp, out, nops, ops, fn, ud);
    cf__sum_to(g, tmp, 1.0, true);
    return cf_error();
}

static bool need_bool(const char *op, const char *what, const cf_tensor *t)
{
    if (t->dtype == CF_BOOL)
        return true;
    cf__error(CF_ERR_DTYPE, "%s: %s must be bool, got %s", op, what, cf_dtype_name(t->dtype));
    return false;
}

#define BOOL_AT(i_, j_) (*(const uint8_t *)(p[j_] + (i_)*s[j_]))

/* o = c ? a : b;  operands o, c, a, b. */
static void where_fwd(int64_t n, char *const *p, const int64_t *s, const void *ud)
{
    (void)ud;
    if (s[0] == 4 && s[1] == 1 && s[2] == 4 && s[3] == 4) {
        float *o = (float *)p[0];
        const uint8_t *c = (const uint8_t *)p[1];
        const float *a = (const float *)p[2], *b = (const float *)p[3];
        for (int64_t i = 0; i < n; i++)
            o[i] = c[i] ? a[i] : b[i];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        *(float *)(p[0] + i * s[0]) = BOOL_AT(i, 1) ? AG_F(i, 2) : AG_F(i, 3);
}

/* d += (c == *ud) ? g : 0;  operands d, g, c. */
static void acc_where_row(int64_t n, char *const *p, const int64_t *s, const void *ud)
{
    const uint8_t want = *(const uint8_t *)ud;
    for (int64_t i = 0; i < n; i++)
        if (BOOL_AT(i, 2) == want)
            *(float *)(p[0] + i * s[0]) += AG_F(i, 1);
}

static const uint8_t true_ = 1, false_ = 0;

static cf_status where_backward(cf_tensor *out)
{
    cf_tensor *ops[2] = {out->grad, out->src[0]};
    grad_mixed(out, out->src[1], 2, ops, acc_where_row, &true_);
    grad_mixed(out, out->src[2], 2, ops, acc_where_row, &false_);
    return cf_error();
}

static const cf_op where_op = {"where", where_backward};

cf_tensor *cf_where(cf_tensor *cond, cf_tensor *a, cf_tensor *b)
{
    cf_tensor *in[3] = {cond, a, b};
    if (!cf__check("cf_where", 3, in) || !need_bool("cf_where", "cond", cond) ||
        !ag__need_float("cf_where", a) || !ag__need_float("cf_where", b))
        return NULL;
    int nd = 0;
    int64_t shape[CF_MAX_DIMS];
    for (int t = 0; t < 3; t++)
        nd = in[t]->ndim > nd ? in[t]->ndim : nd;
    for (int i = 0; i < nd; i++) {
        shape[i] = 1;
        for (int t = 0; t < 3; t++) {
            int it = i - (nd - in[t]->ndim);
            int64_t st = it >= 0 ? in[t]->shape[it] : 1;
            if (st != 1 && shape[i] != 1 && st != shape[i]) {
                char bc[CF_SHAPE_BUF], ba[CF_SHAPE_BUF], bb[CF_SHAPE_BUF];
                cf__error(CF_ERR_SHAPE, "cf_where: shapes %s (cond), %s and %s do not broadcast",
                          cf_shape_str(cond, bc, sizeof bc), cf_shape_str(a, ba, sizeof ba),
                          cf_shape_str(b, bb, sizeof bb));
                return NULL;
            }
            if (st != 1)
                shape[i] = st;
        }
    }
    cf_tensor *out = cf__alloc("cf_where", CF_F32, nd, shape);
    if (!out)
        return NULL;
    run_mixed(out, out, 3, in, where_fwd, NULL);
    return cf_op_record(out, &where_op, 3, in);
}

/* o = m ? *ud : a;  operands o, a, m. */
static void masked_fill_fwd(int64_t n, char *const *p, const int64_t *s, const void *ud)
{
    const float v = *(const float *)ud;
    if (s[0] == 4 && s[1] == 4 && s[2] == 1) {
        float *o = (float *)p[0];
        const float *a = (const float *)p[1];
        const uint8_t *m = (const uint8_t *)p[2];
        for (int64_t i = 0; i < n; i++)
            o[i] = m[i] ? v : a[i];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        *(float *)(p[0] + i * s[0]) = BOOL_AT(i, 2) ? v : AG_F(i, 1);
}

static cf_status masked_fill_backward(cf_tensor *out)
{
    cf_tensor *ops[2] = {out->grad, out->src[1]};
    return grad_mixed(out, out->src[0], 2, ops, acc_where_row, &false_);
}

static const cf_op masked_fill_op = {"masked_fill", masked_fill_backward};

cf_tensor *cf_masked_fill(cf_tensor *a, cf_tensor *mask, float value)
{
    cf_tensor *in[2] = {a, mask};
    if (!cf__check("cf_masked_fill", 2, in) || !ag__need_float("cf_masked_fill", a) ||
        !need_bool("cf_masked_fill", "mask", mask))
        return NULL;
    bool fits = mask->ndim <= a->ndim;
    for (int i = 0; fits && i < mask->ndim; i++) {
        int64_t sm = mask->shape[mask->ndim - 1 - i];
        fits = sm == 1 || sm == a->shape[a->ndim - 1 - i];
    }
    if (!fits) {
        char bm[CF_SHAPE_BUF], ba[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE, "cf_masked_fill: mask of shape %s does not broadcast to %s",
                  cf_shape_str(mask, bm, sizeof bm), cf_shape_str(a, ba, sizeof ba));
        return NULL;
    }
    cf_tensor *out = cf__alloc("cf_masked_fill", CF_F32, a->ndim, a->shape);
    if (!out)
        return NULL;
    out->fparam[0] = value;
    run_mixed(out, out, 2, in, masked_fill_fwd, &out->fparam[0]);
    return cf_op_record(out, &masked_fill_op, 2, in);
}

/* ---- Comparisons (no gradient) ---- */

/* o = a OP b for element type T;  operands o (bool), a, b. */
#define CMP_ROW(fn_, T, OP)                                                                        \
    static void fn_(int64_t n, char *const *p, const int64_t *s, const void *ud)                   \
    {                                                                                              \
        (void)ud;                                                                                  \
        if (s[0] == 1 && s[1] == (int64_t)sizeof(T) && s[2] == (int64_t)sizeof(T)) {               \
            uint8_t *o = (uint8_t *)p[0];                                                          \
            const T *a = (const T *)p[1], *b = (const T *)p[2];                                    \
            for (int64_t i = 0; i < n; i++)                                                        \
                o[i] = a[i] OP b[i];                                                               \
            return;                                                                                \
        }                                                                                          \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T a = *(const T *)(p[1] + i * s[1]), b = *(const T *)(p[2] + i * s[2]);                \
            p[0][i * s[0]] = a OP b;                                                               \
        }                                                                                          \
    }
#define CMP_ROWS(name_, OP) CMP_ROW(name_##_f32, float, OP) CMP_ROW(name_##_i32, int32_t, OP)

CMP_ROWS(eq, ==)
CMP_ROWS(lt, <)
CMP_ROWS(gt, >)

static cf_tensor *compare(const char *name, cf_tensor *a, cf_tensor *b, cf__row_fn f32,
                          cf__row_fn i32)
{
    cf_tensor *ab[2] = {a, b};
    if (!cf__check(name, 2, ab))
        return NULL;
    if (a->dtype != b->dtype || (a->dtype != CF_F32 && a->dtype != CF_I32)) {
        cf__error(CF_ERR_DTYPE, "%s: operands are %s and %s (want both float32 or both int32)",
                  name, cf_dtype_name(a->dtype), cf_dtype_name(b->dtype));
        return NULL;
    }
    int nd;
    int64_t shape[CF_MAX_DIMS];
    if (!cf__broadcast(name, a, b, &nd, shape))
        return NULL;
    cf_tensor *out = cf__alloc(name, CF_BOOL, nd, shape);
    if (out)
        run_mixed(out, out, 2, ab, a->dtype == CF_F32 ? f32 : i32, NULL);
    return out;
}

cf_tensor *cf_eq(cf_tensor *a, cf_tensor *b) { return compare("cf_eq", a, b, eq_f32, eq_i32); }
cf_tensor *cf_lt(cf_tensor *a, cf_tensor *b) { return compare("cf_lt", a, b, lt_f32, lt_i32); }
cf_tensor *cf_gt(cf_tensor *a, cf_tensor *b) { return compare("cf_gt", a, b, gt_f32, gt_i32); }

static void logical_not_row(int64_t n, char *const *p, const int64_t *s, const void *ud)
{
    (void)ud;
    for (int64_t i = 0; i < n; i++)
        p[0][i * s[0]] = !BOOL_AT(i, 1);
}

cf_tensor *cf_logical_not(cf_tensor *mask)
{
    if (!cf__check("cf_logical_not", 1, &mask) || !need_bool("cf_logical_not", "mask", mask))
        return NULL;
    cf_tensor *out = cf__alloc("cf_logical_not", CF_BOOL, mask->ndim, mask->shape);
    if (out)
        run_mixed(out, out, 1, &mask, logical_not_row, NULL);
    return out;
}
