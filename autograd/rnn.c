/* The gates of a GRU step fused into one op, forward and backward: a step
 * of torch.nn.GRU is otherwise a dozen pointwise ops and six slices, each a
 * pass over memory and a graph node, and at the batch and width of a
 * seq2seq decoder the nodes cost more than the arithmetic. The backward
 * recomputes the gates from the inputs instead of saving them, so the op
 * keeps nothing beyond its sources. */
#include "autograd/internal.h"

static const char OP[] = "cf_gru_gates";

/* The stride between the rows ([..., n], unit stride inside) of t, or -1
 * when its leading dims do not collapse into one stride. Rows may overlap
 * (a broadcast state): the op only reads its sources. */
static int64_t row_stride(const cf_tensor *t)
{
    int d = t->ndim - 1;
    if (t->shape[d] > 1 && t->stride[d] != 1)
        return -1;
    int64_t rs = -1, rows = 1; /* the stride and count of the rows collapsed so far */
    for (int i = d - 1; i >= 0; i--) {
        if (t->shape[i] == 1)
            continue;
        if (rs < 0)
            rs = t->stride[i];
        else if (t->stride[i] != rs * rows)
            return -1;
        rows *= t->shape[i];
    }
    return rs < 0 ? t->shape[d] : rs;
}

/* A source as rows: its data and row stride, through a contiguous copy (no
 * graph) when its strides do not allow rows. */
typedef struct {
    const float *p;
    int64_t stride;
} rows;

static bool as_rows(cf_tensor *t, rows *r)
{
    r->stride = row_stride(t);
    if (r->stride < 0) {
        t = ag__dense(OP, t);
        if (!t)
            return false;
        r->stride = t->shape[t->ndim - 1];
    }
    r->p = t->data;
    return true;
}

/* One row: r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z),
 * n = tanh(gi_n + r * gh_n), out = (1 - z) n + z h = n + z (h - n). */
CF_ROW_KERNEL void gates_row(float *restrict out, const float *restrict gi,
                             const float *restrict gh, const float *restrict h, int64_t H)
{
    for (int64_t j = 0; j < H; j++) {
        float r = cf__sigmoid(gi[j] + gh[j]);
        float z = cf__sigmoid(gi[H + j] + gh[H + j]);
        float n = cf__tanh(gi[2 * H + j] + r * gh[2 * H + j]);
        out[j] = n + z * (h[j] - n);
    }
}

/* One row of the backward from g = d out, adding into dgi and dgh [3H] and
 * dh [H], three distinct buffers (restrict lets the loop vectorise); the
 * gates are recomputed as the forward computed them. */
CF_ROW_KERNEL void gates_row_backward(float *restrict dgi, float *restrict dgh, float *restrict dh,
                                      const float *restrict g, const float *restrict gi,
                                      const float *restrict gh, const float *restrict h, int64_t H)
{
    for (int64_t j = 0; j < H; j++) {
        float r = cf__sigmoid(gi[j] + gh[j]);
        float z = cf__sigmoid(gi[H + j] + gh[H + j]);
        float n = cf__tanh(gi[2 * H + j] + r * gh[2 * H + j]);
        float dn = g[j] * (1.0f - z) * (1.0f - n * n); /* through tanh */
        float dz = g[j] * (h[j] - n) * z * (1.0f - z);
        float dr = dn * gh[2 * H + j] * r * (1.0f - r);
        dh[j] += g[j] * z;
        dgi[j] += dr;
        dgi[H + j] += dz;
        dgi[2 * H + j] += dn;
        dgh[j] += dr;
        dgh[H + j] += dz;
        dgh[2 * H + j] += dn * r;
    }
}

/* The gradient of a source, or zeroed arena scratch when it needs none or
 * when it is also the first source (gi passed as gh too), so that the row
 * kernel writes three distinct buffers. */
static float *grad_or_scratch(cf_tensor *t, bool own)
{
    cf_tensor *g = own ? NULL : cf_grad_for(t);
    if (!g && !cf__failed())
        g = ag__zeros_like(OP, t);
    return g ? g->data : NULL;
}

static cf_status gru_gates_backward(cf_tensor *out)
{
    cf_tensor *gi = out->src[0], *gh = out->src[1], *h = out->src[2];
    int64_t H = h->shape[h->ndim - 1], R = H ? cf_numel(h) / H : 0;
    rows a, b, c;
    if (R == 0 || !as_rows(gi, &a) || !as_rows(gh, &b) || !as_rows(h, &c))
        return cf_error();
    float *dgi = grad_or_scratch(gi, false), *dgh = grad_or_scratch(gh, gh == gi);
    float *dh = grad_or_scratch(h, false);
    if (!dgi || !dgh || !dh)
        return cf_error();
    const float *g = out->grad->data;
    int nt = cf__threads_for(R * H * 8);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < R; r++)
        gates_row_backward(dgi + r * 3 * H, dgh + r * 3 * H, dh + r * H, g + r * H,
                           a.p + r * a.stride, b.p + r * b.stride, c.p + r * c.stride, H);
    if (gh == gi)
        for (int64_t i = 0; i < R * 3 * H; i++)
            dgi[i] += dgh[i];
    return cf_error();
}

static const cf_op gru_gates_op = {"gru_gates", gru_gates_backward};

static bool shapes_ok(const cf_tensor *gi, const cf_tensor *gh, const cf_tensor *h)
{
    int d = h->ndim - 1;
    bool ok = d >= 0 && gi->ndim == h->ndim && gh->ndim == h->ndim &&
              gi->shape[d] == 3 * h->shape[d] && gh->shape[d] == gi->shape[d];
    for (int i = 0; ok && i < d; i++)
        ok = gi->shape[i] == h->shape[i] && gh->shape[i] == h->shape[i];
    if (!ok) {
        char b1[CF_SHAPE_BUF], b2[CF_SHAPE_BUF], b3[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE,
                  "%s: gi of shape %s, gh of shape %s and h of shape %s; expected gi and gh "
                  "[..., 3H] and h [..., H] with the same leading dims",
                  OP, cf_shape_str(gi, b1, sizeof b1), cf_shape_str(gh, b2, sizeof b2),
                  cf_shape_str(h, b3, sizeof b3));
    }
    return ok;
}

cf_tensor *cf_gru_gates(cf_tensor *gi, cf_tensor *gh, cf_tensor *h)
{
    cf_tensor *src[3] = {gi, gh, h};
    if (!cf__check(OP, 3, src) || !ag__need_float(OP, gi) || !ag__need_float(OP, gh) ||
        !ag__need_float(OP, h) || !shapes_ok(gi, gh, h))
        return NULL;
    int64_t H = h->shape[h->ndim - 1], R = H ? cf_numel(h) / H : 0;
    cf_tensor *out = cf__alloc(OP, CF_F32, h->ndim, h->shape);
    rows a, b, c;
    if (!out || !as_rows(gi, &a) || !as_rows(gh, &b) || !as_rows(h, &c))
        return NULL;
    float *o = out->data;
    int nt = cf__threads_for(R * H * 4);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < R; r++)
        gates_row(o + r * H, a.p + r * a.stride, b.p + r * b.stride, c.p + r * c.stride, H);
    return cf_op_record(out, &gru_gates_op, 3, src);
}
