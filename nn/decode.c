/* Decoding helpers for autoregressive models: greedy and beam search over
 * a caller's step function, and sampling from logits. */
#include "nn/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool check_decoder(const cf_decoder *d, const char *op, int max_len, const int32_t *out)
{
    if (!d || !d->step || !out || d->vocab < 1 || max_len < 1) {
        cf_error_set(CF_ERR_ARG,
                     "%s: needs a decoder with a step function and vocab >= 1, "
                     "max_len >= 1 and an output buffer",
                     op);
        return false;
    }
    return cf_check_reserved(op, "cf_decoder", d->reserved, CF_RESERVED_WORDS);
}

cf_status cf_greedy_search(const cf_decoder *d, int max_len, int32_t *out)
{
    if (!check_decoder(d, "cf_greedy_search", max_len, out))
        return CF_ERR_ARG;
    float *logp = cf_malloc(sizeof *logp * (size_t)d->vocab);
    if (!logp) {
        cf_error_set(CF_ERR_NOMEM, "cf_greedy_search: out of memory for vocab %d", d->vocab);
        return CF_ERR_NOMEM;
    }
    int32_t last = d->bos;
    cf_status st = CF_OK;
    int t = 0;
    for (; t < max_len; t++) {
        if ((st = d->step(d->ud, &last, 1, logp)) != CF_OK)
            break;
        int best = 0;
        for (int v = 1; v < d->vocab; v++)
            if (logp[v] > logp[best])
                best = v;
        out[t] = last = best;
        if (best == d->eos) {
            t++;
            break;
        }
    }
    for (; t < max_len; t++)
        out[t] = d->pad;
    cf_free(logp);
    return st;
}

/* Beam search. Each step scores beam * vocab continuations and keeps the
 * best 2 * beam, so that up to beam of them can finish with eos while beam
 * others stay live. */

typedef struct {
    float score;
    int from, token;
} cand;

/* Inserts c into the best-first list top[0..*n) of capacity k. */
static void keep(cand *top, int *n, int k, cand c)
{
    if (*n == k && c.score <= top[k - 1].score)
        return;
    int i = *n < k ? (*n)++ : k - 1;
    while (i > 0 && top[i - 1].score < c.score) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = c;
}

static float penalty(int len, float alpha) { return powf((5.0f + (float)len) / 6.0f, alpha); }

cf_status cf_beam_search(const cf_decoder *d, int beam, float alpha, int max_len, int32_t *out)
{
    if (!check_decoder(d, "cf_beam_search", max_len, out))
        return CF_ERR_ARG;
    if (beam < 1 || !d->reorder || !isfinite(alpha)) {
        cf_error_set(CF_ERR_ARG,
                     "cf_beam_search: needs beam >= 1 (got %d), a reorder function "
                     "and a finite alpha",
                     beam);
        return CF_ERR_ARG;
    }
    int V = d->vocab, k = 2 * beam;
    int32_t *seq = cf_calloc((size_t)beam * max_len, sizeof *seq);
    int32_t *next_seq = cf_calloc((size_t)beam * max_len, sizeof *next_seq);
    int32_t *last = cf_malloc(sizeof *last * beam);
    float *score = cf_calloc(beam, sizeof *score),
          *next_score = cf_calloc(beam, sizeof *next_score);
    float *logp = cf_malloc(sizeof *logp * (size_t)beam * V);
    cand *top = cf_malloc(sizeof *top * k);
    int *from = cf_malloc(sizeof *from * beam);
    int32_t *best = cf_malloc(sizeof *best * max_len);
    cf_status st = CF_OK;
    if (!seq || !next_seq || !last || !score || !next_score || !logp || !top || !from || !best) {
        cf_error_set(CF_ERR_NOMEM, "beam search: out of memory for beam %d", beam);
        st = CF_ERR_NOMEM;
        goto done;
    }
    float best_score = -INFINITY;
    int best_len = 0, live = 1;
    last[0] = d->bos;
    for (int t = 0; t < max_len && live > 0; t++) {
        if ((st = d->step(d->ud, last, live, logp)) != CF_OK)
            goto done;
        int n = 0;
        for (int i = 0; i < live; i++)
            for (int v = 0; v < V; v++)
                keep(top, &n, k, (cand){score[i] + logp[(size_t)i * V + v], i, v});
        int next = 0;
        for (int c = 0; c < n && next < beam; c++) {
            bool ends = top[c].token == d->eos || t == max_len - 1;
            if (ends) {
                float s = top[c].score / penalty(t + 1, alpha);
                if (s > best_score) {
                    best_score = s;
                    best_len = t + 1;
                    memcpy(best, seq + (size_t)top[c].from * max_len, sizeof *best * t);
                    best[t] = top[c].token;
                }
                continue;
            }
            memcpy(next_seq + (size_t)next * max_len, seq + (size_t)top[c].from * max_len,
                   sizeof *seq * t);
            next_seq[(size_t)next * max_len + t] = top[c].token;
            next_score[next] = top[c].score;
            from[next] = top[c].from;
            last[next] = top[c].token;
            next++;
        }
        /* Stop once no live hypothesis can beat the best finished one:
         * scores only fall, and the penalty is at most that of max_len. */
        float bound =
            next ? next_score[0] / penalty(alpha >= 0 ? max_len : t + 1, alpha) : -INFINITY;
        if (next == 0 || (best_len > 0 && bound <= best_score))
            break;
        if ((st = d->reorder(d->ud, from, next)) != CF_OK)
            goto done;
        int32_t *ts = seq;
        seq = next_seq, next_seq = ts;
        float *tf = score;
        score = next_score, next_score = tf;
        live = next;
    }
    for (int t = 0; t < max_len; t++)
        out[t] = t < best_len ? best[t] : d->pad;
done:
    cf_free(seq), cf_free(next_seq), cf_free(last), cf_free(score), cf_free(next_score);
    cf_free(logp), cf_free(top), cf_free(from), cf_free(best);
    return st;
}

