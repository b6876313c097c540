#include "tests/util.h"
#include "tests/expr.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static cf_arena *arena;

void arena_setup(void)
{
    cf_error_clear();
    arena = cf_arena_new(1 << 20);
    cf_arena_use(arena);
}

void arena_teardown(void)
{
    cf_status s = cf_error();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", cf_error_message());
    cf_error_clear();
    cf_arena_free(arena);
    arena = NULL;
    ck_assert_msg(s == CF_OK, "error left recorded: %s", msg);
}

static char scratch_dir[256];

static void scratch_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch_dir, sizeof scratch_dir, "%s/cformer-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(scratch_dir) != NULL, "cannot make %s", scratch_dir);
}

/* Removes path and everything under it, read-only directories included. */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[768];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            chmod(p, 0700);
            remove_tree(p);
        } else {
            unlink(p);
        }
    }
    if (d)
        closedir(d);
    rmdir(path);
}

static void scratch_teardown(void) { remove_tree(scratch_dir); }

/* The file's tests, as registered: before main(), in no set order. */
#define MAX_TESTS 256
typedef struct {
    const TTest *t;
    test_opts o;
} registered;
static registered tests[MAX_TESTS];
static int ntests;

void test_register(const TTest *t, test_opts o)
{
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "%s: more than %d tests\n", t->file, MAX_TESTS);
        abort();
    }
    tests[ntests].t = t;
    tests[ntests++].o = o;
}

static int by_line(const void *a, const void *b)
{
    int la = ((const registered *)a)->t->line, lb = ((const registered *)b)->t->line;
    return (la > lb) - (la < lb);
}

int run_tests(bool fork)
{
    if (!ntests) {
        fputs("no tests registered\n", stderr);
        return EXIT_FAILURE;
    }
    qsort(tests, ntests, sizeof tests[0], by_line);
    /* tests/test_math.c -> "math" */
    char name[64];
    const char *base = strrchr(tests[0].t->file, '/');
    base = base ? base + 1 : tests[0].t->file;
    if (strncmp(base, "test_", 5) == 0)
        base += 5;
    snprintf(name, sizeof name, "%.*s", (int)strcspn(base, "."), base);
    Suite *s = suite_create(name);
    for (int i = 0; i < ntests; i++) {
        const TTest *t = tests[i].t;
        test_opts o = tests[i].o;
        TCase *tc = tcase_create(t->name);
        tcase_add_checked_fixture(tc, arena_setup, arena_teardown);
        if (o.scratch)
            tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
        if (o.setup || o.teardown)
            tcase_add_checked_fixture(tc, o.setup, o.teardown);
        tcase_set_timeout(tc, o.timeout ? o.timeout : 60);
        int n = o.golden ? golden_expr_count("ops.safetensors", o.golden) : o.loop;
        if (o.golden || o.loop)
            tcase_add_loop_test(tc, t, 0, n > 0 ? n : 1);
        else
            tcase_add_test(tc, t);
        suite_add_tcase(s, tc);
    }
    SRunner *sr = srunner_create(s);
    if (fork)
        srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

const char *scratch_path(const char *file)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s%s%s", scratch_dir, file ? "/" : "", file ? file : "");
    return p;
}

int scratch_count(const char *frag)
{
    DIR *d = opendir(scratch_dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, frag);
    closedir(d);
    return n;
}

unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    ck_assert_int_ge(n, 0);
    unsigned char *b = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = 0;
    *size = (size_t)n;
    return b;
}

