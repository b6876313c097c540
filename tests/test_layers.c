/* BatchNorm1d, RMSNorm, LSTMCell, LSTM, Luong attention and recurrent layers
 * over padded batches, against PyTorch (tests/golden/gen_layers.py): golden
 * values, gradients and running statistics, gradient checks, state_dicts
 * and bad input. Tolerance: assert_golden's 1e-5 + 1e-4 * |want| against
 * float64 references. */
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
        ck_assert_msg(cf_item(t) == cf_item(fixture(c->g->f, key)), "%s: %g, want %g", key,
                      cf_item(t), cf_item(fixture(c->g->f, key)));
        return;
    }
    assert_golden(c->after ? t : t->grad, c->g->f, key);
}

/* Checks the n outputs, backpropagates sum(out_i * d<out_i>) and checks the
 * gradients of the named inputs and of every parameter, and every buffer's
 * value after the run; then closes the case and frees the module. */
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
    cf_module_visit(g->m, check_one, &(tensor_check){g, false});
    cf_module_visit(g->m, check_one, &(tensor_check){g, true});
    cf_safetensors_close(g->f);
    cf_module_free(g->m);
}

/* A module with one input x and one output out, in the given mode. */
static void run_unary(const char *c, cf_module *m, cf_tensor *(*fwd)(cf_module *, cf_tensor *),
                      bool training)
{
    gold g = gold_open(c, m);
    cf_module_train(m, training);
    cf_tensor *x = gold_in(&g, "x");
    cf_tensor *out = fwd(m, x);
    gold_finish(&g, 1, &out, (const char *[]){"out"}, 1, &x, (const char *[]){"x"});
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

/* ---- BatchNorm1d ---- */

static cf_tensor *bn_fwd(cf_module *m, cf_tensor *x)
{
    return cf_batchnorm1d_forward((cf_batchnorm1d *)m, x);
}

static cf_module *bn(int C, float eps, float momentum, bool affine, bool track)
{
    return &cf_batchnorm1d_new(NULL, "bn", C, eps, momentum, affine, track)->base;
}

START_TEST(golden_batchnorm_2d_input_training)
{
    run_unary("bn2d", bn(4, 1e-5f, 0.1f, true, true), bn_fwd, true);
}
END_TEST

START_TEST(golden_batchnorm_3d_input_training_with_momentum)
{
    run_unary("bn3d", bn(3, 1e-3f, 0.3f, true, true), bn_fwd, true);
}
END_TEST

START_TEST(golden_batchnorm_cumulative_average_without_momentum)
{
    run_unary("bn_cumulative", bn(3, 1e-5f, -1, true, true), bn_fwd, true);
}
END_TEST

START_TEST(golden_batchnorm_eval_uses_running_statistics)
{
    run_unary("bn_eval", bn(4, 1e-5f, 0.1f, true, true), bn_fwd, false);
}
END_TEST

START_TEST(golden_batchnorm_without_affine)
{
    run_unary("bn_plain", bn(3, 1e-5f, 0.1f, false, true), bn_fwd, true);
}
END_TEST

START_TEST(golden_batchnorm_untracked_uses_batch_statistics_in_eval)
{
    run_unary("bn_untracked_eval", bn(3, 1e-5f, 0.1f, true, false), bn_fwd, false);
}
END_TEST

START_TEST(batchnorm_state_dict_has_torch_names_and_parameters_exclude_buffers)
{
    cf_module *m = bn(4, 1e-5f, 0.1f, true, true);
    ck_assert_int_eq(cf_module_num_tensors(m), 5);
    ck_assert_int_eq(cf_module_num_params(m), 8);
    cf_tensor *n = cf_module_find(m, "num_batches_tracked");
    ck_assert_int_eq(n->dtype, CF_I32);
    ck_assert_int_eq(n->ndim, 0);
    ck_assert(!(cf_module_find(m, "running_var")->flags & CF_REQUIRES_GRAD));
    ck_assert_float_eq(cf_get(cf_module_find(m, "running_var"), CF_IDX(2)), 1);
    cf_module_free(m);
    m = bn(4, 1e-5f, 0.1f, false, false);
    ck_assert_int_eq(cf_module_num_tensors(m), 0);
    cf_module_free(m);
}
END_TEST

START_TEST(batchnorm_loads_a_pytorch_state_dict_with_an_int64_counter)
{
    /* The fixture's "bn3d.*" entries are a torch state_dict under the
     * prefix bn3d, num_batches_tracked int64. */
    cf_module *root = cf_module_new("Net", NULL, NULL);
    cf_batchnorm1d *b = cf_batchnorm1d_new(root, "bn3d", 3, 1e-3f, 0.3f, true, true);
    ck_assert_int_eq(cf_module_load(root, FIXTURES "/layers.safetensors", false), CF_OK);
    ck_assert_int_eq(*(int32_t *)b->num_batches_tracked->data, 5);
    cf_safetensors *f = open_fixture("layers.safetensors");
    assert_golden(b->running_mean, f, "bn3d.running_mean");
    cf_safetensors_close(f);
    cf_module_free(root);
}
END_TEST

START_TEST(int64_tensors_narrow_to_int32_only_when_they_fit)
{
    cf_safetensors *f = open_fixture("layers.safetensors");
    cf_tensor *n = cf_empty(CF_I32, 0, NULL), *x = cf_empty(CF_F32, 0, NULL);
    ck_assert_int_eq(cf_safetensors_read_into(f, "int64_too_big", n), CF_ERR_DTYPE);
    assert_error(CF_ERR_DTYPE, "int64_too_big", "1099511627776", "beyond int32", NULL);
    ck_assert_int_eq(cf_safetensors_read_into(f, "bn2d.num_batches_tracked", x), CF_ERR_DTYPE);
    assert_error(CF_ERR_DTYPE, "I64", "float32", NULL);
    ck_assert_ptr_null(cf_safetensors_get(f, "bn2d.num_batches_tracked"));
    assert_error(CF_ERR_DTYPE, "I64", NULL);
    cf_safetensors_close(f);
}
END_TEST

START_TEST(batchnorm_updates_running_statistics_only_in_training)
{
    cf_batchnorm1d *m = (cf_batchnorm1d *)bn(2, 1e-5f, 0.1f, true, true);
    cf_tensor *x = rand_leaf(9, -1, 1, CF_SHAPE(4, 2));
    cf_module_train(&m->base, false);
    cf_batchnorm1d_forward(m, x);
    ck_assert_int_eq(*(int32_t *)m->num_batches_tracked->data, 0);
    ck_assert_float_eq(cf_get(m->running_mean, CF_IDX(0)), 0);
    cf_module_train(&m->base, true);
    CF_NO_GRAD { cf_batchnorm1d_forward(m, x); }
    ck_assert_int_eq(*(int32_t *)m->num_batches_tracked->data, 1);
    ck_assert_float_ne(cf_get(m->running_mean, CF_IDX(0)), 0);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(optimizers_leave_buffers_alone)
{
    cf_batchnorm1d *m = (cf_batchnorm1d *)bn(2, 1e-5f, 0.1f, true, true);
    cf_optim *o = cf_adamw_new(&m->base, &(cf_adamw_opts){.lr = 0.1f, .weight_decay = 0.5f});
    cf_tensor *y = cf_batchnorm1d_forward(m, rand_leaf(10, -1, 1, CF_SHAPE(4, 2)));
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_square(y))), CF_OK);
    float rv[2];
    cf_copy_to(m->running_var, rv);
    cf_optim_step(o);
    ck_assert_float_eq(cf_get(m->running_var, CF_IDX(0)), rv[0]);
    ck_assert_float_eq(cf_get(m->running_var, CF_IDX(1)), rv[1]);
    ck_assert_int_eq(*(int32_t *)m->num_batches_tracked->data, 1);
    cf_optim_free(o);
    cf_module_free(&m->base);
}
END_TEST

