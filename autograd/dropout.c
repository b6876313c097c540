/* Inverted dropout. The keep mask comes from cf_bernoulli, whose counter-based
 * draws make it a function of the generator's seed and offset alone: the same
 * seed gives the same mask for any thread count. The mask (0 or 1) is saved
 * for the backward and the scale 1 / (1 - p) kept in fparam[1]. */
#include "autograd/internal.h"

/* o = m ? a * k : 0; selecting rather than multiplying by zero makes a dropped
 * inf or NaN a zero too. */
static void dropout_fwd(int64_t n, char *const *p, const int64_t *s, const void *ud)
{
    const float k = *(const float *)ud;
    if (AG_UNIT(3)) {
        float *o = (float *)p[0];
        const float *a = (const float *)p[1], *m = (const float *)p[2];
        for (int64_t i = 0; i < n; i++)
            o[i] = m[i] != 0.0f ? a[i] * k : 0.0f;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float a = AG_F(i, 1), m = AG_F(i, 2);
        *(float *)(p[0] + i * s[0]) = m != 0.0f ? a * k : 0.0f;
    }
}

/* d += m ? g * k : 0 */
static void dropout_dx(int64_t n, char *const *p, const int64_t *s, const void *ud)
{
    const float k = *(const float *)ud;
    if (AG_UNIT(3)) {
        float *d = (float *)p[0];
        const float *g = (const float *)p[1], *m = (const float *)p[2];
        for (int64_t i = 0; i < n; i++)
            d[i] += m[i] != 0.0f ? g[i] * k : 0.0f;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float g = AG_F(i, 1), m = AG_F(i, 2);
        *(float *)(p[0] + i * s[0]) += m != 0.0f ? g * k : 0.0f;
    }
}

static cf_status dropout_backward(cf_tensor *out)
{
    cf_tensor *ops[2] = {out->grad, out->saved[0]};
    return ag__pointwise_grad(out, out->src[0], 2, ops, dropout_dx, &out->fparam[1]);
}

static const cf_op dropout_op = {"dropout", dropout_backward};

cf_tensor *cf_dropout(cf_tensor *a, float p, bool training, cf_rng *g)
{
    if (!cf__check("cf_dropout", 1, &a) || !ag__need_float("cf_dropout", a))
        return NULL;
    if (!(p >= 0.0f && p <= 1.0f)) {
        cf__error(CF_ERR_ARG, "cf_dropout: probability %g outside [0, 1]", p);
        return NULL;
    }
    if (!training || p == 0.0f)
        return a;
    cf_tensor *out = cf__alloc("cf_dropout", CF_F32, a->ndim, a->shape);
    if (!out)
        return NULL;
    cf_tensor *mask = cf_bernoulli(g, 1.0f - p, a->ndim, a->shape);
    if (!mask)
        return NULL;
    /* p = 1 keeps nothing: scale 0 rather than 1 / 0. */
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    cf_tensor *in[2] = {a, mask};
    ag__pointwise(out, 2, in, dropout_fwd, &scale);
    out->saved[0] = mask;
    out->fparam[0] = p;
    out->fparam[1] = scale;
    return cf_op_record(out, &dropout_op, 1, &a);
}
