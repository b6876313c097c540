/* Scaled dot-product attention: softmax(Q K^T * scale + mask) V.
 *
 * Legend: B = batch, H = heads, Tq = queries, Tk = keys, D = query/key size,
 * Dv = value size. Q [B, H, Tq, D], K [B, H, Tk, D], V [B, H, Tk, Dv] go to
 * BLIS with their own strides, so views of a packed [B, T, 3, H, D]
 * projection need no copy.
 *
 * Two forward paths give the same values up to float rounding:
 * - training (a gradient is needed, the weights are requested, or dropout):
 *   per head, S = Q K^T, a row softmax in place gives P [Tq, Tk], kept for
 *   the backward, then O = (P * keep) V;
 * - inference: per head and block of queries, blocks of keys are folded in
 *   with an online softmax (running max m, running sum l, rescaled output
 *   rows), as FlashAttention does, so no [Tq, Tk] matrix exists.
 *
 * A row whose keys are all masked has P = 0, hence zero output and zero
 * gradient; PyTorch gives NaN there. A NaN score (from q, k, the scale or a
 * float mask) makes its row NaN, as in PyTorch.
 *
 * The output [B, H, Tq, Dv] is stored as [B, Tq, H, Dv] (a permuted view),
 * the layout in which the heads are merged again: permuting it back and
 * reshaping to [B, Tq, H * Dv] needs no copy.
 */
#include "autograd/internal.h"
#include "tensor/vexp.h"

#include <math.h>
#include <string.h>

#define BLOCK_Q 64
#define BLOCK_K 128

/* The operands of one call, viewed head by head. Strides in elements. */
typedef struct {
    int64_t B, H, Tq, Tk, D, Dv;
    const float *q, *k, *v;
    const int64_t *qs, *ks, *vs;
    const char *mask; /* NULL: no mask */
    bool mask_bool;   /* else float, added to the scores */
    int64_t ms[4];    /* mask strides in bytes over [B, H, Tq, Tk] */
    bool causal;
    float scale;
    int64_t os[3]; /* output strides over B, H, Tq (1 along Dv) */
} attn;

static void attn_init(attn *a, const cf_tensor *q, const cf_tensor *k, const cf_tensor *v,
                      float scale)
{
    *a = (attn){
        .B = q->shape[0],
        .H = q->shape[1],
        .Tq = q->shape[2],
        .Tk = k->shape[2],
        .D = q->shape[3],
        .Dv = v->shape[3],
        .q = q->data,
        .k = k->data,
        .v = v->data,
        .qs = q->stride,
        .ks = k->stride,
        .vs = v->stride,
        .scale = scale,
        .os = {q->shape[2] * q->shape[1] * v->shape[3], v->shape[3], q->shape[1] * v->shape[3]}};
}

/* Head hd's output rows [Tq, Dv], row stride os[2]. */
static float *out_head(const attn *a, float *O, int64_t hd)
{
    return O + hd / a->H * a->os[0] + hd % a->H * a->os[1];
}

/* The first of n heads in chunk c of nch: a split that depends only on the
 * chunk count, so per-chunk scratch can be indexed without thread ids. */
static int64_t chunk_lo(int64_t c, int64_t nch, int64_t n) { return c * n / nch; }

/* Chunks for ntask tasks of `work` multiply-adds in all: the threads the
 * work is worth, at most one a task, at least one. */
static int64_t chunks_for(int64_t work, int64_t ntask)
{
    int64_t nch = cf__threads_for(work);
    return nch < ntask ? nch : ntask > 0 ? ntask : 1;
}

/* Turns n raw scores s = q_i . k_j (j = j0 ..) of query i of head (b, h) into
 * s * scale + mask, -inf where masked; returns their maximum, NaN when one
 * is NaN (so that NaN inputs give NaN, not a row taken as fully masked). */
