/* The additive (Bahdanau) attention score as one op, forward and backward:
 * e[b, s] = sum over a of v[a] tanh(k[b, s, a] + q[b, a]). Written as ops
 * it is an add and a tanh that each write [B, S, A], and a product with a
 * single column; at a seq2seq decoder's sizes the passes over memory and
 * the nodes cost more than the arithmetic. The backward recomputes the tanh
 * instead of keeping [B, S, A], and sums v's gradient over the batch in
 * batch order, so it does not depend on the thread count. */
#include "autograd/internal.h"

#include <string.h>

static const char OP[] = "cf_additive_score";

/* t itself when contiguous, else a contiguous copy (no graph). */
static cf_tensor *dense(cf_tensor *t)
{
    if (cf_is_contiguous(t))
        return t;
    cf_tensor *c = cf__alloc(OP, t->dtype, t->ndim, t->shape);
    if (c)
        cf__copy(c, t);
    return c;
}

/* Row (b, s): sum over a < A of v[a] tanh(k[a] + q[a]), as eight partial
 * sums (a mod 8) combined in a fixed tree. */
CF_ROW_KERNEL float score_row(const float *restrict k, const float *restrict q,
                              const float *restrict v, int64_t A)
{
    float acc[8] = {0};
    int64_t a = 0;
    for (; a + 8 <= A; a += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += v[a + l] * cf__tanh(k[a + l] + q[a + l]);
    for (; a < A; a++)
        acc[a % 8] += v[a] * cf__tanh(k[a] + q[a]);
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* Row (b, s) of the backward from g = d e[b, s]: adds into dk [A] and dq
 * [A], and g tanh into dv [A]. */
CF_ROW_KERNEL void score_row_backward(float *restrict dk, float *restrict dq, float *restrict dv,
                                      float g, const float *restrict k, const float *restrict q,
                                      const float *restrict v, int64_t A)
{
    for (int64_t a = 0; a < A; a++) {
        float t = cf__tanh(k[a] + q[a]), d = g * v[a] * (1.0f - t * t);
        dk[a] += d;
        dq[a] += d;
        dv[a] += g * t;
    }
}

/* Zeroed arena scratch of n floats. */
static float *zeroed(int64_t n)
{
    float *p = cf__arena_alloc(OP, sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (p)
        memset(p, 0, sizeof(float) * (size_t)n);
    return p;
}

/* The gradient of t, or zeroed scratch when it needs none. */
static float *grad_or_scratch(cf_tensor *t)
{
    cf_tensor *g = cf_grad_for(t);
    return g ? g->data : cf__failed() ? NULL : zeroed(cf_numel(t));
}

static cf_status additive_score_backward(cf_tensor *out)
{
    cf_tensor *k = out->src[0], *q = out->src[1], *v = out->src[2];
    int64_t B = k->shape[0], S = k->shape[1], A = k->shape[2];
    const float *kd = out->saved[0]->data, *qd = out->saved[1]->data, *vd = out->saved[2]->data;
    float *dk = grad_or_scratch(k), *dq = grad_or_scratch(q), *dv = grad_or_scratch(v);
    float *part = zeroed(B * A); /* v's gradient per batch row, summed below in order */
    if (!dk || !dq || !dv || !part)
        return cf_error();
    const float *g = out->grad->data;
    int nt = cf__threads_for(B * S * A * 8);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++) {
            int64_t r = b * S + s;
            score_row_backward(dk + r * A, dq + b * A, part + b * A, g[r], kd + r * A, qd + b * A,
                               vd, A);
        }
    for (int64_t b = 0; b < B; b++)
        for (int64_t a = 0; a < A; a++)
            dv[a] += part[b * A + a];
    return cf_error();
}

static const cf_op additive_score_op = {"additive_score", additive_score_backward};

cf_tensor *cf_additive_score(cf_tensor *k, cf_tensor *q, cf_tensor *v)
{
    cf_tensor *src[3] = {k, q, v};
    if (!cf__check(OP, 3, src) || !ag__need_float(OP, k) || !ag__need_float(OP, q) ||
        !ag__need_float(OP, v))
        return NULL;
    if (k->ndim != 3 || q->ndim != 2 || v->ndim != 1 || q->shape[0] != k->shape[0] ||
        q->shape[1] != k->shape[2] || v->shape[0] != k->shape[2]) {
        char b1[CF_SHAPE_BUF], b2[CF_SHAPE_BUF], b3[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE,
                  "%s: keys of shape %s, query of shape %s and v of shape %s; expected [B, S, A], "
                  "[B, A] and [A]",
                  OP, cf_shape_str(k, b1, sizeof b1), cf_shape_str(q, b2, sizeof b2),
                  cf_shape_str(v, b3, sizeof b3));
        return NULL;
    }
    int64_t B = k->shape[0], S = k->shape[1], A = k->shape[2];
    cf_tensor *out = cf__alloc(OP, CF_F32, 2, (const int64_t[]){B, S});
    cf_tensor *kc = dense(k), *qc = dense(q), *vc = dense(v);
    if (!out || !kc || !qc || !vc)
        return NULL;
    const float *kd = kc->data, *qd = qc->data, *vd = vc->data;
    float *e = out->data;
    int nt = cf__threads_for(B * S * A * 4);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < B * S; r++)
        e[r] = score_row(kd + r * A, qd + r / (S > 0 ? S : 1) * A, vd, A);
    out->saved[0] = kc;
    out->saved[1] = qc;
    out->saved[2] = vc;
    return cf_op_record(out, &additive_score_op, 3, src);
}
