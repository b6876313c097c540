/* Losses: cross entropy (fused with log-softmax), negative log likelihood
 * and mean squared error.
 *
 * Legend for the classification losses: N = batch, C = classes, D = the
 * product of the trailing dims d1... (1 for [N, C] logits). A "row" is one
 * prediction: the C class scores at (n, :, j), r = n * D + j, so rows are
 * numbered like the targets [N, d1, ...] in row-major order. */
#include "autograd/internal.h"
#include "tensor/vexp.h"

#include <math.h>
#include <string.h>

/* ---- Rows along the class dim ---- */

/* Where the rows of a [N, C, d1, ...] (or [C]) tensor are: row r starts at
 * (r / D) * sn plus the offset of r % D over the trailing dims, and its
 * classes are sc apart. Trailing dims are merged where the strides allow, so
 * the common layouts cost one division per row. */
typedef struct {
    int64_t C, D, rows;
    int64_t sn, sc;
    int nt; /* trailing dims left after merging */
    int64_t tshape[CF_MAX_DIMS], tstride[CF_MAX_DIMS];
} rows_t;

static rows_t rows_of(const cf_tensor *x)
{
    rows_t R = {0};
    if (x->ndim == 1) {
        R.C = x->shape[0], R.sc = x->stride[0], R.D = 1, R.rows = 1;
        return R;
    }
    R.C = x->shape[1], R.sc = x->stride[1], R.sn = x->stride[0], R.D = 1;
    for (int i = 2; i < x->ndim; i++) {
        R.D *= x->shape[i];
        if (x->shape[i] == 1)
            continue;
        if (R.nt > 0 && R.tstride[R.nt - 1] == x->stride[i] * x->shape[i]) {
            R.tshape[R.nt - 1] *= x->shape[i];
            R.tstride[R.nt - 1] = x->stride[i];
        } else {
            R.tshape[R.nt] = x->shape[i];
            R.tstride[R.nt++] = x->stride[i];
        }
    }
    R.rows = x->shape[0] * R.D;
    return R;
}

static int64_t row_start(const rows_t *R, int64_t r)
{
    int64_t j = r % R->D, off = (r / R->D) * R->sn;
    for (int d = R->nt - 1; d >= 0; d--) {
        off += (j % R->tshape[d]) * R->tstride[d];
        j /= R->tshape[d];
    }
    return off;
}

/* The same for the contiguous gradient of x: row r starts at
 * (r / D) * C * D + r % D, classes D apart. */
static int64_t grad_row_start(const rows_t *R, int64_t r)
{
    return (r / R->D) * R->C * R->D + r % R->D;
}

/* ---- Targets and reductions shared by cross entropy and nll ---- */

/* Checks the operands of a classification loss. Returns the targets as a
 * contiguous int32 tensor (target itself when it already is one) with the
 * number that are not ignore_index in *count, or NULL with the error
 * recorded: a bad dtype or shape, or a target outside [0, C). */
static cf_tensor *class_targets(const char *op, cf_tensor *x, cf_tensor *target, int ignore_index,
                                cf_reduction reduction, int64_t *count)
{
    cf_tensor *xt[2] = {x, target};
    if (!cf__check(op, 2, xt) || !ag__need_float(op, x))
        return NULL;
    if (target->dtype != CF_I32) {
        cf__error(CF_ERR_DTYPE, "%s: targets must be int32, got %s", op,
                  cf_dtype_name(target->dtype));
        return NULL;
    }
    if (reduction != CF_REDUCE_MEAN && reduction != CF_REDUCE_SUM && reduction != CF_REDUCE_NONE) {
        cf__error(CF_ERR_ARG, "%s: unknown reduction %d", op, (int)reduction);
        return NULL;
    }
    /* The expected target shape is x's without the class dim 1 (dim 0 for
     * a single [C] prediction). */
    int64_t want[CF_MAX_DIMS];
    int nw = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != (x->ndim == 1 ? 0 : 1))
            want[nw++] = x->shape[i];
    if (x->ndim == 0 || target->ndim != nw ||
        memcmp(target->shape, want, sizeof(int64_t) * nw) != 0) {
        char bx[CF_SHAPE_BUF], bt[CF_SHAPE_BUF], bw[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE, "%s: target of shape %s for input of shape %s (want %s)", op,
                  cf_shape_str(target, bt, sizeof bt), cf_shape_str(x, bx, sizeof bx),
                  x->ndim ? cf__shape_str(nw, want, bw, sizeof bw) : "an input of 1+ dims");
        return NULL;
    }
    cf_tensor *t = target;
    if (!cf_is_contiguous(target)) {
        t = cf__alloc(op, CF_I32, target->ndim, target->shape);
        if (!t)
            return NULL;
        cf__copy(t, target);
    }
    int64_t C = x->ndim == 1 ? x->shape[0] : x->shape[1], rows = cf_numel(t), n = 0;
    const int32_t *tp = t->data;
    for (int64_t r = 0; r < rows; r++) {
        if (tp[r] == ignore_index)
            continue;
        if (tp[r] < 0 || tp[r] >= C) {
            cf__error(CF_ERR_INDEX,
                      "%s: target %d (at position %lld) is out of range for %lld classes", op,
                      (int)tp[r], (long long)r, (long long)C);
            return NULL;
        }
        n++;
    }
    *count = n;
    return t;
}

