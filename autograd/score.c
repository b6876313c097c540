/* The additive (Bahdanau) attention score as one op, forward and backward:
 * e[b, s] = sum over a of v[a] tanh(k[b, s, a] + q[b, a]). Written as ops
 * it is an add and a tanh that each write [B, S, A], and a product with a
 * single column; at a seq2seq decoder's sizes the passes over memory and
 * the nodes cost more than the arithmetic. The backward recomputes the tanh
 * instead of keeping [B, S, A], and sums v's gradient over the batch in
 * batch order, so it does not depend on the thread count. */
#include "autograd/internal.h"

static const char OP[] = "cf_additive_score";

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
    return cf__lanes8_total(acc);
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

/* The gradient of t, or zeroed scratch when it needs none. */
static float *grad_or_scratch(cf_tensor *t)
{
    cf_tensor *g = cf_grad_for(t);
    if (!g && !cf__failed())
        g = ag__zeros_like(OP, t);
    return g ? g->data : NULL;
}

static cf_status additive_score_backward(cf_tensor *out)
{
    cf_tensor *k = out->src[0], *q = out->src[1], *v = out->src[2];
    int64_t B = k->shape[0], S = k->shape[1], A = k->shape[2];
    const float *kd = out->saved[0]->data, *qd = out->saved[1]->data, *vd = out->saved[2]->data;
    float *dk = grad_or_scratch(k), *dq = grad_or_scratch(q), *dv = grad_or_scratch(v);
    cf_tensor *part = ag__zeros_like(OP, q); /* v's gradient per batch row [B, A] */
    if (!dk || !dq || !dv || !part)
        return cf_error();
    float *pv = part->data;
    const float *g = out->grad->data;
    int nt = cf__threads_for(B * S * A * 8);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++) {
            int64_t r = b * S + s;
            score_row_backward(dk + r * A, dq + b * A, pv + b * A, g[r], kd + r * A, qd + b * A, vd,
                               A);
        }
    for (int64_t b = 0; b < B; b++) /* in batch order */
        for (int64_t a = 0; a < A; a++)
            dv[a] += pv[b * A + a];
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
    cf_tensor *kc = ag__dense(OP, k), *qc = ag__dense(OP, q), *vc = ag__dense(OP, v);
    if (!out || !kc || !qc || !vc)
        return NULL;
    const float *kd = kc->data, *qd = qc->data, *vd = vc->data;
    float *e = out->data;
    int nt = cf__threads_for(B * S * A * 4);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < B * S; r++)
        e[r] = score_row(kd + r * A, qd + r / S * A, vd, A); /* runs only when S > 0 */
    out->saved[0] = kc;
    out->saved[1] = qc;
    out->saved[2] = vc;
    return cf_op_record(out, &additive_score_op, 3, src);
}
