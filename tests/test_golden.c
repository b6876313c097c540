/* Every op against PyTorch: values and gradients of the cases in
 * tests/golden/ops.safetensors, written by tests/golden/gen_golden.py.
 *
 * A case named <family>.<detail> is an expression over inputs x0, x1, ...
 * in the names of cformer's ops, stored as the metadata entry
 * "case.<family>.<detail>", e.g. "matmul(transpose(x0, 0, 1), x1)". Its
 * tensors are case.<name>.in<i> (the inputs, leaves), .out, .dout (an upstream
 * gradient) and .grad<i> (the inputs' gradients). The test parses the
 * expression, evaluates it with cformer on the inputs, runs
 * cf_backward_with(out, dout) and compares out and every input's gradient.
 *
 * Tolerance: |got - want| <= 1e-5 + 1e-4 * |want| for every element. The
 * references are float64 results rounded to float32, so this budget is for
 * cformer's float32 rounding alone. On failure every tensor of the case is
 * listed with its largest difference. */
#define _POSIX_C_SOURCE 200809L

#include "tests/util.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ATOL       1e-5
#define RTOL       1e-4
#define MAX_INPUTS 10
#define MAX_ARGS   5

static cf_safetensors *ops;  /* the fixture file, opened by main */
static char open_error[512]; /* why it could not be opened */

static const char *const families[] = {"arith", "unary", "reduce", "matmul", "view", "chain"};
#define NFAMILIES ((int)(sizeof families / sizeof families[0]))

/* Case names per family, in the file's order. */
static const char **cases[NFAMILIES];
static int ncases[NFAMILIES];
/* Cases whose family has no TCase (reported by a test). */
static int nstray;
static const char *stray;

/* ---- The expression interpreter ---- */

typedef enum { V_TENSOR, V_NUM, V_LIST } vkind;

typedef struct {
    vkind kind;
    cf_tensor *t;
    double num;
    int n; /* list length */
    int64_t list[CF_MAX_DIMS];
} value;

typedef struct {
    const char *p;
    cf_tensor *const *inputs;
    int ninputs;
    char err[256];
} interp;

