/* The G2P training run; see g2p.h.
 *
 * Data-parallel under mpirun when cformer is configured --with-mpi
 * (dist_opt.h): every rank plans the same batches and trains on its slice
 * of each, weighted by its share of the batch's target tokens; the
 * evaluations are split over the ranks and their counts summed; decisions
 * taken from clocks use the ranks' mean durations; rank 0 prints and
 * writes the checkpoint and outputs.
 *
 * B = batch, S = letters, T = target tokens (bos, phones, eos). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* qsort_r */
#endif
#include "g2p.h"

#include "dist_opt.h"
#include "progress.h"
#include "report.h"
#include "runstate.h"
#include "threads.h"

#include <cformer/cformer.h>
#include <cformer/viz.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define QUICK_TRAIN  2000 /* words */
#define QUICK_EVAL   100
#define QUICK_EPOCHS 2
#define PICTURES     4  /* test words drawn with their attention */
#define LOSS_WINDOW  50 /* at most, steps per point of the loss curve */
#define BEAM_PROBE   64 /* dev words whose beam decoding times the final one */

g2p_opts g2p_defaults(const char *out)
{
    g2p_opts o = {.c = ex_common_defaults(CMUDICT_PATH, out),
                  .min_lr = 1e-5f,
                  .weight_decay = 0.01f,
                  .beta2 = 0.98f,
                  .clip = 1,
                  .smoothing = 0.1f,
                  .alpha = 0.6f,
                  .warmup = 500,
                  .bucket = 50,
                  .beam = 5,
                  .eval_batch = 256};
    o.c.epochs = 100; /* a cap: the 60-minute budget ends a default run */
    o.c.minutes = 60;
    o.c.batch = 128;
    o.c.lr = 1e-3f;
    return o;
}

/* ---- Data ---- */

typedef struct {
    cmudict dict;
    int32_t *idx[3]; /* entry indices of each split, in file order */
    int64_t n[3];
} data;

static void data_free(data *d)
{
    for (int k = 0; k < 3; k++)
        free(d->idx[k]);
    cmudict_free(&d->dict);
}

/* Loads the dictionary and lists each split, cut to `cap` words per
 * split (train, and dev and test) when not 0. */
static cf_status data_load(data *d, const char *path, int64_t train_cap, int64_t eval_cap)
{
    *d = (data){0};
    cf_status st = cmudict_load(&d->dict, path);
    for (int k = 0; !st && k < 3; k++) {
        int64_t cap = k == CMUDICT_TRAIN ? train_cap : eval_cap;
        int64_t n = d->dict.count[k] < cap || !cap ? d->dict.count[k] : cap;
        if (!(d->idx[k] = malloc(sizeof(int32_t) * (size_t)(n ? n : 1)))) {
            cf_error_set(CF_ERR_NOMEM, "%s: out of memory for the splits", path);
            st = CF_ERR_NOMEM;
        }
    }
    for (int64_t i = 0; !st && i < d->dict.n; i++) {
        int k = d->dict.entries[i].split;
        int64_t cap = k == CMUDICT_TRAIN ? train_cap : eval_cap;
        if (!cap || d->n[k] < cap)
            d->idx[k][d->n[k]++] = (int32_t)i;
    }
    for (int k = 0; !st && k < 3; k++)
        if (!d->n[k]) {
            cf_error_set(CF_ERR_FORMAT, "%s: no %s words", path,
                         k == CMUDICT_TRAIN ? "training"
                         : k == CMUDICT_DEV ? "dev"
                                            : "test");
            st = CF_ERR_FORMAT;
        }
    if (st)
        data_free(d);
    return st;
}

static int by_length(const void *pa, const void *pb, void *ud)
{
    const cmudict_entry *e = ud;
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    int d = e[a].word_len - e[b].word_len;
    d = d ? d : e[a].phone_len - e[b].phone_len;
    return d ? d : (a > b) - (a < b);
}

/* A uniformly random permutation of a[0..n) (Fisher-Yates) from n draws of
 * g, made in the arena in use. */
static bool shuffle(cf_rng *g, void *a, size_t size, int64_t n)
{
    cf_tensor *u = cf_uniform(g, 0, 1, CF_SHAPE(n > 0 ? n : 1));
    if (!u)
        return false;
    const float *r = u->data;
    char tmp[16], *p = a;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)((double)r[i] * (double)(i + 1));
        j = j > i ? i : j;
        memcpy(tmp, p + (size_t)i * size, size);
        memcpy(p + (size_t)i * size, p + (size_t)j * size, size);
        memcpy(p + (size_t)j * size, tmp, size);
    }
    return true;
}