void write_file(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

void assert_values(const cf_tensor *t, const float *want, float atol, float rtol)
{
    ck_assert_ptr_nonnull(t);
    int64_t n = cf_numel(t);
    float *got = malloc(sizeof(float) * (n ? n : 1));
    cf_copy_to(t, got);
    for (int64_t i = 0; i < n; i++) {
        float tol = atol + rtol * fabsf(want[i]);
        bool same = isinf(want[i]) ? got[i] == want[i] : fabsf(got[i] - want[i]) <= tol;
        if (!same) {
            float g = got[i];
            free(got);
            ck_abort_msg("element %lld: got %.9g, want %.9g (tolerance %.3g)", (long long)i, g,
                         want[i], tol);
        }
    }
    free(got);
}

void assert_close(const cf_tensor *t, const cf_tensor *want, float atol, float rtol)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(want);
    ck_assert_msg(cf_same_shape(t, want), "shapes differ");
    int64_t n = cf_numel(want);
    float *w = malloc(sizeof(float) * (n ? n : 1));
    cf_copy_to(want, w);
    assert_values(t, w, atol, rtol);
    free(w);
}

void assert_error(cf_status status, ...)
{
    cf_status got = cf_error();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", cf_error_message());
    cf_error_clear();
    ck_assert_msg(got == status, "status %s (%s), want %s", cf_status_str(got), msg,
                  cf_status_str(status));
    va_list ap;
    va_start(ap, status);
    for (const char *frag; (frag = va_arg(ap, const char *));)
        ck_assert_msg(strstr(msg, frag), "message \"%s\" lacks \"%s\"", msg, frag);
    va_end(ap);
}

/* assert_gradcheck's check, its failures naming what is checked. */
static void check_gradients(const char *what, cf_gradcheck_fn f, void *ud, int n,
                            cf_tensor *const *inputs, float tol)
{
    cf_gradcheck_report rep;
    cf_status s = cf_gradcheck(f, ud, n, inputs, 1e-3f, &rep);
    ck_assert_msg(s == CF_OK, "%s: gradcheck failed to run: %s", what, cf_error_message());
    for (int i = 0; i < n; i++)
        ck_assert_msg(rep.max_rel[i] <= tol, "%s: input %d: gradient error %.3g (abs %.3g) > %.3g",
                      what, i, rep.max_rel[i], rep.max_abs[i], tol);
}

void assert_gradcheck(cf_gradcheck_fn f, void *ud, int n, cf_tensor *const *inputs, float tol)
{
    check_gradients("gradcheck", f, ud, n, inputs, tol);
}

cf_tensor *rand_leaf(uint64_t seed, float lo, float hi, int ndim, const int64_t *shape)
{
    cf_rng g;
    cf_rng_init(&g, seed);
    return cf_requires_grad(cf_uniform(&g, lo, hi, ndim, shape), true);
}

char *dot_text(cf_tensor *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(cf_graph_dot(f, t), CF_OK);
    fclose(f);
    return buf;
}

void set_grad(cf_tensor *p, cf_tensor *g)
{
    cf_zero_grad(p);
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_mul(p, g))), CF_OK);
}

void assert_shape(const cf_tensor *t, int ndim, const int64_t *shape)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        ck_assert_int_eq(t->shape[i], shape[i]);
}

cf_tensor *arange_as(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return cf_reshape(cf_arange(0, (float)n, 1), ndim, shape);
}

value_stats stats_of(const cf_tensor *t)
{
    int64_t n = cf_numel(t);
    float *v = row_major(t);
    value_stats s = {INFINITY, -INFINITY, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        s.min = fmin(s.min, v[i]);
        s.max = fmax(s.max, v[i]);
        s.mean += v[i];
    }
    s.mean /= (double)n;
    for (int64_t i = 0; i < n; i++)
        s.var += (v[i] - s.mean) * (v[i] - s.mean);
    s.var /= (double)n;
    free(v);
    return s;
}

void assert_all_equal(const cf_tensor *t, float want)
{
    value_stats s = stats_of(t);
    ck_assert_msg(s.min == want && s.max == want, "values in [%g, %g], want all %g", s.min, s.max,
                  want);
}

