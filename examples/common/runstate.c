/* A run's state in one checkpoint; see runstate.h.
 *
 * The optimizer's state is reachable only through cf_optim_save and
 * cf_optim_load, which use a file of their own: saving goes through a
 * temporary optimizer file whose tensors and metadata are copied in under
 * "optimizer."; loading writes them back out to a temporary file for
 * cf_optim_load. The metadata keys of that file are known: "optimizer",
 * "lr", "step" and "<parameter>.step". */
#include "runstate.h"

#include "strbuf.h"

#include <cformer/io.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT        "cformer-run"
#define OPT_PREFIX    "optimizer."
#define SERIES_PREFIX "run.history."
#define KEY_MAX       640

void ex_run_init(ex_run *r, uint64_t seed)
{
    *r = (ex_run){0};
    cf_rng_init(&r->data_rng, seed);
}

void ex_run_free(ex_run *r)
{
    for (int i = 0; i < r->nseries; i++)
        free(r->series[i].v);
    r->nseries = 0;
}

ex_series *ex_run_series(ex_run *r, const char *name)
{
    for (int i = 0; i < r->nseries; i++)
        if (!strcmp(r->series[i].name, name))
            return &r->series[i];
    if (!*name || strlen(name) >= EX_SERIES_NAME || r->nseries == EX_SERIES_MAX) {
        cf_error_set(CF_ERR_ARG, "run history \"%s\": %s", name,
                     r->nseries == EX_SERIES_MAX ? "too many histories" : "empty or too long");
        return NULL;
    }
    ex_series *s = &r->series[r->nseries++];
    *s = (ex_series){0};
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

static cf_status series_push(ex_series *s, float v)
{
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 256;
        float *p = realloc(s->v, sizeof *p * (size_t)cap);
        if (!p) {
            cf_error_set(CF_ERR_NOMEM, "run history \"%s\": out of memory", s->name);
            return CF_ERR_NOMEM;
        }
        s->v = p, s->cap = cap;
    }
    s->v[s->n++] = v;
    return CF_OK;
}

cf_status ex_run_push(ex_run *r, const char *name, float v)
{
    ex_series *s = ex_run_series(r, name);
    return s ? series_push(s, v) : CF_ERR_ARG;
}

bool ex_series_fell(const ex_series *s, double *first, double *last)
{
    *first = *last = NAN;
    if (!s || s->n < 2)
        return false;
    int64_t q = s->n / 4 > 0 ? s->n / 4 : 1;
    double a = 0, b = 0;
    for (int64_t i = 0; i < q; i++)
        a += s->v[i], b += s->v[s->n - 1 - i];
    *first = a / (double)q, *last = b / (double)q;
    return *last < *first;
}

/* ---- The checkpoint's contents ---- */

/* Named tensors and metadata, gathered before one write. */
typedef struct {
    int n, cap;
    char **names;
    cf_tensor **ts;
    ex_buf meta; /* the inside of the metadata object */
    bool failed;
} bundle;

static void add(bundle *b, const char *prefix, const char *name, cf_tensor *t)
{
    if (b->failed || !t) {
        b->failed = true;
        return;
    }
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        char **names = realloc(b->names, sizeof *names * (size_t)cap);
        if (names)
            b->names = names;
        cf_tensor **ts = names ? realloc(b->ts, sizeof *ts * (size_t)cap) : NULL;
        if (!ts) {
            b->failed = true;
            return;
        }
        b->ts = ts, b->cap = cap;
    }
    size_t len = strlen(prefix) + strlen(name) + 1;
    if (!(b->names[b->n] = malloc(len))) {
        b->failed = true;
        return;
    }
    snprintf(b->names[b->n], len, "%s%s", prefix, name);
    b->ts[b->n++] = t;
}

static void meta(bundle *b, const char *prefix, const char *key, const char *value)
{
    char full[2 * KEY_MAX];
    snprintf(full, sizeof full, "%s%s", prefix, key);
    if (b->meta.len)
        ex_buf_add(&b->meta, ", ", 2);
    ex_buf_json(&b->meta, full);
    ex_buf_add(&b->meta, ": ", 2);
    ex_buf_json(&b->meta, value);
}

