/* Inverted dropout. The keep mask comes from the draws of cf_bernoulli, whose
 * counter-based values make it a function of the generator's seed and offset
 * alone: the same seed gives the same mask for any thread count. The mask is
 * saved for the backward as bytes (a quarter of a float mask), and the scale
 * 1 / (1 - p) kept in fparam[1]. */
#include "autograd/internal.h"

/* o[i] = m[i] ? a[i] * k : 0 over n contiguous elements, o may be a;
 * selecting rather than multiplying by zero makes a dropped inf or NaN a zero
 * too. With acc, o[i] += instead. */
static void apply(float *o, const float *a, const uint8_t *m, float k, int64_t n, bool acc)
{
#pragma omp parallel for num_threads(cf__threads_for(n)) schedule(static)
    for (int64_t b = 0; b < n; b += 4096) {
        int64_t e = b + 4096 < n ? b + 4096 : n;
        if (acc)
            for (int64_t i = b; i < e; i++)
                o[i] += m[i] ? a[i] * k : 0.0f;
        else
            for (int64_t i = b; i < e; i++)
                o[i] = m[i] ? a[i] * k : 0.0f;
    }
}

static cf_status dropout_backward(cf_tensor *out)
{
    cf_tensor *x = out->src[0];
    const uint8_t *m = out->saved[0]->data;
    float k = out->fparam[1];
    int64_t n = cf_numel(out);
    if (ag__can_take(out, x)) {
        apply(out->grad->data, out->grad->data, m, k, n, false);
        ag__take_grad(out, x);
        return cf_error();
    }
    bool fresh;
    cf_tensor *gx = ag__grad(x, &fresh);
    if (gx)
        apply(gx->data, out->grad->data, m, k, n, !fresh);
    return cf_error();
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
    cf_tensor *mask = cf__alloc("cf_dropout", CF_BOOL, a->ndim, a->shape);
    if (!out || !mask)
        return NULL;
    int64_t n = cf_numel(a);
    cf__bernoulli_bytes(g, 1.0f - p, mask->data, n);
    /* p = 1 keeps nothing: scale 0 rather than 1 / 0. */
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    const float *x = a->data;
    if (!cf_is_contiguous(a)) {
        cf__copy(out, a);
        x = out->data;
    }
    apply(out->data, x, mask->data, scale, n, false);
    out->saved[0] = mask;
    out->fparam[0] = p;
    out->fparam[1] = scale;
    return cf_op_record(out, &dropout_op, 1, &a);
}
