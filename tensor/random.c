/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC 2011). Element i of a draw uses counter (offset + i / 4, seed), so
 * the values do not depend on how the work is split over threads. */
#include "tensor/internal.h"
#include "tensor/vexp.h"

#include <math.h>

static cf_rng global_rng;

/* A float in [0, 1) from the top 24 bits. They convert as a signed integer,
 * one vector instruction, where an unsigned one takes several. */
static inline float unit(uint32_t x) { return (float)(int32_t)(x >> 8) * (1.0f / 16777216.0f); }

void cf_rng_init(cf_rng *g, uint64_t seed)
{
    g->seed = seed;
    g->offset = 0;
}

void cf_manual_seed(uint64_t seed) { cf_rng_init(&global_rng, seed); }

typedef enum { UNIFORM, NORMAL, BERNOULLI } dist;

/* Counters drawn together: philox's rounds run over arrays of LANES so that
 * they vectorise (the 32 x 32 -> 64-bit products included). */
#define LANES 16

/* r[4 i + j] = word j of Philox4x32-10 of counter base + i under key64,
 * for i < LANES: the words in the order elements take them. */
static void philox_plain(uint64_t base, uint64_t key64, uint32_t r[4 * LANES])
{
    uint32_t c0[LANES], c1[LANES], c2[LANES], c3[LANES];
    for (int i = 0; i < LANES; i++) {
        uint64_t ctr = base + (uint64_t)i;
        c0[i] = (uint32_t)ctr, c1[i] = (uint32_t)(ctr >> 32), c2[i] = c3[i] = 0;
    }
    uint32_t k0 = (uint32_t)key64, k1 = (uint32_t)(key64 >> 32);
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < LANES; i++) {
            uint64_t p0 = (uint64_t)0xD2511F53u * c0[i];
            uint64_t p1 = (uint64_t)0xCD9E8D57u * c2[i];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[i] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[i] ^ k1;
            c1[i] = (uint32_t)p1;
            c3[i] = (uint32_t)p0;
            c0[i] = n0;
            c2[i] = n2;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    for (int i = 0; i < LANES; i++)
        r[4 * i] = c0[i], r[4 * i + 1] = c1[i], r[4 * i + 2] = c2[i], r[4 * i + 3] = c3[i];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* The same with AVX2, eight counters a register. The compiler's own
 * vectorisation of philox_plain shuffles every product through memory and
 * runs at a third of this speed; dropout spends most of its time here. */
#define AVX2 __attribute__((target("avx2")))

/* High and low words of each lane's 32 x 32-bit product a * m. */
AVX2 static inline void mulhilo(__m256i a, __m256i m, __m256i *hi, __m256i *lo)
{
    __m256i even = _mm256_mul_epu32(a, m);
    __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

/* One round over n registers of counters; several at once hide the
 * products' latency. */
#define ROUND(c0, c1, c2, c3, k0, k1)                                                              \
    do {                                                                                           \
        __m256i h0, l0, h1, l1;                                                                    \
        mulhilo(c0, m0, &h0, &l0);                                                                 \
        mulhilo(c2, m1, &h1, &l1);                                                                 \
        c0 = _mm256_xor_si256(_mm256_xor_si256(h1, c1), k0);                                       \
        c2 = _mm256_xor_si256(_mm256_xor_si256(h0, c3), k1);                                       \
        c1 = l1;                                                                                   \
        c3 = l0;                                                                                   \
    } while (0)

/* Stores the words of eight counters in counter-major order (words 0..3 of
 * counter i together). */
AVX2 static inline void store_words(uint32_t *r, __m256i c0, __m256i c1, __m256i c2, __m256i c3)
{
    __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpackhi_epi32(c0, c1);
    __m256i t2 = _mm256_unpacklo_epi32(c2, c3), t3 = _mm256_unpackhi_epi32(c2, c3);
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i *o = (__m256i *)r;
    _mm256_storeu_si256(o, _mm256_permute2x128_si256(u0, u1, 0x20));
    _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
    _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
    _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
}

AVX2 static void philox_avx2(uint64_t base, uint64_t key64, uint32_t r[4 * LANES])
{
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u),
                  m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    uint32_t lo[LANES], hi[LANES];
    for (int i = 0; i < LANES; i++) {
        uint64_t ctr = base + (uint64_t)i;
        lo[i] = (uint32_t)ctr, hi[i] = (uint32_t)(ctr >> 32);
    }
    __m256i a0 = _mm256_loadu_si256((const __m256i *)lo);
    __m256i a1 = _mm256_loadu_si256((const __m256i *)hi);
    __m256i b0 = _mm256_loadu_si256((const __m256i *)(lo + 8));
    __m256i b1 = _mm256_loadu_si256((const __m256i *)(hi + 8));
    __m256i a2 = _mm256_setzero_si256(), a3 = a2, b2 = a2, b3 = a2;
    uint32_t k0 = (uint32_t)key64, k1 = (uint32_t)(key64 >> 32);
    for (int round = 0; round < 10; round++) {
        __m256i v0 = _mm256_set1_epi32((int)k0), v1 = _mm256_set1_epi32((int)k1);
        ROUND(a0, a1, a2, a3, v0, v1);
        ROUND(b0, b1, b2, b3, v0, v1);
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    store_words(r, a0, a1, a2, a3);
    store_words(r + 32, b0, b1, b2, b3);
}

static void philox_lanes(uint64_t base, uint64_t key64, uint32_t r[4 * LANES])
{
    if (__builtin_cpu_supports("avx2"))
        philox_avx2(base, key64, r);
    else
        philox_plain(base, key64, r);
}
#else
#define philox_lanes philox_plain
#endif

/* m[k] = (the uniform of r[k]) < p, compiled for AVX2 too. */
CF_ROW_KERNEL void keep_bytes(uint8_t *m, const uint32_t *r, float p, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        m[k] = unit(r[k]) < p;
}

/* Fills contiguous d[0..n) (or, for BERNOULLI, the bytes m[0..n) when m is
 * not NULL) and advances the generator. Element e takes word e % 4 of the
 * counter offset + e / 4. */
static void draw(cf_rng *g, dist kind, float p0, float p1, float *d, uint8_t *m, int64_t n)
{
    if (!g)
        g = &global_rng;
    uint64_t base = g->offset;
    int64_t blocks = (n + 3) / 4, groups = (blocks + LANES - 1) / LANES;
#pragma omp parallel for num_threads(cf__threads_for(n)) schedule(static)
    for (int64_t q = 0; q < groups; q++) {
        uint32_t r[4 * LANES];
        philox_lanes(base + (uint64_t)(q * LANES), g->seed, r);
        int64_t e0 = q * 4 * LANES, ne = n - e0 < 4 * LANES ? n - e0 : 4 * LANES;
        if (kind == BERNOULLI && m) {
            keep_bytes(m + e0, r, p0, ne);
        } else if (kind == BERNOULLI) {
            for (int64_t k = 0; k < ne; k++)
                d[e0 + k] = (float)(unit(r[k]) < p0);
        } else if (kind == UNIFORM) {
            for (int64_t k = 0; k < ne; k++)
                d[e0 + k] = p0 + (p1 - p0) * unit(r[k]);
        } else {
            /* Box-Muller on pairs of words; 1 - u keeps the log finite. */
            for (int64_t k = 0; k < ne; k += 2) {
                float u1 = 1.0f - unit(r[k]), u2 = unit(r[k + 1]);
                float rad = sqrtf(-2.0f * logf(u1));
                d[e0 + k] = p0 + p1 * rad * cosf(6.2831853f * u2);
                if (k + 1 < ne)
                    d[e0 + k + 1] = p0 + p1 * rad * sinf(6.2831853f * u2);
            }
        }
    }
    g->offset += (uint64_t)blocks;
}

static cf_tensor *make(const char *op, cf_rng *g, dist kind, float p0, float p1, int ndim,
                       const int64_t *shape)
{
    cf_tensor *t = cf__alloc(op, CF_F32, ndim, shape);
    if (t)
        draw(g, kind, p0, p1, t->data, NULL, cf_numel(t));
    return t;
}

cf_tensor *cf_uniform(cf_rng *g, float lo, float hi, int ndim, const int64_t *shape)
{
    return make("cf_uniform", g, UNIFORM, lo, hi, ndim, shape);
}

cf_tensor *cf_normal(cf_rng *g, float mean, float std, int ndim, const int64_t *shape)
{
    return make("cf_normal", g, NORMAL, mean, std, ndim, shape);
}

cf_tensor *cf_bernoulli(cf_rng *g, float p, int ndim, const int64_t *shape)
{
    if (!(p >= 0 && p <= 1)) {
        cf__error(CF_ERR_ARG, "cf_bernoulli: probability %g outside [0, 1]", p);
        return NULL;
    }
    return make("cf_bernoulli", g, BERNOULLI, p, 0, ndim, shape);
}

void cf__bernoulli_bytes(cf_rng *g, float p, uint8_t *m, int64_t n)
{
    draw(g, BERNOULLI, p, 0, NULL, m, n);
}

/* Draws into a contiguous scratch buffer, then copies to t's layout. */
static void fill(cf_rng *g, cf_tensor *t, dist kind, float p0, float p1)
{
    if (!t || t->dtype != CF_F32) {
        cf__error(t ? CF_ERR_DTYPE : CF_ERR_ARG, "cf_fill_%s: %s%s",
                  kind == NORMAL ? "normal" : "uniform", t ? "expected float32, got " : "",
                  t ? cf_dtype_name(t->dtype) : "tensor is NULL");
        return;
    }
    if (cf_is_contiguous(t)) {
        draw(g, kind, p0, p1, t->data, NULL, cf_numel(t));
        return;
    }
    cf_tensor *tmp = cf__alloc("cf_fill_random", CF_F32, t->ndim, t->shape);
    if (!tmp)
        return;
    draw(g, kind, p0, p1, tmp->data, NULL, cf_numel(t));
    cf__copy(t, tmp);
}

void cf_fill_uniform(cf_rng *g, cf_tensor *t, float lo, float hi) { fill(g, t, UNIFORM, lo, hi); }

void cf_fill_normal(cf_rng *g, cf_tensor *t, float mean, float std)
{
    fill(g, t, NORMAL, mean, std);
}