static float score_row(const attn *a, int64_t b, int64_t h, int64_t i, int64_t j0, int64_t n,
                       float *s)
{
    /* Causal: only keys j <= i. */
    int64_t lim = a->causal ? i - j0 + 1 : n;
    lim = lim < 0 ? 0 : lim > n ? n : lim;
    const char *m =
        a->mask ? a->mask + b * a->ms[0] + h * a->ms[1] + i * a->ms[2] + j0 * a->ms[3] : NULL;
    float sc = a->scale;
    /* One plain loop per kind of mask, so that each vectorises. */
    if (!m) {
        for (int64_t j = 0; j < lim; j++)
            s[j] *= sc;
    } else if (a->mask_bool && a->ms[3] == 1) {
        for (int64_t j = 0; j < lim; j++)
            s[j] = m[j] ? s[j] * sc : -INFINITY;
    } else if (a->mask_bool) {
        for (int64_t j = 0; j < lim; j++)
            s[j] = *(const uint8_t *)(m + j * a->ms[3]) ? s[j] * sc : -INFINITY;
    } else {
        for (int64_t j = 0; j < lim; j++)
            s[j] = s[j] * sc + *(const float *)(m + j * a->ms[3]);
    }
    for (int64_t j = lim; j < n; j++)
        s[j] = -INFINITY;
    int nan = 0;
#pragma omp simd reduction(| : nan)
    for (int64_t j = 0; j < lim; j++)
        nan |= s[j] != s[j];
    return nan ? NAN : cf__row_max(s, lim);
}

/* s[j] = e^(s[j] - mx), j < n; returns their sum, taken as eight partial
 * sums (j mod 8) and a fixed tree, an order set by n alone. */
CF_ROW_KERNEL float exp_sum(float *s, int64_t n, float mx)
{
    float acc[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int q = 0; q < 8; q++) {
            s[j + q] = cf__exp_le0(s[j + q] - mx);
            acc[q] += s[j + q];
        }
    for (; j < n; j++) {
        s[j] = cf__exp_le0(s[j] - mx);
        acc[j % 8] += s[j];
    }
    return cf__lanes8_total(acc);
}

/* ---- Small heads ----
 * A head of a dozen rows costs BLIS more in call overhead and packing than
 * in arithmetic: the backward of a G2P Transformer's attention (heads of
 * [12, 32]) ran at 2.7 GFLOP/s through BLIS. Heads of at most SMALL_WORK
 * multiply-adds a product, run one per thread, go through axpy_mm instead,
 * with K and V transposed into scratch where a product needs them as rows.
 * On the Zen 5 the ViT benchmark's heads, [50, 16] (40k), train 19% faster
 * here than through BLIS (1 thread: 126-144 ms a step against 157-177);
 * the Transformer's [64, 32] (131k) are 5% slower. */
#define SMALL_WORK 65536

/* C [M, N] (+)= A [M, K] B [K, N], B's and C's rows contiguous: each row of
 * C as a sum of rows of B scaled by A's elements, four at a time (their
 * products summed in pairs, then added), so each element's rounding is fixed
 * by K alone. Vectorised along N. */
CF_ROW_KERNEL void axpy_mm(bool acc, int64_t M, int64_t N, int64_t K, const float *a, int64_t rsa,
                           int64_t csa, const float *b, int64_t rsb, float *c, int64_t rsc)
{
    cf__count_flops((uint64_t)(2 * M * N * K));
    for (int64_t i = 0; i < M; i++) {
        float *restrict ci = c + i * rsc;
        const float *ai = a + i * rsa;
        if (!acc)
            for (int64_t j = 0; j < N; j++)
                ci[j] = 0;
        int64_t l = 0;
        for (; l + 4 <= K; l += 4) {
            const float x0 = ai[l * csa], x1 = ai[(l + 1) * csa], x2 = ai[(l + 2) * csa],
                        x3 = ai[(l + 3) * csa];
            const float *restrict b0 = b + l * rsb, *restrict b1 = b0 + rsb,
                                  *restrict b2 = b1 + rsb, *restrict b3 = b2 + rsb;
            for (int64_t j = 0; j < N; j++)
                ci[j] += (x0 * b0[j] + x1 * b1[j]) + (x2 * b2[j] + x3 * b3[j]);
        }
        for (; l < K; l++) {
            const float x = ai[l * csa];
            const float *restrict bl = b + l * rsb;
            for (int64_t j = 0; j < N; j++)
                ci[j] += x * bl[j];
        }
    }
}

/* t [C, R] = the transpose of the [R, C] matrix at m (strides rs, cs). */
static void transpose_into(float *t, const float *m, int64_t R, int64_t C, int64_t rs, int64_t cs)
{
    for (int64_t c = 0; c < C; c++)
        for (int64_t r = 0; r < R; r++)
            t[c * R + r] = m[r * rs + c * cs];
}

/* Floats of transpose scratch a chunk of heads needs when the heads are
 * small, so that their products skip BLIS; 0 when they are not (large, or
 * rows not contiguous). A function of the shapes alone, never of the
 * threads, so that results do not depend on the thread count. */
