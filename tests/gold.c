/* Golden cases of modules (gold.h). */
#include "tests/gold.h"

#include <stdio.h>
#include <string.h>

gold gold_open(const char *file, const char *c, cf_module *m)
{
    ck_assert_msg(m != NULL, "%s: module not created: %s", c, cf_error_message());
    gold g = {open_fixture(file), c, m};
    const char *want = cf_safetensors_metadata(g.f, c);
    ck_assert_msg(want != NULL, "%s: no case %s", file, c);
    char got[1024];
    ck_assert_str_eq(param_names(m, got, sizeof got), want);
    load_params(m, g.f, c);
    return g;
}

cf_tensor *gold_get(const gold *g, const char *n)
{
    char name[320];
    snprintf(name, sizeof name, "%s.%s", g->c, n);
    return fixture(g->f, name);
}

cf_tensor *gold_in(const gold *g, const char *n)
{
    cf_tensor *t = gold_get(g, n);
    return t->dtype == CF_F32 ? cf_requires_grad(t, true) : t;
}

void gold_check(const gold *g, const cf_tensor *t, const char *n)
{
    char name[320];
    snprintf(name, sizeof name, "%s.%s", g->c, n);
    assert_golden(t, g->f, name);
}

void gold_backward(const gold *g, int n, cf_tensor *const *outs, const char *const *names)
{
    char d[64];
    if (n == 1) {
        snprintf(d, sizeof d, "d%s", names[0]);
        ck_assert_int_eq(cf_backward_with(outs[0], gold_get(g, d)), CF_OK);
        return;
    }
    cf_tensor *loss = NULL;
    for (int i = 0; i < n; i++) {
        snprintf(d, sizeof d, "d%s", names[i]);
        cf_tensor *dot = cf_sum_all(cf_mul(outs[i], gold_get(g, d)));
        loss = loss ? cf_add(loss, dot) : dot;
    }
    ck_assert_int_eq(cf_backward(loss), CF_OK);
}

void gold_outputs(const gold *g, int n, cf_tensor *const *outs, const char *const *names)
{
    ASSERT_NO_ERROR();
    for (int i = 0; i < n; i++)
        gold_check(g, outs[i], names[i]);
    gold_backward(g, n, outs, names);
}

typedef struct {
    const gold *g;
    bool after; /* buffers after the run, else parameter gradients */
} tensor_check;

static void check_one(const char *name, cf_tensor *t, void *ud)
{
    const tensor_check *c = ud;
    char key[320];
    bool buffer = !(t->flags & CF_REQUIRES_GRAD);
    if (buffer != c->after)
        return;
    snprintf(key, sizeof key, "%s.%s.%s", c->g->c, c->after ? "after" : "grad", name);
    if (t->dtype == CF_I32) {
        float want = cf_item(fixture(c->g->f, key));
        ck_assert_msg(cf_item(t) == want, "%s: %g, want %g", key, cf_item(t), want);
        return;
    }
    assert_golden(c->after ? t : t->grad, c->g->f, key);
}

void gold_finish(gold *g, int n, cf_tensor *const *ins, const char *const *names)
{
    ASSERT_NO_ERROR();
    for (int i = 0; i < n; i++) {
        char gn[64];
        snprintf(gn, sizeof gn, "grad_%s", names[i]);
        gold_check(g, ins[i]->grad, gn);
    }
    cf_module_visit(g->m, check_one, &(tensor_check){g, false});
    cf_module_visit(g->m, check_one, &(tensor_check){g, true});
    cf_safetensors_close(g->f);
    cf_module_free(g->m);
}

void gold_unary(const char *file, const char *c, cf_module *m, gold_fwd fwd, bool training,
                bool view)
{
    gold g = gold_open(file, c, m);
    cf_module_train(m, training);
    cf_tensor *x = gold_in(&g, "x");
    cf_tensor *out = fwd(m, view ? strided(x) : x);
    gold_outputs(&g, 1, &out, (const char *[]){"out"});
    gold_finish(&g, x->dtype == CF_F32, &x, (const char *[]){"x"});
}

cf_tensor *strided(cf_tensor *x)
{
    cf_tensor *y = cf_transpose(cf_contiguous(cf_transpose(x, 0, 1)), 0, 1);
    ck_assert(!cf_is_contiguous(y));
    return y;
}