/* The loss tensor from the per-row losses: the losses themselves in the
 * targets' shape, or their sum or mean over the count rows not ignored as a
 * scalar. Summed serially in double, so the result does not depend on the
 * thread count. A mean over no rows is NaN, as in PyTorch. */
static cf_tensor *reduce_rows(const char *op, const double *loss, const cf_tensor *t, int64_t count,
                              cf_reduction reduction)
{
    int64_t rows = cf_numel(t);
    if (reduction == CF_REDUCE_NONE) {
        cf_tensor *out = cf__alloc(op, CF_F32, t->ndim, t->shape);
        if (!out)
            return NULL;
        float *o = out->data;
        for (int64_t r = 0; r < rows; r++)
            o[r] = (float)loss[r];
        return out;
    }
    cf_tensor *out = cf__alloc(op, CF_F32, 0, NULL);
    if (!out)
        return NULL;
    double total = 0;
    for (int64_t r = 0; r < rows; r++)
        total += loss[r];
    if (reduction == CF_REDUCE_MEAN)
        total = count ? total / (double)count : NAN;
    *(float *)out->data = (float)total;
    return out;
}

/* Keeps what the backward of a classification loss needs. */
static void save_class_params(cf_tensor *out, cf_tensor *t, int ignore_index,
                              cf_reduction reduction, int64_t count)
{
    out->saved[0] = t;
    out->iparam[0] = ignore_index;
    out->iparam[1] = reduction;
    out->iparam[2] = count;
}

/* The upstream gradient of every row under a sum or mean: the scalar
 * gradient, divided by the count of rows not ignored for the mean. */
static float upstream_scale(const cf_tensor *out)
{
    float g = *(const float *)out->grad->data;
    return out->iparam[1] == CF_REDUCE_MEAN ? (float)((double)g / (double)out->iparam[2]) : g;
}

/* ---- Cross entropy ---- */

/* The per-row kernels get an AVX2 clone where the toolchain can (see
 * tensor/vexp.h). */

/* The row helpers take the class stride sc and are called with the literal
 * 1 for contiguous rows: inlined, that call becomes unit-stride SIMD code.
 * Reductions keep LANES independent partial results, which the compiler
 * holds in vector registers, and combine them in a fixed order: the result
 * is the same whatever the vector width. */
#define LANES 16

CF_ALWAYS_INLINE float row_max(const float *x, int64_t C, int64_t sc)
{
    float m[LANES];
    for (int l = 0; l < LANES; l++)
        m[l] = -INFINITY;
    int64_t c = 0;
    for (; c + LANES <= C; c += LANES)
        for (int l = 0; l < LANES; l++)
            m[l] = x[(c + l) * sc] > m[l] ? x[(c + l) * sc] : m[l];
    for (; c < C; c++)
        m[0] = x[c * sc] > m[0] ? x[c * sc] : m[0];
    float r = m[0];
    for (int l = 1; l < LANES; l++)
        r = m[l] > r ? m[l] : r;
    return r;
}

/* sum_c e^(x_c - m) into *sum; with label smoothing also sum_c (x_c - m)
 * into *dev (a separate loop: it costs a sixth more). */
