/* Beam search. Each step scores beam * vocab continuations and keeps the
 * best 2 * beam, so that up to beam of them can finish with eos while beam
 * others stay live. */
#include "zoo/beam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

cf_status zoo_beam_search(const zoo_decoder *d, int beam, float alpha, int max_len, int32_t *out)
{
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