static cf_status bundle_write(bundle *b, const char *path)
{
    ex_buf json = {0};
    ex_buf_add(&json, "{", 1);
    ex_buf_add(&json, ex_buf_str(&b->meta), strlen(ex_buf_str(&b->meta)));
    ex_buf_add(&json, "}", 1);
    cf_status st;
    if (b->failed || b->meta.failed || json.failed) {
        if (!cf_error())
            cf_error_set(CF_ERR_NOMEM, "%s: out of memory gathering the checkpoint", path);
        st = cf_error();
    } else {
        st = cf_safetensors_save(path, b->n, (const char *const *)b->names, b->ts, json.s);
    }
    ex_buf_free(&json);
    for (int i = 0; i < b->n; i++)
        free(b->names[i]);
    free(b->names);
    free(b->ts);
    ex_buf_free(&b->meta);
    *b = (bundle){0};
    return st;
}

/* Visits every module under m with its path, as cf_module_save names
 * generators ("<path>.rng", "rng" for the root). */
typedef void (*module_fn)(const char *path, cf_module *m, void *ud);

static void walk(cf_module *m, char *path, size_t len, bool root, module_fn fn, void *ud)
{
    size_t end = len;
    if (!root && *m->name && len + strlen(m->name) + 2 < KEY_MAX) {
        end += (size_t)snprintf(path + len, KEY_MAX - len, "%s%s", len ? "." : "", m->name);
    }
    fn(path, m, ud);
    for (cf_module *c = m->first_child; c; c = c->next)
        walk(c, path, end, false, fn, ud);
    path[len] = '\0';
}

static void rng_key(char *key, const char *path)
{
    snprintf(key, KEY_MAX, "%s%srng", path, *path ? "." : "");
}

static void add_rng(const char *path, cf_module *m, void *ud)
{
    if (!m->rng)
        return;
    char key[KEY_MAX], value[64];
    rng_key(key, path);
    snprintf(value, sizeof value, "%" PRIu64 " %" PRIu64, m->rng->seed, m->rng->offset);
    meta(ud, "", key, value);
}

static void add_param(const char *name, cf_tensor *t, void *ud) { add(ud, "", name, t); }

/* The optimizer metadata keys for parameter `name`, copied from a file to
 * a bundle with a prefix added (or removed, see copy_opt_meta). */
typedef struct {
    bundle *b;
    const cf_safetensors *f;
    const char *from_prefix, *to_prefix;
} meta_copy;

static void copy_key(meta_copy *c, const char *key)
{
    char full[KEY_MAX];
    snprintf(full, sizeof full, "%s%s", c->from_prefix, key);
    const char *v = cf_safetensors_metadata(c->f, full);
    if (v)
        meta(c->b, c->to_prefix, key, v);
}

static void copy_param_step(const char *name, cf_tensor *t, void *ud)
{
    (void)t;
    char key[KEY_MAX];
    snprintf(key, sizeof key, "%s.step", name);
    copy_key(ud, key);
}

static void copy_opt_meta(bundle *b, const cf_safetensors *f, cf_module *model,
                          const char *from_prefix, const char *to_prefix)
{
    meta_copy c = {b, f, from_prefix, to_prefix};
    copy_key(&c, "optimizer");
    copy_key(&c, "lr");
    copy_key(&c, "step");
    cf_module_visit(model, copy_param_step, &c);
}

static cf_status temp_path(char *buf, size_t size, const char *path)
{
    if ((size_t)snprintf(buf, size, "%s.optim-tmp", path) >= size) {
        cf_error_set(CF_ERR_ARG, "%s: path too long", path);
        return CF_ERR_ARG;
    }
    return CF_OK;
}

