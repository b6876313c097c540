/* LSTMCell and LSTM (nn/lstm.c) against nn.LSTMCell and nn.LSTM
 * (tests/golden/gen_layers.py), also time-first and over padded batches,
 * gradient checks and bad input. */
#include "tests/gold.h"

#define LAYERS "layers.safetensors"

static void run_lstm_cell(const char *c, cf_lstm_cell *m, bool with_state)
{
    gold g = gold_open(LAYERS, c, &m->base);
    cf_tensor *ins[3] = {gold_in(&g, "x"), with_state ? gold_in(&g, "h0") : NULL,
                         with_state ? gold_in(&g, "c0") : NULL};
    cf_tensor *outs[2];
    outs[0] = cf_lstm_cell_forward(m, ins[0], ins[1], ins[2], &outs[1]);
    gold_outputs(&g, 2, outs, (const char *[]){"h", "c"});
    gold_finish(&g, with_state ? 3 : 1, ins, (const char *[]){"x", "h0", "c0"});
}

typedef struct {
    cf_lstm *m;
    cf_tensor *lengths;
} lstm_case;

static cf_tensor *lstm_gc(cf_tensor *const *in, void *ud)
{
    lstm_case *c = ud;
    cf_tensor *h_n = NULL, *c_n = NULL;
    cf_tensor *out = c->lengths
                         ? cf_lstm_forward_packed(c->m, in[0], c->lengths, in[1], in[2], &h_n, &c_n)
                         : cf_lstm_forward(c->m, in[0], in[1], in[2], &h_n, &c_n);
    return cf_cat(3,
                  (cf_tensor *[]){cf_reshape(out, CF_SHAPE(-1)), cf_reshape(h_n, CF_SHAPE(-1)),
                                  cf_reshape(c_n, CF_SHAPE(-1))},
                  0);
}

static cf_tensor *cell_gc(cf_tensor *const *in, void *ud)
{
    cf_tensor *c_new = NULL;
    cf_tensor *h = cf_lstm_cell_forward(ud, in[0], in[1], in[2], &c_new);
    return cf_cat(2, (cf_tensor *[]){h, c_new}, 1);
}

TEST(golden_lstm_cell)
{
    run_lstm_cell("lstm_cell", cf_lstm_cell_new(NULL, "cell", 5, 4, true, NULL), true);
}
END_TEST

TEST(golden_lstm_cell_without_bias_from_zero_state)
{
    run_lstm_cell("lstm_cell_zero", cf_lstm_cell_new(NULL, "cell", 3, 2, false, NULL), false);
}
END_TEST

/* A golden case of LSTM: its fixture, the constructor's arguments and the
 * call. */
typedef struct {
    const char *name;
    int input, hidden, layers;
    bool bidirectional, batch_first;
    bool states; /* the fixture's h0 and c0, else zeros */
    bool packed; /* cf_lstm_forward_packed with the fixture's lengths */
} lstm_golden;

static const lstm_golden LSTM_CASES[] = {
    {"lstm_bi2", 5, 4, 2, true, true, .states = true},
    {"lstm_time_first", 3, 5, 1, false, false, .states = false},
    {"lstm_packed", 4, 3, 2, true, true, .packed = true},
};

TEST_WITH(lstm_matches_pytorch, .loop = COUNT(LSTM_CASES))
{
    const lstm_golden *c = &LSTM_CASES[_i];
    cf_lstm *m = cf_lstm_new(NULL, "lstm", c->input, c->hidden, c->layers, c->bidirectional,
                             c->batch_first, 0, true, NULL);
    gold g = gold_open(LAYERS, c->name, &m->base);
    cf_tensor *ins[3] = {gold_in(&g, "x"), c->states ? gold_in(&g, "h0") : NULL,
                         c->states ? gold_in(&g, "c0") : NULL};
    cf_tensor *outs[3];
    outs[0] = c->packed ? cf_lstm_forward_packed(m, ins[0], gold_get(&g, "lengths"), ins[1], ins[2],
                                                 &outs[1], &outs[2])
                        : cf_lstm_forward(m, ins[0], ins[1], ins[2], &outs[1], &outs[2]);
    gold_outputs(&g, 3, outs, (const char *[]){"out", "h_n", "c_n"});
    gold_finish(&g, c->states ? 3 : 1, ins, (const char *[]){"x", "h0", "c0"});
}
END_TEST