/* One epoch's batches: order[] gets the training words shuffled and then
 * sorted by length within runs of bucket * B; starts[0..nb) the offsets of
 * the batches, shuffled. Uses only g, so a resumed run repeats it. */
static bool plan_epoch(const data *d, cf_rng *g, int64_t B, int64_t bucket, int32_t *order,
                       int64_t *starts)
{
    int64_t n = d->n[CMUDICT_TRAIN], nb = (n + B - 1) / B, chunk = B * bucket;
    memcpy(order, d->idx[CMUDICT_TRAIN], sizeof *order * (size_t)n);
    if (!shuffle(g, order, sizeof *order, n))
        return false;
    for (int64_t s = 0; s < n; s += chunk)
        qsort_r(order + s, (size_t)(n - s < chunk ? n - s : chunk), sizeof *order, by_length,
                d->dict.entries);
    for (int64_t i = 0; i < nb; i++)
        starts[i] = i * B;
    return shuffle(g, starts, sizeof *starts, nb);
}

/* src [b, S] and tgt [b, T] (see g2p.h) for the words ent[0..b), in the
 * arena in use. */
static bool make_batch(const data *d, const int32_t *ent, int64_t b, cf_tensor **src,
                       cf_tensor **tgt)
{
    const cmudict_entry *e = d->dict.entries;
    int S = 1, T = 2;
    for (int64_t i = 0; i < b; i++) {
        S = e[ent[i]].word_len > S ? e[ent[i]].word_len : S;
        T = e[ent[i]].phone_len + 2 > T ? e[ent[i]].phone_len + 2 : T;
    }
    *src = cf_empty(CF_I32, CF_SHAPE(b, S));
    if (tgt)
        *tgt = cf_empty(CF_I32, CF_SHAPE(b, T));
    if (!*src || (tgt && !*tgt))
        return false;
    int32_t *s = (*src)->data;
    for (int64_t i = 0; i < b; i++) {
        const cmudict_entry *x = &e[ent[i]];
        for (int j = 0; j < S; j++)
            s[i * S + j] = j < x->word_len ? CMUDICT_FIRST + (x->word[j] - 'a') : CMUDICT_PAD;
        if (!tgt)
            continue;
        int32_t *t = (int32_t *)(*tgt)->data + i * T;
        t[0] = CMUDICT_BOS;
        for (int j = 0; j < x->phone_len; j++)
            t[1 + j] = CMUDICT_FIRST + x->phones[j];
        t[1 + x->phone_len] = CMUDICT_EOS;
        for (int j = x->phone_len + 2; j < T; j++)
            t[j] = CMUDICT_PAD;
    }
    return true;
}

/* The decoded tokens before eos (phones as tokens). */
static int hyp_len(const int32_t *h)
{
    int n = 0;
    while (n < G2P_MAX_OUT && h[n] != CMUDICT_EOS && h[n] != CMUDICT_PAD)
        n++;
    return n;
}

/* Scores the first `limit` words of a split (0: all), decoded in batches
 * of similar length with beam width `beam` (1: greedy). */