static int64_t small_scratch(const attn *a)
{
    int64_t w = a->D > a->Dv ? a->D : a->Dv;
    bool small = a->Tq * a->Tk * w <= SMALL_WORK && a->qs[3] == 1 && a->ks[3] == 1 && a->vs[3] == 1;
    return small ? a->Tk * w : 0;
}

/* ---- Training path ---- */

/* p [Tq, Tk] = softmax of the scores of head (b, h), in place; a fully
 * masked row becomes zeros. rt threads, each row on one of them. */
static void softmax_rows(const attn *a, int64_t b, int64_t h, float *p, int rt)
{
#pragma omp parallel for num_threads(rt) schedule(static)
    for (int64_t i = 0; i < a->Tq; i++) {
        float *r = p + i * a->Tk;
        float mx = score_row(a, b, h, i, 0, a->Tk, r);
        if (mx == -INFINITY) {
            memset(r, 0, sizeof(float) * a->Tk);
            continue;
        }
        float inv = 1.0f / exp_sum(r, a->Tk, mx);
        for (int64_t j = 0; j < a->Tk; j++)
            r[j] *= inv;
    }
}

/* pd = p * keep * kscale over one head's [Tq, Tk] weights. */
static void apply_keep(float *pd, const float *p, const uint8_t *keep, float kscale, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        pd[i] = p[i] * (float)keep[i] * kscale;
}

/* Head hd of the training forward: P and O. bt BLIS threads, rt row threads;
 * scratch holds [Tq, Tk] when there is dropout; t, when not NULL, is
 * small_scratch's transpose scratch and the products skip BLIS. */
static void head_forward(const attn *a, int64_t hd, float *P, const uint8_t *keep, float kscale,
                         float *O, float *scratch, float *t, int bt, int rt)
{
    int64_t b = hd / a->H, h = hd % a->H, TT = a->Tq * a->Tk;
    const float *qh = a->q + b * a->qs[0] + h * a->qs[1];
    const float *kh = a->k + b * a->ks[0] + h * a->ks[1];
    const float *vh = a->v + b * a->vs[0] + h * a->vs[1];
    float *p = P + hd * TT, *o = out_head(a, O, hd);
    /* S [Tq, Tk] = Q [Tq, D] K^T [D, Tk] */
    if (t) {
        transpose_into(t, kh, a->Tk, a->D, a->ks[2], 1);
        axpy_mm(false, a->Tq, a->Tk, a->D, qh, a->qs[2], 1, t, a->Tk, p, a->Tk);
    } else {
        cf__gemm(false, a->Tq, a->Tk, a->D, qh, a->qs[2], a->qs[3], kh, a->ks[3], a->ks[2], p,
                 a->Tk, 1, bt);
    }
    softmax_rows(a, b, h, p, rt);
    const float *pd = p;
    if (keep) {
        apply_keep(scratch, p, keep + hd * TT, kscale, TT);
        pd = scratch;
    }
    /* O [Tq, Dv] = P [Tq, Tk] V [Tk, Dv] */
    if (t)
        axpy_mm(false, a->Tq, a->Dv, a->Tk, pd, a->Tk, 1, vh, a->vs[2], o, a->os[2]);
    else
        cf__gemm(false, a->Tq, a->Dv, a->Tk, pd, a->Tk, 1, vh, a->vs[2], a->vs[3], o, a->os[2], 1,
                 bt);
}

/* Heads in parallel, one thread each, when there are enough of them or they
 * are small; otherwise one head at a time with every thread inside BLIS. Either way each
 * value is computed in one fixed order. */
typedef struct {
    int nch; /* chunks of heads run in parallel; 1: heads in turn */
    int bt;  /* BLIS threads per product */
    int rt;  /* threads over the rows of a head */
} plan;

static plan plan_heads(const attn *a)
{
    int64_t BH = a->B * a->H;
    int nt = cf__threads_for(BH * a->Tq * a->Tk * (a->D + a->Dv));
    if (BH >= nt)
        return (plan){nt, 1, 1};
    if (small_scratch(a)) /* small heads never share a head's work */
        return (plan){BH > 0 ? (int)BH : 1, 1, 1};
    return (plan){1, nt, cf__threads_for(a->Tq * a->Tk)};
}

/* scratch: per chunk of heads, P * keep [Tq, Tk] when there is dropout,
 * then small_scratch's floats. */
