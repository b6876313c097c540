/* autograd/layer_norm.c: values, PyTorch goldens (norm.safetensors from
 * tests/golden/gen_norm.py), gradcheck, thread-count independence, bad
 * input. */
#include "tests/util.h"

#include <math.h>

TEST(layer_norm_rows_have_zero_mean_and_unit_variance)
{
    cf_tensor *x = rand_leaf(1, -3, 5, CF_SHAPE(6, 37));
    cf_tensor *y = cf_layer_norm(x, 1, NULL, NULL, 0);
    ck_assert_ptr_nonnull(y);
    for (int64_t r = 0; r < 6; r++) {
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < 37; i++) {
            double v = cf_get(y, CF_IDX(r, i));
            s += v;
            s2 += v * v;
        }
        ck_assert_double_eq_tol(s / 37, 0, 1e-6);
        ck_assert_double_eq_tol(s2 / 37, 1, 1e-5);
    }
}
END_TEST

TEST(layer_norm_scales_by_weight_and_shifts_by_bias)
{
    /* Row [1, 2, 3]: mean 2, biased variance 2/3. */
    cf_tensor *x = cf_from_array((float[]){1, 2, 3}, CF_SHAPE(1, 3));
    cf_tensor *w = cf_from_array((float[]){1, 2, -1}, CF_SHAPE(3));
    cf_tensor *b = cf_from_array((float[]){0, 1, 10}, CF_SHAPE(3));
    float h = (float)(1 / sqrt(2.0 / 3 + 1e-5));
    assert_values(cf_layer_norm(x, 1, w, b, 1e-5f), (float[]){-h, 1, 10 - h}, 1e-6f, 1e-6f);
}
END_TEST

TEST(layer_norm_of_a_constant_row_is_the_bias)
{
    cf_tensor *x = cf_full(1e4f, CF_SHAPE(2, 5));
    cf_tensor *b = cf_from_array((float[]){1, 2, 3, 4, 5}, CF_SHAPE(5));
    assert_values(cf_layer_norm(x, 1, NULL, b, 1e-5f), (float[]){1, 2, 3, 4, 5, 1, 2, 3, 4, 5}, 0,
                  0);
}
END_TEST

TEST(layer_norm_is_accurate_when_the_mean_dwarfs_the_spread)
{
    cf_tensor *x = cf_from_array((float[]){1000, 1001, 1002, 1003}, CF_SHAPE(4));
    float s = (float)(1 / sqrt(1.25));
    assert_values(cf_layer_norm(x, 1, NULL, NULL, 0),
                  (float[]){-1.5f * s, -0.5f * s, 0.5f * s, 1.5f * s}, 1e-6f, 1e-6f);
}
END_TEST

/* Must match CASES in tests/golden/gen_norm.py. */
static const struct norm_case {
    const char *name;
    int nnorm;
    bool weight, bias;
    float eps;
    bool transposed;
} NORM_CASES[] = {
    {"last1_affine", 1, true, true, 1e-5f, false}, {"last1_plain", 1, false, false, 1e-6f, false},
    {"last2_affine", 2, true, true, 1e-5f, false}, {"last2_plain", 2, false, false, 1e-6f, false},
    {"row_of_one", 1, true, true, 1e-5f, false},   {"weight_only", 1, true, false, 1e-6f, false},
    {"bias_only", 1, false, true, 1e-5f, false},   {"transposed", 1, true, true, 1e-5f, true},
};

/* The inputs are x, then the weight and the bias of the cases that have them. */
static cf_tensor *norm_case(cf_tensor *const *in, const void *ud)
{
    const struct norm_case *c = ud;
    cf_tensor *x = c->transposed ? cf_transpose(in[0], 0, 1) : in[0];
    return cf_layer_norm(x, c->nnorm, c->weight ? in[1] : NULL, c->bias ? in[1 + c->weight] : NULL,
                         c->eps);
}

TEST_WITH(layer_norm_matches_pytorch_and_finite_differences, .loop = COUNT(NORM_CASES))
{
    const struct norm_case *c = &NORM_CASES[_i];
    assert_golden_case("norm.safetensors", c->name, 1 + c->weight + c->bias, norm_case, c);
}
END_TEST

