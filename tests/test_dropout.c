/* autograd/dropout.c: checked by its properties, since its mask comes from
 * cformer's own generator; gradcheck, thread-count independence, bad
 * input. */
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

TEST(dropout_zeroes_about_p_of_the_elements)
{
    cf_rng g;
    cf_rng_init(&g, 1);
    cf_tensor *y = cf_dropout(cf_ones(CF_SHAPE(100000)), 0.3f, true, &g);
    ck_assert_ptr_nonnull(y);
    const float *v = y->data;
    int64_t zeros = 0;
    for (int64_t i = 0; i < 100000; i++)
        zeros += v[i] == 0;
    /* Binomial standard deviation is about 145; allow 7 of them. */
    ck_assert_int_le(llabs(zeros - 30000), 1000);
}
END_TEST

TEST(dropout_scales_the_kept_elements_by_1_over_1_minus_p)
{
    cf_rng g;
    cf_rng_init(&g, 2);
    cf_tensor *x = rand_leaf(3, -2, 2, CF_SHAPE(1000));
    cf_tensor *y = cf_dropout(x, 0.25f, true, &g);
    const float *xv = x->data, *yv = y->data;
    int kept = 0;
    for (int i = 0; i < 1000; i++) {
        if (yv[i] != 0) {
            ck_assert_float_eq(yv[i], xv[i] * (1.0f / 0.75f));
            kept++;
        }
    }
    ck_assert_int_gt(kept, 0);
    ck_assert_int_lt(kept, 1000);
}
END_TEST

TEST(dropout_with_the_same_seed_repeats_its_mask)
{
    cf_rng g1, g2;
    cf_rng_init(&g1, 42);
    cf_rng_init(&g2, 42);
    cf_tensor *x = rand_leaf(4, 1, 2, CF_SHAPE(7, 13));
    assert_close(cf_dropout(x, 0.5f, true, &g1), cf_dropout(x, 0.5f, true, &g2), 0, 0);
}
END_TEST

TEST(dropout_draws_a_new_mask_each_call)
{
    cf_rng g;
    cf_rng_init(&g, 42);
    cf_tensor *x = cf_ones(CF_SHAPE(256));
    cf_tensor *a = cf_dropout(x, 0.5f, true, &g), *b = cf_dropout(x, 0.5f, true, &g);
    ck_assert(memcmp(a->data, b->data, sizeof(float) * 256) != 0);
}
END_TEST

TEST(dropout_uses_the_global_generator_for_null)
{
    cf_tensor *x = cf_ones(CF_SHAPE(64));
    cf_manual_seed(9);
    cf_tensor *a = cf_dropout(x, 0.5f, true, NULL);
    cf_manual_seed(9);
    assert_close(cf_dropout(x, 0.5f, true, NULL), a, 0, 0);
}
END_TEST

TEST(dropout_mask_is_a_bernoulli_draw_of_1_minus_p)
{
    cf_rng g1, g2;
    cf_rng_init(&g1, 5);
    cf_rng_init(&g2, 5);
    cf_tensor *y = cf_dropout(cf_full(0.5f, CF_SHAPE(3, 50)), 0.2f, true, &g1);
    cf_tensor *keep = cf_bernoulli(&g2, 0.8f, CF_SHAPE(3, 50));
    assert_close(y, cf_mul_scalar(keep, 0.5f / 0.8f), 0, 0);
}
END_TEST

static void dropout_run(float *out)
{
    cf_rng g;
    cf_rng_init(&g, 77);
    cf_tensor *x = cf_ones(CF_SHAPE(300, 1001));
    cf_copy_to(cf_dropout(x, 0.4f, true, &g), out);
}

TEST(dropout_does_not_depend_on_the_thread_count)
{
    assert_thread_independent(dropout_run, 300 * 1001);
}
END_TEST

TEST(dropout_with_p_0_returns_the_input)
{
    cf_tensor *x = rand_leaf(1, 0, 1, CF_SHAPE(4));
    ck_assert_ptr_eq(cf_dropout(x, 0, true, NULL), x);
}
END_TEST