static void train_forward(const attn *a, float *P, const uint8_t *keep, float kscale, float *O,
                          float *scratch, plan pl)
{
    int64_t BH = a->B * a->H, TT = a->Tq * a->Tk, ts = small_scratch(a);
    int64_t per = (keep ? TT : 0) + ts;
#pragma omp parallel for num_threads(pl.nch) schedule(static)
    for (int c = 0; c < pl.nch; c++) {
        float *sc = per ? scratch + c * per : NULL;
        for (int64_t hd = chunk_lo(c, pl.nch, BH); hd < chunk_lo(c + 1, pl.nch, BH); hd++)
            head_forward(a, hd, P, keep, kscale, O, keep ? sc : NULL,
                         ts ? sc + (keep ? TT : 0) : NULL, pl.bt, pl.rt);
    }
}

/* ---- Inference path ---- */

/* Rows i0 .. i0+nq of head hd: o [nq, Dv] (rows os[2] apart) =
 * softmax(scores) V, folding in BLOCK_K keys at a time. s holds
 * [BLOCK_Q, BLOCK_K] scores, m and l BLOCK_Q running maxima and sums. */
static void flash_block(const attn *a, int64_t hd, int64_t i0, int64_t nq, float *o, float *s,
                        float *m, float *l)
{
    int64_t b = hd / a->H, h = hd % a->H;
    const float *qh = a->q + b * a->qs[0] + h * a->qs[1] + i0 * a->qs[2];
    const float *kh = a->k + b * a->ks[0] + h * a->ks[1];
    const float *vh = a->v + b * a->vs[0] + h * a->vs[1];
    int64_t ors = a->os[2];
    for (int64_t r = 0; r < nq; r++) {
        m[r] = -INFINITY, l[r] = 0;
        memset(o + r * ors, 0, sizeof(float) * a->Dv);
    }
    /* Causal: keys past the block's last query are masked for all of it. */
    int64_t kend = a->causal && i0 + nq < a->Tk ? i0 + nq : a->Tk;
    for (int64_t j0 = 0; j0 < kend; j0 += BLOCK_K) {
        int64_t nk = kend - j0 < BLOCK_K ? kend - j0 : BLOCK_K;
        /* S [nq, nk] = Q rows [nq, D] K^T [D, nk] */
        cf__gemm(false, nq, nk, a->D, qh, a->qs[2], a->qs[3], kh + j0 * a->ks[2], a->ks[3],
                 a->ks[2], s, nk, 1, 1);
        for (int64_t r = 0; r < nq; r++) {
            float *sr = s + r * nk, *orow = o + r * ors;
            float mx = score_row(a, b, h, i0 + r, j0, nk, sr);
            float mnew = mx > m[r] || mx != mx ? mx : m[r]; /* NaN sticks */
            if (mnew == -INFINITY) {
                /* Nothing visible yet: this block adds nothing. */
                memset(sr, 0, sizeof(float) * nk);
                continue;
            }
            float sum = exp_sum(sr, nk, mnew);
            if (mnew != m[r]) {
                float corr = cf__exp_le0(m[r] - mnew);
                l[r] *= corr;
                for (int64_t d = 0; d < a->Dv; d++)
                    orow[d] *= corr;
                m[r] = mnew;
            }
            l[r] += sum;
        }
        /* O [nq, Dv] += exp(S - m) [nq, nk] V rows [nk, Dv] */
        cf__gemm(true, nq, a->Dv, nk, s, nk, 1, vh + j0 * a->vs[2], a->vs[2], a->vs[3], o, ors, 1,
                 1);
    }
    for (int64_t r = 0; r < nq; r++) {
        float inv = l[r] != 0 ? 1.0f / l[r] : 0.0f; /* NaN stays NaN */
        for (int64_t d = 0; d < a->Dv; d++)
            o[r * ors + d] *= inv;
    }
}

static bool flash_forward(const attn *a, float *O)
{
    int64_t nqb = (a->Tq + BLOCK_Q - 1) / BLOCK_Q, ntask = a->B * a->H * nqb;
    int64_t nch = chunks_for(a->B * a->H * a->Tq * a->Tk * (a->D + a->Dv), ntask);
    int64_t per = BLOCK_Q * BLOCK_K + 2 * BLOCK_Q;
    float *scratch = cf__arena_alloc("cf_attention", sizeof(float) * per * nch);
    if (!scratch)
        return false;
#pragma omp parallel for num_threads(nch) schedule(static)
    for (int64_t c = 0; c < nch; c++) {
        float *s = scratch + c * per, *m = s + BLOCK_Q * BLOCK_K, *l = m + BLOCK_Q;
        /* Round robin: under a causal mask later query blocks cost more. */
        for (int64_t t = c; t < ntask; t += nch) {
            int64_t hd = t / nqb, i0 = (t % nqb) * BLOCK_Q;
            int64_t nq = a->Tq - i0 < BLOCK_Q ? a->Tq - i0 : BLOCK_Q;
            flash_block(a, hd, i0, nq, out_head(a, O, hd) + i0 * a->os[2], s, m, l);
        }
    }
    return true;
}

