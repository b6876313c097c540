/* Recurrent layers over padded batches, against PyTorch
 * (tests/golden/gen_layers.py): golden values and gradients, gradient
 * checks and bad input. */
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Golden cases (the layout of gen_nn.py) ---- */

typedef struct {
    cf_safetensors *f;
    const char *c;
    cf_module *m;
} gold;

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

/* Opens case c for module m: m's state_dict names must be PyTorch's, in
 * PyTorch's order; loads PyTorch's values into them. */
static gold gold_open(const char *c, cf_module *m)
{
    ck_assert_msg(m != NULL, "%s: module not created: %s", c, cf_error_message());
    gold g = {open_fixture("layers.safetensors"), c, m};
    const char *want = cf_safetensors_metadata(g.f, c);
    ck_assert_ptr_nonnull(want);
    char got[1024] = "";
    cf_module_visit(m, join_one, &(joined){got, sizeof got});
    ck_assert_str_eq(got, want);
    load_params(m, g.f, c);
    return g;
}

static cf_tensor *gold_get(const gold *g, const char *n)
{
    char name[320];
    snprintf(name, sizeof name, "%s.%s", g->c, n);
    return fixture(g->f, name);
}

/* An input: float inputs become leaves that require a gradient. */
static cf_tensor *gold_in(const gold *g, const char *n)
{
    cf_tensor *t = gold_get(g, n);
    return t->dtype == CF_F32 ? cf_requires_grad(t, true) : t;
}

/* Checks the n outputs, backpropagates sum(out_i * d<out_i>) and checks the
 * gradients of the named inputs and of every parameter; then closes the
 * case and frees the module. */
static void gold_finish(gold *g, int n, cf_tensor *const *outs, const char *const *out_names,
                        int nin, cf_tensor *const *ins, const char *const *in_names)
{
    ASSERT_NO_ERROR();
    char name[256];
    cf_tensor *loss = NULL;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s.%s", g->c, out_names[i]);
        assert_golden(outs[i], g->f, name);
        snprintf(name, sizeof name, "d%s", out_names[i]);
        cf_tensor *dot = cf_sum_all(cf_mul(outs[i], gold_get(g, name)));
        loss = loss ? cf_add(loss, dot) : dot;
    }
    ck_assert_int_eq(cf_backward(loss), CF_OK);
    for (int i = 0; i < nin; i++) {
        snprintf(name, sizeof name, "%s.grad_%s", g->c, in_names[i]);
        assert_golden(ins[i]->grad, g->f, name);
    }
    snprintf(name, sizeof name, "%s.grad", g->c);
    assert_param_grads(g->m, g->f, name);
    cf_safetensors_close(g->f);
    cf_module_free(g->m);
}

/* ---- GRU over padded sequences ---- */

static void run_gru_packed(const char *c, cf_gru *m, bool with_h0)
{
    gold g = gold_open(c, &m->base);
    cf_tensor *ins[2] = {gold_in(&g, "x"), with_h0 ? gold_in(&g, "h0") : NULL};
    cf_tensor *outs[2];
    outs[0] = cf_gru_forward_packed(m, ins[0], gold_get(&g, "lengths"), ins[1], &outs[1]);
    gold_finish(&g, 2, outs, (const char *[]){"out", "h_n"}, with_h0 ? 2 : 1, ins,
                (const char *[]){"x", "h0"});
}

START_TEST(golden_packed_gru_two_layers_bidirectional)
{
    run_gru_packed("gru_packed", cf_gru_new(NULL, "gru", 5, 4, 2, true, 0, true, NULL), false);
}
END_TEST

START_TEST(golden_packed_gru_with_initial_state)
{
    run_gru_packed("gru_packed_h0", cf_gru_new(NULL, "gru", 3, 4, 1, false, 0, true, NULL), true);
}
END_TEST