bool same_bits(const cf_tensor *a, const cf_tensor *b)
{
    return cf_same_shape(a, b) && a->dtype == b->dtype &&
           memcmp(a->data, b->data, cf_numel(a) * cf_dtype_size(a->dtype)) == 0;
}

float *row_major(const cf_tensor *t)
{
    float *v = malloc(sizeof(float) * (cf_numel(t) ? cf_numel(t) : 1));
    ck_assert_ptr_nonnull(v);
    cf_copy_to(t, v);
    return v;
}

#ifndef FIXTURES
#define FIXTURES "tests/golden"
#endif

const char *fixture_path(const char *file)
{
    static char paths[4][1024];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", FIXTURES, file);
    return p;
}

cf_safetensors *open_fixture(const char *file)
{
    const char *path = fixture_path(file);
    cf_safetensors *f = NULL;
    cf_status s = cf_safetensors_open(path, &f);
    ck_assert_msg(s == CF_OK, "cannot open fixture %s: %s", path, cf_error_message());
    return f;
}

cf_tensor *fixture(const cf_safetensors *f, const char *name)
{
    cf_tensor *t = cf_safetensors_get(f, name);
    ck_assert_msg(t != NULL, "fixture %s: %s", name, cf_error_message());
    return t;
}

void assert_golden(const cf_tensor *t, const cf_safetensors *f, const char *name)
{
    ck_assert_msg(t != NULL, "%s: no tensor to compare (%s)", name, cf_error_message());
    assert_golden_tensor(t, fixture(f, name), name);
}

void assert_thread_independent(void (*fn)(float *out), int64_t n)
{
    int prev = cf_get_num_threads();
    float *a = malloc(sizeof(float) * 2 * (size_t)n), *b = a + n;
    ck_assert_ptr_nonnull(a);
    cf_set_num_threads(1);
    fn(a);
    cf_set_num_threads(4);
    fn(b);
    cf_set_num_threads(prev);
    bool same = memcmp(a, b, sizeof(float) * (size_t)n) == 0;
    free(a);
    ck_assert_msg(same, "results differ between 1 and 4 threads");
}

typedef struct {
    golden_build build;
    const void *ud;
} golden_fn;

static cf_tensor *golden_call(cf_tensor *const *in, void *ud)
{
    const golden_fn *g = ud;
    return g->build(in, g->ud);
}

void assert_golden_case(const char *file, const char *name, int nin, golden_build build,
                        const void *ud)
{
    ck_assert_int_le(nin, 8);
    cf_safetensors *f = open_fixture(file);
    char key[128];
    cf_tensor *in[8];
    for (int i = 0; i < nin; i++) {
        snprintf(key, sizeof key, "%s.in%d", name, i);
        in[i] = fixture(f, key);
        if (in[i]->dtype == CF_F32)
            cf_requires_grad(in[i], true);
    }
    cf_tensor *out = build(in, ud);
    snprintf(key, sizeof key, "%s.out", name);
    assert_golden(out, f, key);
    if (out->dtype == CF_F32) {
        snprintf(key, sizeof key, "%s.dout", name);
        ck_assert_int_eq(cf_backward_with(out, fixture(f, key)), CF_OK);
        for (int i = 0; i < nin; i++) {
            if (in[i]->dtype != CF_F32)
                continue;
            snprintf(key, sizeof key, "%s.grad%d", name, i);
            assert_golden(in[i]->grad, f, key);
        }
        snprintf(key, sizeof key, "%s.kink", name);
        if (!cf_safetensors_metadata(f, key)) {
            char what[200];
            snprintf(what, sizeof what, "%s (a kink? say so in its generator)", name);
            check_gradients(what, golden_call, &(golden_fn){build, ud}, nin, in, 1e-2f);
        }
    } else {
        ck_assert(!(out->flags & CF_REQUIRES_GRAD));
    }
    cf_safetensors_close(f);
}

static cf_tensor *golden_op_build(cf_tensor *const *in, const void *ud)
{
    return ((const golden_op *)ud)->fn(in);
}