cf_status ex_run_save(const ex_run *r, const char *path, cf_module *model, const cf_optim *opt,
                      const char *settings)
{
    char tmp[4096];
    cf_status st = temp_path(tmp, sizeof tmp, path);
    if (st)
        return st;
    if ((st = cf_optim_save(opt, tmp)) != CF_OK)
        return st;
    cf_safetensors *of = NULL;
    st = cf_safetensors_open(tmp, &of);
    cf_arena *scratch = cf_arena_new(0), *prev = cf_arena_use(scratch);
    bundle b = {0};
    if (!st && !scratch) {
        cf_error_set(CF_ERR_NOMEM, "%s: out of memory", path);
        st = CF_ERR_NOMEM;
    }
    if (!st) {
        cf_module_visit(model, add_param, &b);
        for (int i = 0; i < cf_safetensors_count(of); i++)
            add(&b, OPT_PREFIX, cf_safetensors_name(of, i),
                cf_safetensors_get(of, cf_safetensors_name(of, i)));
        for (int i = 0; i < r->nseries; i++)
            if (r->series[i].n > 0)
                add(&b, SERIES_PREFIX, r->series[i].name,
                    cf_from_array(r->series[i].v, 1, (int64_t[]){r->series[i].n}));
        char value[80], path_buf[KEY_MAX] = "";
        meta(&b, "", "format", FORMAT);
        snprintf(value, sizeof value, "%d", r->epoch);
        meta(&b, "", "run.epoch", value);
        snprintf(value, sizeof value, "%" PRId64, r->step);
        meta(&b, "", "run.step", value);
        snprintf(value, sizeof value, "%" PRIu64 " %" PRIu64, r->data_rng.seed, r->data_rng.offset);
        meta(&b, "", "run.data_rng", value);
        snprintf(value, sizeof value, "%.17g", r->seconds);
        meta(&b, "", "run.seconds", value);
        meta(&b, "", "run.settings", settings ? settings : "");
        walk(model, path_buf, 0, true, add_rng, &b);
        copy_opt_meta(&b, of, model, "", OPT_PREFIX);
        st = bundle_write(&b, path);
    }
    cf_safetensors_close(of);
    remove(tmp);
    cf_arena_use(prev);
    cf_arena_free(scratch);
    return st;
}

/* ---- Loading ---- */

static cf_status bad(const char *path, const char *what)
{
    cf_error_set(CF_ERR_FORMAT, "%s: %s", path, what);
    return CF_ERR_FORMAT;
}

/* "<seed> <offset>" */
static bool parse_rng(const char *s, cf_rng *g)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    g->seed = strtoull(s, &end, 10);
    if (*end != ' ' || end[1] < '0' || end[1] > '9')
        return false;
    g->offset = strtoull(end + 1, &end, 10);
    return !*end && !errno;
}

static bool parse_i64(const char *s, int64_t *v)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    *v = x;
    return !*end && !errno;
}