/* Keeps the tokens of row r that survive top-k and top-p, as probabilities
 * in p (the rest 0); returns their sum. */
static double filter_row(const float *logits, int64_t V, int64_t stride, const cf_sample_opts *o,
                         double *p, int32_t *order)
{
    double t = o->temperature > 0 ? o->temperature : 1, mx = -INFINITY;
    for (int64_t v = 0; v < V; v++)
        mx = fmax(mx, logits[v * stride] / t);
    double sum = 0;
    for (int64_t v = 0; v < V; v++)
        sum += p[v] = exp(logits[v * stride] / t - mx);
    int64_t k = o->top_k > 0 && o->top_k < V ? o->top_k : V;
    bool nucleus = o->top_p > 0 && o->top_p < 1;
    if (k == V && !nucleus)
        return sum;
    /* Partial selection sort of the k most likely tokens (ties: lower id). */
    for (int64_t v = 0; v < V; v++)
        order[v] = (int32_t)v;
    double kept = 0;
    int64_t n = 0;
    for (; n < k; n++) {
        int64_t best = n;
        for (int64_t v = n + 1; v < V; v++)
            if (p[order[v]] > p[order[best]])
                best = v;
        int32_t tmp = order[n];
        order[n] = order[best], order[best] = tmp;
        kept += p[order[n]];
        if (nucleus && kept >= o->top_p * sum) {
            n++;
            break;
        }
    }
    for (int64_t i = n; i < V; i++)
        p[order[i]] = 0;
    return kept;
}

cf_tensor *cf_sample(cf_tensor *logits, const cf_sample_opts *opts, cf_rng *g)
{
    static const cf_sample_opts none;
    const cf_sample_opts *o = opts ? opts : &none;
    if (!logits ||
        !cf_check_reserved("cf_sample", "cf_sample_opts", o->reserved, CF_RESERVED_WORDS))
        return NULL;
    if (logits->dtype != CF_F32 || logits->ndim < 1 || logits->ndim > 2 ||
        logits->shape[logits->ndim - 1] < 1) {
        char buf[64];
        cf_error_set(CF_ERR_SHAPE, "cf_sample: logits must be float [V] or [B, V], got %s %s",
                     cf_dtype_name(logits->dtype), cf_shape_str(logits, buf, sizeof buf));
        return NULL;
    }
    if (!(o->temperature >= 0) || o->top_k < 0 || !(o->top_p >= 0 && o->top_p <= 1)) {
        cf_error_set(CF_ERR_ARG,
                     "cf_sample: temperature %g must be >= 0, top_k %d >= 0 and "
                     "top_p %g in [0, 1]",
                     o->temperature, o->top_k, o->top_p);
        return NULL;
    }
    int64_t B = logits->ndim == 2 ? logits->shape[0] : 1, V = logits->shape[logits->ndim - 1];
    int64_t rs = logits->ndim == 2 ? logits->stride[0] : 0, cs = logits->stride[logits->ndim - 1];
    cf_tensor *out = cf_empty(CF_I32, logits->ndim - 1, logits->shape);
    cf_tensor *u = cf_uniform(g, 0, 1, CF_SHAPE(B));
    double *p = cf_arena_alloc(sizeof *p * (size_t)V);
    int32_t *order = cf_arena_alloc(sizeof *order * (size_t)V);
    if (!out || !u || !p || !order)
        return NULL;
    const float *x = logits->data, *ur = u->data;
    int32_t *y = out->data;
    for (int64_t b = 0; b < B; b++) {
        double total = filter_row(x + b * rs, V, cs, o, p, order);
        if (!isfinite(total) || !(total > 0)) {
            cf_error_set(CF_ERR_ARG, "cf_sample: row %lld of the logits is not finite",
                         (long long)b);
            return NULL;
        }
        double target = ur[b] * total, acc = 0;
        int64_t pick = -1;
        for (int64_t v = 0; v < V; v++) {
            if (p[v] <= 0)
                continue;
            pick = v;
            if ((acc += p[v]) > target)
                break;
        }
        y[b] = (int32_t)pick;
    }
    return out;
}