/* Records the first parse or evaluation error; always returns false. */
static bool ifail(interp *I, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool ifail(interp *I, const char *fmt, ...)
{
    if (I->err[0])
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(I->err, sizeof I->err, fmt, ap);
    va_end(ap);
    return false;
}

static void skip(interp *I)
{
    while (isspace((unsigned char)*I->p))
        I->p++;
}

static bool eat(interp *I, char c)
{
    skip(I);
    if (*I->p != c)
        return false;
    I->p++;
    return true;
}

static bool parse_number(interp *I, double *out)
{
    skip(I);
    char *end;
    *out = strtod(I->p, &end);
    if (end == I->p)
        return ifail(I, "expected a number at \"%.20s\"", I->p);
    I->p = end;
    return true;
}

static bool is_int(const value *v) { return v->kind == V_NUM && v->num == floor(v->num); }

/* Signatures: T tensor, N number, I integer, L list of integers. */
static const struct {
    const char *name;
    const char *sig;
} functions[] = {
    {"add", "TT"},         {"sub", "TT"},        {"mul", "TT"},        {"div", "TT"},
    {"neg", "T"},          {"add_scalar", "TN"}, {"mul_scalar", "TN"}, {"rsub_scalar", "TN"},
    {"rdiv_scalar", "TN"}, {"square", "T"},      {"exp", "T"},         {"log", "T"},
    {"tanh", "T"},         {"sigmoid", "T"},     {"relu", "T"},        {"sum", "TLI"},
    {"mean", "TLI"},       {"sum_all", "T"},     {"mean_all", "T"},    {"matmul", "TT"},
    {"view", "TL"},        {"reshape", "TL"},    {"permute", "TL"},    {"transpose", "TII"},
    {"slice", "TIIII"},    {"expand", "TL"},     {"squeeze", "TI"},    {"unsqueeze", "TI"},
    {"contiguous", "T"},   {"clone", "T"},       {"affine", "TTT"},
};

/* Applies the named op; NULL (with cformer's error recorded) when it fails. */
static cf_tensor *apply(const char *f, const value *a)
{
    cf_tensor *x = a[0].t, *y = a[1].t;
    float s = (float)a[1].num;
    int d[CF_MAX_DIMS];
    for (int i = 0; a[1].kind == V_LIST && i < a[1].n; i++)
        d[i] = (int)a[1].list[i];
#define IS(name) (strcmp(f, name) == 0)
    if (IS("add"))
        return cf_add(x, y);
    if (IS("sub"))
        return cf_sub(x, y);
    if (IS("mul"))
        return cf_mul(x, y);
    if (IS("div"))
        return cf_div(x, y);
    if (IS("neg"))
        return cf_neg(x);
    if (IS("add_scalar"))
        return cf_add_scalar(x, s);
    if (IS("mul_scalar"))
        return cf_mul_scalar(x, s);
    if (IS("rsub_scalar"))
        return cf_rsub_scalar(x, s);
    if (IS("rdiv_scalar"))
        return cf_rdiv_scalar(x, s);
    if (IS("square"))
        return cf_square(x);
    if (IS("exp"))
        return cf_exp(x);
    if (IS("log"))
        return cf_log(x);
    if (IS("tanh"))
        return cf_tanh(x);
    if (IS("sigmoid"))
        return cf_sigmoid(x);
    if (IS("relu"))
        return cf_relu(x);
    if (IS("sum"))
        return cf_sum(x, a[1].n, d, a[2].num != 0);
    if (IS("mean"))
        return cf_mean(x, a[1].n, d, a[2].num != 0);
    if (IS("sum_all"))
        return cf_sum_all(x);
    if (IS("mean_all"))
        return cf_mean_all(x);
    if (IS("matmul"))
        return cf_matmul(x, y);
    if (IS("affine"))
        return cf_affine(x, y, a[2].t);
    if (IS("view"))
        return cf_view(x, a[1].n, a[1].list);
    if (IS("reshape"))
        return cf_reshape(x, a[1].n, a[1].list);
    if (IS("permute"))
        return cf_permute(x, d);
    if (IS("transpose"))
        return cf_transpose(x, (int)a[1].num, (int)a[2].num);
    if (IS("slice"))
        return cf_slice(x, (int)a[1].num, (int64_t)a[2].num, (int64_t)a[3].num, (int64_t)a[4].num);
    if (IS("expand"))
        return cf_expand(x, a[1].n, a[1].list);
    if (IS("squeeze"))
        return cf_squeeze(x, (int)a[1].num);
    if (IS("unsqueeze"))
        return cf_unsqueeze(x, (int)a[1].num);
    if (IS("contiguous"))
        return cf_contiguous(x);
    if (IS("clone"))
        return cf_clone(x);
#undef IS
    return NULL;
}

static bool parse_value(interp *I, value *v, int depth);

static bool parse_call(interp *I, const char *name, value *v, int depth)
{
    int fi = -1;
    for (int i = 0; i < (int)(sizeof functions / sizeof functions[0]); i++)
        if (strcmp(functions[i].name, name) == 0)
            fi = i;
    if (fi < 0)
        return ifail(I, "unknown function %s", name);
    const char *sig = functions[fi].sig;
    value args[MAX_ARGS] = {0};
    int argc = 0;
    if (!eat(I, ')')) {
        do {
            if (argc == MAX_ARGS)
                return ifail(I, "%s: too many arguments", name);
            if (!parse_value(I, &args[argc++], depth + 1))
                return false;
        } while (eat(I, ','));
        if (!eat(I, ')'))
            return ifail(I, "%s: expected ')' at \"%.20s\"", name, I->p);
    }
    if (argc != (int)strlen(sig))
        return ifail(I, "%s takes %zu arguments, got %d", name, strlen(sig), argc);
    for (int i = 0; i < argc; i++) {
        bool ok = sig[i] == 'T'   ? args[i].kind == V_TENSOR
                  : sig[i] == 'N' ? args[i].kind == V_NUM
                  : sig[i] == 'I' ? is_int(&args[i])
                                  : args[i].kind == V_LIST;
        if (!ok)
            return ifail(I, "%s: argument %d should be of kind %c", name, i, sig[i]);
    }
    v->kind = V_TENSOR;
    v->t = apply(name, args);
    if (!v->t)
        return ifail(I, "%s failed: %s", name, cf_error_message());
    return true;
}

static bool parse_value(interp *I, value *v, int depth)
{
    memset(v, 0, sizeof *v);
    if (depth > 32)
        return ifail(I, "expression nested too deeply");
    skip(I);
    if (eat(I, '[')) {
        v->kind = V_LIST;
        if (eat(I, ']'))
            return true;
        do {
            double x;
            if (v->n == CF_MAX_DIMS)
                return ifail(I, "list longer than %d", CF_MAX_DIMS);
            if (!parse_number(I, &x))
                return false;
            if (x != floor(x))
                return ifail(I, "list element %g is not an integer", x);
            v->list[v->n++] = (int64_t)x;
        } while (eat(I, ','));
        return eat(I, ']') || ifail(I, "expected ']' at \"%.20s\"", I->p);
    }
    if (isalpha((unsigned char)*I->p) || *I->p == '_') {
        char name[32];
        size_t n = 0;
        while ((isalnum((unsigned char)*I->p) || *I->p == '_') && n + 1 < sizeof name)
            name[n++] = *I->p++;
        name[n] = '\0';
        if (eat(I, '('))
            return parse_call(I, name, v, depth);
        if (name[0] == 'x' && isdigit((unsigned char)name[1])) {
            int i = atoi(name + 1);
            if (i >= I->ninputs)
                return ifail(I, "input %s does not exist", name);
            v->kind = V_TENSOR;
            v->t = I->inputs[i];
            return true;
        }
        return ifail(I, "unknown name %s", name);
    }
    v->kind = V_NUM;
    return parse_number(I, &v->num);
}

/* Evaluates expr over the inputs; NULL with a message in err. */
static cf_tensor *evaluate(const char *expr, cf_tensor *const *inputs, int n, char *err,
                           size_t size)
{
    interp I = {expr, inputs, n, ""};
    value v;
    bool ok = parse_value(&I, &v, 0);
    skip(&I);
    if (ok && *I.p)
        ok = ifail(&I, "trailing text \"%s\"", I.p);
    if (ok && v.kind != V_TENSOR)
        ok = ifail(&I, "the expression is not a tensor");
    snprintf(err, size, "%s", I.err);
    return ok ? v.t : NULL;
}

/* ---- Comparison ---- */

static bool has_tensor(const char *name)
{
    for (int i = 0; i < cf_safetensors_count(ops); i++)
        if (strcmp(cf_safetensors_name(ops, i), name) == 0)
            return true;
    return false;
}

/* Appends to the report one line for got against the fixture named want:
 * its largest difference, and where the tolerance is exceeded most. Returns
 * true when every element is within tolerance. A NULL got stands for a
 * gradient that was never created, i.e. zeros. */
static bool compare(const char *label, const cf_tensor *got, const char *want_name, char *report,
                    size_t size)
{
    size_t len = strlen(report);
    cf_tensor *want = cf_safetensors_get(ops, want_name);
    if (!want) {
        snprintf(report + len, size - len, "  %s: fixture missing: %s\n", label,
                 cf_error_message());
        cf_error_clear();
        return false;
    }
    char a[128], b[128];
    if (got && !cf_same_shape(got, want)) {
        snprintf(report + len, size - len, "  %s: shape %s, want %s\n", label,
                 cf_shape_str(got, a, sizeof a), cf_shape_str(want, b, sizeof b));
        return false;
    }
    int64_t n = cf_numel(want);
    float *g = calloc(n ? n : 1, sizeof(float)), *w = malloc(sizeof(float) * (n ? n : 1));
    if (got)
        cf_copy_to(got, g);
    cf_copy_to(want, w);
    double max_diff = 0, worst = -INFINITY;
    int64_t at = 0;
    bool ok = true;
    for (int64_t i = 0; i < n; i++) {
        double diff = fabs((double)g[i] - (double)w[i]);
        double excess = diff - (ATOL + RTOL * fabs((double)w[i]));
        if (isnan(g[i]) && isnan(w[i]))
            diff = excess = 0; /* NaN where PyTorch has NaN */
        else if (isnan(g[i]) || isnan(w[i]) || isinf(g[i]) || isinf(w[i]))
            diff = excess = g[i] == w[i] ? 0 : INFINITY;
        if (diff > max_diff)
            max_diff = diff;
        if (excess > worst) {
            worst = excess;
            at = i;
        }
        if (!(excess <= 0))
            ok = false;
    }
    snprintf(report + len, size - len,
             "  %-6s %-14s max |diff| %.3g%s (element %lld: got %.9g, want %.9g)%s\n", label,
             cf_shape_str(want, a, sizeof a), max_diff, got ? "" : " [no gradient]", (long long)at,
             n ? g[at] : 0.0, n ? w[at] : 0.0, ok ? "" : "  <-- FAIL");
    free(g);
    free(w);
    return ok;
}

static void run_case(const char *name)
{
    char key[256], tname[300], err[512], report[4096] = "";
    snprintf(key, sizeof key, "case.%s", name);
    const char *expr = cf_safetensors_metadata(ops, key);
    ck_assert_msg(expr != NULL, "%s: no expression in the metadata", name);

    cf_tensor *in[MAX_INPUTS];
    int n = 0;
    for (; n < MAX_INPUTS; n++) {
        snprintf(tname, sizeof tname, "%s.in%d", key, n);
        if (!has_tensor(tname))
            break;
        in[n] = cf_requires_grad(fixture(ops, tname), true);
    }
    cf_tensor *out = evaluate(expr, in, n, err, sizeof err);
    if (!out) {
        cf_error_clear();
        ck_abort_msg("%s: %s: %s", name, expr, err);
    }
    snprintf(tname, sizeof tname, "%s.out", key);
    bool ok = compare("out", out, tname, report, sizeof report);

    snprintf(tname, sizeof tname, "%s.dout", key);
    cf_status s = cf_backward_with(out, fixture(ops, tname));
    if (s != CF_OK) {
        snprintf(err, sizeof err, "%s", cf_error_message());
        cf_error_clear();
        ck_abort_msg("%s: %s: backward failed (%s): %s\n%s", name, expr, cf_status_str(s), err,
                     report);
    }
    for (int i = 0; i < n; i++) {
        char label[16];
        snprintf(label, sizeof label, "grad%d", i);
        snprintf(tname, sizeof tname, "%s.grad%d", key, i);
        ok = compare(label, in[i]->grad, tname, report, sizeof report) && ok;
    }
    if (!ok) {
        fprintf(stderr, "golden case %s: %s\n%s", name, expr, report);
        snprintf(err, sizeof err, "%s", cf_error() ? cf_error_message() : "");
        cf_error_clear();
        ck_abort_msg("%s: %s differs from PyTorch beyond |diff| <= %g + %g*|want|:\n%s%s", name,
                     expr, ATOL, RTOL, report, err);
    }
}

static void run_family_case(int family, int i)
{
    ck_assert_msg(ops != NULL, "%s", open_error);
    ck_assert_int_lt(i, ncases[family]);
    run_case(cases[family][i]);
}

START_TEST(arith_ops_match_pytorch) { run_family_case(0, _i); }
END_TEST

START_TEST(unary_ops_match_pytorch) { run_family_case(1, _i); }
END_TEST

START_TEST(reductions_match_pytorch) { run_family_case(2, _i); }
END_TEST

START_TEST(matmul_matches_pytorch) { run_family_case(3, _i); }
END_TEST

START_TEST(views_match_pytorch) { run_family_case(4, _i); }
END_TEST

START_TEST(compositions_match_pytorch) { run_family_case(5, _i); }
END_TEST

START_TEST(the_fixture_file_opens_and_every_case_has_a_family)
{
    ck_assert_msg(ops != NULL, "%s", open_error);
    ck_assert_msg(nstray == 0, "%d cases of no tested family, e.g. %s", nstray, stray);
    for (int f = 0; f < NFAMILIES; f++)
        ck_assert_msg(ncases[f] > 0, "no cases for family %s", families[f]);
}
END_TEST

/* Lists the cases: every tensor named case.<name>.out is one. */
static void load_cases(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/ops.safetensors", FIXTURES);
    if (cf_safetensors_open(path, &ops) != CF_OK) {
        snprintf(open_error, sizeof open_error, "%s", cf_error_message());
        cf_error_clear();
        return;
    }
    int n = cf_safetensors_count(ops);
    for (int f = 0; f < NFAMILIES; f++)
        cases[f] = calloc(n ? n : 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        const char *t = cf_safetensors_name(ops, i);
        size_t len = strlen(t);
        if (strncmp(t, "case.", 5) != 0 || len < 9 || strcmp(t + len - 4, ".out") != 0)
            continue;
        char *name = strndup(t + 5, len - 9);
        int f = 0;
        size_t fl = strcspn(name, ".");
        while (f < NFAMILIES && !(strlen(families[f]) == fl && !strncmp(name, families[f], fl)))
            f++;
        if (f == NFAMILIES) {
            nstray++;
            stray = name;
            continue;
        }
        cases[f][ncases[f]++] = name;
    }
}

int main(void)
{
    load_cases();
    Suite *s = suite_create("golden");
    TCase *tc = tcase("fixtures");
    tcase_add_test(tc, the_fixture_file_opens_and_every_case_has_a_family);
    suite_add_tcase(s, tc);

    tc = tcase("arith");
    tcase_add_loop_test(tc, arith_ops_match_pytorch, 0, ncases[0]);
    suite_add_tcase(s, tc);
    tc = tcase("unary");
    tcase_add_loop_test(tc, unary_ops_match_pytorch, 0, ncases[1]);
    suite_add_tcase(s, tc);
    tc = tcase("reduce");
    tcase_add_loop_test(tc, reductions_match_pytorch, 0, ncases[2]);
    suite_add_tcase(s, tc);
    tc = tcase("matmul");
    tcase_add_loop_test(tc, matmul_matches_pytorch, 0, ncases[3]);
    suite_add_tcase(s, tc);
    tc = tcase("view");
    tcase_add_loop_test(tc, views_match_pytorch, 0, ncases[4]);
    suite_add_tcase(s, tc);
    tc = tcase("chain");
    tcase_add_loop_test(tc, compositions_match_pytorch, 0, ncases[5]);
    suite_add_tcase(s, tc);

    int status = run_suite(s);
    cf_safetensors_close(ops);
    return status;
}