/* Few queries (a decoding step): per query row, scores by dot products, the
 * softmax, then o = sum of p_j v_j. No product is worth a BLIS call or a
 * [Tq, Tk] block here, and rows of keys and values are read once. */
#define SMALL_Q 4

static bool small_fits(const attn *a)
{
    return a->Tq <= SMALL_Q && a->qs[3] == 1 && a->ks[3] == 1 && a->vs[3] == 1;
}

/* s[j] = q . k_j for n keys, rows ksr apart, each summed as eight partial
 * sums (l mod 8) and a fixed tree. */
CF_ROW_KERNEL void row_dots(int64_t n, int64_t D, const float *q, const float *k, int64_t ksr,
                            float *s)
{
    for (int64_t j = 0; j < n; j++) {
        const float *kj = k + j * ksr;
        float acc[8] = {0};
        int64_t l = 0;
        for (; l + 8 <= D; l += 8)
            for (int t = 0; t < 8; t++)
                acc[t] += q[l + t] * kj[l + t];
        for (; l < D; l++)
            acc[l % 8] += q[l] * kj[l];
        s[j] = cf__lanes8_total(acc);
    }
}

/* o [Dv] = sum over j < n of (s[j] * inv) v_j, rows vsr apart. */
CF_ROW_KERNEL void row_mix(int64_t n, int64_t Dv, const float *s, float inv, const float *v,
                           int64_t vsr, float *o)
{
    memset(o, 0, sizeof(float) * Dv);
    for (int64_t j = 0; j < n; j++) {
        float p = s[j] * inv;
        const float *vj = v + j * vsr;
        for (int64_t d = 0; d < Dv; d++)
            o[d] += p * vj[d];
    }
}

/* Row i of head hd into o [Dv]; s holds Tk scores. */
static void small_row(const attn *a, int64_t hd, int64_t i, float *o, float *s)
{
    int64_t b = hd / a->H, h = hd % a->H;
    const float *qi = a->q + b * a->qs[0] + h * a->qs[1] + i * a->qs[2];
    const float *kh = a->k + b * a->ks[0] + h * a->ks[1];
    const float *vh = a->v + b * a->vs[0] + h * a->vs[1];
    int64_t kend = a->causal && i + 1 < a->Tk ? i + 1 : a->Tk;
    row_dots(kend, a->D, qi, kh, a->ks[2], s);
    float mx = score_row(a, b, h, i, 0, a->Tk, s);
    if (mx == -INFINITY) {
        memset(o, 0, sizeof(float) * a->Dv);
        return;
    }
    float inv = 1.0f / exp_sum(s, kend, mx);
    row_mix(kend, a->Dv, s, inv, vh, a->vs[2], o);
}

static bool small_forward(const attn *a, float *O)
{
    int64_t rows = a->B * a->H * a->Tq;
    int64_t nch = chunks_for(rows * a->Tk * (a->D + a->Dv), rows);
    float *scratch = cf__arena_alloc("cf_attention", sizeof(float) * a->Tk * nch);
    if (!scratch)
        return false;
#pragma omp parallel for num_threads(nch) schedule(static)
    for (int64_t c = 0; c < nch; c++)
        for (int64_t r = chunk_lo(c, nch, rows); r < chunk_lo(c + 1, nch, rows); r++) {
            int64_t hd = r / a->Tq, i = r % a->Tq;
            small_row(a, hd, i, out_head(a, O, hd) + i * a->os[2], scratch + c * a->Tk);
        }
    return true;
}

/* ---- Backward ----
 * With keep the scaled dropout mask and P' = P * keep, O = P' V, so
 *   dV = P'^T dO,  dP = (dO V^T) * keep,
 *   dS = P * (dP - rowsum(dP * P))   (the softmax backward),
 *   dQ = scale * dS K,  dK = scale * dS^T Q,  dmask = dS. */

typedef struct {
    float *gq, *gk, *gv; /* NULL when not wanted */
    const int64_t *gqs, *gks, *gvs;
    float *gmask; /* dS [B, H, Tq, Tk] for the mask, or NULL */
} grads;

/* pd and ds: [Tq, Tk] scratch; t, when not NULL, small_scratch's transpose
 * scratch, and the products skip BLIS. */
