/* autograd/score.c: the additive attention score: values and gradients
 * against PyTorch (tests/golden/score.safetensors from gen_score.py),
 * gradcheck, thread-count independence, bad input. */
#include "tests/util.h"

static cf_tensor *plain(cf_tensor *const *in) { return cf_additive_score(in[0], in[1], in[2]); }

static cf_tensor *transposed_keys(cf_tensor *const *in)
{
    return cf_additive_score(cf_transpose(in[0], 1, 2), in[1], in[2]);
}

static const golden_op GOLDEN[] = {
    {"additive_score.rows", 3, plain},
    {"additive_score.odd_width", 3, plain},
    {"additive_score.transposed_keys", 3, transposed_keys},
};

TEST_WITH(cases_match_pytorch_and_finite_differences, .loop = COUNT(GOLDEN))
{
    assert_golden_op("score.safetensors", &GOLDEN[_i]);
}
END_TEST

TEST(additive_score_equals_the_unfused_ops)
{
    cf_tensor *k = rand_leaf(4, -2, 2, CF_SHAPE(3, 7, 20)),
              *q = rand_leaf(5, -2, 2, CF_SHAPE(3, 20));
    cf_tensor *v = rand_leaf(6, -1, 1, CF_SHAPE(20));
    cf_tensor *want = cf_squeeze(
        cf_matmul(cf_tanh(cf_add(k, cf_unsqueeze(q, 1))), cf_reshape(v, CF_SHAPE(20, 1))), -1);
    assert_close(cf_additive_score(k, q, v), want, 1e-6f, 1e-5f);
}
END_TEST

/* Output and gradients of a score over [37, 29, 67]. */
static void score_run(float *buf)
{
    enum { B = 37, S = 29, A = 67 };
    cf_tensor *k = rand_leaf(7, -2, 2, CF_SHAPE(B, S, A)), *q = rand_leaf(8, -2, 2, CF_SHAPE(B, A));
    cf_tensor *v = rand_leaf(9, -1, 1, CF_SHAPE(A));
    cf_rng g;
    cf_rng_init(&g, 10);
    cf_tensor *e = cf_additive_score(k, q, v);
    ck_assert_int_eq(cf_backward_with(e, cf_uniform(&g, -1, 1, CF_SHAPE(B, S))), CF_OK);
    cf_copy_to(e, buf);
    cf_copy_to(k->grad, buf + B * S);
    cf_copy_to(q->grad, buf + B * S + B * S * A);
    cf_copy_to(v->grad, buf + B * S + B * S * A + B * A);
}

TEST(additive_score_does_not_depend_on_the_thread_count)
{
    assert_thread_independent(score_run, 37 * 29 + 37 * 29 * 67 + 37 * 67 + 67);
}
END_TEST

TEST(additive_score_of_no_keys_is_empty)
{
    cf_tensor *e = cf_additive_score(cf_zeros(CF_SHAPE(2, 0, 4)), cf_zeros(CF_SHAPE(2, 4)),
                                     cf_zeros(CF_SHAPE(4)));
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->shape[0], 2);
    ck_assert_int_eq(e->shape[1], 0);
}
END_TEST

TEST(additive_score_names_all_three_shapes_when_the_widths_differ)
{
    ck_assert_ptr_null(cf_additive_score(cf_zeros(CF_SHAPE(2, 3, 4)), cf_zeros(CF_SHAPE(2, 5)),
                                         cf_zeros(CF_SHAPE(4))));
    assert_error(CF_ERR_SHAPE, "cf_additive_score", "[2, 3, 4]", "[2, 5]", "[4]", NULL);
}
END_TEST

TEST(additive_score_names_all_three_shapes_when_the_batches_differ)
{
    ck_assert_ptr_null(cf_additive_score(cf_zeros(CF_SHAPE(2, 3, 4)), cf_zeros(CF_SHAPE(3, 4)),
                                         cf_zeros(CF_SHAPE(4))));
    assert_error(CF_ERR_SHAPE, "cf_additive_score", "[2, 3, 4]", "[3, 4]", NULL);
}
END_TEST

TEST(additive_score_rejects_int_tensors_and_null)
{
    cf_tensor *k = cf_zeros(CF_SHAPE(1, 2, 3)), *q = cf_zeros(CF_SHAPE(1, 3));
    ck_assert_ptr_null(cf_additive_score(k, q, cf_empty(CF_I32, 1, (int64_t[]){3})));
    assert_error(CF_ERR_DTYPE, "cf_additive_score", NULL);
    ck_assert_ptr_null(cf_additive_score(k, NULL, cf_zeros(CF_SHAPE(3))));
    assert_error(CF_ERR_ARG, "cf_additive_score", NULL);
}
END_TEST