static cf_tensor *bn_train_fwd(cf_tensor *const *in, void *ud)
{
    return cf_batchnorm1d_forward(ud, in[0]);
}

START_TEST(batchnorm_gradcheck_through_batch_statistics)
{
    cf_batchnorm1d *m = (cf_batchnorm1d *)bn(3, 1e-5f, 0.1f, true, false);
    cf_fill_uniform(&(cf_rng){11, 0}, m->weight, 0.5f, 1.5f);
    cf_tensor *x = rand_leaf(12, -1, 1, CF_SHAPE(4, 3, 2));
    assert_gradcheck(bn_train_fwd, m, 1, &x, 2e-2f);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(batchnorm_refuses_bad_input)
{
    cf_batchnorm1d *m = (cf_batchnorm1d *)bn(3, 1e-5f, 0.1f, true, true);
    ck_assert_ptr_null(cf_batchnorm1d_forward(m, cf_zeros(CF_SHAPE(4, 2))));
    assert_error(CF_ERR_SHAPE, "BatchNorm1d \"bn\"", "[4, 2]", "[N, 3]", NULL);
    ck_assert_ptr_null(cf_batchnorm1d_forward(m, cf_zeros(CF_SHAPE(3))));
    assert_error(CF_ERR_SHAPE, "[3]", NULL);
    ck_assert_ptr_null(cf_batchnorm1d_forward(m, cf_zeros(CF_SHAPE(1, 3))));
    assert_error(CF_ERR_SHAPE, "1 value per channel", NULL);
    cf_module_train(&m->base, false);
    ck_assert_ptr_nonnull(cf_batchnorm1d_forward(m, cf_zeros(CF_SHAPE(1, 3))));
    ck_assert_ptr_null(cf_batchnorm1d_new(NULL, "b", 0, 1e-5f, 0.1f, true, true));
    assert_error(CF_ERR_ARG, "num_features 0", NULL);
    ck_assert_ptr_null(cf_batchnorm1d_new(NULL, "b", 3, 1e-5f, 1.5f, true, true));
    assert_error(CF_ERR_ARG, "momentum 1.5", NULL);
    cf_module_free(&m->base);
}
END_TEST

/* ---- RMSNorm ---- */

static cf_tensor *rms_fwd(cf_module *m, cf_tensor *x)
{
    return cf_rmsnorm_forward((cf_rmsnorm *)m, x);
}

START_TEST(golden_rmsnorm_with_weight)
{
    run_unary("rmsnorm", &cf_rmsnorm_new(NULL, "norm", 6, 1e-6f, true)->base, rms_fwd, true);
}
END_TEST

START_TEST(golden_rmsnorm_without_weight_at_torch_default_eps)
{
    run_unary("rmsnorm_plain", &cf_rmsnorm_new(NULL, "norm", 5, 1.1920929e-07f, false)->base,
              rms_fwd, true);
}
END_TEST

static cf_tensor *rms_gc(cf_tensor *const *in, void *ud) { return cf_rmsnorm_forward(ud, in[0]); }

START_TEST(rmsnorm_gradcheck)
{
    cf_rmsnorm *m = cf_rmsnorm_new(NULL, "norm", 4, 1e-5f, true);
    cf_fill_uniform(&(cf_rng){13, 0}, m->weight, 0.5f, 1.5f);
    cf_tensor *x = rand_leaf(14, -1, 1, CF_SHAPE(3, 4));
    assert_gradcheck(rms_gc, m, 1, &x, 2e-2f);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(rmsnorm_refuses_bad_input)
{
    cf_rmsnorm *m = cf_rmsnorm_new(NULL, "norm", 4, 1e-5f, true);
    ck_assert_ptr_null(cf_rmsnorm_forward(m, cf_zeros(CF_SHAPE(2, 3))));
    assert_error(CF_ERR_SHAPE, "RMSNorm \"norm\"", "[2, 3]", "[..., 4]", NULL);
    ck_assert_ptr_null(cf_rmsnorm_new(NULL, "norm", 4, -1, true));
    assert_error(CF_ERR_ARG, "RMSNorm", "eps -1", NULL);
    cf_module_free(&m->base);
}
END_TEST

/* ---- LSTMCell and LSTM ---- */

static void run_lstm_cell(const char *c, cf_lstm_cell *m, bool with_state)
{
    gold g = gold_open(c, &m->base);
    cf_tensor *ins[3] = {gold_in(&g, "x"), with_state ? gold_in(&g, "h0") : NULL,
                         with_state ? gold_in(&g, "c0") : NULL};
    cf_tensor *outs[2];
    outs[0] = cf_lstm_cell_forward(m, ins[0], ins[1], ins[2], &outs[1]);
    gold_finish(&g, 2, outs, (const char *[]){"h", "c"}, with_state ? 3 : 1, ins,
                (const char *[]){"x", "h0", "c0"});
}

START_TEST(golden_lstm_cell)
{
    run_lstm_cell("lstm_cell", cf_lstm_cell_new(NULL, "cell", 5, 4, true, NULL), true);
}
END_TEST

START_TEST(golden_lstm_cell_without_bias_from_zero_state)
{
    run_lstm_cell("lstm_cell_zero", cf_lstm_cell_new(NULL, "cell", 3, 2, false, NULL), false);
}
END_TEST

static void run_lstm(const char *c, cf_lstm *m, bool with_states, bool packed)
{
    gold g = gold_open(c, &m->base);
    cf_tensor *ins[3] = {gold_in(&g, "x"), with_states ? gold_in(&g, "h0") : NULL,
                         with_states ? gold_in(&g, "c0") : NULL};
    cf_tensor *outs[3];
    outs[0] = packed ? cf_lstm_forward_packed(m, ins[0], gold_get(&g, "lengths"), ins[1], ins[2],
                                              &outs[1], &outs[2])
                     : cf_lstm_forward(m, ins[0], ins[1], ins[2], &outs[1], &outs[2]);
    gold_finish(&g, 3, outs, (const char *[]){"out", "h_n", "c_n"}, with_states ? 3 : 1, ins,
                (const char *[]){"x", "h0", "c0"});
}

START_TEST(golden_lstm_two_layers_bidirectional_with_states)
{
    run_lstm("lstm_bi2", cf_lstm_new(NULL, "lstm", 5, 4, 2, true, true, 0, true, NULL), true,
             false);
}
END_TEST

START_TEST(golden_lstm_time_first)
{
    run_lstm("lstm_time_first", cf_lstm_new(NULL, "lstm", 3, 5, 1, false, false, 0, true, NULL),
             false, false);
}
END_TEST

START_TEST(golden_lstm_over_padded_sequences)
{
    run_lstm("lstm_packed", cf_lstm_new(NULL, "lstm", 4, 3, 2, true, true, 0, true, NULL), false,
             true);
}
END_TEST

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

START_TEST(lstm_gradcheck)
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

static cf_tensor *cell_gc(cf_tensor *const *in, void *ud)
{
    cf_tensor *c_new = NULL;
    cf_tensor *h = cf_lstm_cell_forward(ud, in[0], in[1], in[2], &c_new);
    return cf_cat(2, (cf_tensor *[]){h, c_new}, 1);
}

START_TEST(lstm_cell_gradcheck)
{
    cf_lstm_cell *m = cf_lstm_cell_new(NULL, "cell", 3, 4, true, NULL);
    cf_tensor *in[3] = {rand_leaf(18, -1, 1, CF_SHAPE(2, 3)), rand_leaf(19, -1, 1, CF_SHAPE(2, 4)),
                        rand_leaf(20, -1, 1, CF_SHAPE(2, 4))};
    assert_gradcheck(cell_gc, m, 3, in, 2e-2f);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(lstm_refuses_bad_input)
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

/* ---- Luong attention ---- */

static void run_luong(const char *c, cf_luong_attention *m, bool masked)
{
    gold g = gold_open(c, &m->base);
    cf_tensor *ins[2] = {gold_in(&g, "q"), gold_in(&g, "keys")};
    cf_tensor *outs[2];
    outs[0] = cf_luong_attention_forward(m, ins[0], ins[1], cf_luong_attention_keys(m, ins[1]),
                                         masked ? gold_get(&g, "kpm") : NULL, &outs[1]);
    gold_finish(&g, 2, outs, (const char *[]){"out", "weights"}, 2, ins,
                (const char *[]){"q", "keys"});
}

START_TEST(golden_luong_dot_with_padding)
{
    run_luong("luong_dot", cf_luong_attention_new(NULL, "attn", CF_LUONG_DOT, 5, 5, NULL), true);
}
END_TEST

START_TEST(golden_luong_general_with_padding)
{
    run_luong("luong_general", cf_luong_attention_new(NULL, "attn", CF_LUONG_GENERAL, 4, 6, NULL),
              true);
}
END_TEST

START_TEST(golden_luong_general_without_mask)
{
    run_luong("luong_general_nomask",
              cf_luong_attention_new(NULL, "attn", CF_LUONG_GENERAL, 3, 2, NULL), false);
}
END_TEST

static cf_tensor *luong_gc(cf_tensor *const *in, void *ud)
{
    cf_luong_attention *m = ud;
    cf_tensor *w = NULL;
    cf_tensor *kpm = cf_from_ints((int32_t[]){0, 0, 1, 0, 0, 0}, CF_SHAPE(2, 3));
    kpm = cf_gt(kpm, cf_from_ints((int32_t[]){0}, 0, NULL));
    cf_tensor *ctx =
        cf_luong_attention_forward(m, in[0], in[1], cf_luong_attention_keys(m, in[1]), kpm, &w);
    return cf_cat(2, (cf_tensor *[]){ctx, w}, 1);
}

START_TEST(luong_gradcheck)
{
    cf_luong_attention *m = cf_luong_attention_new(NULL, "attn", CF_LUONG_GENERAL, 2, 3, NULL);
    cf_tensor *in[2] = {rand_leaf(22, -1, 1, CF_SHAPE(2, 2)),
                        rand_leaf(23, -1, 1, CF_SHAPE(2, 3, 3))};
    assert_gradcheck(luong_gc, m, 2, in, 2e-2f);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(luong_masked_keys_get_no_weight)
{
    cf_luong_attention *m = cf_luong_attention_new(NULL, "attn", CF_LUONG_DOT, 2, 2, NULL);
    cf_tensor *keys = rand_leaf(24, -1, 1, CF_SHAPE(1, 3, 2)), *w = NULL;
    cf_tensor *kpm = cf_gt(cf_from_ints((int32_t[]){0, 1, 0}, CF_SHAPE(1, 3)),
                           cf_from_ints((int32_t[]){0}, 0, NULL));
    ck_assert_ptr_nonnull(
        cf_luong_attention_forward(m, rand_leaf(25, -1, 1, CF_SHAPE(1, 2)), keys, keys, kpm, &w));
    ck_assert_float_eq(cf_get(w, CF_IDX(0, 1)), 0);
    ck_assert_float_eq_tol(cf_get(w, CF_IDX(0, 0)) + cf_get(w, CF_IDX(0, 2)), 1, 1e-6f);
    ck_assert_int_eq(cf_module_num_tensors(&m->base), 0);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(luong_refuses_bad_input)
{
    ck_assert_ptr_null(cf_luong_attention_new(NULL, "attn", CF_LUONG_DOT, 3, 4, NULL));
    assert_error(CF_ERR_ARG, "LuongAttention \"attn\"", "dot", NULL);
    cf_luong_attention *m = cf_luong_attention_new(NULL, "attn", CF_LUONG_GENERAL, 3, 4, NULL);
    cf_tensor *keys = cf_zeros(CF_SHAPE(2, 5, 4));
    ck_assert_ptr_null(cf_luong_attention_forward(m, cf_zeros(CF_SHAPE(2, 4)), keys,
                                                  cf_luong_attention_keys(m, keys), NULL, NULL));
    assert_error(CF_ERR_SHAPE, "LuongAttention \"attn\"", "query [2, 4]", NULL);
    ck_assert_ptr_null(cf_luong_attention_forward(m, cf_zeros(CF_SHAPE(2, 3)), keys,
                                                  cf_luong_attention_keys(m, keys),
                                                  cf_zeros(CF_SHAPE(2, 5)), NULL));
    assert_error(CF_ERR_SHAPE, "key_padding_mask float32 [2, 5]", NULL);
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
    tc = tcase("batchnorm");
    tcase_add_test(tc, golden_batchnorm_2d_input_training);
    tcase_add_test(tc, golden_batchnorm_3d_input_training_with_momentum);
    tcase_add_test(tc, golden_batchnorm_cumulative_average_without_momentum);
    tcase_add_test(tc, golden_batchnorm_eval_uses_running_statistics);
    tcase_add_test(tc, golden_batchnorm_without_affine);
    tcase_add_test(tc, golden_batchnorm_untracked_uses_batch_statistics_in_eval);
    tcase_add_test(tc, batchnorm_state_dict_has_torch_names_and_parameters_exclude_buffers);
    tcase_add_test(tc, batchnorm_loads_a_pytorch_state_dict_with_an_int64_counter);
    tcase_add_test(tc, int64_tensors_narrow_to_int32_only_when_they_fit);
    tcase_add_test(tc, batchnorm_updates_running_statistics_only_in_training);
    tcase_add_test(tc, optimizers_leave_buffers_alone);
    tcase_add_test(tc, batchnorm_gradcheck_through_batch_statistics);
    tcase_add_test(tc, batchnorm_refuses_bad_input);
    suite_add_tcase(s, tc);
    tc = tcase("rmsnorm");
    tcase_add_test(tc, golden_rmsnorm_with_weight);
    tcase_add_test(tc, golden_rmsnorm_without_weight_at_torch_default_eps);
    tcase_add_test(tc, rmsnorm_gradcheck);
    tcase_add_test(tc, rmsnorm_refuses_bad_input);
    suite_add_tcase(s, tc);
    tc = tcase("lstm");
    tcase_add_test(tc, golden_lstm_cell);
    tcase_add_test(tc, golden_lstm_cell_without_bias_from_zero_state);
    tcase_add_test(tc, golden_lstm_two_layers_bidirectional_with_states);
    tcase_add_test(tc, golden_lstm_time_first);
    tcase_add_test(tc, golden_lstm_over_padded_sequences);
    tcase_add_test(tc, lstm_gradcheck);
    tcase_add_test(tc, lstm_cell_gradcheck);
    tcase_add_test(tc, lstm_refuses_bad_input);
    suite_add_tcase(s, tc);
    tc = tcase("luong");
    tcase_add_test(tc, golden_luong_dot_with_padding);
    tcase_add_test(tc, golden_luong_general_with_padding);
    tcase_add_test(tc, golden_luong_general_without_mask);
    tcase_add_test(tc, luong_gradcheck);
    tcase_add_test(tc, luong_masked_keys_get_no_weight);
    tcase_add_test(tc, luong_refuses_bad_input);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