TEST(lstm_gradcheck)
{
    cf_lstm *m = cf_lstm_new(NULL, "lstm", 3, 2, 2, true, true, 0, true, NULL);
    cf_tensor *in[3] = {rand_leaf(15, -1, 1, CF_SHAPE(2, 3, 3)),
                        rand_leaf(16, -1, 1, CF_SHAPE(4, 2, 2)),
                        rand_leaf(17, -1, 1, CF_SHAPE(4, 2, 2))};
    assert_gradcheck(lstm_gc, &(lstm_case){m, NULL}, 3, in, 2e-2f);
    assert_gradcheck(lstm_gc, &(lstm_case){m, cf_from_ints((int32_t[]){1, 3}, CF_SHAPE(2))}, 3, in,
                     2e-2f);
    cf_module_free(&m->base);
}
END_TEST

TEST(lstm_cell_gradcheck)
{
    cf_lstm_cell *m = cf_lstm_cell_new(NULL, "cell", 3, 4, true, NULL);
    cf_tensor *in[3] = {rand_leaf(18, -1, 1, CF_SHAPE(2, 3)), rand_leaf(19, -1, 1, CF_SHAPE(2, 4)),
                        rand_leaf(20, -1, 1, CF_SHAPE(2, 4))};
    assert_gradcheck(cell_gc, m, 3, in, 2e-2f);
    cf_module_free(&m->base);
}
END_TEST

TEST(lstm_refuses_bad_input)
{
    cf_lstm *m = cf_lstm_new(NULL, "lstm", 3, 4, 1, true, true, 0, true, NULL);
    cf_tensor *x = rand_leaf(21, -1, 1, CF_SHAPE(2, 5, 3));
    ck_assert_ptr_null(cf_lstm_forward(m, cf_zeros(CF_SHAPE(2, 5, 4)), NULL, NULL, NULL, NULL));
    assert_error(CF_ERR_SHAPE, "LSTM \"lstm\"", "[2, 5, 4]", NULL);
    ck_assert_ptr_null(cf_lstm_forward(m, x, cf_zeros(CF_SHAPE(1, 2, 4)), NULL, NULL, NULL));
    assert_error(CF_ERR_SHAPE, "h0", "[1, 2, 4]", "[2, 2, 4]", NULL);
    ck_assert_ptr_null(cf_lstm_forward(m, x, NULL, cf_zeros(CF_SHAPE(2, 3, 4)), NULL, NULL));
    assert_error(CF_ERR_SHAPE, "c0", "[2, 3, 4]", NULL);
    ck_assert_ptr_null(cf_lstm_forward_packed(m, x, cf_from_ints((int32_t[]){6, 1}, CF_SHAPE(2)),
                                              NULL, NULL, NULL, NULL));
    assert_error(CF_ERR_INDEX, "LSTM", "length 6", NULL);
    ck_assert_ptr_null(cf_lstm_forward_packed(m, x, NULL, NULL, NULL, NULL, NULL));
    assert_error(CF_ERR_ARG, "lengths", NULL);
    cf_lstm_cell *cell = cf_lstm_cell_new(NULL, "cell", 3, 4, true, NULL);
    ck_assert_ptr_null(
        cf_lstm_cell_forward(cell, cf_zeros(CF_SHAPE(2, 3)), cf_zeros(CF_SHAPE(2, 5)), NULL, NULL));
    assert_error(CF_ERR_SHAPE, "LSTMCell \"cell\"", "h of shape [2, 5]", NULL);
    ck_assert_ptr_null(cf_lstm_new(NULL, "lstm", 3, 4, 9, true, true, 0, true, NULL));
    assert_error(CF_ERR_ARG, "LSTM", "9 layers", NULL);
    cf_module_free(&cell->base);
    cf_module_free(&m->base);
}
END_TEST