static cf_status evaluate(const data *d, const g2p_model *m, const g2p_opts *o, int split,
                          int64_t limit, int beam, cf_arena *arena, g2p_score *sc)
{
    int64_t n = limit && limit < d->n[split] ? limit : d->n[split];
    int64_t EB = o->eval_batch;
    *sc = (g2p_score){0};
    int32_t *sorted = malloc(sizeof *sorted * (size_t)n);
    int32_t *out = malloc(sizeof *out * (size_t)(EB * G2P_MAX_OUT));
    if (!sorted || !out) {
        free(sorted), free(out);
        cf_error_set(CF_ERR_NOMEM, "%s: out of memory for evaluation", m->name);
        return CF_ERR_NOMEM;
    }
    const cmudict_entry *e = d->dict.entries;
    memcpy(sorted, d->idx[split], sizeof *sorted * (size_t)n);
    qsort_r(sorted, (size_t)n, sizeof *sorted, by_length, (void *)e);
    cf_status st = CF_OK;
    int64_t lo, hi;
    dopt_range(n, &lo, &hi); /* this rank's words of the sorted split */
    for (int64_t s = lo; s < hi && !st; s += EB) {
        int64_t b = hi - s < EB ? hi - s : EB;
        cf_tensor *src;
        if (!make_batch(d, sorted + s, b, &src, NULL))
            st = cf_error();
        else if (beam > 1)
            st = m->beam(m->ud, src, beam, o->alpha, G2P_MAX_OUT, out);
        else
            st = m->greedy(m->ud, src, G2P_MAX_OUT, out);
        for (int64_t i = 0; !st && i < b; i++) {
            const cmudict_entry *x = &e[sorted[s + i]];
            int32_t ref[CMUDICT_MAX_LEN];
            for (int j = 0; j < x->phone_len; j++)
                ref[j] = CMUDICT_FIRST + x->phones[j];
            const int32_t *h = out + i * G2P_MAX_OUT;
            g2p_score_add(sc, h, hyp_len(h), ref, x->phone_len);
        }
        cf_arena_reset(arena);
    }
    free(sorted);
    free(out);
    double v[5] = {(double)sc->words, (double)sc->wrong_words, (double)sc->edits,
                   (double)sc->ref_len, st ? 1 : 0};
    cf_status dst = dopt_sum(v, 5);
    if (st || dst)
        return st ? st : dst;
    if (v[4] > 0) {
        cf_error_set(CF_ERR_STATE, "%s: the evaluation failed on another rank", m->name);
        return CF_ERR_STATE;
    }
    *sc = (g2p_score){(int64_t)v[0], (int64_t)v[1], (int64_t)v[2], (int64_t)v[3]};
    return CF_OK;
}

/* ---- Pictures ---- */

/* The mean loss over windows of LOSS_WINDOW steps against epochs. */
static cf_status plot_loss(const char *path, const ex_series *loss, int64_t steps_per_epoch,
                           const char *name)
{
    int64_t w = loss->n / 100 < LOSS_WINDOW ? loss->n / 100 : LOSS_WINDOW;
    w = w > 1 ? w : 1;
    int64_t n = (loss->n + w - 1) / w;
    float *x = malloc(sizeof *x * (size_t)(n ? n : 1)),
          *y = malloc(sizeof *y * (size_t)(n ? n : 1));
    cf_status st = CF_ERR_NOMEM;
    if (x && y) {
        for (int64_t i = 0; i < n; i++) {
            int64_t a = i * w, b = a + w < loss->n ? a + w : loss->n;
            double s = 0;
            for (int64_t j = a; j < b; j++)
                s += loss->v[j];
            y[i] = (float)(s / (double)(b - a));
            x[i] = (float)((double)(a + b) / 2 / (double)steps_per_epoch);
        }
        char title[128];
        snprintf(title, sizeof title, "%s: training loss (mean of %lld steps)", name, (long long)w);
        cf_series s = {.label = "train loss", .x = x, .y = y, .n = (int)n};
        cf_plot_opts po = {.title = title, .xlabel = "epoch", .ylabel = "cross entropy"};
        st = cf_viz_lines(path, &s, 1, &po);
    } else {
        cf_error_set(CF_ERR_NOMEM, "%s: out of memory", path);
    }
    free(x), free(y);
    return st;
}

/* Dev WER and PER (%) after each epoch. */
static cf_status plot_dev(const char *path, const ex_series *wer, const ex_series *per,
                          const char *name)
{
    int n = (int)wer->n;
    float *x = malloc(sizeof *x * (size_t)(n ? n : 1));
    float *y = malloc(sizeof *y * (size_t)(n ? 2 * n : 1));
    cf_status st = CF_ERR_NOMEM;
    if (x && y) {
        for (int i = 0; i < n; i++) {
            x[i] = (float)(i + 1);
            y[i] = 100 * wer->v[i];
            y[n + i] = 100 * per->v[i];
        }
        char title[128];
        snprintf(title, sizeof title, "%s: dev error rates (greedy)", name);
        cf_series s[2] = {{.label = "WER %", .x = x, .y = y, .n = n},
                          {.label = "PER %", .x = x, .y = y + n, .n = n}};
        cf_plot_opts po = {.title = title, .xlabel = "epoch", .ylabel = "error rate (%)"};
        st = cf_viz_lines(path, s, 2, &po);
    } else {
        cf_error_set(CF_ERR_NOMEM, "%s: out of memory", path);
    }
    free(x), free(y);
    return st;
}

