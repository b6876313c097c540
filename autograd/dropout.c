/* Inverted dropout. The keep mask comes from the draws of cf_bernoulli, whose
 * counter-based values make it a function of the generator's seed and offset
 * alone: the same seed gives the same mask for any thread count. The mask is
 * saved for the backward as bytes (a quarter of a float mask), and the scale
 * 1 / (1 - p) kept in fparam[1]. */
#include "autograd/internal.h"

/* o[i] = m[i] ? a[i] * k : 0 over n contiguous elements, o may be a;
 * selecting rather than multiplying by zero makes a dropped inf or NaN a zero
 * too. With acc, o[i] += instead. Every a[i] is read, kept or not, so that
 * the loop is a vector select rather than a branch a tenth of them miss. */
CF_ROW_KERNEL void apply_span(float *o, const float *a, const uint8_t *m, float k, int64_t n,
                              bool acc)
{
    if (acc)
        for (int64_t i = 0; i < n; i++) {
            float v = a[i] * k;
            o[i] += m[i] ? v : 0.0f;
        }
    else
        for (int64_t i = 0; i < n; i++) {
            float v = a[i] * k;
            o[i] = m[i] ? v : 0.0f;
        }
}

static void apply(float *o, const float *a, const uint8_t *m, float k, int64_t n, bool acc)
{
#pragma omp parallel for num_threads(cf__threads_for(n)) schedule(static)
    for (int64_t b = 0; b < n; b += 4096)
        apply_span(o + b, a + b, m + b, k, b + 4096 < n ? 4096 : n - b, acc);
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

static cf_tensor *dropout(cf_tensor *a, float p, bool training, cf_rng *g, bool over)
{
    if (!cf__check("cf_dropout", 1, &a) || !ag__need_float("cf_dropout", a))
        return NULL;
    if (!(p >= 0.0f && p <= 1.0f)) {
        cf__error(CF_ERR_ARG, "cf_dropout: probability %g outside [0, 1]", p);
        return NULL;
    }
    if (!training || p == 0.0f)
        return a;
    over = over && cf_is_contiguous(a);
    cf_tensor *out =
        over ? cf__view_of("cf_dropout", a) : cf__alloc("cf_dropout", CF_F32, a->ndim, a->shape);
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
    out->flags |= CF__OUTPUT_UNREAD;
    return cf_op_record(out, &dropout_op, 1, &a);
}

cf_tensor *cf_dropout(cf_tensor *a, float p, bool training, cf_rng *g)
{
    return dropout(a, p, training, g, false);
}

cf_tensor *ag__dropout_in_place(cf_tensor *x, float p, bool training, cf_rng *g)
{
    return dropout(x, p, training, g, true);
}

/* ---- x + dropout(y), written over y when y may be overwritten ---- */

/* o[i] = x[i] + (m[i] ? y[i] * k : 0), or x[i] + y[i] without m; o may be y. */
CF_ROW_KERNEL void residual_span(float *o, const float *x, const float *y, const uint8_t *m,
                                 float k, int64_t n)
{
    if (m)
        for (int64_t i = 0; i < n; i++) {
            float v = y[i] * k;
            o[i] = x[i] + (m[i] ? v : 0.0f);
        }
    else
        for (int64_t i = 0; i < n; i++)
            o[i] = x[i] + y[i];
}

static void residual_fwd(float *o, const float *x, const float *y, const uint8_t *m, float k,
                         int64_t n)
{
#pragma omp parallel for num_threads(cf__threads_for(n)) schedule(static)
    for (int64_t b = 0; b < n; b += 4096)
        residual_span(o + b, x + b, y + b, m ? m + b : NULL, k, b + 4096 < n ? 4096 : n - b);
}

static cf_status residual_backward(cf_tensor *out)
{
    cf_tensor *x = out->src[0], *y = out->src[1];
    const uint8_t *m = out->saved[0] ? out->saved[0]->data : NULL;
    int64_t n = cf_numel(out);
    bool fresh;
    cf_tensor *gy = ag__grad(y, &fresh);
    if (gy && m)
        apply(gy->data, out->grad->data, m, out->fparam[1], n, !fresh);
    else if (gy && fresh)
        cf__copy(gy, out->grad);
    else if (gy)
        cf__acc(gy, out->grad);
    if (ag__can_take(out, x)) {
        ag__take_grad(out, x);
        return cf_error();
    }
    cf_tensor *gx = ag__grad(x, &fresh);
    if (gx && fresh)
        cf__copy(gx, out->grad);
    else if (gx)
        cf__acc(gx, out->grad);
    return cf_error();
}

static const cf_op residual_op = {"residual", residual_backward};

cf_tensor *ag__residual(cf_tensor *x, cf_tensor *y, float p, bool training, cf_rng *g)
{
    cf_tensor *xy[2] = {x, y};
    if (!cf__check("residual", 2, xy))
        return NULL;
    bool drop = training && p > 0.0f;
    if (x->dtype != CF_F32 || y->dtype != CF_F32 || !cf_same_shape(x, y) || !cf_is_contiguous(x) ||
        !cf_is_contiguous(y) || !(p >= 0.0f && p <= 1.0f))
        return cf_add(x, drop ? cf_dropout(y, p, true, g) : y);
    const float *xd = x->data, *yd = y->data;
    int64_t n = cf_numel(y);
    bool over = (y->flags & CF__OUTPUT_UNREAD) && (xd + n <= yd || yd + n <= xd);
    cf_tensor *out =
        over ? cf__view_of("residual", y) : cf__alloc("residual", CF_F32, y->ndim, y->shape);
    cf_tensor *mask = drop ? cf__alloc("residual", CF_BOOL, y->ndim, y->shape) : NULL;
    if (!out || (drop && !mask))
        return NULL;
    float scale = 1.0f;
    if (drop) {
        cf__bernoulli_bytes(g, 1.0f - p, mask->data, n);
        scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    }
    residual_fwd(out->data, x->data, y->data, drop ? mask->data : NULL, scale, n);
    out->saved[0] = mask;
    out->fparam[0] = drop ? p : 0.0f;
    out->fparam[1] = scale;
    out->flags |= CF__OUTPUT_UNREAD;
    return cf_op_record(out, &residual_op, 2, xy);
}
