/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC 2011). Element i of a draw uses counter (offset + i / 4, seed), so
 * the values do not depend on how the work is split over threads. */
#include "tensor/internal.h"

#include <math.h>

static cf_rng global_rng;

typedef struct {
    uint32_t v[4];
} u32x4;

static u32x4 philox(uint64_t counter, uint64_t key64)
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key64, k1 = (uint32_t)(key64 >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return (u32x4){{c0, c1, c2, c3}};
}

/* A float in [0, 1) from the top 24 bits. */
static float unit(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

void cf_rng_init(cf_rng *g, uint64_t seed)
{
    g->seed = seed;
    g->offset = 0;
}

void cf_manual_seed(uint64_t seed) { cf_rng_init(&global_rng, seed); }

typedef enum { UNIFORM, NORMAL, BERNOULLI } dist;

/* Fills contiguous d[0..n) (or, for BERNOULLI, the bytes m[0..n) when m is
 * not NULL) and advances the generator. */
static void draw(cf_rng *g, dist kind, float p0, float p1, float *d, uint8_t *m, int64_t n)
{
    if (!g)
        g = &global_rng;
    uint64_t base = g->offset;
    int64_t blocks = (n + 3) / 4;
#pragma omp parallel for num_threads(cf__threads_for(n)) schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        u32x4 r = philox(base + (uint64_t)b, g->seed);
        float out[4];
        if (kind == NORMAL) {
            /* Box-Muller on both pairs; 1 - u keeps the log finite. */
            for (int j = 0; j < 4; j += 2) {
                float u1 = 1.0f - unit(r.v[j]), u2 = unit(r.v[j + 1]);
                float rad = sqrtf(-2.0f * logf(u1));
                out[j] = p0 + p1 * rad * cosf(6.2831853f * u2);
                out[j + 1] = p0 + p1 * rad * sinf(6.2831853f * u2);
            }
        } else {
            for (int j = 0; j < 4; j++) {
                float u = unit(r.v[j]);
                out[j] = kind == UNIFORM ? p0 + (p1 - p0) * u : (float)(u < p0);
            }
        }
        if (m)
            for (int j = 0; j < 4 && b * 4 + j < n; j++)
                m[b * 4 + j] = out[j] != 0.0f;
        else
            for (int j = 0; j < 4 && b * 4 + j < n; j++)
                d[b * 4 + j] = out[j];
    }
    g->offset += (uint64_t)blocks;
}

static cf_tensor *make(const char *op, cf_rng *g, dist kind, float p0, float p1,
                       int ndim, const int64_t *shape)
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

void cf_fill_normal(cf_rng *g, cf_tensor *t, float mean, float std) { fill(g, t, NORMAL, mean, std); }