/* Test words to draw: PICTURES of 7 to 10 letters, spread over the split. */
static int pick_words(const data *d, int32_t *out)
{
    const cmudict_entry *e = d->dict.entries;
    int64_t n = d->n[CMUDICT_TEST], fit = 0;
    for (int64_t i = 0; i < n; i++)
        fit +=
            e[d->idx[CMUDICT_TEST][i]].word_len >= 7 && e[d->idx[CMUDICT_TEST][i]].word_len <= 10;
    int k = 0;
    int64_t seen = 0;
    for (int64_t i = 0; i < n && k < PICTURES; i++) {
        int32_t w = d->idx[CMUDICT_TEST][i];
        if (e[w].word_len < 7 || e[w].word_len > 10)
            continue;
        if (seen++ * PICTURES >= (int64_t)k * fit)
            out[k++] = w;
    }
    for (int64_t i = 0; i < n && k < PICTURES; i++) /* too few: any words */
        out[k++] = d->idx[CMUDICT_TEST][i];
    return k;
}

/* Decodes word w greedily and draws the model's attention while it emits
 * the result: rows the phones (and the end), columns the letters. */
static cf_status draw_attention(const char *path, const data *d, const g2p_model *m, int32_t w,
                                cf_arena *arena)
{
    const cmudict_entry *e = &d->dict.entries[w];
    int32_t out[G2P_MAX_OUT];
    cf_tensor *src, *att = NULL;
    cf_status st = CF_OK;
    if (!make_batch(d, &w, 1, &src, NULL) || (st = m->greedy(m->ud, src, G2P_MAX_OUT, out)))
        return st ? st : cf_error();
    int n = hyp_len(out);
    out[n] = CMUDICT_EOS; /* an unfinished hypothesis is drawn as if it ended */
    CF_NO_GRAD { att = m->attention(m->ud, src, out, n + 1); }
    if (!att)
        return cf_error();
    const char *rows[G2P_MAX_OUT + 1], *cols[CMUDICT_MAX_LEN];
    char letters[CMUDICT_MAX_LEN][2];
    for (int i = 0; i < n; i++) {
        int p = out[i] - CMUDICT_FIRST;
        rows[i] = p >= 0 && p < CMUDICT_PHONES ? cmudict_phone_names[p] : "?";
    }
    rows[n] = "</s>";
    for (int j = 0; j < e->word_len; j++) {
        letters[j][0] = e->word[j], letters[j][1] = '\0';
        cols[j] = letters[j];
    }
    char title[160], ref[CMUDICT_MAX_LEN * 3 + 1] = "";
    for (int j = 0; j < e->phone_len; j++) {
        strcat(ref, cmudict_phone_names[e->phones[j]]);
        if (j + 1 < e->phone_len)
            strcat(ref, " ");
    }
    snprintf(title, sizeof title, "%s: \"%s\" (dictionary: %s)", m->name, e->word, ref);
    cf_heatmap_opts ho = {.title = title,
                          .row_labels = rows,
                          .col_labels = cols,
                          .xlabel = "letters",
                          .ylabel = m->attention_what,
                          .vmin = 0,
                          .vmax = 1};
    st = cf_viz_heatmap(path, att, &ho);
    cf_arena_reset(arena);
    return st;
}

/* ---- The run ---- */

static int fail(const g2p_model *m, const char *what)
{
    fprintf(stderr, "%s: %s: %s (%s)\n", m->name, what, cf_error_message(),
            cf_status_str(cf_error()));
    return 1;
}

/* One step on the words ent[0..b): loss, backward, clipping, AdamW at lr,
 * arena reset. The loss, or NAN with the error recorded. */