static void head_backward(const attn *a, int64_t hd, const float *P, const uint8_t *keep,
                          float kscale, const float *dO, const grads *g, float *pd, float *ds,
                          float *t, int bt, int rt)
{
    int64_t b = hd / a->H, h = hd % a->H, TT = a->Tq * a->Tk, Tk = a->Tk;
    const float *qh = a->q + b * a->qs[0] + h * a->qs[1];
    const float *kh = a->k + b * a->ks[0] + h * a->ks[1];
    const float *vh = a->v + b * a->vs[0] + h * a->vs[1];
    const float *p = P + hd * TT;
    const uint8_t *kp = keep ? keep + hd * TT : NULL;
    dO += hd * a->Tq * a->Dv;
    if (g->gv) {
        const float *w = p;
        if (kp) {
            apply_keep(pd, p, kp, kscale, TT);
            w = pd;
        }
        /* dV [Tk, Dv] += P'^T [Tk, Tq] dO [Tq, Dv] */
        float *gv = g->gv + b * g->gvs[0] + h * g->gvs[1];
        if (t)
            axpy_mm(true, Tk, a->Dv, a->Tq, w, 1, Tk, dO, a->Dv, gv, g->gvs[2]);
        else
            cf__gemm(true, Tk, a->Dv, a->Tq, w, 1, Tk, dO, a->Dv, 1, gv, g->gvs[2], g->gvs[3], bt);
    }
    if (!g->gq && !g->gk && !g->gmask)
        return;
    /* dP [Tq, Tk] = dO [Tq, Dv] V^T [Dv, Tk] */
    if (t) {
        transpose_into(t, vh, Tk, a->Dv, a->vs[2], 1);
        axpy_mm(false, a->Tq, Tk, a->Dv, dO, a->Dv, 1, t, Tk, ds, Tk);
    } else {
        cf__gemm(false, a->Tq, Tk, a->Dv, dO, a->Dv, 1, vh, a->vs[3], a->vs[2], ds, Tk, 1, bt);
    }
    float *gm = g->gmask ? g->gmask + hd * TT : NULL;
#pragma omp parallel for num_threads(rt) schedule(static)
    for (int64_t i = 0; i < a->Tq; i++) {
        float *r = ds + i * Tk;
        const float *pr = p + i * Tk;
        if (kp)
            for (int64_t j = 0; j < Tk; j++)
                r[j] *= (float)kp[i * Tk + j] * kscale;
        float dot = 0;
        for (int64_t j = 0; j < Tk; j++)
            dot += r[j] * pr[j];
        for (int64_t j = 0; j < Tk; j++)
            r[j] = pr[j] * (r[j] - dot);
        if (gm)
            for (int64_t j = 0; j < Tk; j++)
                gm[i * Tk + j] = r[j];
        for (int64_t j = 0; j < Tk; j++)
            r[j] *= a->scale;
    }
    /* dQ [Tq, D] += dS [Tq, Tk] K [Tk, D] */
    float *gq = g->gq ? g->gq + b * g->gqs[0] + h * g->gqs[1] : NULL;
    if (gq && t)
        axpy_mm(true, a->Tq, a->D, Tk, ds, Tk, 1, kh, a->ks[2], gq, g->gqs[2]);
    else if (gq)
        cf__gemm(true, a->Tq, a->D, Tk, ds, Tk, 1, kh, a->ks[2], a->ks[3], gq, g->gqs[2], g->gqs[3],
                 bt);
    /* dK [Tk, D] += dS^T [Tk, Tq] Q [Tq, D] */
    float *gk = g->gk ? g->gk + b * g->gks[0] + h * g->gks[1] : NULL;
    if (gk && t)
        axpy_mm(true, Tk, a->D, a->Tq, ds, 1, Tk, qh, a->qs[2], gk, g->gks[2]);
    else if (gk)
        cf__gemm(true, Tk, a->D, a->Tq, ds, 1, Tk, qh, a->qs[2], a->qs[3], gk, g->gks[2], g->gks[3],
                 bt);
}