TEST(dropout_outside_training_returns_the_input)
{
    cf_tensor *x = rand_leaf(1, 0, 1, CF_SHAPE(4));
    ck_assert_ptr_eq(cf_dropout(x, 0.5f, false, NULL), x);
}
END_TEST

TEST(dropout_with_p_1_gives_zeros_and_zero_gradients)
{
    cf_tensor *x =
        cf_requires_grad(cf_from_array((float[]){1, INFINITY, NAN, -2}, CF_SHAPE(4)), true);
    cf_tensor *y = cf_dropout(x, 1, true, NULL);
    assert_values(y, (float[]){0, 0, 0, 0}, 0, 0);
    cf_backward(cf_sum_all(y));
    assert_values(x->grad, (float[]){0, 0, 0, 0}, 0, 0);
}
END_TEST

TEST(dropout_gradient_is_the_mask_times_the_scale)
{
    cf_rng g;
    cf_rng_init(&g, 8);
    cf_tensor *x = rand_leaf(2, -1, 1, CF_SHAPE(5, 9));
    cf_tensor *y = cf_dropout(x, 0.6f, true, &g);
    cf_tensor *dy = cf_full(3, CF_SHAPE(5, 9));
    ck_assert_int_eq(cf_backward_with(y, dy), CF_OK);
    const float *xv = x->data, *yv = y->data, *gv = x->grad->data;
    for (int i = 0; i < 45; i++) {
        float want = yv[i] == 0 && xv[i] != 0 ? 0 : 3 * (1.0f / 0.4f);
        ck_assert_float_eq_tol(gv[i], want, 1e-6f);
    }
}
END_TEST

TEST(dropout_of_a_transposed_input_masks_it_in_row_major_order)
{
    cf_rng g1, g2;
    cf_rng_init(&g1, 6);
    cf_rng_init(&g2, 6);
    cf_tensor *x = rand_leaf(3, 1, 2, CF_SHAPE(4, 6));
    cf_tensor *xt = cf_transpose(x, 0, 1);
    assert_close(cf_dropout(xt, 0.5f, true, &g1), cf_dropout(cf_clone(xt), 0.5f, true, &g2), 0, 0);
}
END_TEST

static cf_tensor *dropout_fn(cf_tensor *const *in, void *ud)
{
    (void)ud;
    cf_rng g; /* reseeded on every call, so every evaluation has one mask */
    cf_rng_init(&g, 31);
    return cf_dropout(in[0], 0.3f, true, &g);
}

TEST(dropout_passes_gradcheck)
{
    cf_tensor *x = rand_leaf(4, -1, 1, CF_SHAPE(3, 8));
    assert_gradcheck(dropout_fn, NULL, 1, &x, 1e-2f);
}
END_TEST

TEST(dropout_rejects_p_outside_0_1)
{
    cf_tensor *x = cf_ones(CF_SHAPE(2));
    ck_assert_ptr_null(cf_dropout(x, -0.1f, true, NULL));
    assert_error(CF_ERR_ARG, "cf_dropout", "-0.1", NULL);
    ck_assert_ptr_null(cf_dropout(x, 1.5f, false, NULL));
    assert_error(CF_ERR_ARG, "cf_dropout", "1.5", NULL);
    ck_assert_ptr_null(cf_dropout(x, NAN, true, NULL));
    assert_error(CF_ERR_ARG, "cf_dropout", "nan", NULL);
}
END_TEST

TEST(dropout_rejects_int_tensors_and_null)
{
    ck_assert_ptr_null(cf_dropout(cf_from_ints((int32_t[]){1}, CF_SHAPE(1)), 0.5f, true, NULL));
    assert_error(CF_ERR_DTYPE, "cf_dropout", NULL);
    ck_assert_ptr_null(cf_dropout(NULL, 0.5f, true, NULL));
    assert_error(CF_ERR_ARG, "cf_dropout", NULL);
}
END_TEST