static float train_step(const data *d, const g2p_model *m, const g2p_opts *o, cf_optim *opt,
                        const int32_t *ent, int64_t b, float lr, cf_arena *arena)
{
    /* This rank's words [lo, hi); the loss is a mean over target tokens
     * (phones and eos), so the slice's weight is its share of them. */
    int64_t lo, hi, all = 0, mine = 0;
    dopt_range(b, &lo, &hi);
    for (int64_t i = 0; i < b; i++) {
        int64_t k = d->dict.entries[ent[i]].phone_len + 1;
        all += k;
        mine += i >= lo && i < hi ? k : 0;
    }
    double w = (double)mine / (double)all, sum = 0;
    cf_tensor *src, *tgt;
    bool ok = true;
    cf_optim_zero_grad(opt);
    if (hi > lo) {
        ok = make_batch(d, ent + lo, hi - lo, &src, &tgt);
        cf_tensor *loss = ok ? m->loss(m->ud, src, tgt, o->smoothing) : NULL;
        ok = loss && cf_backward(loss) == CF_OK;
        if (ok)
            sum = cf_item(loss) * w;
    }
    dopt_weight((float)w);
    if (ok && dopt_finish() == CF_OK && dopt_sum(&sum, 1) == CF_OK) {
        cf_clip_grad_norm(m->module, o->clip);
        cf_optim_set_lr(opt, lr);
        cf_optim_step(opt);
    }
    cf_arena_reset(arena);
    return cf_error() ? NAN : (float)sum;
}

/* The whole run's state beyond ex_run. */
typedef struct {
    const g2p_opts *o;
    const g2p_model *m;
    data d;
    ex_run run;
    cf_arena *arena;
    int64_t B, nb; /* batch, batches per epoch */
    int32_t *order;
    int64_t *starts;
    double budget; /* seconds for the whole run; 0: none */
    int epochs;
    double t_start;   /* program start */
    double prior;     /* training seconds of earlier sessions (resume) */
    double eval_secs; /* one dev evaluation, measured; < 0 before */
    double final_est; /* the final test decoding, estimated; < 0 before */
} runner;

/* The steps the run will take: all its epochs, or as many as the time left
 * allows at the pace so far (each remaining epoch also paying for a dev
 * evaluation), whichever is fewer. */
static int64_t planned_steps(const runner *r, int64_t steps_here, double train_secs, double left)
{
    int64_t total = (int64_t)r->epochs * r->nb;
    if (r->budget <= 0 || steps_here < 10 || train_secs <= 0)
        return total;
    double per_step = train_secs / (double)steps_here;
    double per_step_all = per_step + (r->eval_secs > 0 ? r->eval_secs : 0) / (double)r->nb;
    double more = left / per_step_all;
    double projected = (double)r->run.step + (more > 0 ? more : 0);
    return projected < (double)total ? (int64_t)projected : total;
}

/* The ranks' mean of a duration each measured on its own clock (x itself
 * in one process). */
static double agreed(double seconds)
{
    dopt_check(dopt_sum(&seconds, 1));
    return seconds / dopt_size();
}

