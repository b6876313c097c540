/* Softmax and log-softmax along any dim, fused and numerically stable.
 *
 * A row is the n elements along dim at one position of the other dims. One
 * thread handles a whole row in three passes: the max m, the sum s of
 * exp(x - m) in double, then the write of exp(x - m) / s or x - m - log(s).
 * Rows are independent, so the result does not depend on the thread count.
 *
 * Rows that are contiguous in both input and output run straight through the
 * row kernels; other rows are gathered with their neighbours into a
 * contiguous tile, transformed there in place and scattered back.
 */
#include "autograd/internal.h"
#include "tensor/vexp.h"

#include <math.h>
#include <stdint.h>

/* Partial sums per row, each fed by the positions i with i % LANES fixed, so
 * the order of additions depends on n alone, never on alignment or on the
 * vector width the compiler picked. */
#define LANES 8
/* Exponentials held in double between the exp loop and the summing loop. */
#define BLOCK 256

/* exp(t), computed in double. glibc's expf is a call no loop vectorises, so
 * this is 2^k * p(r) with k = round(t log2 e) and p a degree-8 fit of 2^r on
 * [-1/2, 1/2] (relative error 1.1e-12; p(0) = 1 exactly). Rounded to float
 * it is the correctly rounded exp on all but about 6e-7 of the floats in
 * [-104, 89] (glibc's expf misses 8e-5 of them), and never more than 1 ulp
 * off. Callers pass x - max exactly, in double. Integer selects only, so that
 * the loops vectorise: |t| > 150, where exp has long under- or overflowed in
 * float, is clamped to 150, keeping NaN. */
static inline double exp_row(double t)
{
    union {
        float f;
        int32_t i;
    } b = {(float)t};
    int32_t mag = b.i & INT32_MAX;
    int32_t huge = (mag > 0x43160000) & (mag <= 0x7f800000); /* 150.0f < |t| <= inf */
    union {
        double d;
        int64_t i;
    } c = {t};
    c.i = huge ? (c.i & INT64_MIN) | INT64_C(0x4062c00000000000) : c.i; /* +-150.0 */
    double z = c.d * 0x1.71547652b82fep0;
    union {
        double d;
        uint64_t u;
    } k = {z + 0x1.8p52}, scale;
    double r = z - (k.d - 0x1.8p52);
    double p = 0x1.63d136366db24p-20;
    p = p * r + 0x1.00dc4a532fb8ep-16;
    p = p * r + 0x1.4308ac85aa947p-13;
    p = p * r + 0x1.5d8745a728441p-10;
    p = p * r + 0x1.3b2ab7181b755p-7;
    p = p * r + 0x1.c6b08dd6fd234p-5;
    p = p * r + 0x1.ebfbdff823cedp-3;
    p = p * r + 0x1.62e42fef84cf0p-1;
    p = p * r + 1.0;
    /* The low bits of k.u hold k; shifted into the exponent field they make
     * 2^k, for |k| <= 217. */
    scale.u = UINT64_C(0x3ff0000000000000) + (k.u << 52);
    return p * scale.d;
}

/* acc[i % LANES] += t[i]; n counts from a multiple of LANES. */
static inline void add_lanes(double *restrict acc, const double *restrict t, int64_t n)
{
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++)
            acc[j] += t[i + j];
    for (; i < n; i++)
        acc[i % LANES] += t[i];
}

