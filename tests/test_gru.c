/* GRUCell and GRU (nn/gru.c) against nn.GRUCell and nn.GRU
 * (tests/golden/gen_nn.py), over padded batches as PyTorch packs them
 * (tests/golden/gen_layers.py), gradient checks, dropout between layers and
 * bad input. */
#include "tests/gold.h"

#define NN     "nn.safetensors"
#define LAYERS "layers.safetensors"

static void run_gru_cell(const char *c, bool with_h)
{
    gold g = gold_open(NN, c, &cf_gru_cell_new(NULL, "cell", 5, 7, true, NULL)->base);
    cf_tensor *ins[2] = {gold_in(&g, "x"), with_h ? gold_in(&g, "h") : NULL};
    cf_tensor *out = cf_gru_cell_forward((cf_gru_cell *)g.m, ins[0], ins[1]);
    gold_outputs(&g, 1, &out, (const char *[]){"out"});
    gold_finish(&g, with_h ? 2 : 1, ins, (const char *[]){"x", "h"});
}

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

/* ---- gru_cell ---- */

TEST(golden_gru_cell) { run_gru_cell("gru_cell", true); }
END_TEST

TEST(golden_gru_cell_without_state_starts_from_zeros) { run_gru_cell("gru_cell_no_h", false); }
END_TEST

TEST(gru_cell_rejects_wrong_input_and_state_shapes)
{
    cf_gru_cell *m = cf_gru_cell_new(NULL, "cell", 5, 7, true, NULL);
    ck_assert_ptr_null(cf_gru_cell_forward(m, cf_zeros(CF_SHAPE(3, 4)), NULL));
    assert_error(CF_ERR_SHAPE, "GRUCell", "\"cell\"", "[3, 4]", NULL);
    ck_assert_ptr_null(cf_gru_cell_forward(m, cf_zeros(CF_SHAPE(3, 5)), cf_zeros(CF_SHAPE(2, 7))));
    assert_error(CF_ERR_SHAPE, "GRUCell", "\"cell\"", "[2, 7]", "[3, 7]", NULL);
    cf_module_free(&m->base);
}
END_TEST

TEST(gru_cell_constructor_rejects_a_zero_hidden_size)
{
    ck_assert_ptr_null(cf_gru_cell_new(NULL, "cell", 3, 0, true, NULL));
    assert_error(CF_ERR_ARG, "GRUCell", "\"cell\"", NULL);
}
END_TEST

/* ---- gru ---- */

/* A golden case of GRU: its fixture, the constructor's arguments and the
 * call. */
typedef struct {
    const char *file, *name;
    int input, hidden, layers;
    bool bidirectional, bias;
    bool h0;     /* the fixture's initial state, else zeros */
    bool views;  /* input and state as strided views */
    bool packed; /* cf_gru_forward_packed with the fixture's lengths */
} gru_case;

static const gru_case GRU_CASES[] = {
    {NN, "gru_bi2_h0", 5, 4, 2, true, true, .h0 = true},
    {NN, "gru_bi2", 5, 4, 2, true, true, .h0 = false},
    {NN, "gru_bi2_h0", 5, 4, 2, true, true, .h0 = true, .views = true},
    {NN, "gru_nobias", 3, 5, 1, false, false, .h0 = false},
    {LAYERS, "gru_packed", 5, 4, 2, true, true, .packed = true},
    {LAYERS, "gru_packed_h0", 3, 4, 1, false, true, .h0 = true, .packed = true},
};

TEST_WITH(gru_matches_pytorch, .loop = COUNT(GRU_CASES))
{
    const gru_case *c = &GRU_CASES[_i];
    cf_gru *m =
        cf_gru_new(NULL, "gru", c->input, c->hidden, c->layers, c->bidirectional, 0, c->bias, NULL);
    gold g = gold_open(c->file, c->name, &m->base);
    cf_tensor *ins[2] = {gold_in(&g, "x"), c->h0 ? gold_in(&g, "h0") : NULL};
    cf_tensor *x = c->views ? strided(ins[0]) : ins[0];
    cf_tensor *h0 = c->views && c->h0 ? strided(ins[1]) : ins[1];
    cf_tensor *outs[2];
    outs[0] = c->packed ? cf_gru_forward_packed(m, x, gold_get(&g, "lengths"), h0, &outs[1])
                        : cf_gru_forward(m, x, h0, &outs[1]);
    gold_outputs(&g, 2, outs, (const char *[]){"out", "h_n"});
    gold_finish(&g, c->h0 ? 2 : 1, ins, (const char *[]){"x", "h0"});
}
END_TEST