int g2p_main(const g2p_opts *o, const g2p_model *m, cf_optim *opt, int argc, char **argv)
{
    dopt_init(NULL, NULL);
    if (!dopt_root() && !freopen("/dev/null", "w", stdout))
        return 1;
    runner r = {.o = o, .m = m, .eval_secs = -1, .final_est = -1, .t_start = ex_now()};
    const ex_common *c = &o->c;
    ex_tuner tune;
    ex_tuner_init(&tune, c->threads);
    int epochs = c->quick && c->epochs > QUICK_EPOCHS ? QUICK_EPOCHS : c->epochs;
    double budget = c->quick ? 0 : c->minutes * 60;
    r.budget = budget, r.epochs = epochs;
    if (data_load(&r.d, c->data, c->quick ? QUICK_TRAIN : 0, c->quick ? QUICK_EVAL : 0))
        return fail(m, "data");
    if (mkdir(c->out, 0777) != 0 && errno != EEXIST) {
        cf_error_set(CF_ERR_IO, "cannot create %s: %s", c->out, strerror(errno));
        return fail(m, "output");
    }
    char ckpt[4096], path[4096 + 64], settings[1024];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", c->out);
    snprintf(settings, sizeof settings,
             "%s; batch %d lr %g min-lr %g warmup %d wd %g beta2 %g clip %g smoothing %g bucket "
             "%d epochs %d minutes %g seed %llu%s",
             o->settings ? o->settings : "", c->batch, (double)c->lr, (double)o->min_lr, o->warmup,
             (double)o->weight_decay, (double)o->beta2, (double)o->clip, (double)o->smoothing,
             o->bucket, epochs, budget / 60, (unsigned long long)c->seed, c->quick ? " quick" : "");
    ex_run_init(&r.run, c->seed);
    if (c->resume && ex_run_load(&r.run, ckpt, m->module, opt, settings) != CF_OK)
        return fail(m, "resume");
    /* After a resume, so that each rank's dropout streams are its own. */
    if (dopt_attach(m->module))
        return fail(m, "data-parallel setup");
    r.prior = r.run.seconds;
    r.arena = cf_arena_new(0);
    r.B = c->batch;
    r.nb = (r.d.n[CMUDICT_TRAIN] + r.B - 1) / r.B;
    r.order = malloc(sizeof *r.order * (size_t)r.d.n[CMUDICT_TRAIN]);
    r.starts = malloc(sizeof *r.starts * (size_t)r.nb);
    ex_series *loss_hist = ex_run_series(&r.run, "loss");
    ex_series *wer_hist = ex_run_series(&r.run, "dev_wer");
    ex_series *per_hist = ex_run_series(&r.run, "dev_per");
    if (!r.arena || !r.order || !r.starts || !loss_hist || !wer_hist || !per_hist) {
        if (!cf_error())
            cf_error_set(CF_ERR_NOMEM, "out of memory");
        return fail(m, "setup");
    }
    cf_arena_use(r.arena);

    const cmudict *dict = &r.d.dict;
    printf("CMU dictionary %s: %lld words (%lld lines; %lld further pronunciations and %lld "
           "non-alphabetic words skipped), %d phones; split by crc32: %lld train, %lld dev, %lld "
           "test%s\n",
           c->data, (long long)dict->n, (long long)dict->lines, (long long)dict->skipped_repeats,
           (long long)dict->skipped_letters, CMUDICT_PHONES, (long long)r.d.n[CMUDICT_TRAIN],
           (long long)r.d.n[CMUDICT_DEV], (long long)r.d.n[CMUDICT_TEST],
           c->quick ? " (quick: slices)" : "");
    printf("%s: %s; %lld parameters; threads %d\n", m->name, o->settings,
           (long long)cf_module_num_params(m->module), cf_get_num_threads());
    printf("AdamW lr %g (warm-up %d steps, cosine to %g), betas (0.9, %g), weight decay %g "
           "(matrices), clip "
           "%g, label smoothing %g; batches of %lld in length buckets of %d batches (%lld a "
           "epoch); at most %d epochs",
           (double)c->lr, o->warmup, (double)o->min_lr, (double)o->beta2, (double)o->weight_decay,
           (double)o->clip, (double)o->smoothing, (long long)r.B, o->bucket, (long long)r.nb,
           epochs);
    if (budget > 0)
        printf(" or %g minutes in all", budget / 60);
    printf("\n");
    if (c->resume)
        printf("resumed from %s after epoch %d (step %lld)\n", ckpt, r.run.epoch,
               (long long)r.run.step);
    fflush(stdout);

    ex_progress prog;
    ex_progress_init(&prog, stdout, epochs, "word", 30);
    int64_t total = (int64_t)epochs * r.nb;
    int64_t last_planned = total;
    ex_progress_plan(&prog, total, r.run.step);
    double t_train = ex_now(), eval_total = 0; /* this session */
    int64_t steps_here = 0;
    bool out_of_time = false;
    char t1[32];
    for (int epoch = r.run.epoch + 1; epoch <= epochs && !out_of_time; epoch++) {
        if (!plan_epoch(&r.d, &r.run.data_rng, r.B, o->bucket, r.order, r.starts))
            return fail(m, "batches");
        cf_arena_reset(r.arena);
        for (int64_t s = 0; s < r.nb; s++) {
            double t = ex_now(), elapsed = r.prior + agreed(t - r.t_start);
            double reserve = 5 + (r.final_est >= 0 ? r.final_est : 0.1 * budget);
            double left = budget - elapsed - reserve;
            if (budget > 0 && left <= 0) {
                out_of_time = true;
                break;
            }
            int64_t planned = planned_steps(&r, steps_here, agreed(t - t_train) - eval_total, left);
            if (planned != last_planned)
                ex_progress_plan(&prog, last_planned = planned, r.run.step);
            int64_t warm = o->warmup < planned ? o->warmup : planned / 10;
            float lr = cf_lr_cosine(r.run.step + 1, warm, planned > warm ? planned : warm + 1,
                                    c->lr, o->min_lr);
            int64_t start = r.starts[s], b = r.d.n[CMUDICT_TRAIN] - start;
            b = b < r.B ? b : r.B;
            double t_step = ex_now();
            ex_tuner_begin(&tune, s);
            float loss = train_step(&r.d, m, o, opt, r.order + start, b, lr, r.arena);
            ex_tuner_end(&tune, s, ex_now() - t_step);
            if (isnan(loss) && cf_error())
                return fail(m, "training step");
            r.run.step++, steps_here++;
            if (ex_run_push(&r.run, "loss", loss))
                return fail(m, "training step");
            ex_progress_step(&prog, epoch, s + 1, r.nb, loss, b);
            if (r.run.step >= planned) {
                out_of_time = budget > 0 && s + 1 < r.nb;
                break;
            }
        }
        if (out_of_time)
            break;
        g2p_score dev;
        double t = ex_now();
        if (evaluate(&r.d, m, o, CMUDICT_DEV, 0, 1, r.arena, &dev))
            return fail(m, "dev evaluation");
        r.eval_secs = agreed(ex_now() - t);
        if (r.final_est < 0) {
            /* The final decoding: greedy and beam over the test split, at
             * the pace of greedy on dev and of beam on a few dev words. */
            g2p_score probe;
            double tb = ex_now(), beam_word = 0;
            if (o->beam > 1) {
                if (evaluate(&r.d, m, o, CMUDICT_DEV, BEAM_PROBE, o->beam, r.arena, &probe))
                    return fail(m, "beam evaluation");
                beam_word =
                    agreed(ex_now() - tb) /
                    (double)(BEAM_PROBE < r.d.n[CMUDICT_DEV] ? BEAM_PROBE : r.d.n[CMUDICT_DEV]);
            }
            r.final_est = (double)r.d.n[CMUDICT_TEST] *
                          (r.eval_secs / (double)r.d.n[CMUDICT_DEV] + beam_word);
        }
        eval_total += agreed(ex_now() - t);
        if (ex_run_push(&r.run, "dev_wer", (float)g2p_wer(&dev)) ||
            ex_run_push(&r.run, "dev_per", (float)g2p_per(&dev)))
            return fail(m, "history");
        r.run.epoch = epoch;
        r.run.seconds = r.prior + agreed(ex_now() - r.t_start);
        if (dopt_root() && ex_run_save(&r.run, ckpt, m->module, opt, settings))
            return fail(m, "checkpoint");
        char threads[96] = "";
        if (tune.trying && r.nb > 3)
            snprintf(threads, sizeof threads, "  threads %d (%.0f ms/step; %d: %.0f ms/step)",
                     tune.chosen, 1e3 * tune.ref, ex_tuner_other(&tune), 1e3 * tune.other);
        ex_progress_printf(&prog,
                           "epoch %d  dev WER %.2f%%  PER %.2f%%  (greedy, %.1f s)  elapsed %s  "
                           "checkpoint saved%s\n",
                           epoch, 100 * g2p_wer(&dev), 100 * g2p_per(&dev), r.eval_secs,
                           ex_clock(r.run.seconds, t1, sizeof t1), threads);
        if (epoch == c->stop_after) {
            ex_progress_done(&prog);
            printf("stopped after epoch %d as asked (--stop-after); continue with --resume\n",
                   epoch);
            cf_arena_use(NULL);
            cf_arena_free(r.arena);
            free(r.order), free(r.starts);
            ex_run_free(&r.run);
            data_free(&r.d);
            dopt_finalize();
            return 0;
        }
        if (r.run.step >= total)
            break;
    }
    ex_progress_done(&prog);
    double train_secs = r.prior + agreed(ex_now() - r.t_start);
    double epochs_done = (double)r.run.step / (double)r.nb;
    printf("trained %lld steps (%.2f epochs) in %s%s\n", (long long)r.run.step, epochs_done,
           ex_clock(train_secs, t1, sizeof t1), out_of_time ? ", stopped by the time budget" : "");

    g2p_score dev, test_g, test_b;
    double t = ex_now();
    if (evaluate(&r.d, m, o, CMUDICT_DEV, 0, 1, r.arena, &dev) ||
        evaluate(&r.d, m, o, CMUDICT_TEST, 0, 1, r.arena, &test_g))
        return fail(m, "evaluation");
    double tg = ex_now() - t;
    test_b = test_g;
    if (o->beam > 1 && evaluate(&r.d, m, o, CMUDICT_TEST, 0, o->beam, r.arena, &test_b))
        return fail(m, "beam evaluation");
    double tb = ex_now() - t - tg;
    printf("dev   greedy: WER %.2f%%  PER %.2f%%\n", 100 * g2p_wer(&dev), 100 * g2p_per(&dev));
    printf("test  greedy: WER %.2f%%  PER %.2f%%  (%lld words, %.1f s)\n", 100 * g2p_wer(&test_g),
           100 * g2p_per(&test_g), (long long)test_g.words, tg);
    printf("test  beam %d: WER %.2f%%  PER %.2f%%  (alpha %g, %.1f s)\n", o->beam,
           100 * g2p_wer(&test_b), 100 * g2p_per(&test_b), (double)o->alpha, tb);
    fflush(stdout);
    if (!dopt_root()) { /* rank 0 writes the outputs */
        cf_arena_use(NULL);
        cf_arena_free(r.arena);
        free(r.order), free(r.starts);
        ex_run_free(&r.run);
        data_free(&r.d);
        dopt_finalize();
        return 0;
    }

    snprintf(path, sizeof path, "%s/model.safetensors", c->out);
    if (cf_module_save(m->module, path))
        return fail(m, "saving the model");
    printf("wrote %s\n", path);
    snprintf(path, sizeof path, "%s/loss.png", c->out);
    if (plot_loss(path, loss_hist, r.nb, m->name))
        return fail(m, "loss curve");
    printf("wrote %s\n", path);
    if (wer_hist->n > 0) {
        snprintf(path, sizeof path, "%s/dev.png", c->out);
        if (plot_dev(path, wer_hist, per_hist, m->name))
            return fail(m, "dev curve");
        printf("wrote %s\n", path);
    }
    int32_t words[PICTURES];
    int nw = pick_words(&r.d, words);
    for (int i = 0; i < nw; i++) {
        snprintf(path, sizeof path, "%s/attention-%s.png", c->out, dict->entries[words[i]].word);
        if (draw_attention(path, &r.d, m, words[i], r.arena))
            return fail(m, "attention picture");
        printf("wrote %s\n", path);
    }

    int status = 0;
    if (c->quick) {
        double first, last;
        bool fell = ex_series_fell(loss_hist, &first, &last);
        printf("quick run: mean loss %.4f over the first quarter of the steps, %.4f over the "
               "last\n",
               first, last);
        if (!fell) {
            fprintf(stderr, "%s: the loss did not fall\n", m->name);
            status = 1;
        }
    }
    if (o->result) {
        g2p_result *res = o->result;
        *res = (g2p_result){.dev = dev,
                            .test_greedy = test_g,
                            .test_beam = test_b,
                            .steps = r.run.step,
                            .epochs = epochs_done,
                            .train_seconds = train_secs};
        if (loss_hist->n && (res->loss = malloc(sizeof(float) * (size_t)loss_hist->n))) {
            memcpy(res->loss, loss_hist->v, sizeof(float) * (size_t)loss_hist->n);
            res->nloss = loss_hist->n;
        }
    }
    ex_report rep;
    ex_report_init(&rep, m->name);
    ex_report_num(&rep, "test_wer", g2p_wer(&test_b));
    ex_report_num(&rep, "test_per", g2p_per(&test_b));
    ex_report_num(&rep, "test_wer_greedy", g2p_wer(&test_g));
    ex_report_num(&rep, "test_per_greedy", g2p_per(&test_g));
    ex_report_num(&rep, "dev_wer_greedy", g2p_wer(&dev));
    ex_report_num(&rep, "dev_per_greedy", g2p_per(&dev));
    ex_report_int(&rep, "beam", o->beam);
    ex_report_int(&rep, "test_words", test_g.words);
    ex_report_num(&rep, "epochs", epochs_done);
    ex_report_int(&rep, "steps", r.run.step);
    ex_report_num(&rep, "train_seconds", train_secs);
    ex_report_num(&rep, "final_loss", loss_hist->n ? loss_hist->v[loss_hist->n - 1] : NAN);
    cf_status st =
        ex_report_print(&rep, stdout, r.prior + (ex_now() - r.t_start), cf_get_num_threads(),
                        cf_module_num_params(m->module), argc, argv);
    ex_report_free(&rep);
    cf_arena_use(NULL);
    cf_arena_free(r.arena);
    free(r.order);
    free(r.starts);
    ex_run_free(&r.run);
    data_free(&r.d);
    dopt_finalize();
    if (st)
        return fail(m, "report");
    return status;
}
