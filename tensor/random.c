/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC 2011). Element i of a draw uses counter (offset + i / 4, seed), so
 * the values do not depend on how the work is split over threads. */
#include "tensor/internal.h"

#include <math.h>

static cf_rng global_rng;

/* A float in [0, 1) from the top 24 bits. */
static float unit(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

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
CF_CLONES static void philox_lanes(uint64_t base, uint64_t key64, uint32_t r[4 * LANES])
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
            for (int64_t k = 0; k < ne; k++)
                m[e0 + k] = unit(r[k]) < p0;
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