static cf_status attention_backward(cf_tensor *out)
{
    cf_tensor *q = out->src[0], *k = out->src[1], *v = out->src[2];
    cf_tensor *mask = out->nsrc > 3 ? out->src[3] : NULL;
    const float *P = out->saved[0]->data;
    const uint8_t *keep = out->saved[1] ? out->saved[1]->data : NULL;
    attn a;
    attn_init(&a, q, k, v, out->fparam[0]);
    cf_tensor *gq = cf_grad_for(q), *gk = cf_grad_for(k), *gv = cf_grad_for(v);
    cf_tensor *gmask = mask ? cf_grad_for(mask) : NULL;
    if (cf__failed())
        return cf_error();
    int64_t BH = a.B * a.H, TT = a.Tq * a.Tk;
    cf_tensor *dS = NULL; /* [B, H, Tq, Tk] */
    if (gmask) {
        dS = cf__alloc("backward", CF_F32, 4, (const int64_t[]){a.B, a.H, a.Tq, a.Tk});
        if (!dS)
            return cf_error();
    }
    grads g = {gq ? gq->data : NULL,   gk ? gk->data : NULL,   gv ? gv->data : NULL,
               gq ? gq->stride : NULL, gk ? gk->stride : NULL, gv ? gv->stride : NULL,
               dS ? dS->data : NULL};
    plan pl = plan_heads(&a);
    /* Per chunk: dP/dS, P' when there is dropout, the small heads' transpose
     * scratch. The gradients are contiguous, as small heads need. */
    int64_t ts = small_scratch(&a), per = TT * (keep ? 2 : 1) + ts;
    float *scratch = cf__arena_alloc("backward", sizeof(float) * per * pl.nch);
    if (!scratch)
        return cf_error();
    const float *dO = out->grad->data;
#pragma omp parallel for num_threads(pl.nch) schedule(static)
    for (int c = 0; c < pl.nch; c++) {
        float *ds = scratch + c * per, *pd = keep ? ds + TT : NULL;
        float *t = ts ? ds + TT * (keep ? 2 : 1) : NULL;
        for (int64_t hd = chunk_lo(c, pl.nch, BH); hd < chunk_lo(c + 1, pl.nch, BH); hd++)
            head_backward(&a, hd, P, keep, out->fparam[1], dO, &g, pd, ds, t, pl.bt, pl.rt);
    }
    if (gmask)
        cf__sum_to(gmask, dS, 1.0, true);
    return cf_error();
}

static const cf_op attention_op = {"attention", attention_backward};

/* ---- Entry ---- */

static bool check_shapes(const cf_tensor *q, const cf_tensor *k, const cf_tensor *v,
                         const cf_tensor *mask)
{
    char sq[CF_SHAPE_BUF], sk[CF_SHAPE_BUF], sv[CF_SHAPE_BUF], sm[CF_SHAPE_BUF];
    bool bad = q->ndim != 4 || k->ndim != 4 || v->ndim != 4 || k->shape[0] != q->shape[0] ||
               v->shape[0] != q->shape[0] || k->shape[1] != q->shape[1] ||
               v->shape[1] != q->shape[1] || k->shape[3] != q->shape[3] ||
               v->shape[2] != k->shape[2];
    if (bad) { /* formatted only then: a decoding step checks thousands of times */
        cf_shape_str(q, sq, sizeof sq);
        cf_shape_str(k, sk, sizeof sk);
        cf_shape_str(v, sv, sizeof sv);
    }
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4) {
        cf__error(CF_ERR_SHAPE, "cf_attention: q %s, k %s, v %s must be 4-D [B, H, T, D]", sq, sk,
                  sv);
        return false;
    }
    if (k->shape[0] != q->shape[0] || v->shape[0] != q->shape[0] || k->shape[1] != q->shape[1] ||
        v->shape[1] != q->shape[1]) {
        cf__error(CF_ERR_SHAPE, "cf_attention: batch and head sizes differ: q %s, k %s, v %s", sq,
                  sk, sv);
        return false;
    }
    if (k->shape[3] != q->shape[3]) {
        cf__error(CF_ERR_SHAPE, "cf_attention: q %s and k %s differ in size D", sq, sk);
        return false;
    }
    if (v->shape[2] != k->shape[2]) {
        cf__error(CF_ERR_SHAPE, "cf_attention: k %s and v %s differ in the number of keys", sk, sv);
        return false;
    }
    if (!mask)
        return true;
    if (mask->dtype != CF_BOOL && mask->dtype != CF_F32) {
        cf__error(CF_ERR_DTYPE, "cf_attention: mask must be bool or float32, got %s",
                  cf_dtype_name(mask->dtype));
        return false;
    }
    int64_t full[4] = {q->shape[0], q->shape[1], q->shape[2], k->shape[2]};
    bool fits = mask->ndim <= 4;
    for (int i = 0; fits && i < mask->ndim; i++) {
        int64_t s = mask->shape[mask->ndim - 1 - i];
        fits = s == 1 || s == full[3 - i];
    }
    if (!fits) {
        char sf[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE, "cf_attention: mask %s does not broadcast to [B, H, Tq, Tk] = %s",
                  cf_shape_str(mask, sm, sizeof sm), cf__shape_str(4, full, sf, sizeof sf));
        return false;
    }
    return true;
}

