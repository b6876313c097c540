/* Checkpoints: module parameters and optimizer state as safetensors.
 *
 * A module checkpoint holds each parameter under its full name, as PyTorch's
 * state_dict does, and in the metadata the state of every generator a
 * module draws from ("<path>.rng": "<seed> <offset>") and every module's
 * settings ("<path>.config.<key>": "<value>"). An optimizer
 * checkpoint holds "<param>.momentum_buffer" or "<param>.exp_avg" and
 * "<param>.exp_avg_sq", and in the metadata the kind, lr, step count and
 * each parameter's Adam step ("<param>.step"). Loads check everything
 * before they change anything. */
#include "cformer/io.h"
#include "nn/internal.h"
#include "nn/optim.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 600

/* Records the error; returns st. */
static cf_status CF_PRINTF(2, 3) fail(cf_status st, const char *fmt, ...)
{
    char msg[2 * KEY_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cf__error(st, "%s", msg);
    return st;
}

/* ---- Writing ---- */

/* A growable list of named tensors and a metadata JSON text. */
typedef struct {
    int n, cap;
    char **names;
    cf_tensor **ts;
    char *meta;
    size_t meta_len, meta_cap;
    bool failed;
} bundle;

static void add(bundle *b, const char *name, cf_tensor *t)
{
    if (b->failed)
        return;
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        char **names = cf_realloc(b->names, sizeof *names * cap);
        if (names)
            b->names = names;
        cf_tensor **ts = cf_realloc(b->ts, sizeof *ts * cap);
        if (ts)
            b->ts = ts;
        if (!names || !ts) {
            b->failed = true;
            return;
        }
        b->cap = cap;
    }
    b->names[b->n] = cf__strdup(name);
    b->ts[b->n] = t;
    if (!b->names[b->n]) {
        b->failed = true;
        return;
    }
    b->n++;
}

static void put(bundle *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->meta_len + n + 2 > b->meta_cap) {
        size_t cap = 2 * (b->meta_len + n + 2) + 64;
        char *m = cf_realloc(b->meta, cap);
        if (!m) {
            b->failed = true;
            return;
        }
        b->meta = m;
        b->meta_cap = cap;
    }
    memcpy(b->meta + b->meta_len, s, n);
    b->meta_len += n;
    b->meta[b->meta_len] = '\0';
}

/* Appends s as a JSON string: module names may hold quotes or backslashes. */
static void put_json(bundle *b, const char *s)
{
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else if (c < 0x20)
            snprintf(esc, sizeof esc, "\\u%04x", c);
        else {
            put(b, s, 1);
            continue;
        }
        put(b, esc, strlen(esc));
    }
    put(b, "\"", 1);
}

/* Adds "key": "value" to the metadata object. */
static void meta(bundle *b, const char *key, const char *value)
{
    put(b, b->meta_len ? ", " : "{", b->meta_len ? 2 : 1);
    put_json(b, key);
    put(b, ": ", 2);
    put_json(b, value);
}

static cf_status write_bundle(bundle *b, const char *what, const char *path)
{
    meta(b, "format", "cformer");
    put(b, "}", 1);
    cf_status st;
    if (b->failed) {
        st = fail(CF_ERR_NOMEM, "%s: out of memory saving %s", what, path);
    } else {
        st = cf_safetensors_save(path, b->n, (const char *const *)b->names, b->ts, b->meta);
    }
    for (int i = 0; i < b->n; i++)
        cf_free(b->names[i]);
    cf_free(b->names);
    cf_free(b->ts);
    cf_free(b->meta);
    return st;
}

/* ---- Module checkpoints ---- */

static void rng_key(char *key, const char *path)
{
    snprintf(key, KEY_MAX, "%s%srng", path, *path ? "." : "");
}

static void add_param(const char *name, cf_tensor *t, void *ud) { add(ud, name, t); }

static void add_rng(const char *path, cf_module *m, void *ud)
{
    const cf_rng *g = m->rng;
    if (!g)
        return;
    char key[KEY_MAX], value[64];
    rng_key(key, path);
    snprintf(value, sizeof value, "%" PRIu64 " %" PRIu64, g->seed, g->offset);
    meta(ud, key, value);
}

static void setting_key(char *key, const char *path, const char *name)
{
    snprintf(key, KEY_MAX, "%s%sconfig.%s", path, *path ? "." : "", name);
}