START_TEST(packed_gru_outputs_zeros_at_padding)
{
    cf_gru *m = cf_gru_new(NULL, "gru", 3, 4, 2, true, 0, true, NULL);
    cf_tensor *x = rand_leaf(1, -1, 1, CF_SHAPE(2, 5, 3));
    cf_tensor *out =
        cf_gru_forward_packed(m, x, cf_from_ints((int32_t[]){2, 5}, CF_SHAPE(2)), NULL, NULL);
    ck_assert_ptr_nonnull(out);
    for (int64_t t = 0; t < 5; t++)
        for (int64_t j = 0; j < 8; j++)
            if (t >= 2)
                ck_assert_float_eq(cf_get(out, CF_IDX(0, t, j)), 0);
            else
                ck_assert_float_ne(cf_get(out, CF_IDX(0, t, j)), 0);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(packed_gru_row_equals_the_row_run_alone)
{
    cf_gru *m = cf_gru_new(NULL, "gru", 3, 4, 2, true, 0, true, NULL);
    cf_tensor *x = rand_leaf(2, -1, 1, CF_SHAPE(3, 6, 3)), *h_n = NULL, *h1 = NULL;
    cf_tensor *out =
        cf_gru_forward_packed(m, x, cf_from_ints((int32_t[]){6, 3, 1}, CF_SHAPE(3)), NULL, &h_n);
    const int64_t len[3] = {6, 3, 1};
    for (int64_t b = 0; b < 3; b++) {
        cf_tensor *row = cf_slice(cf_slice(x, 0, b, b + 1, 1), 1, 0, len[b], 1);
        cf_tensor *alone = cf_gru_forward(m, row, NULL, &h1);
        assert_close(alone, cf_slice(cf_slice(out, 0, b, b + 1, 1), 1, 0, len[b], 1), 1e-6f, 0);
        assert_close(h1, cf_slice(h_n, 1, b, b + 1, 1), 1e-6f, 0);
    }
    cf_module_free(&m->base);
}
END_TEST

START_TEST(packed_gru_with_full_lengths_equals_the_plain_forward)
{
    cf_gru *m = cf_gru_new(NULL, "gru", 3, 4, 1, true, 0, true, NULL);
    cf_tensor *x = rand_leaf(3, -1, 1, CF_SHAPE(2, 4, 3)), *ha = NULL, *hb = NULL;
    cf_tensor *a =
        cf_gru_forward_packed(m, x, cf_from_ints((int32_t[]){4, 4}, CF_SHAPE(2)), NULL, &ha);
    cf_tensor *b = cf_gru_forward(m, x, NULL, &hb);
    assert_close(a, b, 0, 0);
    assert_close(ha, hb, 0, 0);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(packed_gru_length_zero_outputs_zeros_and_keeps_h0)
{
    cf_gru *m = cf_gru_new(NULL, "gru", 3, 4, 1, true, 0, true, NULL);
    cf_tensor *x = rand_leaf(4, -1, 1, CF_SHAPE(2, 3, 3)),
              *h0 = rand_leaf(5, -1, 1, CF_SHAPE(2, 2, 4));
    cf_tensor *h_n = NULL;
    cf_tensor *out =
        cf_gru_forward_packed(m, x, cf_from_ints((int32_t[]){0, 3}, CF_SHAPE(2)), h0, &h_n);
    assert_close(cf_slice(out, 0, 0, 1, 1), cf_zeros(CF_SHAPE(1, 3, 8)), 0, 0);
    assert_close(cf_slice(h_n, 1, 0, 1, 1), cf_slice(h0, 1, 0, 1, 1), 0, 0);
    cf_module_free(&m->base);
}
END_TEST

typedef struct {
    cf_gru *m;
    cf_tensor *lengths;
} packed_case;

/* sum(out * w1) + sum(h_n * w2) with fixed weights, so every output matters. */
static cf_tensor *packed_loss(cf_tensor *const *in, void *ud)
{
    packed_case *c = ud;
    cf_tensor *h_n = NULL;
    cf_tensor *out = cf_gru_forward_packed(c->m, in[0], c->lengths, in[1], &h_n);
    cf_tensor *w1 = cf_uniform(&(cf_rng){7, 0}, -1, 1, out->ndim, out->shape);
    cf_tensor *w2 = cf_uniform(&(cf_rng){8, 0}, -1, 1, h_n->ndim, h_n->shape);
    return cf_add(cf_sum_all(cf_mul(out, w1)), cf_sum_all(cf_mul(h_n, w2)));
}

START_TEST(packed_gru_gradcheck)
{
    cf_gru *m = cf_gru_new(NULL, "gru", 3, 4, 2, true, 0, true, NULL);
    packed_case c = {m, cf_from_ints((int32_t[]){4, 1, 3}, CF_SHAPE(3))};
    cf_tensor *in[2] = {rand_leaf(6, -1, 1, CF_SHAPE(3, 4, 3)),
                        rand_leaf(7, -1, 1, CF_SHAPE(4, 3, 4))};
    assert_gradcheck(packed_loss, &c, 2, in, 2e-2f);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(packed_gru_refuses_bad_lengths)
{
    cf_gru *m = cf_gru_new(NULL, "gru", 3, 4, 1, false, 0, true, NULL);
    cf_tensor *x = rand_leaf(8, -1, 1, CF_SHAPE(2, 3, 3));
    ck_assert_ptr_null(
        cf_gru_forward_packed(m, x, cf_from_ints((int32_t[]){1, 4}, CF_SHAPE(2)), NULL, NULL));
    assert_error(CF_ERR_INDEX, "GRU \"gru\"", "length 4", "[0, 3]", NULL);
    ck_assert_ptr_null(
        cf_gru_forward_packed(m, x, cf_from_ints((int32_t[]){1, -1}, CF_SHAPE(2)), NULL, NULL));
    assert_error(CF_ERR_INDEX, "length -1", NULL);
    ck_assert_ptr_null(
        cf_gru_forward_packed(m, x, cf_from_ints((int32_t[]){1, 2, 3}, CF_SHAPE(3)), NULL, NULL));
    assert_error(CF_ERR_SHAPE, "lengths", "[3]", "[2]", NULL);
    ck_assert_ptr_null(cf_gru_forward_packed(m, x, cf_zeros(CF_SHAPE(2)), NULL, NULL));
    assert_error(CF_ERR_DTYPE, "lengths", "float32", NULL);
    ck_assert_ptr_null(cf_gru_forward_packed(m, x, NULL, NULL, NULL));
    assert_error(CF_ERR_ARG, NULL);
    cf_module_free(&m->base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("layers");
    TCase *tc = tcase("gru_packed");
    tcase_add_test(tc, golden_packed_gru_two_layers_bidirectional);
    tcase_add_test(tc, golden_packed_gru_with_initial_state);
    tcase_add_test(tc, packed_gru_outputs_zeros_at_padding);
    tcase_add_test(tc, packed_gru_row_equals_the_row_run_alone);
    tcase_add_test(tc, packed_gru_with_full_lengths_equals_the_plain_forward);
    tcase_add_test(tc, packed_gru_length_zero_outputs_zeros_and_keeps_h0);
    tcase_add_test(tc, packed_gru_gradcheck);
    tcase_add_test(tc, packed_gru_refuses_bad_lengths);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
