/* autograd/rnn.c: the fused GRU gates: values and gradients against
 * PyTorch (tests/golden/rnn.safetensors from gen_rnn.py), gradcheck,
 * thread-count independence, bad input. */
#include "tests/util.h"

/* The case's views of the stored leaves, as gen_rnn.py applies them. */
typedef enum { PLAIN, TIME_STEP, BROADCAST_STATE, TRANSPOSED } view;

static cf_tensor *gates_of(cf_tensor *const *in, view v)
{
    switch (v) {
    case TIME_STEP: return cf_gru_gates(cf_squeeze(cf_slice(in[0], 1, 2, 3, 1), 1), in[1], in[2]);
    case BROADCAST_STATE: return cf_gru_gates(in[0], in[1], cf_expand(in[2], CF_SHAPE(2, 3, 4)));
    case TRANSPOSED:
        return cf_gru_gates(cf_transpose(in[0], 0, 1), cf_transpose(in[1], 0, 1), in[2]);
    default: return cf_gru_gates(in[0], in[1], in[2]);
    }
}

static cf_tensor *build(cf_tensor *const *in, const void *ud)
{
    return gates_of(in, *(const view *)ud);
}

/* Case name of rnn.safetensors: the output and the three inputs' gradients
 * against PyTorch's. */
static void golden(const char *name, view v)
{
    assert_golden_case("rnn.safetensors", name, 3, build, &v);
}

TEST(gru_gates_match_pytorch_on_rows) { golden("gru_gates.rows", PLAIN); }
END_TEST

TEST(gru_gates_match_pytorch_on_a_time_step_of_the_projection)
{
    golden("gru_gates.time_step", TIME_STEP);
}
END_TEST

TEST(gru_gates_match_pytorch_with_a_broadcast_state)
{
    golden("gru_gates.broadcast_state", BROADCAST_STATE);
}
END_TEST

TEST(gru_gates_match_pytorch_on_transposed_saturated_projections)
{
    golden("gru_gates.transposed", TRANSPOSED);
}
END_TEST

static cf_tensor *gates_fn(cf_tensor *const *in, void *ud) { return gates_of(in, *(view *)ud); }

TEST(gru_gates_equal_the_unfused_equations)
{
    int64_t H = 6;
    cf_tensor *gi = rand_leaf(7, -3, 3, CF_SHAPE(5, 3 * H)),
              *gh = rand_leaf(8, -3, 3, CF_SHAPE(5, 3 * H));
    cf_tensor *h = rand_leaf(9, -1, 1, CF_SHAPE(5, H));
    cf_tensor *r = cf_sigmoid(cf_add(cf_slice(gi, 1, 0, H, 1), cf_slice(gh, 1, 0, H, 1)));
    cf_tensor *z = cf_sigmoid(cf_add(cf_slice(gi, 1, H, 2 * H, 1), cf_slice(gh, 1, H, 2 * H, 1)));
    cf_tensor *n = cf_tanh(
        cf_add(cf_slice(gi, 1, 2 * H, 3 * H, 1), cf_mul(r, cf_slice(gh, 1, 2 * H, 3 * H, 1))));
    cf_tensor *want = cf_add(cf_mul(cf_rsub_scalar(z, 1), n), cf_mul(z, h));
    assert_close(cf_gru_gates(gi, gh, h), want, 1e-6f, 1e-6f);
}
END_TEST

TEST(gru_gates_give_gate_gradients_when_the_state_needs_none)
{
    cf_tensor *in[3] = {rand_leaf(10, -2, 2, CF_SHAPE(4, 6)), rand_leaf(11, -2, 2, CF_SHAPE(4, 6)),
                        cf_requires_grad(rand_leaf(12, -1, 1, CF_SHAPE(4, 2)), false)};
    assert_gradcheck(gates_fn, &(view){PLAIN}, 3, in, 1e-2f);
    ck_assert_ptr_null(in[2]->grad);
}
END_TEST

/* Output and gradients of gates over [B, 3H] = [67, 3 * 131]. */
static void gates_run(float *buf)
{
    enum { B = 67, H = 131 };
    cf_tensor *gi = rand_leaf(13, -3, 3, CF_SHAPE(B, 3 * H)),
              *gh = rand_leaf(14, -3, 3, CF_SHAPE(B, 3 * H));
    cf_tensor *h = rand_leaf(15, -1, 1, CF_SHAPE(B, H));
    cf_rng g;
    cf_rng_init(&g, 16);
    cf_tensor *out = cf_gru_gates(gi, gh, h);
    ck_assert_int_eq(cf_backward_with(out, cf_uniform(&g, -1, 1, CF_SHAPE(B, H))), CF_OK);
    cf_copy_to(out, buf);
    cf_copy_to(h->grad, buf + B * H);
    cf_copy_to(gi->grad, buf + 2 * B * H);
    cf_copy_to(gh->grad, buf + 5 * B * H);
}

TEST(gru_gates_do_not_depend_on_the_thread_count)
{
    assert_thread_independent(gates_run, 8 * 67 * 131);
}
END_TEST

TEST(gru_gates_of_an_empty_batch_are_empty)
{
    cf_tensor *out =
        cf_gru_gates(cf_zeros(CF_SHAPE(0, 6)), cf_zeros(CF_SHAPE(0, 6)), cf_zeros(CF_SHAPE(0, 2)));
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(out->shape[0], 0);
    ck_assert_int_eq(out->shape[1], 2);
}
END_TEST

TEST(gru_gates_name_all_three_shapes_when_the_gates_are_not_3h)
{
    ck_assert_ptr_null(
        cf_gru_gates(cf_zeros(CF_SHAPE(2, 8)), cf_zeros(CF_SHAPE(2, 8)), cf_zeros(CF_SHAPE(2, 3))));
    assert_error(CF_ERR_SHAPE, "cf_gru_gates", "[2, 8]", "[2, 3]", NULL);
}
END_TEST

TEST(gru_gates_name_all_three_shapes_when_the_batches_differ)
{
    ck_assert_ptr_null(
        cf_gru_gates(cf_zeros(CF_SHAPE(2, 9)), cf_zeros(CF_SHAPE(4, 9)), cf_zeros(CF_SHAPE(2, 3))));
    assert_error(CF_ERR_SHAPE, "cf_gru_gates", "[2, 9]", "[4, 9]", "[2, 3]", NULL);
}
END_TEST

TEST(gru_gates_reject_int_tensors_and_null)
{
    cf_tensor *f = cf_zeros(CF_SHAPE(2, 6)), *h = cf_zeros(CF_SHAPE(2, 2));
    ck_assert_ptr_null(cf_gru_gates(cf_empty(CF_I32, 2, (int64_t[]){2, 6}), f, h));
    assert_error(CF_ERR_DTYPE, "cf_gru_gates", NULL);
    ck_assert_ptr_null(cf_gru_gates(f, NULL, h));
    assert_error(CF_ERR_ARG, "cf_gru_gates", NULL);
}
END_TEST
