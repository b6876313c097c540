#include "tests/fuzz/fuzz.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    fprintf(stderr, "%s:%d: contract broken (%s): ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

static char scratch[512];

static void remove_scratch(void) { unlink(scratch); }

const char *fuzz_file(const uint8_t *data, size_t size)
{
    if (!scratch[0]) {
        const char *tmp = getenv("TMPDIR");
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : tmp && *tmp ? tmp : "/tmp";
        snprintf(scratch, sizeof scratch, "%s/cformer-fuzz-%ld.bin", dir, (long)getpid());
        atexit(remove_scratch);
    }
    int fd = open(scratch, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_ASSERT(fd >= 0, "cannot write %s", scratch);
    for (size_t done = 0; done < size;) {
        ssize_t w = write(fd, data + done, size - done);
        FUZZ_ASSERT(w > 0, "cannot write %s", scratch);
        done += (size_t)w;
    }
    close(fd);
    return scratch;
}

void fuzz_check_failure(const char *what, cf_status st, int n, const cf_status *allowed)
{
    FUZZ_ASSERT(st != CF_OK, "%s", what);
    FUZZ_ASSERT(cf_error() == st, "%s returned %s but recorded %s (%s)", what, cf_status_str(st),
                cf_status_str(cf_error()), cf_error_message());
    FUZZ_ASSERT(cf_error_message()[0] != '\0', "%s failed with no message", what);
    bool ok = false;
    for (int i = 0; i < n; i++)
        ok |= st == allowed[i];
    FUZZ_ASSERT(ok, "%s failed with an unexpected status %s: %s", what, cf_status_str(st),
                cf_error_message());
    cf_error_clear();
}

void fuzz_check_success(const char *what)
{
    FUZZ_ASSERT(cf_error() == CF_OK, "%s succeeded with an error recorded: %s", what,
                cf_error_message());
}

/* ---- Snapshots ---- */

typedef struct {
    char *name;
    void *bytes;
    size_t size;
} saved_param;

struct fuzz_snapshot {
    saved_param *p;
    int n, cap;
    cf_rng *rng;
    int nrng, rng_cap;
};

static size_t param_bytes(const cf_tensor *t)
{
    return (size_t)cf_numel(t) * cf_dtype_size(t->dtype);
}

static void take_param(const char *name, cf_tensor *t, void *ud)
{
    fuzz_snapshot *s = ud;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->p = realloc(s->p, sizeof *s->p * (size_t)s->cap);
        FUZZ_ASSERT(s->p != NULL, "out of memory");
    }
    saved_param *p = &s->p[s->n++];
    p->name = strdup(name);
    p->size = param_bytes(t);
    p->bytes = malloc(p->size ? p->size : 1);
    FUZZ_ASSERT(p->name && p->bytes && cf_is_contiguous(t), "snapshot of %s", name);
    memcpy(p->bytes, t->data, p->size);
}

/* Calls fn on every module generator under m, depth first. */
static void each_rng(cf_module *m, void (*fn)(cf_rng *, void *), void *ud)
{
    if (m->rng)
        fn(m->rng, ud);
    for (cf_module *c = m->first_child; c; c = c->next)
        each_rng(c, fn, ud);
}

static void take_rng(cf_rng *g, void *ud)
{
    fuzz_snapshot *s = ud;
    if (s->nrng == s->rng_cap) {
        s->rng_cap = s->rng_cap ? 2 * s->rng_cap : 4;
        s->rng = realloc(s->rng, sizeof *s->rng * (size_t)s->rng_cap);
        FUZZ_ASSERT(s->rng != NULL, "out of memory");
    }
    s->rng[s->nrng++] = *g;
}

fuzz_snapshot *fuzz_snapshot_take(cf_module *m)
{
    fuzz_snapshot *s = calloc(1, sizeof *s);
    FUZZ_ASSERT(s != NULL, "out of memory");
    cf_module_visit(m, take_param, s);
    each_rng(m, take_rng, s);
    return s;
}

typedef struct {
    const fuzz_snapshot *s;
    const char *what;
    int i;
} compare;

static void check_param(const char *name, cf_tensor *t, void *ud)
{
    compare *c = ud;
    FUZZ_ASSERT(c->i < c->s->n, "%s added parameter %s", c->what, name);
    const saved_param *p = &c->s->p[c->i++];
    FUZZ_ASSERT(strcmp(p->name, name) == 0 && p->size == param_bytes(t) &&
                    memcmp(p->bytes, t->data, p->size) == 0,
                "%s changed parameter %s", c->what, name);
}

static void check_rng(cf_rng *g, void *ud)
{
    compare *c = ud;
    const cf_rng *want = &c->s->rng[c->i++];
    FUZZ_ASSERT(g->seed == want->seed && g->offset == want->offset,
                "%s changed a dropout generator", c->what);
}

void fuzz_snapshot_check(const fuzz_snapshot *s, cf_module *m, const char *what)
{
    compare c = {s, what, 0};
    cf_module_visit(m, check_param, &c);
    FUZZ_ASSERT(c.i == s->n, "%s lost parameters", what);
    c.i = 0;
    each_rng(m, check_rng, &c);
}

void fuzz_snapshot_free(fuzz_snapshot *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        free(s->p[i].name);
        free(s->p[i].bytes);
    }
    free(s->p);
    free(s->rng);
    free(s);
}
