/* The expression interpreter of tests/expr.h and the runner of
 * gen_golden.py's cases. */
#include "tests/expr.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/util.h"

#define MAX_INPUTS 8
#define MAX_ARGS   5

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

cf_tensor *expr_eval(const char *expr, cf_tensor *const *inputs, int n, char *err, size_t size)
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

/* ---- Golden cases ---- */

/* Whether tensor name is a case's output: "<prefix>...<.out>" with an
 * expression in the metadata under the case's name (written to name). */
static bool is_case(const cf_safetensors *f, const char *tensor, const char *prefix, char *name,
                    size_t size)
{
    size_t len = strlen(tensor);
    if (strncmp(tensor, prefix, strlen(prefix)) != 0 || len < 5 || len - 4 >= size ||
        strcmp(tensor + len - 4, ".out") != 0)
        return false;
    memcpy(name, tensor, len - 4);
    name[len - 4] = '\0';
    return cf_safetensors_metadata(f, name) != NULL;
}

int golden_expr_count(const char *file, const char *prefix)
{
    char name[256];
    const char *path = fixture_path(file);
    cf_safetensors *f = NULL;
    if (cf_safetensors_open(path, &f) != CF_OK) {
        cf_error_clear();
        return -1;
    }
    int n = 0;
    for (int i = 0; i < cf_safetensors_count(f); i++)
        n += is_case(f, cf_safetensors_name(f, i), prefix, name, sizeof name);
    cf_safetensors_close(f);
    return n;
}

typedef struct {
    const char *expr;
    int n;
} expr_case;

static cf_tensor *expr_build(cf_tensor *const *in, const void *ud)
{
    const expr_case *c = ud;
    char err[512];
    cf_tensor *out = expr_eval(c->expr, in, c->n, err, sizeof err);
    ck_assert_msg(out != NULL, "%s: %s", c->expr, err);
    return out;
}

void assert_golden_expr(const char *file, const char *prefix, int i)
{
    cf_safetensors *f = open_fixture(file);
    char name[256] = "", key[300];
    int seen = 0;
    for (int t = 0; t < cf_safetensors_count(f) && seen <= i; t++)
        seen += is_case(f, cf_safetensors_name(f, t), prefix, name, sizeof name);
    ck_assert_msg(seen > i, "%s: no case %d starting with \"%s\" (%d in all)", file, i, prefix,
                  seen);
    expr_case c = {cf_safetensors_metadata(f, name), 0};
    for (; c.n < MAX_INPUTS; c.n++) {
        snprintf(key, sizeof key, "%s.in%d", name, c.n);
        if (!cf_safetensors_get(f, key))
            break;
    }
    cf_error_clear(); /* the lookup that ended the inputs */
    assert_golden_case(file, name, c.n, expr_build, &c);
    cf_safetensors_close(f);
}
