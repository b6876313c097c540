/* Layer norm over the last dims: one fused kernel per direction. Rows are the
 * leading dims (R of them), each of the N elements of the normalised dims.
 * The forward saves each row's mean and 1/std so the backward never
 * recomputes statistics; weight and bias gradients are summed over rows in
 * fixed blocks, so they do not depend on the thread count. */
#include "autograd/internal.h"

#include <math.h>
#include <string.h>

/* Upper bound on the row blocks of the backward: each holds N partial sums
 * per parameter, so this caps that scratch at 64 * N doubles. */
#define MAX_BLOCKS 64
/* Elements below which a block of rows is not worth its own partial sums. */
#define BLOCK_WORK 4096

/* xhat = (x - mean) * rstd, in float with the float statistics, so the
 * backward sees exactly the values the forward normalised with. */
static inline float xhat(float x, float mean, float rstd) { return (x - mean) * rstd; }

static void layer_norm_forward(float *y,       /* (R, N) */
                               float *mean,    /* (R) */
                               float *rstd,    /* (R) */
                               const float *x, /* (R, N) */
                               const float *w, /* (N) or NULL */
                               const float *b, /* (N) or NULL */
                               int64_t R, int64_t N, float eps)
{
    int nt = cf__threads_for(R * N);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x + r * N;
        float *yr = y + r * N;
        /* Two passes in double: the mean first, then the centred squares,
         * which stays accurate when |mean| is large against the spread. The
         * SIMD reductions fix their order at compile time. */
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < N; i++)
            s += xr[i];
        double m = s / (double)N, v = 0;
#pragma omp simd reduction(+ : v)
        for (int64_t i = 0; i < N; i++) {
            double d = xr[i] - m;
            v += d * d;
        }
        float mf = (float)m, rf = (float)(1.0 / sqrt(v / (double)N + eps));
        /* One loop per case, so that each vectorises. */
        if (w && b)
            for (int64_t i = 0; i < N; i++)
                yr[i] = xhat(xr[i], mf, rf) * w[i] + b[i];
        else if (w)
            for (int64_t i = 0; i < N; i++)
                yr[i] = xhat(xr[i], mf, rf) * w[i];
        else if (b)
            for (int64_t i = 0; i < N; i++)
                yr[i] = xhat(xr[i], mf, rf) + b[i];
        else
            for (int64_t i = 0; i < N; i++)
                yr[i] = xhat(xr[i], mf, rf);
        mean[r] = mf;
        rstd[r] = rf;
    }
}

/* The number of row blocks the backward sums the parameter gradients over
 * (R > 0): a function of the shape only. */
static int64_t row_blocks(int64_t R, int64_t N)
{
    int64_t nb = R * N / BLOCK_WORK;
    nb = nb < 1 ? 1 : nb > MAX_BLOCKS ? MAX_BLOCKS : nb;
    return nb < R ? nb : R;
}

static cf_status layer_norm_backward(cf_tensor *out)
{
    int64_t N = out->iparam[1];
    bool has_w = out->iparam[2], has_b = out->iparam[3];
    cf_tensor *x = out->src[0];
    cf_tensor *gx = cf_grad_for(x);
    cf_tensor *gw = has_w ? cf_grad_for(out->src[1]) : NULL;
    cf_tensor *gb = has_b ? cf_grad_for(out->src[1 + has_w]) : NULL;
    if ((!gx && !gw && !gb) || cf__failed())
        return cf_error();
    int64_t R = N ? cf_numel(x) / N : 0;
    if (R == 0)
        return cf_error();
    const float *g = out->grad->data;                    /* (R, N) */
    const float *xv = out->saved[2]->data;               /* (R, N) */
    const float *mean = out->saved[0]->data;             /* (R) */
    const float *rstd = out->saved[1]->data;             /* (R) */
    const float *w = has_w ? out->saved[3]->data : NULL; /* (N) */
    float *dx = gx ? gx->data : NULL;                    /* (R, N) */
    int64_t nb = row_blocks(R, N);
    double *pw = NULL, *pb = NULL; /* (nb, N) partial sums per block */
    if (gw && !(pw = cf__arena_alloc("layer_norm backward", sizeof(double) * nb * N)))
        return cf_error();
    if (gb && !(pb = cf__arena_alloc("layer_norm backward", sizeof(double) * nb * N)))
        return cf_error();
    float *dxhat = NULL; /* (nb, N) */
    if (dx && w && !(dxhat = cf__arena_alloc("layer_norm backward", sizeof(float) * nb * N)))
        return cf_error();
    int nt = cf__threads_for(R * N);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t k = 0; k < nb; k++) {
        double *bw = pw ? pw + k * N : NULL, *bb = pb ? pb + k * N : NULL;
        if (bw)
            memset(bw, 0, sizeof(double) * N);
        if (bb)
            memset(bb, 0, sizeof(double) * N);
        for (int64_t r = R * k / nb; r < R * (k + 1) / nb; r++) {
            const float *xr = xv + r * N, *gr = g + r * N;
            float m = mean[r], rs = rstd[r];
            if (dx) {
                /* dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
                 * with dxhat = g * w. */
                float *dr = dx + r * N;
                const float *dh = gr;
                if (w) {
                    /* dxhat = g * w once, in the block's scratch row. */
                    float *t = dxhat + k * N;
                    for (int64_t i = 0; i < N; i++)
                        t[i] = gr[i] * w[i];
                    dh = t;
                }
                double s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
                for (int64_t i = 0; i < N; i++) {
                    s1 += dh[i];
                    s2 += (double)dh[i] * xhat(xr[i], m, rs);
                }
                float m1 = (float)(s1 / (double)N), m2 = (float)(s2 / (double)N);
                for (int64_t i = 0; i < N; i++)
                    dr[i] += rs * (dh[i] - m1 - xhat(xr[i], m, rs) * m2);
            }
            if (bw)
                for (int64_t i = 0; i < N; i++)
                    bw[i] += (double)gr[i] * xhat(xr[i], m, rs);
            if (bb)
                for (int64_t i = 0; i < N; i++)
                    bb[i] += gr[i];
        }
    }
    /* Blocks combined in block order, each column by one thread. */
    float *dw = gw ? gw->data : NULL, *db = gb ? gb->data : NULL;
    nt = cf__threads_for(nb * N);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < N; i++) {
        double sw = 0, sb = 0;
        for (int64_t k = 0; k < nb; k++) {
            if (pw)
                sw += pw[k * N + i];
            if (pb)
                sb += pb[k * N + i];
        }
        if (dw)
            dw[i] += (float)sw;
        if (db)
            db[i] += (float)sb;
    }
    return cf_error();
}