/* A module's settings as they are visited: where they go or come from. */
typedef struct {
    const char *path; /* the module's */
    bundle *b;        /* saving */
    struct loader *l; /* loading */
} setting_visit;

static void save_setting(void *ud, const char *key, const char *value, const char *implied)
{
    (void)implied;
    setting_visit *v = ud;
    char full[KEY_MAX];
    setting_key(full, v->path, key);
    meta(v->b, full, value);
}

static void add_settings(const char *path, cf_module *m, void *ud)
{
    if (m->settings)
        m->settings(m, save_setting, &(setting_visit){.path = path, .b = ud});
}

static cf_status module_save(cf_module *m, const char *path)
{
    if (!m || !path) {
        cf__error(CF_ERR_ARG, "cf_module_save: module or path is NULL");
        return CF_ERR_ARG;
    }
    bundle b = {0};
    cf_module_visit(m, add_param, &b);
    nn__walk(m, add_rng, &b);
    nn__walk(m, add_settings, &b);
    return write_bundle(&b, "cf_module_save", path);
}

/* Parses a whole decimal unsigned number; false on anything else. */
static bool parse_u64(const char *s, const char **end, uint64_t *v)
{
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *e;
    *v = strtoull(s, &e, 10);
    *end = e;
    return errno == 0;
}

typedef struct loader {
    const cf_safetensors *f;
    const char *path;
    bool ours; /* written by cf_module_save: a missing setting is implied */
    bool strict;
    cf_load_report *report; /* NULL: not wanted */
    cf_status st;
    int n;
    cf_tensor **src; /* checked copies, in visit order */
    cf_tensor **dst;
    int nrng;
    cf_rng **rng_dst; /* generators to restore, and their states */
    cf_rng *rng_src;
} loader;

static bool in_file(const cf_safetensors *f, const char *name)
{
    for (int i = 0; i < cf_safetensors_count(f); i++)
        if (strcmp(cf_safetensors_name(f, i), name) == 0)
            return true;
    return false;
}

/* Appends a copy of name to a report list; false when out of memory. */
static bool note(char ***list, int *n, const char *name)
{
    char **grown = cf_realloc(*list, sizeof *grown * (size_t)(*n + 1));
    if (!grown)
        return false;
    *list = grown;
    if (!(grown[*n] = cf__strdup(name)))
        return false;
    (*n)++;
    return true;
}

static void check_param(const char *name, cf_tensor *t, void *ud)
{
    loader *l = ud;
    if (l->st != CF_OK)
        return;
    if (!in_file(l->f, name)) {
        cf_load_report *r = l->report;
        if (r) {
            if (!note(&r->missing, &r->nmissing, name))
                l->st = fail(CF_ERR_NOMEM, "cf_module_load: out of memory loading %s", l->path);
        } else if (l->strict) {
            l->st = fail(CF_ERR_FORMAT, "%s: parameter \"%s\" is missing", l->path, name);
        }
        return;
    }
    cf_tensor *s = cf_empty(t->dtype, t->ndim, t->shape);
    l->st = s ? cf_safetensors_read_into(l->f, name, s) : CF_ERR_NOMEM;
    if (l->st == CF_OK) {
        l->src[l->n] = s;
        l->dst[l->n++] = t;
    }
}

static void count_rng(const char *path, cf_module *m, void *ud)
{
    (void)path;
    *(int *)ud += m->rng != NULL;
}

static void check_rng(const char *path, cf_module *m, void *ud)
{
    loader *l = ud;
    cf_rng *g = m->rng;
    if (l->st != CF_OK || !g)
        return;
    char key[KEY_MAX];
    rng_key(key, path);
    const char *v = cf_safetensors_metadata(l->f, key);
    if (!v)
        return; /* e.g. a file written by PyTorch */
    cf_rng r;
    const char *e;
    if (!parse_u64(v, &e, &r.seed) || *e != ' ' || !parse_u64(e + 1, &e, &r.offset) || *e) {
        char sv[CF_SHOW_BUF];
        l->st = fail(CF_ERR_FORMAT, "%s: metadata \"%s\" is \"%s\", not a generator state", l->path,
                     key, cf__show(v, sv, sizeof sv));
        return;
    }
    l->rng_dst[l->nrng] = g;
    l->rng_src[l->nrng++] = r;
}