CF_ALWAYS_INLINE void row_exp_sum(const float *x, int64_t C, int64_t sc, float m, bool smooth,
                                  float *sum, float *dev)
{
    float s[LANES] = {0}, d[LANES] = {0};
    int64_t c = 0;
    if (smooth) {
        for (; c + LANES <= C; c += LANES)
            for (int l = 0; l < LANES; l++) {
                s[l] += cf__exp_le0(x[(c + l) * sc] - m);
                d[l] += x[(c + l) * sc] - m;
            }
        for (; c < C; c++) {
            s[0] += cf__exp_le0(x[c * sc] - m);
            d[0] += x[c * sc] - m;
        }
    } else {
        for (; c + LANES <= C; c += LANES)
            for (int l = 0; l < LANES; l++)
                s[l] += cf__exp_le0(x[(c + l) * sc] - m);
        for (; c < C; c++)
            s[0] += cf__exp_le0(x[c * sc] - m);
    }
    float rs = 0, rd = 0;
    for (int l = 0; l < LANES; l++) {
        rs += s[l];
        rd += d[l];
    }
    *sum = rs;
    *dev = rd;
}

/* dx_c += g * (softmax(x)_c - off): the smoothed one-hot's uniform part
 * off = ls / C; the caller subtracts its (1 - ls) spike at the target. */
CF_ALWAYS_INLINE void row_grad(float *restrict dx, int64_t sd, const float *restrict x, int64_t sc,
                               int64_t C, float lse, float g, float off)
{
    const float goff = g * off;
#pragma omp simd
    for (int64_t c = 0; c < C; c++)
        dx[c * sd] += g * cf__exp_le0(x[c * sc] - lse) - goff;
}

/* The max m of a row, s = sum_c e^(x_c - m), and with label smoothing
 * dev = sum_c (x_c - m). */
CF_ROW_KERNEL void ce_row_forward(const float *x, int64_t C, int64_t sc, bool smooth, float *m,
                                  float *s, float *dev)
{
    if (sc == 1) {
        *m = row_max(x, C, 1);
        row_exp_sum(x, C, 1, *m, smooth, s, dev);
    } else {
        *m = row_max(x, C, sc);
        row_exp_sum(x, C, sc, *m, smooth, s, dev);
    }
}

CF_ROW_KERNEL void ce_row_backward(float *dx, int64_t sd, const float *x, int64_t sc, int64_t C,
                                   float lse, float g, float off)
{
    if (sc == 1 && sd == 1)
        row_grad(dx, 1, x, 1, C, lse, g, off);
    else
        row_grad(dx, sd, x, sc, C, lse, g, off);
}

/* Per-row cross entropy of x into loss[], its log-sum-exp into lse[]:
 * (1 - ls) (lse - x_t) + ls / C * sum_c (lse - x_c), where the second sum is
 * C log(s) - sum_c (x_c - m) with s = sum_c e^(x_c - m). Ignored rows lose
 * 0 and are not computed. */
static void ce_rows(const cf_tensor *x, const rows_t *R, const int32_t *t, int ignore_index,
                    float ls, double *loss, float *lse)
{
    const float *xp = x->data;
    const bool smooth = ls > 0;
    const int64_t C = R->C, sc = R->sc;
    const int nt = cf__threads_for(R->rows * C);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < R->rows; r++) {
        if (t[r] == ignore_index) {
            loss[r] = 0;
            lse[r] = 0;
            continue;
        }
        const float *row = xp + row_start(R, r);
        float m, s, dev;
        ce_row_forward(row, C, sc, smooth, &m, &s, &dev);
        double logs = log((double)s), l = (double)m + logs - row[t[r] * sc];
        if (smooth)
            l = (1.0 - ls) * l + ls / (double)C * ((double)C * logs - dev);
        loss[r] = l;
        lse[r] = (float)((double)m + logs);
    }
}

static cf_status cross_entropy_backward(cf_tensor *out)
{
    cf_tensor *x = out->src[0];
    cf_tensor *gx = cf_grad_for(x);
    if (!gx)
        return cf_error();
    const rows_t R = rows_of(x);
    const int32_t *t = out->saved[0]->data;
    const float *lse = out->saved[1]->data, *g = out->grad->data, *xp = x->data;
    float *gp = gx->data;
    const int ignore_index = (int)out->iparam[0];
    const bool unreduced = out->iparam[1] == CF_REDUCE_NONE;
    const float g0 = unreduced ? 0 : upstream_scale(out), ls = out->fparam[0];
    const float off = ls / (float)R.C, spike = 1.0f - ls;
    const int64_t C = R.C, sc = R.sc, sd = R.D;
    const int nt = cf__threads_for(R.rows * C);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < R.rows; r++) {
        if (t[r] == ignore_index)
            continue;
        const float gr = unreduced ? g[r] : g0;
        const float *row = xp + row_start(&R, r);
        float *drow = gp + grad_row_start(&R, r);
        ce_row_backward(drow, sd, row, sc, C, lse[r], gr, off);
        drow[t[r] * sd] -= gr * spike;
    }
    return cf_error();
}