static inline double lanes_total(const double *acc)
{
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* The row kernels take n contiguous elements; o may be x. */

CF_ROW_KERNEL_GCC void softmax_row(float *o, const float *x, int64_t n)
{
    float m = cf__row_max(x, n);
    double acc[LANES] = {0}, t[BLOCK];
    for (int64_t b = 0; b < n; b += BLOCK) {
        int64_t nb = n - b < BLOCK ? n - b : BLOCK;
#pragma omp simd
        for (int64_t i = 0; i < nb; i++) {
            t[i] = exp_row((double)x[b + i] - m);
            o[b + i] = (float)t[i];
        }
        add_lanes(acc, t, nb);
    }
    double inv = 1.0 / lanes_total(acc);
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        o[i] = (float)(o[i] * inv);
}

CF_ROW_KERNEL_GCC void log_softmax_row(float *o, const float *x, int64_t n)
{
    float m = cf__row_max(x, n);
    double acc[LANES] = {0}, t[BLOCK];
    for (int64_t b = 0; b < n; b += BLOCK) {
        int64_t nb = n - b < BLOCK ? n - b : BLOCK;
#pragma omp simd
        for (int64_t i = 0; i < nb; i++)
            t[i] = exp_row((double)x[b + i] - m);
        add_lanes(acc, t, nb);
    }
    double c = m + log(lanes_total(acc));
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        o[i] = (float)(x[i] - c);
}

/* dx += y * (g - sum(g * y)) */
CF_ROW_KERNEL_GCC void softmax_row_backward(float *dx, const float *g, const float *y, int64_t n)
{
    double acc[LANES] = {0}, t[BLOCK];
    for (int64_t b = 0; b < n; b += BLOCK) {
        int64_t nb = n - b < BLOCK ? n - b : BLOCK;
#pragma omp simd
        for (int64_t i = 0; i < nb; i++)
            t[i] = (double)g[b + i] * y[b + i];
        add_lanes(acc, t, nb);
    }
    double dot = lanes_total(acc);
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        dx[i] = (float)(dx[i] + y[i] * (g[i] - dot));
}

/* dx += g - exp(y) * sum(g) */
CF_ROW_KERNEL_GCC void log_softmax_row_backward(float *dx, const float *g, const float *y,
                                                int64_t n)
{
    double acc[LANES] = {0}, t[BLOCK];
    for (int64_t b = 0; b < n; b += BLOCK) {
        int64_t nb = n - b < BLOCK ? n - b : BLOCK;
#pragma omp simd
        for (int64_t i = 0; i < nb; i++)
            t[i] = g[b + i];
        add_lanes(acc, t, nb);
    }
    double sum = lanes_total(acc);
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        dx[i] = (float)(dx[i] + (g[i] - exp_row(y[i]) * sum));
}

/* ---- Rows of a tensor ---- */

typedef struct {
    int64_t n;     /* row length: the size of dim */
    int64_t inner; /* stride of dim in a contiguous tensor of that shape */
    int64_t rows;
    int64_t sa; /* the input's stride along dim */
    /* The input's other dims, size 1 dropped and neighbours merged. */
    int nd;
    int64_t shape[CF_MAX_DIMS], stride[CF_MAX_DIMS];
} row_layout;

static void rows_init(row_layout *R, const cf_tensor *a, int dim)
{
    R->n = a->ndim ? a->shape[dim] : 1;
    R->sa = a->ndim ? a->stride[dim] : 0;
    R->inner = a->ndim ? cf__prod(a->ndim - dim - 1, a->shape + dim + 1) : 1;
    R->rows = R->n ? cf_numel(a) / R->n : 0;
    R->nd = 0;
    for (int i = 0; i < a->ndim; i++) {
        if (i == dim || a->shape[i] == 1)
            continue;
        if (R->nd > 0 && R->stride[R->nd - 1] == a->stride[i] * a->shape[i]) {
            R->shape[R->nd - 1] *= a->shape[i];
            R->stride[R->nd - 1] = a->stride[i];
        } else {
            R->shape[R->nd] = a->shape[i];
            R->stride[R->nd++] = a->stride[i];
        }
    }
}

/* Offset of row r's first element in the input. */
static int64_t input_offset(const row_layout *R, int64_t r)
{
    int64_t off = 0;
    for (int d = R->nd - 1; d >= 0; d--) {
        off += r % R->shape[d] * R->stride[d];
        r /= R->shape[d];
    }
    return off;
}

/* The same in a contiguous tensor of the input's shape. */
static int64_t contiguous_offset(const row_layout *R, int64_t r)
{
    return r / R->inner * R->n * R->inner + r % R->inner;
}

/* Threads, and rows per thread: a row is never split. */
static int64_t row_split(const row_layout *R, int *nt)
{
    *nt = cf__threads_for(R->rows * R->n * 8);
    return (R->rows + *nt - 1) / *nt;
}

/* Rows that are not contiguous are gathered in tiles of consecutive rows:
 * at each position along dim, neighbouring rows usually sit side by side in
 * memory (dim not last, or a transposed input), so a tile reads and writes
 * whole cache lines where one row at a time would use a float of each. */
#define TILE_MAX 64

/* Rows per tile: a buffer of at most 1 MiB, or one row when rows are longer. */
static int64_t tile_rows(int64_t n)
{
    int64_t t = 262144 / n;
    return t < 1 ? 1 : t > TILE_MAX ? TILE_MAX : t;
}

/* buf[j][k] = src[j][k * stride] for m rows of n. */
static void gather_tile(float *buf, const float *const *src, int64_t m, int64_t n, int64_t stride)
{
    for (int64_t k = 0; k < n; k++)
        for (int64_t j = 0; j < m; j++)
            buf[j * n + k] = src[j][k * stride];
}

static void scatter_tile(float *const *dst, int64_t stride, const float *buf, int64_t m, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        for (int64_t j = 0; j < m; j++)
            dst[j][k * stride] = buf[j * n + k];
}

/* ---- Forward and backward ---- */

typedef void (*row_fn)(float *o, const float *x, int64_t n);
typedef void (*row_backward_fn)(float *dx, const float *g, const float *y, int64_t n);

/* out (contiguous) = f(a) row by row; false if scratch memory ran out. */
static bool forward(const char *name, cf_tensor *out, const cf_tensor *a, int dim, row_fn f)
{
    row_layout R;
    rows_init(&R, a, dim);
    if (R.rows == 0)
        return true;
    int nt;
    int64_t per = row_split(&R, &nt);
    bool direct = R.inner == 1 && R.sa == 1;
    int64_t tile = direct ? 1 : tile_rows(R.n);
    float *scratch = NULL;
    if (!direct) {
        scratch = cf__arena_alloc(name, sizeof(float) * tile * R.n * nt);
        if (!scratch)
            return false;
    }
    const float *x = a->data;
    float *y = out->data;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int c = 0; c < nt; c++) {
        int64_t end = (c + 1) * per < R.rows ? (c + 1) * per : R.rows;
        float *buf = direct ? NULL : scratch + c * tile * R.n;
        for (int64_t r0 = c * per; r0 < end; r0 += tile) {
            if (direct) {
                f(y + contiguous_offset(&R, r0), x + input_offset(&R, r0), R.n);
                continue;
            }
            int64_t m = end - r0 < tile ? end - r0 : tile;
            const float *xs[TILE_MAX];
            float *ys[TILE_MAX];
            for (int64_t j = 0; j < m; j++) {
                xs[j] = x + input_offset(&R, r0 + j);
                ys[j] = y + contiguous_offset(&R, r0 + j);
            }
            gather_tile(buf, xs, m, R.n, R.sa);
            for (int64_t j = 0; j < m; j++)
                f(buf + j * R.n, buf + j * R.n, R.n);
            scatter_tile(ys, R.inner, buf, m, R.n);
        }
    }
    return true;
}