static void check_setting(void *ud, const char *key, const char *value, const char *implied)
{
    setting_visit *v = ud;
    loader *l = v->l;
    if (l->st != CF_OK)
        return;
    char full[KEY_MAX];
    setting_key(full, v->path, key);
    const char *saved = cf_safetensors_metadata(l->f, full);
    if (!saved && l->ours)
        saved = implied;
    if (saved && strcmp(saved, value))
        l->st = fail(CF_ERR_FORMAT,
                     "%s: the checkpoint's %s is \"%s\" but the model's is \"%s\" (metadata "
                     "\"%s\")",
                     l->path, key, saved, value, full);
}

static void check_settings(const char *path, cf_module *m, void *ud)
{
    if (m->settings)
        m->settings(m, check_setting, &(setting_visit){.path = path, .l = ud});
}

void cf_load_report_free(cf_load_report *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nmissing; i++)
        cf_free(r->missing[i]);
    for (int i = 0; i < r->nunexpected; i++)
        cf_free(r->unexpected[i]);
    cf_free(r->missing);
    cf_free(r->unexpected);
    *r = (cf_load_report){0};
}

static cf_status module_load(cf_module *m, const char *path, bool strict, cf_load_report *report)
{
    if (report)
        *report = (cf_load_report){0};
    if (!m || !path) {
        cf__error(CF_ERR_ARG, "cf_module_load: module or path is NULL");
        return CF_ERR_ARG;
    }
    cf_safetensors *f;
    cf_status st = cf_safetensors_open(path, &f);
    if (st != CF_OK)
        return st;
    /* Read and check everything into a scratch arena, then copy: a bad file
     * leaves the model as it was. */
    cf_arena *scratch = cf_arena_new(0), *prev = cf_arena_use(scratch);
    int n = cf_module_num_tensors(m), nrng = 0;
    nn__walk(m, count_rng, &nrng);
    const char *format = cf_safetensors_metadata(f, "format");
    loader l = {.f = f,
                .path = path,
                .ours = format && !strcmp(format, "cformer"),
                .strict = strict,
                .report = report};
    l.src = cf_calloc(n + 1, sizeof(cf_tensor *));
    l.dst = cf_calloc(n + 1, sizeof(cf_tensor *));
    l.rng_dst = cf_calloc(nrng + 1, sizeof(cf_rng *));
    l.rng_src = cf_calloc(nrng + 1, sizeof(cf_rng));
    if (!scratch || !l.src || !l.dst || !l.rng_dst || !l.rng_src)
        l.st = fail(CF_ERR_NOMEM, "cf_module_load: out of memory loading %s", path);
    /* Settings first: tensors of another architecture would otherwise be
     * reported as missing or unexpected names, hiding the reason. */
    nn__walk(m, check_settings, &l);
    cf_module_visit(m, check_param, &l);
    nn__walk(m, check_rng, &l);
    for (int i = 0; (strict || report) && l.st == CF_OK && i < cf_safetensors_count(f); i++) {
        const char *name = cf_safetensors_name(f, i);
        char sn[CF_SHOW_BUF];
        if (cf_module_find(m, name))
            continue;
        if (!report)
            l.st = fail(CF_ERR_FORMAT, "%s: tensor \"%s\" is not a parameter of the model", path,
                        cf__show(name, sn, sizeof sn));
        else if (!note(&report->unexpected, &report->nunexpected, name))
            l.st = fail(CF_ERR_NOMEM, "cf_module_load: out of memory loading %s", path);
    }
    /* With a report, strict mode lists every mismatch before failing. */
    if (strict && report && l.st == CF_OK) {
        char sn[CF_SHOW_BUF];
        if (report->nmissing)
            l.st = fail(CF_ERR_FORMAT, "%s: parameter \"%s\" is missing (and %d more)", path,
                        report->missing[0], report->nmissing - 1);
        else if (report->nunexpected)
            l.st =
                fail(CF_ERR_FORMAT,
                     "%s: tensor \"%s\" is not a parameter of the model (and "
                     "%d more)",
                     path, cf__show(report->unexpected[0], sn, sizeof sn), report->nunexpected - 1);
    }
    if (l.st == CF_OK) {
        for (int i = 0; i < l.n; i++)
            cf__copy(l.dst[i], l.src[i]);
        for (int i = 0; i < l.nrng; i++)
            *l.rng_dst[i] = l.rng_src[i];
    }
    cf_free(l.src);
    cf_free(l.dst);
    cf_free(l.rng_dst);
    cf_free(l.rng_src);
    cf_arena_use(prev);
    cf_arena_free(scratch);
    cf_safetensors_close(f);
    return l.st;
}

