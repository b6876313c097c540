/* A sampler that cuts each epoch's global batches into one contiguous
 * slice per rank. The order depends only on the seed and the epoch, never
 * on the number of ranks. */
#include "dist/internal.h"

#include <stdlib.h>

struct cf_dist_sampler {
    int rank, size;
    int64_t n, global_batch;
    uint64_t seed;
    bool shuffle;
    int64_t epoch, batch; /* the next batch of the epoch */
    float weight;         /* share of the batch last returned */
    int64_t *order;       /* [n] this epoch's order */
};

/* GCC and Clang's 128-bit integer, which ISO C lacks (hence __extension__). */
__extension__ typedef unsigned __int128 u128;

static uint64_t splitmix(uint64_t *state)
{
    uint64_t x = (*state += 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void cf_dist_sampler_set_epoch(cf_dist_sampler *s, int64_t e)
{
    if (!s)
        return;
    s->epoch = e;
    s->batch = 0;
    for (int64_t i = 0; i < s->n; i++)
        s->order[i] = i;
    if (!s->shuffle)
        return;
    uint64_t state = s->seed ^ ((uint64_t)e * 0xD1B54A32D192ED03ull);
    for (int64_t i = s->n - 1; i > 0; i--) {
        /* A uniform draw from [0, i] by a 64x64 -> 128-bit product. */
        int64_t j = (int64_t)(((u128)splitmix(&state) * (uint64_t)(i + 1)) >> 64);
        int64_t t = s->order[i];
        s->order[i] = s->order[j];
        s->order[j] = t;
    }
}

cf_dist_sampler *cf_dist_sampler_new_for(int rank, int size, int64_t n, int64_t global_batch,
                                         uint64_t seed, bool shuffle)
{
    if (n < 1 || global_batch < 1 || size < 1 || rank < 0 || rank >= size) {
        cf_error_set(CF_ERR_ARG,
                     "cf_dist_sampler_new: %lld samples, global batch %lld, rank %d of %d",
                     (long long)n, (long long)global_batch, rank, size);
        return NULL;
    }
    cf_dist_sampler *s = calloc(1, sizeof *s);
    int64_t *order = malloc(sizeof *order * (size_t)n);
    if (!s || !order) {
        free(s);
        free(order);
        cf_error_set(CF_ERR_NOMEM, "cf_dist_sampler_new: out of memory for %lld samples",
                     (long long)n);
        return NULL;
    }
    *s = (cf_dist_sampler){.rank = rank,
                           .size = size,
                           .n = n,
                           .global_batch = global_batch,
                           .seed = seed,
                           .shuffle = shuffle,
                           .order = order};
    cf_dist_sampler_set_epoch(s, 0);
    return s;
}

cf_dist_sampler *cf_dist_sampler_new(const cf_dist *d, int64_t n, int64_t global_batch,
                                     uint64_t seed, bool shuffle)
{
    return cf_dist_sampler_new_for(cf_dist_rank(d), cf_dist_size(d), n, global_batch, seed,
                                   shuffle);
}

void cf_dist_sampler_free(cf_dist_sampler *s)
{
    if (!s)
        return;
    free(s->order);
    free(s);
}

int64_t cf_dist_sampler_batches(const cf_dist_sampler *s)
{
    return (s->n + s->global_batch - 1) / s->global_batch;
}

int64_t cf_dist_sampler_epoch(const cf_dist_sampler *s) { return s->epoch; }

int64_t cf_dist_sampler_next(cf_dist_sampler *s, int64_t *idx)
{
    int64_t start = s->batch * s->global_batch;
    if (start >= s->n)
        return -1;
    int64_t len = s->n - start < s->global_batch ? s->n - start : s->global_batch;
    int64_t lo = start + len * s->rank / s->size, hi = start + len * (s->rank + 1) / s->size;
    for (int64_t i = lo; i < hi; i++)
        idx[i - lo] = s->order[i];
    s->batch++;
    s->weight = (float)(hi - lo) / (float)len;
    return hi - lo;
}

float cf_dist_sampler_weight(const cf_dist_sampler *s) { return s->weight; }

void cf_dist_sampler_seek(cf_dist_sampler *s, int64_t steps)
{
    int64_t per = cf_dist_sampler_batches(s);
    cf_dist_sampler_set_epoch(s, steps / per);
    s->batch = steps % per;
}