TEST(gru_dropout_acts_between_layers_in_training_only)
{
    cf_tensor *x = rand_leaf(9, -1, 1, CF_SHAPE(2, 5, 3));
    cf_gru *one = cf_gru_new(NULL, "gru", 3, 8, 1, true, 0.5f, true, NULL);
    cf_tensor *train = cf_gru_forward(one, x, NULL, NULL);
    cf_module_train(&one->base, false);
    assert_close(cf_gru_forward(one, x, NULL, NULL), train, 0, 0);

    cf_gru *two = cf_gru_new(NULL, "gru", 3, 8, 2, true, 0.5f, true, NULL);
    train = cf_gru_forward(two, x, NULL, NULL);
    cf_module_train(&two->base, false);
    cf_tensor *eval = cf_gru_forward(two, x, NULL, NULL);
    ASSERT_NO_ERROR();
    value_stats d = stats_of(cf_abs(cf_sub(train, eval)));
    ck_assert_msg(d.max > 1e-3, "training output equals eval output");
    assert_close(cf_gru_forward(two, x, NULL, NULL), eval, 0, 0);
    cf_module_free(&one->base);
    cf_module_free(&two->base);
}
END_TEST

TEST(gru_rejects_more_parameters_than_a_module_holds)
{
    /* 9 layers x 2 directions x 4 tensors > CF_MODULE_MAX_PARAMS */
    ck_assert_ptr_null(cf_gru_new(NULL, "gru", 3, 4, 9, true, 0, true, NULL));
    assert_error(CF_ERR_ARG, "GRU", "\"gru\"", NULL);
}
END_TEST

TEST(gru_rejects_wrong_input_and_h0_shapes)
{
    cf_gru *m = cf_gru_new(NULL, "enc", 5, 4, 2, true, 0, true, NULL);
    ck_assert_ptr_null(cf_gru_forward(m, cf_zeros(CF_SHAPE(2, 3, 6)), NULL, NULL));
    assert_error(CF_ERR_SHAPE, "GRU", "\"enc\"", "[2, 3, 6]", NULL);
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 3, 5));
    ck_assert_ptr_null(cf_gru_forward(m, x, cf_zeros(CF_SHAPE(2, 2, 4)), NULL));
    assert_error(CF_ERR_SHAPE, "GRU", "\"enc\"", "h0", "[2, 2, 4]", "[4, 2, 4]", NULL);
    cf_module_free(&m->base);
}
END_TEST

TEST(gru_constructor_rejects_a_zero_hidden_size)
{
    ck_assert_ptr_null(cf_gru_new(NULL, "gru", 3, 0, 1, false, 0, true, NULL));
    assert_error(CF_ERR_ARG, "GRU", "\"gru\"", NULL);
}
END_TEST

/* ---- gru_packed ---- */

TEST(packed_gru_outputs_zeros_at_padding)
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

TEST(packed_gru_row_equals_the_row_run_alone)
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

TEST(packed_gru_with_full_lengths_equals_the_plain_forward)
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

TEST(packed_gru_length_zero_outputs_zeros_and_keeps_h0)
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

TEST(packed_gru_gradcheck)
{
    cf_gru *m = cf_gru_new(NULL, "gru", 3, 4, 2, true, 0, true, NULL);
    packed_case c = {m, cf_from_ints((int32_t[]){4, 1, 3}, CF_SHAPE(3))};
    cf_tensor *in[2] = {rand_leaf(6, -1, 1, CF_SHAPE(3, 4, 3)),
                        rand_leaf(7, -1, 1, CF_SHAPE(4, 3, 4))};
    assert_gradcheck(packed_loss, &c, 2, in, 2e-2f);
    cf_module_free(&m->base);
}
END_TEST

TEST(packed_gru_refuses_bad_lengths)
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