/* ---- Optimizer checkpoints ---- */

static const char *kind_name(cf_optim_kind k)
{
    return k == CF_OPTIM_SGD ? "sgd" : k == CF_OPTIM_ADAM ? "adam" : "adamw";
}

/* The name of state tensor w (0: m1, 1: m2), or NULL when o keeps none. */
static const char *state_name(const cf_optim *o, int w)
{
    if (o->kind == CF_OPTIM_SGD)
        return w == 0 && o->momentum != 0 ? "momentum_buffer" : NULL;
    return w == 0 ? "exp_avg" : "exp_avg_sq";
}

static cf_status optim_save(const cf_optim *o, const char *path)
{
    if (!o || !path) {
        cf__error(CF_ERR_ARG, "cf_optim_save: optimizer or path is NULL");
        return CF_ERR_ARG;
    }
    bundle b = {0};
    char name[KEY_MAX], value[64];
    for (int i = 0; i < o->n; i++) {
        cf_tensor *st[2] = {o->m1[i], o->m2[i]};
        for (int w = 0; w < 2; w++) {
            if (!st[w])
                continue;
            snprintf(name, sizeof name, "%s.%s", o->names[i], state_name(o, w));
            add(&b, name, st[w]);
        }
        if (o->steps[i]) {
            snprintf(name, sizeof name, "%s.step", o->names[i]);
            snprintf(value, sizeof value, "%" PRId64, o->steps[i]);
            meta(&b, name, value);
        }
    }
    meta(&b, "optimizer", kind_name(o->kind));
    snprintf(value, sizeof value, "%.9g", o->lr);
    meta(&b, "lr", value);
    snprintf(value, sizeof value, "%" PRId64, o->step);
    meta(&b, "step", value);
    return write_bundle(&b, "cf_optim_save", path);
}

static bool has_tensor(const cf_safetensors *f, const char *name)
{
    for (int i = 0; i < cf_safetensors_count(f); i++)
        if (!strcmp(cf_safetensors_name(f, i), name))
            return true;
    return false;
}

/* A step count: a whole decimal number below 2^62. */
static bool parse_count(const char *s, int64_t *v)
{
    uint64_t u;
    const char *e;
    if (!s || !parse_u64(s, &e, &u) || *e || u >= (uint64_t)1 << 62)
        return false;
    *v = (int64_t)u;
    return true;
}

/* The state read from a file, installed only when all of it is valid. */
typedef struct {
    cf_tensor **m1, **m2;
    int64_t *steps;
} optim_state;

static void state_free(optim_state *s, int n)
{
    for (int i = 0; i < n; i++) {
        cf_tensor_free(s->m1 ? s->m1[i] : NULL);
        cf_tensor_free(s->m2 ? s->m2[i] : NULL);
    }
    cf_free(s->m1);
    cf_free(s->m2);
    cf_free(s->steps);
}

/* Reads parameter i's state; returns the number of tensors read, or -1
 * with the error recorded and its status in *st. */
static int read_state(const cf_optim *o, int i, const cf_safetensors *f, const char *path,
                      optim_state *s, cf_status *st)
{
    char name[KEY_MAX];
    cf_tensor **slot[2] = {&s->m1[i], &s->m2[i]};
    int found = 0;
    for (int w = 0; w < 2; w++) {
        if (!state_name(o, w))
            continue;
        snprintf(name, sizeof name, "%s.%s", o->names[i], state_name(o, w));
        if (!has_tensor(f, name))
            continue;
        const cf_tensor *p = o->params[i];
        *slot[w] = cf_tensor_new(CF_F32, p->ndim, p->shape);
        *st = *slot[w] ? cf_safetensors_read_into(f, name, *slot[w]) : CF_ERR_NOMEM;
        if (*st != CF_OK)
            return -1;
        found++;
    }
    if (o->kind == CF_OPTIM_SGD)
        return found;
    snprintf(name, sizeof name, "%s.step", o->names[i]);
    const char *v = cf_safetensors_metadata(f, name);
    if (v && !parse_count(v, &s->steps[i])) {
        *st = fail(CF_ERR_FORMAT, "%s: metadata \"%s\" is not a step count", path, name);
        return -1;
    }
    /* Adam keeps both moments and a step count from the first update on. */
    if (found != (s->steps[i] > 0 ? 2 : 0)) {
        *st = fail(CF_ERR_FORMAT, "%s: incomplete Adam state for parameter \"%s\"", path,
                   o->names[i]);
        return -1;
    }
    return found;
}