void assert_golden_op(const char *file, const golden_op *c)
{
    assert_golden_case(file, c->name, c->nin, golden_op_build, c);
}

void assert_golden_tensor(const cf_tensor *t, const cf_tensor *want, const char *name)
{
    ck_assert_msg(t != NULL, "%s: no tensor to compare (%s)", name, cf_error_message());
    ck_assert_msg(want != NULL, "%s: no reference tensor (%s)", name, cf_error_message());
    char a[128], b[128];
    ck_assert_msg(cf_same_shape(t, want), "%s: shape %s, want %s", name,
                  cf_shape_str(t, a, sizeof a), cf_shape_str(want, b, sizeof b));
    int64_t n = cf_numel(want);
    float *got = malloc(sizeof(float) * (n ? n : 1)), *w = malloc(sizeof(float) * (n ? n : 1));
    cf_copy_to(t, got);
    cf_copy_to(want, w);
    double worst = 0;
    int64_t at = -1;
    for (int64_t i = 0; i < n; i++) {
        bool gnan = isnan(got[i]), wnan = isnan(w[i]);
        double excess = gnan || wnan ? (gnan == wnan ? 0 : 1e30)
                        : isinf(w[i])
                            ? (got[i] == w[i] ? 0 : 1e30)
                            : fabs((double)got[i] - w[i]) - (1e-5 + 1e-4 * fabs((double)w[i]));
        if (excess > worst) {
            worst = excess;
            at = i;
        }
    }
    float g = at >= 0 ? got[at] : 0, e = at >= 0 ? w[at] : 0;
    free(got);
    free(w);
    ck_assert_msg(at < 0, "%s: element %lld is %.9g, want %.9g (beyond 1e-5 + 1e-4*|want|)", name,
                  (long long)at, g, e);
}

const char *write_raw_safetensors(const char *header, const void *data, size_t ndata)
{
    const char *path = scratch_path("raw.safetensors");
    size_t h = strlen(header);
    unsigned char *b = malloc(8 + h + ndata);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    if (ndata)
        memcpy(b + 8 + h, data, ndata);
    write_file(path, b, 8 + h + ndata);
    free(b);
    return path;
}

const char *save_sample_safetensors(const char *name)
{
    const char *path = scratch_path(name);
    cf_tensor *ts[] = {cf_from_array((float[]){1, 2, 3, 4, 5, 6}, CF_SHAPE(2, 3)),
                       cf_from_ints((int32_t[]){7, -8}, CF_SHAPE(2)),
                       cf_empty(CF_BOOL, CF_SHAPE(3))};
    uint8_t *m = ts[2]->data;
    m[0] = 1, m[1] = 0, m[2] = 1;
    const char *names[] = {"w", "idx", "mask"};
    ck_assert_int_eq(cf_safetensors_save(path, 3, names, ts, "{\"k\": \"v\"}"), CF_OK);
    return path;
}

cf_safetensors *open_safetensors(const char *path)
{
    cf_safetensors *f = NULL;
    ck_assert_msg(cf_safetensors_open(path, &f) == CF_OK, "open %s: %s", path, cf_error_message());
    ck_assert_ptr_nonnull(f);
    return f;
}

void expect_open_error(const char *path, cf_status s, const char *frag)
{
    cf_safetensors *f = (cf_safetensors *)1;
    ck_assert_int_eq(cf_safetensors_open(path, &f), s);
    ck_assert_ptr_null(f);
    assert_error(s, path, frag, NULL);
}

void expect_bad_header(const char *header, const char *frag)
{
    static const unsigned char zeros[16];
    expect_open_error(write_raw_safetensors(header, zeros, sizeof zeros), CF_ERR_FORMAT, frag);
}