/* Reads the run's own part of f into *out (histories malloc'd). */
static cf_status read_run(const cf_safetensors *f, const char *path, const char *settings,
                          ex_run *out)
{
    const char *format = cf_safetensors_metadata(f, "format");
    const char *saved = cf_safetensors_metadata(f, "run.settings");
    const char *secs = cf_safetensors_metadata(f, "run.seconds");
    int64_t epoch, step;
    char *end = NULL;
    if (!format || strcmp(format, FORMAT))
        return bad(path, "not a run checkpoint (no \"format\": \"" FORMAT "\" in its metadata)");
    if (!saved || strcmp(saved, settings ? settings : "")) {
        cf_error_set(CF_ERR_ARG,
                     "%s was saved by a run with other settings, so resuming would not continue "
                     "it: saved \"%s\", now \"%s\" (use the same flags, or another --out)",
                     path, saved ? saved : "(none)", settings ? settings : "");
        return CF_ERR_ARG;
    }
    if (!parse_i64(cf_safetensors_metadata(f, "run.epoch"), &epoch) || epoch > 1000000)
        return bad(path, "metadata \"run.epoch\" is not an epoch count");
    if (!parse_i64(cf_safetensors_metadata(f, "run.step"), &step))
        return bad(path, "metadata \"run.step\" is not a step count");
    if (!parse_rng(cf_safetensors_metadata(f, "run.data_rng"), &out->data_rng))
        return bad(path, "metadata \"run.data_rng\" is not a generator state");
    out->seconds = secs ? strtod(secs, &end) : -1;
    if (!secs || end == secs || *end || !(out->seconds >= 0))
        return bad(path, "metadata \"run.seconds\" is not a duration");
    out->epoch = (int)epoch, out->step = step;
    size_t plen = strlen(SERIES_PREFIX);
    for (int i = 0; i < cf_safetensors_count(f); i++) {
        const char *name = cf_safetensors_name(f, i);
        if (strncmp(name, SERIES_PREFIX, plen))
            continue;
        cf_tensor *t = cf_safetensors_get(f, name);
        ex_series *s = t ? ex_run_series(out, name + plen) : NULL;
        if (!s)
            return cf_error();
        if (t->dtype != CF_F32 || t->ndim != 1) {
            cf_error_set(CF_ERR_FORMAT, "%s: history \"%s\" is not a float vector", path, name);
            return CF_ERR_FORMAT;
        }
        for (int64_t k = 0; k < t->shape[0]; k++)
            if (series_push(s, ((const float *)t->data)[k]))
                return CF_ERR_NOMEM;
    }
    return CF_OK;
}

typedef struct {
    const cf_safetensors *f;
    const char *path;
    cf_status st;
} presence;

/* cf_module_load without strict tolerates missing parameters; a run
 * checkpoint must hold them all. */
static void check_present(const char *name, cf_tensor *t, void *ud)
{
    (void)t;
    presence *p = ud;
    for (int i = 0; p->st == CF_OK && i < cf_safetensors_count(p->f); i++)
        if (!strcmp(cf_safetensors_name(p->f, i), name))
            return;
    if (p->st == CF_OK) {
        cf_error_set(CF_ERR_FORMAT, "%s: no tensor for the model's parameter \"%s\"", p->path,
                     name);
        p->st = CF_ERR_FORMAT;
    }
}

/* Writes the optimizer's part of f, without the prefix, to tmp. */
static cf_status extract_optimizer(const cf_safetensors *f, cf_module *model, const char *tmp)
{
    bundle b = {0};
    size_t plen = strlen(OPT_PREFIX);
    for (int i = 0; i < cf_safetensors_count(f); i++) {
        const char *name = cf_safetensors_name(f, i);
        if (!strncmp(name, OPT_PREFIX, plen))
            add(&b, "", name + plen, cf_safetensors_get(f, name));
    }
    copy_opt_meta(&b, f, model, OPT_PREFIX, "");
    return bundle_write(&b, tmp);
}

cf_status ex_run_load(ex_run *r, const char *path, cf_module *model, cf_optim *opt,
                      const char *settings)
{
    char tmp[4096];
    cf_status st = temp_path(tmp, sizeof tmp, path);
    if (st)
        return st;
    cf_safetensors *f = NULL;
    if ((st = cf_safetensors_open(path, &f)) != CF_OK)
        return st;
    cf_arena *scratch = cf_arena_new(0), *prev = cf_arena_use(scratch);
    ex_run got = {0};
    if (!scratch) {
        cf_error_set(CF_ERR_NOMEM, "%s: out of memory", path);
        st = CF_ERR_NOMEM;
    }
    if (!st)
        st = read_run(f, path, settings, &got);
    if (!st) {
        presence p = {f, path, CF_OK};
        cf_module_visit(model, check_present, &p);
        st = p.st;
    }
    if (!st && !(st = extract_optimizer(f, model, tmp))) {
        st = cf_optim_load(opt, tmp);
        remove(tmp);
    }
    if (!st)
        st = cf_module_load(model, path, false);
    cf_safetensors_close(f);
    cf_arena_use(prev);
    cf_arena_free(scratch);
    if (st) {
        ex_run_free(&got);
        return st;
    }
    ex_run_free(r);
    *r = got;
    return CF_OK;
}