cf_tensor *cf_attention(cf_tensor *q, cf_tensor *k, cf_tensor *v, const cf_attention_opts *opts)
{
    static const cf_attention_opts none = {0};
    if (!opts)
        opts = &none;
    if (opts->weights)
        *opts->weights = NULL;
    if (!cf_check_reserved("cf_attention", "cf_attention_opts", opts->reserved, CF_RESERVED_WORDS))
        return NULL;
    cf_tensor *src[4] = {q, k, v, opts->mask};
    if (!cf__check("cf_attention", 3, src) || !ag__need_float("cf_attention", q) ||
        !ag__need_float("cf_attention", k) || !ag__need_float("cf_attention", v) ||
        !check_shapes(q, k, v, opts->mask))
        return NULL;
    float p = opts->dropout;
    if (!(p >= 0 && p <= 1)) {
        cf__error(CF_ERR_ARG, "cf_attention: dropout probability %g outside [0, 1]", p);
        return NULL;
    }
    float scale = opts->scale != 0  ? opts->scale
                  : q->shape[3] > 0 ? 1.0f / sqrtf((float)q->shape[3])
                                    : 1.0f;
    attn a;
    attn_init(&a, q, k, v, scale);
    a.causal = opts->causal;
    cf_tensor *mask = opts->mask;
    if (mask) {
        int64_t full[4] = {a.B, a.H, a.Tq, a.Tk};
        cf__expand_strides(mask, 4, full, a.ms);
        for (int i = 0; i < 4; i++)
            a.ms[i] *= (int64_t)cf_dtype_size(mask->dtype);
        a.mask = mask->data;
        a.mask_bool = mask->dtype == CF_BOOL;
    }
    int nsrc = mask ? 4 : 3;
    bool needs_grad = false;
    for (int i = 0; i < nsrc; i++)
        needs_grad |= (src[i]->flags & CF_REQUIRES_GRAD) != 0;
    needs_grad &= cf_is_grad_enabled();

    cf_tensor *out = cf__alloc("cf_attention", CF_F32, 4, (const int64_t[]){a.B, a.Tq, a.H, a.Dv});
    if (!out)
        return NULL;
    out->shape[1] = a.H, out->shape[2] = a.Tq;
    for (int i = 0; i < 3; i++)
        out->stride[i] = a.os[i];
    out->flags |= CF__OUTPUT_UNREAD;
    /* Small heads take the training path's products, which skip BLIS, and
     * keep their weights: a few MiB at most. */
    if (!needs_grad && !opts->weights && p == 0 && (small_fits(&a) || !small_scratch(&a))) {
        if (!(small_fits(&a) ? small_forward(&a, out->data) : flash_forward(&a, out->data)))
            return NULL;
        return cf_op_record(out, &attention_op, nsrc, src);
    }

    const int64_t wshape[4] = {a.B, a.H, a.Tq, a.Tk};
    cf_tensor *P = cf__alloc("cf_attention", CF_F32, 4, wshape); /* [B, H, Tq, Tk] */
    if (!P)
        return NULL;
    cf_tensor *keep = NULL; /* bool [B, H, Tq, Tk], 1 where a weight survives dropout */
    float kscale = 1;
    if (p > 0) {
        keep = cf__alloc("cf_attention", CF_BOOL, 4, wshape);
        if (!keep)
            return NULL;
        cf__bernoulli_bytes(opts->rng, 1 - p, keep->data, cf_numel(keep));
        /* p = 1 keeps nothing; avoid 0 * inf. */
        kscale = p < 1 ? 1 / (1 - p) : 0;
    }
    plan pl = plan_heads(&a);
    int64_t per = (keep ? a.Tq * a.Tk : 0) + small_scratch(&a);
    float *scratch = NULL; /* per chunk of heads, as train_forward lays it out */
    if (per && !(scratch = cf__arena_alloc("cf_attention", sizeof(float) * per * pl.nch)))
        return NULL;
    uint64_t seq = cf__error_seq();
    train_forward(&a, P->data, keep ? keep->data : NULL, kscale, out->data, scratch, pl);
    if (cf__error_seq() != seq)
        return NULL;
    if (opts->weights)
        *opts->weights = P;
    out->saved[0] = P;
    out->saved[1] = keep;
    out->fparam[0] = scale;
    out->fparam[1] = kscale;
    return cf_op_record(out, &attention_op, nsrc, src);
}