static const cf_op cross_entropy_op = {"cross_entropy", cross_entropy_backward};

/* No int32 target equals this unless it is out of range anyway. */
#define NO_IGNORE INT32_MIN

static const cf_loss_opts default_loss;

cf_tensor *cf_cross_entropy(cf_tensor *logits, cf_tensor *target, const cf_loss_opts *opts)
{
    const char *op = "cf_cross_entropy";
    const cf_loss_opts *o = opts ? opts : &default_loss;
    if (!cf_check_reserved(op, "cf_loss_opts", o->reserved, CF_RESERVED_WORDS))
        return NULL;
    int ignore_index = o->ignore ? o->ignore_index : NO_IGNORE;
    float label_smoothing = o->label_smoothing;
    cf_reduction reduction = o->reduction;
    int64_t count;
    cf_tensor *t = class_targets(op, logits, target, ignore_index, reduction, &count);
    if (!t)
        return NULL;
    if (!(label_smoothing >= 0 && label_smoothing <= 1)) {
        cf__error(CF_ERR_ARG, "%s: label_smoothing %g is outside [0, 1]", op,
                  (double)label_smoothing);
        return NULL;
    }
    const rows_t R = rows_of(logits);
    cf_tensor *lse = cf__alloc(op, CF_F32, 1, (int64_t[]){R.rows}); /* (rows) */
    double *loss = cf__arena_alloc(op, sizeof(double) * R.rows);    /* (rows) */
    if (!lse || !loss)
        return NULL;
    ce_rows(logits, &R, t->data, ignore_index, label_smoothing, loss, lse->data);
    cf_tensor *out = reduce_rows(op, loss, t, count, reduction);
    if (!out)
        return NULL;
    save_class_params(out, t, ignore_index, reduction, count);
    out->saved[1] = lse;
    out->fparam[0] = label_smoothing;
    return cf_op_record(out, &cross_entropy_op, 1, &logits);
}

/* ---- Negative log likelihood ---- */

static cf_status nll_loss_backward(cf_tensor *out)
{
    cf_tensor *x = out->src[0];
    cf_tensor *gx = cf_grad_for(x);
    if (!gx)
        return cf_error();
    const rows_t R = rows_of(x);
    const int32_t *t = out->saved[0]->data;
    const float *g = out->grad->data;
    float *gp = gx->data;
    const int ignore_index = (int)out->iparam[0];
    const bool unreduced = out->iparam[1] == CF_REDUCE_NONE;
    const float g0 = unreduced ? 0 : upstream_scale(out);
#pragma omp parallel for num_threads(cf__threads_for(R.rows)) schedule(static)
    for (int64_t r = 0; r < R.rows; r++)
        if (t[r] != ignore_index)
            gp[grad_row_start(&R, r) + t[r] * R.D] -= unreduced ? g[r] : g0;
    return cf_error();
}

static const cf_op nll_loss_op = {"nll_loss", nll_loss_backward};

cf_tensor *cf_nll_loss(cf_tensor *logp, cf_tensor *target, const cf_loss_opts *opts)
{
    const char *op = "cf_nll_loss";
    const cf_loss_opts *o = opts ? opts : &default_loss;
    if (!cf_check_reserved(op, "cf_loss_opts", o->reserved, CF_RESERVED_WORDS))
        return NULL;
    int ignore_index = o->ignore ? o->ignore_index : NO_IGNORE;
    cf_reduction reduction = o->reduction;
    if (o->label_smoothing != 0) {
        cf__error(CF_ERR_ARG, "%s: label_smoothing is for cf_cross_entropy", op);
        return NULL;
    }
    int64_t count;
    cf_tensor *t = class_targets(op, logp, target, ignore_index, reduction, &count);
    if (!t)
        return NULL;
    const rows_t R = rows_of(logp);
    double *loss = cf__arena_alloc(op, sizeof(double) * R.rows); /* (rows) */
    if (!loss)
        return NULL;
    const int32_t *tp = t->data;
    const float *xp = logp->data;
#pragma omp parallel for num_threads(cf__threads_for(R.rows)) schedule(static)
    for (int64_t r = 0; r < R.rows; r++)
        loss[r] = tp[r] == ignore_index ? 0.0 : -(double)xp[row_start(&R, r) + tp[r] * R.sc];
    cf_tensor *out = reduce_rows(op, loss, t, count, reduction);
    if (!out)
        return NULL;
    save_class_params(out, t, ignore_index, reduction, count);
    return cf_op_record(out, &nll_loss_op, 1, &logp);
}