bool same_values(const cf_tensor *a, const cf_tensor *b)
{
    if (!cf_same_shape(a, b))
        return false;
    float *x = row_major(a), *y = row_major(b);
    bool same = memcmp(x, y, sizeof(float) * (size_t)cf_numel(a)) == 0;
    free(x);
    free(y);
    return same;
}

/* The fixture and key prefix of a visit over a module's parameters. */
typedef struct {
    const cf_safetensors *f;
    const char *prefix;
} keyed;

static void key_of(char *key, size_t size, const keyed *k, const char *name)
{
    int n = snprintf(key, size, "%s.%s", k->prefix, name);
    ck_assert_msg(n > 0 && (size_t)n < size, "key %s.%s is too long", k->prefix, name);
}

static void load_one(const char *name, cf_tensor *p, void *ud)
{
    char key[256];
    key_of(key, sizeof key, ud, name);
    ck_assert_msg(cf_safetensors_read_into(((keyed *)ud)->f, key, p) == CF_OK, "%s: %s", key,
                  cf_error_message());
}

typedef struct {
    char *buf;
    size_t size;
} joined;

static void join_one(const char *name, cf_tensor *t, void *ud)
{
    (void)t;
    joined *j = ud;
    size_t len = strlen(j->buf);
    snprintf(j->buf + len, j->size - len, "%s%s", len ? "," : "", name);
}

const char *param_names(cf_module *m, char *buf, size_t size)
{
    buf[0] = '\0';
    cf_module_visit(m, join_one, &(joined){buf, size});
    return buf;
}

void load_params(cf_module *m, const cf_safetensors *f, const char *prefix)
{
    ck_assert_msg(m != NULL, "%s: no module to load (%s)", prefix, cf_error_message());
    cf_module_visit(m, load_one, &(keyed){f, prefix});
}

static void grad_one(const char *name, cf_tensor *p, void *ud)
{
    char key[256];
    key_of(key, sizeof key, ud, name);
    assert_golden(p->grad, ((keyed *)ud)->f, key);
}

void assert_param_grads(cf_module *m, const cf_safetensors *f, const char *prefix)
{
    cf_module_visit(m, grad_one, &(keyed){f, prefix});
}

cf_module *fixture_params(const cf_safetensors *f, const char *prefix, int n,
                          const char *const *names, cf_tensor **p)
{
    cf_module *m = cf_module_new("Params", NULL, NULL);
    ck_assert_ptr_nonnull(m);
    char name[256];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, names[i]);
        cf_tensor *t = fixture(f, name);
        p[i] = cf_module_param(m, names[i], t->ndim, t->shape);
        ck_assert_ptr_nonnull(p[i]);
    }
    load_params(m, f, prefix);
    return m;
}

typedef struct {
    const char *skip, *replace;
    cf_tensor *replacement;
    const char *names[256];
    char store[256][256];
    cf_tensor *ts[256];
    int n;
} param_list;

static void list_one(const char *name, cf_tensor *p, void *ud)
{
    param_list *l = ud;
    if (l->skip && !strcmp(name, l->skip))
        return;
    ck_assert_int_lt(l->n, 256);
    int len = snprintf(l->store[l->n], sizeof l->store[0], "%s", name);
    ck_assert_msg(len > 0 && (size_t)len < sizeof l->store[0], "name %s is too long", name);
    l->names[l->n] = l->store[l->n];
    l->ts[l->n++] = l->replace && !strcmp(name, l->replace) ? l->replacement : p;
}

void save_params(cf_module *m, const char *path, const char *skip, const char *replace,
                 cf_tensor *replacement)
{
    param_list *l = calloc(1, sizeof *l);
    ck_assert_ptr_nonnull(l);
    l->skip = skip;
    l->replace = replace;
    l->replacement = replacement;
    cf_module_visit(m, list_one, l);
    cf_status s = cf_safetensors_save(path, l->n, l->names, l->ts, NULL);
    free(l);
    ck_assert_msg(s == CF_OK, "cannot save %s: %s", path, cf_error_message());
}