/* Forward and all three gradients of a layer norm big enough to run on
 * several threads, into out [2 R N + 2 N]. */
static void ln_run(float *out)
{
    int64_t R = 301, N = 257;
    cf_tensor *x = rand_leaf(11, -2, 2, CF_SHAPE(R, N));
    cf_tensor *w = rand_leaf(12, -2, 2, CF_SHAPE(N));
    cf_tensor *b = rand_leaf(13, -2, 2, CF_SHAPE(N));
    cf_rng g;
    cf_rng_init(&g, 14);
    cf_tensor *y = cf_layer_norm(x, 1, w, b, 1e-5f);
    ck_assert_int_eq(cf_backward_with(y, cf_uniform(&g, -1, 1, CF_SHAPE(R, N))), CF_OK);
    cf_copy_to(y, out);
    cf_copy_to(x->grad, out + R * N);
    cf_copy_to(w->grad, out + 2 * R * N);
    cf_copy_to(b->grad, out + 2 * R * N + N);
}

TEST(layer_norm_does_not_depend_on_the_thread_count)
{
    assert_thread_independent(ln_run, 2 * 301 * 257 + 2 * 257);
}
END_TEST

TEST(layer_norm_gives_parameter_gradients_when_x_needs_none)
{
    /* Row [1, 2, 3] normalises to [-h, 0, h]. */
    cf_tensor *x = cf_from_array((float[]){1, 2, 3, 1, 2, 3}, CF_SHAPE(2, 3));
    cf_tensor *w = rand_leaf(1, 0.5f, 1.5f, CF_SHAPE(3)), *b = rand_leaf(2, -1, 1, CF_SHAPE(3));
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_layer_norm(x, 1, w, b, 0))), CF_OK);
    float h = (float)sqrt(1.5);
    assert_values(w->grad, (float[]){-2 * h, 0, 2 * h}, 1e-6f, 1e-6f);
    assert_values(b->grad, (float[]){2, 2, 2}, 0, 0);
    ck_assert_ptr_null(x->grad);
}
END_TEST

TEST(layer_norm_names_both_shapes_for_a_wrong_weight)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 3, 4));
    ck_assert_ptr_null(cf_layer_norm(x, 2, cf_zeros(CF_SHAPE(4, 3)), NULL, 1e-5f));
    assert_error(CF_ERR_SHAPE, "cf_layer_norm", "weight", "[4, 3]", "[3, 4]", NULL);
    ck_assert_ptr_null(cf_layer_norm(x, 1, cf_zeros(CF_SHAPE(1, 4)), NULL, 1e-5f));
    assert_error(CF_ERR_SHAPE, "cf_layer_norm", "weight", "[1, 4]", "[4]", NULL);
}
END_TEST

TEST(layer_norm_names_both_shapes_for_a_wrong_bias)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 3));
    ck_assert_ptr_null(cf_layer_norm(x, 1, cf_ones(CF_SHAPE(3)), cf_zeros(CF_SHAPE(2)), 1e-5f));
    assert_error(CF_ERR_SHAPE, "cf_layer_norm", "bias", "[2]", "[3]", NULL);
}
END_TEST

TEST(layer_norm_rejects_a_dim_count_out_of_range)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 3));
    ck_assert_ptr_null(cf_layer_norm(x, 0, NULL, NULL, 1e-5f));
    assert_error(CF_ERR_DIM, "cf_layer_norm", "0", "[2, 3]", NULL);
    ck_assert_ptr_null(cf_layer_norm(x, 3, NULL, NULL, 1e-5f));
    assert_error(CF_ERR_DIM, "cf_layer_norm", "3", "[2, 3]", NULL);
}
END_TEST

TEST(layer_norm_rejects_int_tensors_and_null)
{
    ck_assert_ptr_null(
        cf_layer_norm(cf_from_ints((int32_t[]){1, 2}, CF_SHAPE(2)), 1, NULL, NULL, 0));
    assert_error(CF_ERR_DTYPE, "cf_layer_norm", "int32", NULL);
    ck_assert_ptr_null(cf_layer_norm(NULL, 1, NULL, NULL, 0));
    assert_error(CF_ERR_ARG, "cf_layer_norm", NULL);
}
END_TEST