static cf_status optim_load(cf_optim *o, const char *path)
{
    if (!o || !path) {
        cf__error(CF_ERR_ARG, "cf_optim_load: optimizer or path is NULL");
        return CF_ERR_ARG;
    }
    cf_safetensors *f;
    cf_status st = cf_safetensors_open(path, &f);
    if (st != CF_OK)
        return st;
    const char *kind = cf_safetensors_metadata(f, "optimizer");
    const char *lr_text = cf_safetensors_metadata(f, "lr");
    int64_t step;
    char *end = NULL;
    float lr = lr_text ? strtof(lr_text, &end) : 0;
    optim_state s = {cf_calloc(o->n + 1, sizeof(cf_tensor *)),
                     cf_calloc(o->n + 1, sizeof(cf_tensor *)),
                     cf_calloc(o->n + 1, sizeof(int64_t))};
    if (!kind) {
        st = fail(CF_ERR_FORMAT, "%s: not an optimizer checkpoint", path);
    } else if (strcmp(kind, kind_name(o->kind))) {
        char sk[CF_SHOW_BUF];
        st = fail(CF_ERR_FORMAT, "%s: a checkpoint of a %s optimizer cannot be loaded into %s",
                  path, cf__show(kind, sk, sizeof sk), kind_name(o->kind));
    } else if (!lr_text || end == lr_text || *end || !(lr >= 0)) {
        st = fail(CF_ERR_FORMAT, "%s: metadata \"lr\" is not a learning rate", path);
    } else if (!parse_count(cf_safetensors_metadata(f, "step"), &step)) {
        st = fail(CF_ERR_FORMAT, "%s: metadata \"step\" is not a step count", path);
    } else if (!s.m1 || !s.m2 || !s.steps) {
        st = fail(CF_ERR_NOMEM, "cf_optim_load: %s: out of memory", path);
    }
    int found = 0;
    for (int i = 0; st == CF_OK && i < o->n; i++) {
        int k = read_state(o, i, f, path, &s, &st);
        found += k > 0 ? k : 0;
    }
    /* Every tensor must be the state of one of o's parameters: anything else
     * means the optimizer was made for another model. */
    for (int i = 0; st == CF_OK && found < cf_safetensors_count(f) && i < cf_safetensors_count(f);
         i++) {
        const char *name = cf_safetensors_name(f, i);
        bool known = false;
        for (int j = 0; !known && j < o->n; j++) {
            size_t len = strlen(o->names[j]);
            for (int w = 0; !known && w < 2; w++)
                known = state_name(o, w) && !strncmp(name, o->names[j], len) && name[len] == '.' &&
                        !strcmp(name + len + 1, state_name(o, w));
        }
        char sn[CF_SHOW_BUF];
        if (!known)
            st = fail(CF_ERR_FORMAT,
                      "%s: tensor \"%s\" is not the state of a parameter of this optimizer", path,
                      cf__show(name, sn, sizeof sn));
    }
    if (st == CF_OK) {
        optim_state old = {o->m1, o->m2, o->steps};
        o->m1 = s.m1;
        o->m2 = s.m2;
        o->steps = s.steps;
        s = old;
        cf_optim_set_lr(o, lr);
        o->step = step;
    }
    state_free(&s, o->n);
    cf_safetensors_close(f);
    return st;
}

cf_status cf_module_save(cf_module *m, const char *path)
{
    cf_error_frame saved;
    cf_error_enter(&saved);
    return cf_error_leave(&saved, module_save(m, path));
}

cf_status cf_module_load(cf_module *m, const char *path, bool strict)
{
    return cf_module_load_report(m, path, strict, NULL);
}

cf_status cf_module_load_report(cf_module *m, const char *path, bool strict, cf_load_report *report)
{
    cf_error_frame saved;
    cf_error_enter(&saved);
    return cf_error_leave(&saved, module_load(m, path, strict, report));
}

cf_status cf_optim_save(const cf_optim *o, const char *path)
{
    cf_error_frame saved;
    cf_error_enter(&saved);
    return cf_error_leave(&saved, optim_save(o, path));
}

cf_status cf_optim_load(cf_optim *o, const char *path)
{
    cf_error_frame saved;
    cf_error_enter(&saved);
    return cf_error_leave(&saved, optim_load(o, path));
}