/* ---- Mean squared error ---- */

AG_BINARY_FWD(sq_diff, (a - b) * (a - b))

/* d += k * g * (a - b), with k = +-2 (/ n for the mean). */
static void mse_grad_row(int64_t n, char *const *p, const int64_t *s, const void *ud)
{
    const float k = *(const float *)ud;
    for (int64_t i = 0; i < n; i++)
        *(float *)(p[0] + i * s[0]) += k * AG_F(i, 1) * (AG_F(i, 2) - AG_F(i, 3));
}

static cf_status mse_loss_backward(cf_tensor *out)
{
    cf_tensor *a = out->src[0], *b = out->src[1];
    int nd;
    int64_t shape[CF_MAX_DIMS], zero[CF_MAX_DIMS] = {0};
    if (!cf__broadcast("backward", a, b, &nd, shape))
        return cf_error();
    /* The gradient over the broadcast shape: out->grad itself, or the
     * scalar gradient of a reduction stretched to it. */
    cf_tensor *g = out->iparam[0] == CF_REDUCE_NONE
                       ? out->grad
                       : ag__restride("backward", out->grad, nd, shape, zero);
    if (!g)
        return cf_error();
    cf_tensor *ops[3] = {g, a, b};
    float ka = out->fparam[0], kb = -ka;
    ag__pointwise_grad(g, a, 3, ops, mse_grad_row, &ka);
    ag__pointwise_grad(g, b, 3, ops, mse_grad_row, &kb);
    return cf_error();
}

static const cf_op mse_loss_op = {"mse_loss", mse_loss_backward};

cf_tensor *cf_mse_loss(cf_tensor *a, cf_tensor *b, const cf_loss_opts *opts)
{
    const char *op = "cf_mse_loss";
    const cf_loss_opts *o = opts ? opts : &default_loss;
    if (!cf_check_reserved(op, "cf_loss_opts", o->reserved, CF_RESERVED_WORDS))
        return NULL;
    cf_reduction reduction = o->reduction;
    if (o->label_smoothing != 0 || o->ignore) {
        cf__error(CF_ERR_ARG, "%s: label_smoothing and ignore_index are for class targets", op);
        return NULL;
    }
    cf_tensor *ab[2] = {a, b};
    if (!cf__check(op, 2, ab) || !ag__need_float(op, a) || !ag__need_float(op, b))
        return NULL;
    if (reduction != CF_REDUCE_MEAN && reduction != CF_REDUCE_SUM && reduction != CF_REDUCE_NONE) {
        cf__error(CF_ERR_ARG, "%s: unknown reduction %d", op, (int)reduction);
        return NULL;
    }
    int nd;
    int64_t shape[CF_MAX_DIMS];
    if (!cf__broadcast(op, a, b, &nd, shape))
        return NULL;
    cf_tensor *sq = cf__alloc(op, CF_F32, nd, shape);
    if (!sq)
        return NULL;
    ag__pointwise(sq, 2, ab, sq_diff, NULL);
    cf_tensor *out = sq;
    double scale = 1;
    if (reduction != CF_REDUCE_NONE) {
        /* A mean over no elements is NaN (0 * inf), as in PyTorch. */
        scale = reduction == CF_REDUCE_MEAN ? 1.0 / (double)cf_numel(sq) : 1.0;
        out = cf__alloc(op, CF_F32, 0, NULL);
        if (!out)
            return NULL;
        cf__sum_to(out, sq, scale, false);
    }
    out->iparam[0] = reduction;
    out->fparam[0] = (float)(2.0 * scale);
    return cf_op_record(out, &mse_loss_op, 2, ab);
}