/* a's gradient += f(out's gradient, out) row by row. All three are
 * contiguous: only rows along a dim other than the last need gathering. */
static cf_status backward(cf_tensor *out, row_backward_fn f)
{
    cf_tensor *ga = cf_grad_for(out->src[0]);
    if (!ga)
        return cf_error();
    row_layout R;
    rows_init(&R, ga, (int)out->iparam[0]);
    if (R.rows == 0)
        return cf_error();
    int nt;
    int64_t per = row_split(&R, &nt);
    bool direct = R.inner == 1;
    int64_t tile = direct ? 1 : tile_rows(R.n);
    float *scratch = NULL;
    if (!direct) {
        scratch = cf__arena_alloc("backward", sizeof(float) * 3 * tile * R.n * nt);
        if (!scratch)
            return cf_error();
    }
    const float *g = out->grad->data, *y = out->data;
    float *dx = ga->data;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int c = 0; c < nt; c++) {
        int64_t end = (c + 1) * per < R.rows ? (c + 1) * per : R.rows;
        float *bd = direct ? NULL : scratch + 3 * c * tile * R.n;
        for (int64_t r0 = c * per; r0 < end; r0 += tile) {
            if (direct) {
                int64_t off = contiguous_offset(&R, r0);
                f(dx + off, g + off, y + off, R.n);
                continue;
            }
            int64_t m = end - r0 < tile ? end - r0 : tile;
            float *bg = bd + tile * R.n, *by = bg + tile * R.n;
            const float *gs[TILE_MAX], *ys[TILE_MAX];
            float *ds[TILE_MAX];
            for (int64_t j = 0; j < m; j++) {
                int64_t off = contiguous_offset(&R, r0 + j);
                gs[j] = g + off;
                ys[j] = y + off;
                ds[j] = dx + off;
            }
            gather_tile(bd, (const float *const *)ds, m, R.n, R.inner);
            gather_tile(bg, gs, m, R.n, R.inner);
            gather_tile(by, ys, m, R.n, R.inner);
            for (int64_t j = 0; j < m; j++)
                f(bd + j * R.n, bg + j * R.n, by + j * R.n, R.n);
            scatter_tile(ds, R.inner, bd, m, R.n);
        }
    }
    return cf_error();
}

static cf_status softmax_backward(cf_tensor *out) { return backward(out, softmax_row_backward); }

static cf_status log_softmax_backward(cf_tensor *out)
{
    return backward(out, log_softmax_row_backward);
}

static const cf_op softmax_op = {"softmax", softmax_backward};
static const cf_op log_softmax_op = {"log_softmax", log_softmax_backward};

static cf_tensor *softmax_like(const char *name, const cf_op *op, cf_tensor *a, int dim, row_fn f)
{
    if (!cf__check(name, 1, &a) || !ag__need_float(name, a))
        return NULL;
    int d = cf__dim(name, dim, a->ndim);
    if (d < 0)
        return NULL;
    cf_tensor *out = cf__alloc(name, CF_F32, a->ndim, a->shape);
    if (!out || !forward(name, out, a, d, f))
        return NULL;
    out->iparam[0] = d;
    return cf_op_record(out, op, 1, &a);
}

cf_tensor *cf_softmax(cf_tensor *a, int dim)
{
    return softmax_like("cf_softmax", &softmax_op, a, dim, softmax_row);
}

cf_tensor *cf_log_softmax(cf_tensor *a, int dim)
{
    return softmax_like("cf_log_softmax", &log_softmax_op, a, dim, log_softmax_row);
}