static const cf_op layer_norm_op = {"layer_norm", layer_norm_backward};

/* False with CF_ERR_SHAPE unless p (weight or bias) has the normalised shape. */
static bool check_param(const char *what, const cf_tensor *p, const cf_tensor *x, int nnorm)
{
    if (!ag__need_float("cf_layer_norm", p))
        return false;
    const int64_t *want = x->shape + (x->ndim - nnorm);
    bool ok = p->ndim == nnorm;
    for (int i = 0; ok && i < nnorm; i++)
        ok = p->shape[i] == want[i];
    if (!ok) {
        char b1[CF_SHAPE_BUF], b2[CF_SHAPE_BUF], b3[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE,
                  "cf_layer_norm: %s of shape %s does not match the normalised shape %s "
                  "(the last %d dims of x of shape %s)",
                  what, cf_shape_str(p, b1, sizeof b1), cf__shape_str(nnorm, want, b2, sizeof b2),
                  nnorm, cf_shape_str(x, b3, sizeof b3));
    }
    return ok;
}

cf_tensor *cf_layer_norm(cf_tensor *x, int nnorm, cf_tensor *weight, cf_tensor *bias, float eps)
{
    if (!cf__check("cf_layer_norm", 1, &x) || !ag__need_float("cf_layer_norm", x))
        return NULL;
    if (nnorm < 1 || nnorm > x->ndim) {
        char b[CF_SHAPE_BUF];
        cf__error(CF_ERR_DIM,
                  "cf_layer_norm: cannot normalise over the last %d dims of x of shape %s", nnorm,
                  cf_shape_str(x, b, sizeof b));
        return NULL;
    }
    if ((weight && !check_param("weight", weight, x, nnorm)) ||
        (bias && !check_param("bias", bias, x, nnorm)))
        return NULL;
    int64_t N = cf__prod(nnorm, x->shape + (x->ndim - nnorm));
    int64_t R = cf__prod(x->ndim - nnorm, x->shape);
    cf_tensor *out = cf__alloc("cf_layer_norm", CF_F32, x->ndim, x->shape);
    cf_tensor *mean = cf__alloc("cf_layer_norm", CF_F32, 1, &R);
    cf_tensor *rstd = cf__alloc("cf_layer_norm", CF_F32, 1, &R);
    cf_tensor *xc = ag__dense("cf_layer_norm", x);
    cf_tensor *wc = weight ? ag__dense("cf_layer_norm", weight) : NULL;
    cf_tensor *bc = bias ? ag__dense("cf_layer_norm", bias) : NULL;
    if (!out || !mean || !rstd || !xc || (weight && !wc) || (bias && !bc))
        return NULL;
    if (R * N > 0)
        layer_norm_forward(out->data, mean->data, rstd->data, xc->data, wc ? wc->data : NULL,
                           bc ? bc->data : NULL, R, N, eps);
    out->saved[0] = mean;
    out->saved[1] = rstd;
    out->saved[2] = xc;
    out->saved[3] = wc;
    out->iparam[0] = nnorm;
    out->iparam[1] = N;
    out->iparam[2] = weight != NULL;
    out->iparam[3] = bias != NULL;
    out->fparam[0] = eps;
    cf_tensor *src[3] = {x};
    int nsrc = 1;
    if (weight)
        src[nsrc++] = weight;
    if (bias)
        src[nsrc++] = bias;
    return cf_op_record(out, &layer_norm_op, nsrc, src);
}
