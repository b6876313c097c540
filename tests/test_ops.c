/* The differentiable ops of autograd.h: a gradient check for each, plus a few
 * forward values so that the semantics (broadcasting, reduction dims, matmul
 * ranks, view offsets) are pinned down and not only the gradients.
 *
 * Gradient tolerance: TOL = 1e-2 on the error relative to max(|numeric|, 1).
 * The numeric gradient is a float32 central difference with eps 1e-3, so its
 * rounding error alone is about 1e-7 * |output| / 1e-3 ~ 1e-4 per unit of
 * output; 1e-2 leaves room for that and still catches any wrong rule, which
 * is off by O(1). Inputs are kept away from the points where an op is not
 * smooth (0 for relu, small denominators for div, non-positive for log).
 *
 * Binary ops broadcast like PyTorch; every expectation here matches torch. */
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>

#define TOL 1e-2f

/* A leaf with |x| in [0.2, 1): every other element negated, so that relu is
 * tested on both sides and never near its kink. */
static cf_tensor *away_from_zero(uint64_t seed, int ndim, const int64_t *shape)
{
    cf_tensor *t = rand_leaf(seed, 0.2f, 1.0f, ndim, shape);
    float *p = t->data;
    for (int64_t i = 1; i < cf_numel(t); i += 2)
        p[i] = -p[i];
    return t;
}

/* A 0-d leaf holding v. */
static cf_tensor *scalar_leaf(float v) { return cf_requires_grad(cf_scalar(v), true); }

/* The 0..n-1 values reshaped; no gradient. */
static cf_tensor *arange_as(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return cf_reshape(cf_arange(0, (float)n, 1), ndim, shape);
}

static void assert_shape(const cf_tensor *t, int ndim, const int64_t *shape)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        ck_assert_int_eq(t->shape[i], shape[i]);
}

/* ==== Elementwise arithmetic ==== */

static cf_tensor *f_add(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_add(in[0], in[1]);
}
static cf_tensor *f_sub(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_sub(in[0], in[1]);
}
static cf_tensor *f_mul(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_mul(in[0], in[1]);
}
static cf_tensor *f_div(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_div(in[0], in[1]);
}

/* in[0] is [3, 2] and enters transposed, as a non-contiguous [2, 3]. */
static cf_tensor *f_add_transposed(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_add(cf_transpose(in[0], 0, 1), in[1]);
}
static cf_tensor *f_sub_transposed(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_sub(in[1], cf_transpose(in[0], 0, 1));
}
static cf_tensor *f_mul_transposed(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_mul(cf_transpose(in[0], 0, 1), in[1]);
}
static cf_tensor *f_div_transposed(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_div(in[1], cf_transpose(in[0], 0, 1));
}

static cf_tensor *f_add_self(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_add(in[0], in[0]);
}
static cf_tensor *f_sub_self(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_sub(in[0], in[0]);
}
static cf_tensor *f_mul_self(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_mul(in[0], in[0]);
}
static cf_tensor *f_div_self(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_div(in[0], in[0]);
}

static cf_tensor *f_neg(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_neg(in[0]);
}
static cf_tensor *f_add_scalar(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_add_scalar(in[0], 2.5f);
}
static cf_tensor *f_mul_scalar(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_mul_scalar(in[0], -1.5f);
}
static cf_tensor *f_rsub_scalar(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_rsub_scalar(in[0], 3.0f);
}
static cf_tensor *f_rdiv_scalar(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_rdiv_scalar(in[0], 2.0f);
}
static cf_tensor *f_square(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_square(in[0]);
}

START_TEST(add_gradient_same_shape)
{
    cf_tensor *in[] = {rand_leaf(1, -1, 1, CF_SHAPE(2, 3)), rand_leaf(2, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_add, NULL, 2, in, TOL);
}
END_TEST

START_TEST(sub_gradient_same_shape)
{
    cf_tensor *in[] = {rand_leaf(3, -1, 1, CF_SHAPE(2, 3)), rand_leaf(4, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_sub, NULL, 2, in, TOL);
}
END_TEST

START_TEST(mul_gradient_same_shape)
{
    cf_tensor *in[] = {rand_leaf(5, -1, 1, CF_SHAPE(2, 3)), rand_leaf(6, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_mul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(div_gradient_same_shape)
{
    /* Denominators in [0.5, 2): far from the pole at 0. */
    cf_tensor *in[] = {rand_leaf(7, -1, 1, CF_SHAPE(2, 3)), rand_leaf(8, 0.5f, 2, CF_SHAPE(2, 3))};
    assert_gradcheck(f_div, NULL, 2, in, TOL);
}
END_TEST

START_TEST(add_gradient_broadcasts_3x1x5_with_4x1)
{
    cf_tensor *in[] = {rand_leaf(9, -1, 1, CF_SHAPE(3, 1, 5)),
                       rand_leaf(10, -1, 1, CF_SHAPE(4, 1))};
    assert_gradcheck(f_add, NULL, 2, in, TOL);
}
END_TEST

START_TEST(sub_gradient_broadcasts_3x1x5_with_4x1)
{
    cf_tensor *in[] = {rand_leaf(11, -1, 1, CF_SHAPE(3, 1, 5)),
                       rand_leaf(12, -1, 1, CF_SHAPE(4, 1))};
    assert_gradcheck(f_sub, NULL, 2, in, TOL);
}
END_TEST

START_TEST(mul_gradient_broadcasts_over_leading_dims)
{
    cf_tensor *in[] = {rand_leaf(13, -1, 1, CF_SHAPE(3, 1, 5)),
                       rand_leaf(14, -1, 1, CF_SHAPE(4, 1))};
    assert_gradcheck(f_mul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(div_gradient_broadcasts_denominator_over_leading_dims)
{
    cf_tensor *in[] = {rand_leaf(15, -1, 1, CF_SHAPE(3, 1, 5)),
                       rand_leaf(16, 0.5f, 2, CF_SHAPE(4, 1))};
    assert_gradcheck(f_div, NULL, 2, in, TOL);
}
END_TEST

START_TEST(div_gradient_broadcasts_numerator_over_leading_dims)
{
    cf_tensor *in[] = {rand_leaf(17, -1, 1, CF_SHAPE(4, 1)),
                       rand_leaf(18, 0.5f, 2, CF_SHAPE(3, 1, 5))};
    assert_gradcheck(f_div, NULL, 2, in, TOL);
}
END_TEST

START_TEST(add_gradient_with_a_size_one_operand)
{
    cf_tensor *in[] = {rand_leaf(19, -1, 1, CF_SHAPE(2, 3)), rand_leaf(20, -1, 1, CF_SHAPE(1))};
    assert_gradcheck(f_add, NULL, 2, in, TOL);
}
END_TEST

START_TEST(mul_gradient_with_a_size_one_operand_on_the_left)
{
    cf_tensor *in[] = {rand_leaf(21, -1, 1, CF_SHAPE(1)), rand_leaf(22, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_mul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(add_gradient_with_a_0d_scalar_operand)
{
    cf_tensor *in[] = {rand_leaf(23, -1, 1, CF_SHAPE(2, 3)), scalar_leaf(0.7f)};
    assert_gradcheck(f_add, NULL, 2, in, TOL);
}
END_TEST

START_TEST(sub_gradient_with_a_0d_scalar_on_the_left)
{
    cf_tensor *in[] = {scalar_leaf(0.7f), rand_leaf(24, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_sub, NULL, 2, in, TOL);
}
END_TEST

START_TEST(mul_gradient_with_a_0d_scalar_operand)
{
    cf_tensor *in[] = {rand_leaf(25, -1, 1, CF_SHAPE(2, 3)), scalar_leaf(-1.3f)};
    assert_gradcheck(f_mul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(div_gradient_with_a_0d_scalar_denominator)
{
    cf_tensor *in[] = {rand_leaf(26, -1, 1, CF_SHAPE(2, 3)), scalar_leaf(1.4f)};
    assert_gradcheck(f_div, NULL, 2, in, TOL);
}
END_TEST

START_TEST(mul_of_two_0d_scalars_gradient)
{
    cf_tensor *in[] = {scalar_leaf(0.6f), scalar_leaf(-1.7f)};
    assert_gradcheck(f_mul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(add_gradient_with_a_transposed_input)
{
    cf_tensor *in[] = {rand_leaf(27, -1, 1, CF_SHAPE(3, 2)), rand_leaf(28, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_add_transposed, NULL, 2, in, TOL);
}
END_TEST

START_TEST(sub_gradient_with_a_transposed_input)
{
    cf_tensor *in[] = {rand_leaf(29, -1, 1, CF_SHAPE(3, 2)), rand_leaf(30, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_sub_transposed, NULL, 2, in, TOL);
}
END_TEST

START_TEST(mul_gradient_with_a_transposed_input)
{
    cf_tensor *in[] = {rand_leaf(31, -1, 1, CF_SHAPE(3, 2)), rand_leaf(32, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_mul_transposed, NULL, 2, in, TOL);
}
END_TEST

START_TEST(div_gradient_with_a_transposed_denominator)
{
    cf_tensor *in[] = {rand_leaf(33, 0.5f, 2, CF_SHAPE(3, 2)),
                       rand_leaf(34, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_div_transposed, NULL, 2, in, TOL);
}
END_TEST

START_TEST(add_of_a_tensor_with_itself_gradient)
{
    cf_tensor *in[] = {rand_leaf(35, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_add_self, NULL, 1, in, TOL);
}
END_TEST

START_TEST(sub_of_a_tensor_from_itself_gradient_is_zero)
{
    cf_tensor *in[] = {rand_leaf(36, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_sub_self, NULL, 1, in, TOL);
    cf_tensor *x = rand_leaf(36, -1, 1, CF_SHAPE(2, 3));
    cf_backward(cf_sum_all(cf_sub(x, x)));
    assert_values(x->grad, (float[]){0, 0, 0, 0, 0, 0}, 0, 0);
}
END_TEST

START_TEST(mul_of_a_tensor_with_itself_gradient)
{
    cf_tensor *in[] = {rand_leaf(37, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_mul_self, NULL, 1, in, TOL);
}
END_TEST

START_TEST(mul_of_a_tensor_with_itself_gradient_is_twice_the_value)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){1, -2, 3}, CF_SHAPE(3)), true);
    cf_backward(cf_sum_all(cf_mul(x, x)));
    assert_values(x->grad, (float[]){2, -4, 6}, 0, 0);
}
END_TEST

START_TEST(div_of_a_tensor_by_itself_gradient)
{
    cf_tensor *in[] = {rand_leaf(38, 0.5f, 2, CF_SHAPE(2, 3))};
    assert_gradcheck(f_div_self, NULL, 1, in, TOL);
}
END_TEST

START_TEST(neg_gradient)
{
    cf_tensor *in[] = {rand_leaf(39, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_neg, NULL, 1, in, TOL);
}
END_TEST

START_TEST(add_scalar_gradient)
{
    cf_tensor *in[] = {rand_leaf(40, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_add_scalar, NULL, 1, in, TOL);
}
END_TEST

START_TEST(mul_scalar_gradient)
{
    cf_tensor *in[] = {rand_leaf(41, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_mul_scalar, NULL, 1, in, TOL);
}
END_TEST

START_TEST(rsub_scalar_gradient)
{
    cf_tensor *in[] = {rand_leaf(42, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_rsub_scalar, NULL, 1, in, TOL);
}
END_TEST

START_TEST(rdiv_scalar_gradient)
{
    cf_tensor *in[] = {rand_leaf(43, 0.5f, 2, CF_SHAPE(2, 3))};
    assert_gradcheck(f_rdiv_scalar, NULL, 1, in, TOL);
}
END_TEST

START_TEST(square_gradient)
{
    cf_tensor *in[] = {rand_leaf(44, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_square, NULL, 1, in, TOL);
}
END_TEST

START_TEST(square_gradient_of_a_transposed_input)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){1, 2, 3, 4}, CF_SHAPE(2, 2)), true);
    cf_backward(cf_sum_all(cf_mul(cf_square(cf_transpose(x, 0, 1)),
                                  cf_from_array((float[]){1, 10, 100, 1000}, CF_SHAPE(2, 2)))));
    /* d/dx[i][j] = 2 x[i][j] * w[j][i] */
    assert_values(x->grad, (float[]){2, 400, 60, 8000}, 0, 0);
}
END_TEST

START_TEST(add_broadcasts_a_row_against_a_column)
{
    cf_tensor *col = cf_from_array((float[]){10, 20}, CF_SHAPE(2, 1));
    cf_tensor *row = cf_from_array((float[]){1, 2, 3}, CF_SHAPE(3));
    cf_tensor *y = cf_add(col, row);
    assert_shape(y, CF_SHAPE(2, 3));
    assert_values(y, (float[]){11, 12, 13, 21, 22, 23}, 0, 0);
}
END_TEST

START_TEST(broadcast_of_3x1x5_with_4x1_gives_3x4x5)
{
    cf_tensor *y = cf_mul(cf_ones(CF_SHAPE(3, 1, 5)), cf_ones(CF_SHAPE(4, 1)));
    assert_shape(y, CF_SHAPE(3, 4, 5));
}
END_TEST

START_TEST(a_0d_operand_keeps_the_other_shape)
{
    cf_tensor *y = cf_sub(cf_scalar(10), cf_from_array((float[]){1, 2, 3}, CF_SHAPE(3)));
    assert_shape(y, CF_SHAPE(3));
    assert_values(y, (float[]){9, 8, 7}, 0, 0);
}
END_TEST

START_TEST(two_0d_operands_give_a_0d_result)
{
    cf_tensor *y = cf_div(cf_scalar(3), cf_scalar(4));
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->ndim, 0);
    ck_assert_float_eq_tol(cf_item(y), 0.75f, 1e-7f);
}
END_TEST

START_TEST(scalar_ops_compute_their_formulas)
{
    cf_tensor *x = cf_from_array((float[]){1, 2, 4}, CF_SHAPE(3));
    assert_values(cf_add_scalar(x, 1), (float[]){2, 3, 5}, 0, 0);
    assert_values(cf_mul_scalar(x, 3), (float[]){3, 6, 12}, 0, 0);
    assert_values(cf_rsub_scalar(x, 1), (float[]){0, -1, -3}, 0, 0);
    assert_values(cf_rdiv_scalar(x, 8), (float[]){8, 4, 2}, 0, 0);
    assert_values(cf_square(x), (float[]){1, 4, 16}, 0, 0);
    assert_values(cf_neg(x), (float[]){-1, -2, -4}, 0, 0);
}
END_TEST

START_TEST(broadcast_gradient_sums_over_stretched_dims)
{
    cf_tensor *a = cf_requires_grad(cf_ones(CF_SHAPE(3, 1, 5)), true);
    cf_tensor *b = cf_requires_grad(cf_full(2, CF_SHAPE(4, 1)), true);
    cf_backward(cf_sum_all(cf_mul(a, b)));
    /* Each a element meets all 4 b values (2 each); each b element meets
     * 3 * 5 a values (1 each). */
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 5; k++)
            ck_assert_float_eq(cf_get(a->grad, CF_IDX(i, 0, k)), 8);
    assert_values(b->grad, (float[]){15, 15, 15, 15}, 0, 0);
}
END_TEST

/* ==== Unary functions ==== */

static cf_tensor *f_exp(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_exp(in[0]);
}
static cf_tensor *f_log(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_log(in[0]);
}
static cf_tensor *f_tanh(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_tanh(in[0]);
}
static cf_tensor *f_sigmoid(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_sigmoid(in[0]);
}
static cf_tensor *f_relu(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_relu(in[0]);
}
static cf_tensor *f_tanh_transposed(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_tanh(cf_transpose(in[0], 0, 1));
}

START_TEST(exp_gradient)
{
    cf_tensor *in[] = {rand_leaf(50, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_exp, NULL, 1, in, TOL);
}
END_TEST

START_TEST(log_gradient)
{
    /* Inputs in [0.5, 2): log is smooth and its slope at most 2. */
    cf_tensor *in[] = {rand_leaf(51, 0.5f, 2, CF_SHAPE(2, 3))};
    assert_gradcheck(f_log, NULL, 1, in, TOL);
}
END_TEST

START_TEST(tanh_gradient)
{
    cf_tensor *in[] = {rand_leaf(52, -2, 2, CF_SHAPE(2, 3))};
    assert_gradcheck(f_tanh, NULL, 1, in, TOL);
}
END_TEST

START_TEST(tanh_gradient_of_a_transposed_input)
{
    cf_tensor *in[] = {rand_leaf(53, -2, 2, CF_SHAPE(3, 2))};
    assert_gradcheck(f_tanh_transposed, NULL, 1, in, TOL);
}
END_TEST

START_TEST(sigmoid_gradient)
{
    cf_tensor *in[] = {rand_leaf(54, -3, 3, CF_SHAPE(2, 3))};
    assert_gradcheck(f_sigmoid, NULL, 1, in, TOL);
}
END_TEST

START_TEST(relu_gradient_away_from_zero)
{
    cf_tensor *in[] = {away_from_zero(55, CF_SHAPE(2, 4))};
    assert_gradcheck(f_relu, NULL, 1, in, TOL);
}
END_TEST

START_TEST(relu_gradient_at_zero_is_zero)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){-1, 0, 2}, CF_SHAPE(3)), true);
    cf_backward(cf_sum_all(cf_relu(x)));
    assert_values(x->grad, (float[]){0, 0, 1}, 0, 0);
}
END_TEST

START_TEST(relu_passes_nan_and_its_gradient_like_pytorch)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){NAN, -1}, CF_SHAPE(2)), true);
    cf_tensor *y = cf_relu(x);
    ck_assert(isnan(cf_get(y, CF_IDX(0))));
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_mul_scalar(y, 3))), CF_OK);
    assert_values(x->grad, (float[]){3, 0}, 0, 0); /* NaN <= 0 is false */
}
END_TEST

START_TEST(unary_functions_compute_their_values)
{
    cf_tensor *x = cf_from_array((float[]){-1, 0, 2}, CF_SHAPE(3));
    assert_values(cf_exp(x), (float[]){expf(-1), 1, expf(2)}, 0, 1e-6f);
    assert_values(cf_tanh(x), (float[]){tanhf(-1), 0, tanhf(2)}, 1e-7f, 1e-6f);
    assert_values(cf_sigmoid(x), (float[]){1 / (1 + expf(1)), 0.5f, 1 / (1 + expf(-2))}, 1e-7f,
                  1e-6f);
    assert_values(cf_relu(x), (float[]){0, 0, 2}, 0, 0);
    assert_values(cf_log(cf_from_array((float[]){1, 2, 0.5f}, CF_SHAPE(3))),
                  (float[]){0, logf(2), logf(0.5f)}, 1e-7f, 1e-6f);
}
END_TEST

START_TEST(sigmoid_saturates_without_overflow)
{
    cf_tensor *y = cf_sigmoid(cf_from_array((float[]){-100, 100}, CF_SHAPE(2)));
    assert_values(y, (float[]){0, 1}, 1e-7f, 0);
}
END_TEST

/* ==== Reductions ==== */

typedef struct {
    bool mean;
    int ndims;
    int dims[4];
    bool keepdim;
} reduce_case;

static cf_tensor *f_reduce(cf_tensor *const *in, void *ud)
{
    const reduce_case *c = ud;
    return c->mean ? cf_mean(in[0], c->ndims, c->dims, c->keepdim)
                   : cf_sum(in[0], c->ndims, c->dims, c->keepdim);
}
static cf_tensor *f_sum_all(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_sum_all(in[0]);
}
static cf_tensor *f_mean_all(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_mean_all(in[0]);
}
static cf_tensor *f_sum_transposed(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_sum(cf_transpose(in[0], 0, 2), CF_DIMS(1), false);
}

START_TEST(sum_gradient_over_one_dim)
{
    reduce_case c = {false, 1, {1}, false};
    cf_tensor *in[] = {rand_leaf(60, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_reduce, &c, 1, in, TOL);
}
END_TEST

START_TEST(sum_gradient_over_one_dim_keepdim)
{
    reduce_case c = {false, 1, {1}, true};
    cf_tensor *in[] = {rand_leaf(61, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_reduce, &c, 1, in, TOL);
}
END_TEST

START_TEST(sum_gradient_over_several_dims)
{
    reduce_case c = {false, 2, {0, 2}, false};
    cf_tensor *in[] = {rand_leaf(62, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_reduce, &c, 1, in, TOL);
}
END_TEST

START_TEST(sum_gradient_over_several_dims_keepdim)
{
    reduce_case c = {false, 2, {2, 0}, true};
    cf_tensor *in[] = {rand_leaf(63, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_reduce, &c, 1, in, TOL);
}
END_TEST

START_TEST(sum_gradient_over_negative_dims)
{
    reduce_case c = {false, 2, {-1, -3}, false};
    cf_tensor *in[] = {rand_leaf(64, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_reduce, &c, 1, in, TOL);
}
END_TEST

START_TEST(sum_gradient_of_a_transposed_input)
{
    cf_tensor *in[] = {rand_leaf(65, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_sum_transposed, NULL, 1, in, TOL);
}
END_TEST

START_TEST(sum_all_gradient)
{
    cf_tensor *in[] = {rand_leaf(66, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_sum_all, NULL, 1, in, TOL);
}
END_TEST

START_TEST(sum_with_no_dims_reduces_everything)
{
    reduce_case c = {false, 0, {0}, false};
    cf_tensor *in[] = {rand_leaf(67, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_reduce, &c, 1, in, TOL);
}
END_TEST

START_TEST(mean_gradient_over_one_dim)
{
    reduce_case c = {true, 1, {2}, false};
    cf_tensor *in[] = {rand_leaf(70, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_reduce, &c, 1, in, TOL);
}
END_TEST

START_TEST(mean_gradient_over_one_dim_keepdim)
{
    reduce_case c = {true, 1, {0}, true};
    cf_tensor *in[] = {rand_leaf(71, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_reduce, &c, 1, in, TOL);
}
END_TEST

START_TEST(mean_gradient_over_several_dims)
{
    reduce_case c = {true, 2, {0, 1}, false};
    cf_tensor *in[] = {rand_leaf(72, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_reduce, &c, 1, in, TOL);
}
END_TEST

START_TEST(mean_gradient_over_negative_dims_keepdim)
{
    reduce_case c = {true, 2, {-2, -1}, true};
    cf_tensor *in[] = {rand_leaf(73, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_reduce, &c, 1, in, TOL);
}
END_TEST

START_TEST(mean_all_gradient)
{
    cf_tensor *in[] = {rand_leaf(74, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_mean_all, NULL, 1, in, TOL);
}
END_TEST

START_TEST(mean_all_gradient_is_one_over_numel)
{
    cf_tensor *x = cf_requires_grad(cf_zeros(CF_SHAPE(2, 2)), true);
    cf_backward(cf_mean_all(x));
    assert_values(x->grad, (float[]){0.25f, 0.25f, 0.25f, 0.25f}, 0, 0);
}
END_TEST

START_TEST(sum_over_dim_1_of_arange)
{
    /* [[0, 1, 2], [3, 4, 5]] */
    cf_tensor *y = cf_sum(arange_as(CF_SHAPE(2, 3)), CF_DIMS(1), false);
    assert_shape(y, CF_SHAPE(2));
    assert_values(y, (float[]){3, 12}, 0, 0);
}
END_TEST

START_TEST(sum_over_dim_0_of_arange)
{
    cf_tensor *y = cf_sum(arange_as(CF_SHAPE(2, 3)), CF_DIMS(0), false);
    assert_shape(y, CF_SHAPE(3));
    assert_values(y, (float[]){3, 5, 7}, 0, 0);
}
END_TEST

START_TEST(sum_keepdim_keeps_reduced_dims_as_size_one)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 3, 4));
    assert_shape(cf_sum(x, CF_DIMS(0, 2), true), CF_SHAPE(1, 3, 1));
    assert_shape(cf_sum(x, CF_DIMS(0, 2), false), CF_SHAPE(3));
    assert_shape(cf_mean(x, CF_DIMS(-1), true), CF_SHAPE(2, 3, 1));
    assert_shape(cf_mean(x, CF_DIMS(-1), false), CF_SHAPE(2, 3));
}
END_TEST

START_TEST(negative_dims_count_from_the_end)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3, 4));
    assert_close(cf_sum(x, CF_DIMS(-1), false), cf_sum(x, CF_DIMS(2), false), 0, 0);
    assert_close(cf_mean(x, CF_DIMS(-3, -2), false), cf_mean(x, CF_DIMS(0, 1), false), 0, 0);
}
END_TEST

START_TEST(mean_over_several_dims_of_arange)
{
    /* x[i][j][k] = 12i + 4j + k; the mean over i and k is 6 + 4j + 1.5. */
    cf_tensor *y = cf_mean(arange_as(CF_SHAPE(2, 3, 4)), CF_DIMS(0, 2), false);
    assert_values(y, (float[]){7.5f, 11.5f, 15.5f}, 0, 1e-6f);
}
END_TEST

START_TEST(sum_all_and_mean_all_are_0d)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    cf_tensor *s = cf_sum_all(x), *m = cf_mean_all(x);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_int_eq(m->ndim, 0);
    ck_assert_float_eq(cf_item(s), 15);
    ck_assert_float_eq(cf_item(m), 2.5f);
}
END_TEST

START_TEST(sum_of_a_repeated_dim_is_an_error)
{
    ck_assert_ptr_null(cf_sum(cf_zeros(CF_SHAPE(2, 3)), CF_DIMS(1, -1), false));
    assert_error(CF_ERR_DIM, NULL);
}
END_TEST

START_TEST(sum_over_a_dim_out_of_range_is_an_error)
{
    ck_assert_ptr_null(cf_mean(cf_zeros(CF_SHAPE(2, 3)), CF_DIMS(2), false));
    assert_error(CF_ERR_DIM, NULL);
}
END_TEST

/* ==== Matrix product ==== */

static cf_tensor *f_matmul(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_matmul(in[0], in[1]);
}
/* a stored [K, M], used as a^T */
static cf_tensor *f_matmul_at_b(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_matmul(cf_transpose(in[0], 0, 1), in[1]);
}
/* b stored [N, K], used as b^T */
static cf_tensor *f_matmul_a_bt(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_matmul(in[0], cf_transpose(in[1], 0, 1));
}
static cf_tensor *f_matmul_at_bt(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_matmul(cf_transpose(in[0], 0, 1), cf_transpose(in[1], 0, 1));
}
/* Batched, both operands stored with their last two dims swapped. */
static cf_tensor *f_bmm_transposed(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_matmul(cf_transpose(in[0], 1, 2), cf_transpose(in[1], 1, 2));
}
/* A batch dim moved to the front: a [M, B, K] permuted to [B, M, K]. */
static cf_tensor *f_bmm_permuted(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_matmul(cf_permute(in[0], (const int[]){1, 0, 2}), in[1]);
}

START_TEST(matmul_of_a_column_by_a_row_is_their_outer_product)
{
    /* k = 1 skips BLIS: contiguous and strided rows give the same products. */
    cf_tensor *a = cf_from_array((float[]){1, 2, 3}, CF_SHAPE(3, 1));
    cf_tensor *b = cf_from_array((float[]){4, 5}, CF_SHAPE(1, 2));
    float want[] = {4, 5, 8, 10, 12, 15};
    assert_values(cf_matmul(a, b), want, 0, 0);
    cf_tensor *bt = cf_transpose(cf_from_array((float[]){4, 5}, CF_SHAPE(2, 1)), 0, 1);
    assert_values(cf_matmul(a, bt), want, 0, 0);
    assert_values(cf_matmul(cf_transpose(bt, 0, 1), cf_transpose(a, 0, 1)),
                  (float[]){4, 8, 12, 5, 10, 15}, 0, 0);
}
END_TEST

START_TEST(matmul_gradient_2d)
{
    cf_tensor *in[] = {rand_leaf(80, -1, 1, CF_SHAPE(3, 4)), rand_leaf(81, -1, 1, CF_SHAPE(4, 5))};
    assert_gradcheck(f_matmul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_1d_by_2d)
{
    cf_tensor *in[] = {rand_leaf(82, -1, 1, CF_SHAPE(4)), rand_leaf(83, -1, 1, CF_SHAPE(4, 5))};
    assert_gradcheck(f_matmul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_2d_by_1d)
{
    cf_tensor *in[] = {rand_leaf(84, -1, 1, CF_SHAPE(3, 4)), rand_leaf(85, -1, 1, CF_SHAPE(4))};
    assert_gradcheck(f_matmul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_1d_by_1d)
{
    cf_tensor *in[] = {rand_leaf(86, -1, 1, CF_SHAPE(4)), rand_leaf(87, -1, 1, CF_SHAPE(4))};
    assert_gradcheck(f_matmul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_batched_3d)
{
    cf_tensor *in[] = {rand_leaf(88, -1, 1, CF_SHAPE(2, 3, 4)),
                       rand_leaf(89, -1, 1, CF_SHAPE(2, 4, 5))};
    assert_gradcheck(f_matmul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_4d_by_2d_sums_weight_over_batch)
{
    cf_tensor *in[] = {rand_leaf(90, -1, 1, CF_SHAPE(2, 3, 2, 4)),
                       rand_leaf(91, -1, 1, CF_SHAPE(4, 3))};
    assert_gradcheck(f_matmul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_2d_by_3d_broadcasts_the_left_operand)
{
    cf_tensor *in[] = {rand_leaf(92, -1, 1, CF_SHAPE(2, 4)),
                       rand_leaf(93, -1, 1, CF_SHAPE(3, 4, 5))};
    assert_gradcheck(f_matmul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_size_one_batch_broadcasts_against_3)
{
    cf_tensor *in[] = {rand_leaf(94, -1, 1, CF_SHAPE(1, 2, 4)),
                       rand_leaf(95, -1, 1, CF_SHAPE(3, 4, 5))};
    assert_gradcheck(f_matmul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_3_batch_broadcasts_against_size_one)
{
    cf_tensor *in[] = {rand_leaf(96, -1, 1, CF_SHAPE(3, 2, 4)),
                       rand_leaf(97, -1, 1, CF_SHAPE(1, 4, 5))};
    assert_gradcheck(f_matmul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_1d_by_3d)
{
    cf_tensor *in[] = {rand_leaf(98, -1, 1, CF_SHAPE(4)), rand_leaf(99, -1, 1, CF_SHAPE(2, 4, 3))};
    assert_gradcheck(f_matmul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_3d_by_1d)
{
    cf_tensor *in[] = {rand_leaf(100, -1, 1, CF_SHAPE(2, 3, 4)),
                       rand_leaf(101, -1, 1, CF_SHAPE(4))};
    assert_gradcheck(f_matmul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_transposed_left)
{
    cf_tensor *in[] = {rand_leaf(102, -1, 1, CF_SHAPE(4, 3)),
                       rand_leaf(103, -1, 1, CF_SHAPE(4, 5))};
    assert_gradcheck(f_matmul_at_b, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_transposed_right)
{
    cf_tensor *in[] = {rand_leaf(104, -1, 1, CF_SHAPE(3, 4)),
                       rand_leaf(105, -1, 1, CF_SHAPE(5, 4))};
    assert_gradcheck(f_matmul_a_bt, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_both_transposed)
{
    cf_tensor *in[] = {rand_leaf(106, -1, 1, CF_SHAPE(4, 3)),
                       rand_leaf(107, -1, 1, CF_SHAPE(5, 4))};
    assert_gradcheck(f_matmul_at_bt, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_batched_transposed)
{
    cf_tensor *in[] = {rand_leaf(108, -1, 1, CF_SHAPE(2, 4, 3)),
                       rand_leaf(109, -1, 1, CF_SHAPE(2, 5, 4))};
    assert_gradcheck(f_bmm_transposed, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_gradient_batch_dim_permuted)
{
    cf_tensor *in[] = {rand_leaf(110, -1, 1, CF_SHAPE(3, 2, 4)),
                       rand_leaf(111, -1, 1, CF_SHAPE(2, 4, 5))};
    assert_gradcheck(f_bmm_permuted, NULL, 2, in, TOL);
}
END_TEST

START_TEST(matmul_of_2x3_by_3x2)
{
    cf_tensor *a = cf_from_array((float[]){1, 2, 3, 4, 5, 6}, CF_SHAPE(2, 3));
    cf_tensor *b = cf_from_array((float[]){7, 8, 9, 10, 11, 12}, CF_SHAPE(3, 2));
    cf_tensor *c = cf_matmul(a, b);
    assert_shape(c, CF_SHAPE(2, 2));
    /* [1*7 + 2*9 + 3*11, 1*8 + 2*10 + 3*12; 4*7 + 5*9 + 6*11, 4*8 + 5*10 + 6*12] */
    assert_values(c, (float[]){58, 64, 139, 154}, 0, 0);
}
END_TEST

START_TEST(matmul_of_transposed_views_reads_their_strides)
{
    /* a^T with a = [[1, 4], [2, 5], [3, 6]] is [[1, 2, 3], [4, 5, 6]]. */
    cf_tensor *a = cf_from_array((float[]){1, 4, 2, 5, 3, 6}, CF_SHAPE(3, 2));
    /* b^T with b = [[7, 9, 11], [8, 10, 12]] is [[7, 8], [9, 10], [11, 12]]. */
    cf_tensor *b = cf_from_array((float[]){7, 9, 11, 8, 10, 12}, CF_SHAPE(2, 3));
    cf_tensor *c = cf_matmul(cf_transpose(a, 0, 1), cf_transpose(b, 0, 1));
    assert_values(c, (float[]){58, 64, 139, 154}, 0, 0);
}
END_TEST

START_TEST(matmul_1d_operands_drop_their_dim)
{
    cf_tensor *v = cf_from_array((float[]){1, 2, 3}, CF_SHAPE(3));
    cf_tensor *m = cf_from_array((float[]){1, 2, 3, 4, 5, 6}, CF_SHAPE(3, 2));
    cf_tensor *vm = cf_matmul(v, m);
    assert_shape(vm, CF_SHAPE(2));
    assert_values(vm, (float[]){22, 28}, 0, 0);
    cf_tensor *mv = cf_matmul(cf_transpose(m, 0, 1), v);
    assert_shape(mv, CF_SHAPE(2));
    assert_values(mv, (float[]){22, 28}, 0, 0);
    cf_tensor *vv = cf_matmul(v, v);
    ck_assert_ptr_nonnull(vv);
    ck_assert_int_eq(vv->ndim, 0);
    ck_assert_float_eq(cf_item(vv), 14);
}
END_TEST

START_TEST(matmul_batch_dims_broadcast)
{
    assert_shape(cf_matmul(cf_ones(CF_SHAPE(2, 3, 2, 4)), cf_ones(CF_SHAPE(4, 5))),
                 CF_SHAPE(2, 3, 2, 5));
    assert_shape(cf_matmul(cf_ones(CF_SHAPE(1, 2, 4)), cf_ones(CF_SHAPE(3, 4, 5))),
                 CF_SHAPE(3, 2, 5));
    assert_shape(cf_matmul(cf_ones(CF_SHAPE(2, 1, 2, 4)), cf_ones(CF_SHAPE(3, 4, 5))),
                 CF_SHAPE(2, 3, 2, 5));
}
END_TEST

START_TEST(matmul_batched_values_use_each_batch)
{
    /* Batch 0 multiplies by I, batch 1 by 2I. */
    cf_tensor *a = cf_from_array((float[]){1, 2, 3, 4, 1, 2, 3, 4}, CF_SHAPE(2, 2, 2));
    cf_tensor *b = cf_from_array((float[]){1, 0, 0, 1, 2, 0, 0, 2}, CF_SHAPE(2, 2, 2));
    assert_values(cf_matmul(a, b), (float[]){1, 2, 3, 4, 2, 4, 6, 8}, 0, 0);
}
END_TEST

START_TEST(matmul_weight_gradient_sums_over_the_batch)
{
    /* x is ones [2, 2, 1, 3] and y = sum(x @ w): dy/dw[k][n] counts the
     * 2 * 2 * 1 rows of x. */
    cf_tensor *x = cf_ones(CF_SHAPE(2, 2, 1, 3));
    cf_tensor *w = cf_requires_grad(cf_zeros(CF_SHAPE(3, 2)), true);
    cf_backward(cf_sum_all(cf_matmul(x, w)));
    assert_shape(w->grad, CF_SHAPE(3, 2));
    assert_values(w->grad, (float[]){4, 4, 4, 4, 4, 4}, 0, 0);
}
END_TEST

START_TEST(matmul_with_mismatched_inner_sizes_is_an_error)
{
    ck_assert_ptr_null(cf_matmul(cf_ones(CF_SHAPE(2, 3)), cf_ones(CF_SHAPE(4, 2))));
    assert_error(CF_ERR_SHAPE, "[2, 3]", "[4, 2]", NULL);
}
END_TEST

/* ---- affine: x W^T + b ---- */

static cf_tensor *f_affine(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_affine(in[0], in[1], in[2]);
}
static cf_tensor *f_affine_nobias(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_affine(in[0], in[1], NULL);
}
/* x stored [T, B, in] and used as [B, T, in]: rows that do not fold. */
static cf_tensor *f_affine_permuted(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_affine(cf_permute(in[0], (const int[]){1, 0, 2}), in[1], in[2]);
}
/* W stored [in, out] and used transposed. */
static cf_tensor *f_affine_transposed_weight(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_affine(in[0], cf_transpose(in[1], 0, 1), in[2]);
}

START_TEST(affine_gradient_batched)
{
    cf_tensor *in[] = {rand_leaf(150, -1, 1, CF_SHAPE(2, 3, 4)),
                       rand_leaf(151, -1, 1, CF_SHAPE(5, 4)), rand_leaf(152, -1, 1, CF_SHAPE(5))};
    assert_gradcheck(f_affine, NULL, 3, in, TOL);
}
END_TEST

START_TEST(affine_gradient_without_bias)
{
    cf_tensor *in[] = {rand_leaf(153, -1, 1, CF_SHAPE(3, 4)),
                       rand_leaf(154, -1, 1, CF_SHAPE(5, 4))};
    assert_gradcheck(f_affine_nobias, NULL, 2, in, TOL);
}
END_TEST

START_TEST(affine_gradient_of_a_vector)
{
    cf_tensor *in[] = {rand_leaf(155, -1, 1, CF_SHAPE(4)), rand_leaf(156, -1, 1, CF_SHAPE(3, 4)),
                       rand_leaf(157, -1, 1, CF_SHAPE(3))};
    assert_gradcheck(f_affine, NULL, 3, in, TOL);
}
END_TEST

START_TEST(affine_gradient_of_permuted_rows)
{
    cf_tensor *in[] = {rand_leaf(158, -1, 1, CF_SHAPE(3, 2, 4)),
                       rand_leaf(159, -1, 1, CF_SHAPE(5, 4)), rand_leaf(160, -1, 1, CF_SHAPE(5))};
    assert_gradcheck(f_affine_permuted, NULL, 3, in, TOL);
}
END_TEST

START_TEST(affine_gradient_of_a_transposed_weight)
{
    cf_tensor *in[] = {rand_leaf(161, -1, 1, CF_SHAPE(3, 4)), rand_leaf(162, -1, 1, CF_SHAPE(4, 5)),
                       rand_leaf(163, -1, 1, CF_SHAPE(5))};
    assert_gradcheck(f_affine_transposed_weight, NULL, 3, in, TOL);
}
END_TEST

START_TEST(affine_equals_matmul_plus_bias)
{
    cf_tensor *x = rand_leaf(164, -1, 1, CF_SHAPE(2, 3, 4));
    cf_tensor *w = rand_leaf(165, -1, 1, CF_SHAPE(5, 4)), *b = rand_leaf(166, -1, 1, CF_SHAPE(5));
    cf_tensor *want = cf_add(cf_matmul(x, cf_transpose(w, 0, 1)), b);
    assert_close(cf_affine(x, w, b), want, 1e-6f, 1e-5f);
}
END_TEST

START_TEST(affine_with_mismatched_sizes_is_an_error)
{
    ck_assert_ptr_null(cf_affine(cf_zeros(CF_SHAPE(2, 3)), cf_zeros(CF_SHAPE(5, 4)), NULL));
    assert_error(CF_ERR_SHAPE, "cf_affine", "[2, 3]", "[5, 4]", NULL);
    ck_assert_ptr_null(
        cf_affine(cf_zeros(CF_SHAPE(2, 4)), cf_zeros(CF_SHAPE(5, 4)), cf_zeros(CF_SHAPE(4))));
    assert_error(CF_ERR_SHAPE, "cf_affine", "bias [4]", NULL);
}
END_TEST

/* ==== Views ==== */

static cf_tensor *f_reshape(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_reshape(in[0], CF_SHAPE(4, 6));
}
static cf_tensor *f_reshape_inferred(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_reshape(in[0], CF_SHAPE(-1, 2, 3));
}
/* The transpose of a [2, 3, 4] tensor cannot be flattened by strides. */
static cf_tensor *f_reshape_transposed(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_reshape(cf_transpose(in[0], 0, 2), CF_SHAPE(4, -1));
}
static cf_tensor *f_view(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_view(in[0], CF_SHAPE(2, 12));
}
static cf_tensor *f_view_split(cf_tensor *const *in, void *ud)
{
    (void)ud;
    /* Splitting a dim of a transposed view is expressible by strides. */
    return cf_view(cf_transpose(in[0], 0, 2), CF_SHAPE(2, 2, 3, 2));
}
static cf_tensor *f_permute(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_permute(in[0], (const int[]){2, 0, 1});
}
static cf_tensor *f_transpose(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_transpose(in[0], 0, 2);
}
static cf_tensor *f_transpose_negative(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_transpose(in[0], -1, -2);
}
static cf_tensor *f_slice_step(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_slice(in[0], 0, 0, 6, 2);
}
static cf_tensor *f_slice_negative_start(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_slice(in[0], 1, -3, 4, 1);
}
static cf_tensor *f_slice_negative_start_step(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_slice(in[0], -2, -5, 6, 2);
}
static cf_tensor *f_slice_of_slice(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_slice(cf_slice(in[0], 0, 1, 6, 2), 1, -2, 100, 1);
}
static cf_tensor *f_expand(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_expand(in[0], CF_SHAPE(2, 3, 4));
}
static cf_tensor *f_expand_keep(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_expand(in[0], CF_SHAPE(2, -1, 4));
}
static cf_tensor *f_expand_then_mul(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_mul(cf_expand(in[0], CF_SHAPE(3, 4)), in[1]);
}
static cf_tensor *f_squeeze(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_squeeze(in[0], 1);
}
static cf_tensor *f_squeeze_negative(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_squeeze(in[0], -2);
}
static cf_tensor *f_unsqueeze(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_unsqueeze(in[0], 1);
}
static cf_tensor *f_unsqueeze_last(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_unsqueeze(cf_transpose(in[0], 0, 1), -1);
}
static cf_tensor *f_contiguous_transposed(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_contiguous(cf_transpose(in[0], 0, 1));
}
static cf_tensor *f_contiguous(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_mul_scalar(cf_contiguous(in[0]), 2);
}
static cf_tensor *f_clone(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_clone(in[0]);
}
static cf_tensor *f_clone_sliced(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_clone(cf_slice(in[0], 1, 0, 4, 2));
}

START_TEST(reshape_gradient)
{
    cf_tensor *in[] = {rand_leaf(120, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_reshape, NULL, 1, in, TOL);
}
END_TEST

START_TEST(reshape_gradient_with_an_inferred_size)
{
    cf_tensor *in[] = {rand_leaf(121, -1, 1, CF_SHAPE(4, 6))};
    assert_gradcheck(f_reshape_inferred, NULL, 1, in, TOL);
}
END_TEST

START_TEST(reshape_gradient_of_a_non_contiguous_source)
{
    cf_tensor *in[] = {rand_leaf(122, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_reshape_transposed, NULL, 1, in, TOL);
}
END_TEST

START_TEST(reshape_infers_the_minus_one_size)
{
    cf_tensor *y = cf_reshape(cf_zeros(CF_SHAPE(4, 6)), CF_SHAPE(-1, 2, 3));
    assert_shape(y, CF_SHAPE(4, 2, 3));
}
END_TEST

START_TEST(reshape_of_a_contiguous_tensor_shares_storage)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    cf_tensor *y = cf_reshape(x, CF_SHAPE(3, 2));
    ck_assert_ptr_eq(y->data, x->data);
    assert_values(y, (float[]){0, 1, 2, 3, 4, 5}, 0, 0);
}
END_TEST

START_TEST(reshape_of_a_transposed_tensor_copies_in_its_order)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    cf_tensor *y = cf_reshape(cf_transpose(x, 0, 1), CF_SHAPE(6));
    assert_shape(y, CF_SHAPE(6));
    ck_assert_ptr_ne(y->data, x->data);
    assert_values(y, (float[]){0, 3, 1, 4, 2, 5}, 0, 0);
}
END_TEST

START_TEST(reshape_with_a_wrong_size_is_an_error)
{
    ck_assert_ptr_null(cf_reshape(cf_zeros(CF_SHAPE(2, 3)), CF_SHAPE(4, 2)));
    assert_error(CF_ERR_SHAPE, "cf_reshape", NULL);
}
END_TEST

START_TEST(view_gradient)
{
    cf_tensor *in[] = {rand_leaf(123, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_view, NULL, 1, in, TOL);
}
END_TEST

START_TEST(view_gradient_splitting_a_dim_of_a_transposed_tensor)
{
    cf_tensor *in[] = {rand_leaf(124, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_view_split, NULL, 1, in, TOL);
}
END_TEST

START_TEST(view_of_a_transposed_tensor_that_needs_a_copy_is_an_error)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 3));
    ck_assert_ptr_null(cf_view(cf_transpose(x, 0, 1), CF_SHAPE(6)));
    assert_error(CF_ERR_SHAPE, "cf_view", "[3, 2]", "[6]", NULL);
}
END_TEST

START_TEST(view_shares_storage)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    cf_tensor *y = cf_view(x, CF_SHAPE(6));
    ck_assert_ptr_eq(y->data, x->data);
    cf_set(x, CF_IDX(1, 0), 42);
    ck_assert_float_eq(cf_get(y, CF_IDX(3)), 42);
}
END_TEST

START_TEST(permute_gradient)
{
    cf_tensor *in[] = {rand_leaf(125, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_permute, NULL, 1, in, TOL);
}
END_TEST

START_TEST(permute_moves_dims)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3, 4));
    cf_tensor *y = cf_permute(x, (const int[]){2, 0, 1});
    assert_shape(y, CF_SHAPE(4, 2, 3));
    ck_assert_ptr_eq(y->data, x->data);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                ck_assert_float_eq(cf_get(y, CF_IDX(k, i, j)), cf_get(x, CF_IDX(i, j, k)));
}
END_TEST

START_TEST(transpose_gradient)
{
    cf_tensor *in[] = {rand_leaf(126, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_transpose, NULL, 1, in, TOL);
}
END_TEST

START_TEST(transpose_gradient_with_negative_dims)
{
    cf_tensor *in[] = {rand_leaf(127, -1, 1, CF_SHAPE(2, 3, 4))};
    assert_gradcheck(f_transpose_negative, NULL, 1, in, TOL);
}
END_TEST

START_TEST(transpose_swaps_two_dims)
{
    cf_tensor *y = cf_transpose(arange_as(CF_SHAPE(2, 3)), 0, 1);
    assert_shape(y, CF_SHAPE(3, 2));
    ck_assert(!cf_is_contiguous(y));
    assert_values(y, (float[]){0, 3, 1, 4, 2, 5}, 0, 0);
}
END_TEST

START_TEST(slice_gradient_with_step_2)
{
    cf_tensor *in[] = {rand_leaf(128, -1, 1, CF_SHAPE(6, 3))};
    assert_gradcheck(f_slice_step, NULL, 1, in, TOL);
}
END_TEST

START_TEST(slice_gradient_with_a_negative_start)
{
    cf_tensor *in[] = {rand_leaf(129, -1, 1, CF_SHAPE(2, 5))};
    assert_gradcheck(f_slice_negative_start, NULL, 1, in, TOL);
}
END_TEST

START_TEST(slice_gradient_with_a_negative_start_and_step_2)
{
    cf_tensor *in[] = {rand_leaf(130, -1, 1, CF_SHAPE(6, 3))};
    assert_gradcheck(f_slice_negative_start_step, NULL, 1, in, TOL);
}
END_TEST

START_TEST(slice_gradient_of_a_slice)
{
    cf_tensor *in[] = {rand_leaf(131, -1, 1, CF_SHAPE(6, 4))};
    assert_gradcheck(f_slice_of_slice, NULL, 1, in, TOL);
}
END_TEST

START_TEST(slice_gradient_is_zero_outside_the_slice)
{
    cf_tensor *x = cf_requires_grad(cf_zeros(CF_SHAPE(6)), true);
    cf_backward(cf_sum_all(cf_slice(x, 0, 1, 6, 2)));
    assert_values(x->grad, (float[]){0, 1, 0, 1, 0, 1}, 0, 0);
}
END_TEST

START_TEST(slice_takes_every_step_th_element)
{
    cf_tensor *x = cf_arange(0, 10, 1);
    cf_tensor *y = cf_slice(x, 0, 1, 8, 3);
    assert_shape(y, CF_SHAPE(3));
    assert_values(y, (float[]){1, 4, 7}, 0, 0);
}
END_TEST

START_TEST(slice_negative_start_counts_from_the_end)
{
    cf_tensor *y = cf_slice(cf_arange(0, 10, 1), 0, -4, 10, 2);
    assert_shape(y, CF_SHAPE(2));
    assert_values(y, (float[]){6, 8}, 0, 0);
}
END_TEST

START_TEST(slice_clamps_an_end_past_the_size)
{
    cf_tensor *y = cf_slice(cf_arange(0, 10, 1), 0, 2, 100, 3);
    assert_values(y, (float[]){2, 5, 8}, 0, 0);
}
END_TEST

START_TEST(slice_along_an_inner_dim)
{
    /* [[0..4], [5..9]] columns 1 and 3 */
    cf_tensor *y = cf_slice(arange_as(CF_SHAPE(2, 5)), 1, 1, 5, 2);
    assert_shape(y, CF_SHAPE(2, 2));
    assert_values(y, (float[]){1, 3, 6, 8}, 0, 0);
}
END_TEST

START_TEST(slice_with_start_past_end_is_empty)
{
    cf_tensor *y = cf_slice(cf_arange(0, 10, 1), 0, 7, 3, 1);
    assert_shape(y, CF_SHAPE(0));
}
END_TEST

START_TEST(slice_with_zero_step_is_an_error)
{
    ck_assert_ptr_null(cf_slice(cf_arange(0, 10, 1), 0, 0, 10, 0));
    assert_error(CF_ERR_ARG, "cf_slice", NULL);
}
END_TEST

START_TEST(expand_gradient_sums_over_expanded_dims)
{
    cf_tensor *in[] = {rand_leaf(132, -1, 1, CF_SHAPE(3, 1))};
    assert_gradcheck(f_expand, NULL, 1, in, TOL);
}
END_TEST

START_TEST(expand_gradient_keeping_a_size_with_minus_one)
{
    cf_tensor *in[] = {rand_leaf(133, -1, 1, CF_SHAPE(3, 1))};
    assert_gradcheck(f_expand_keep, NULL, 1, in, TOL);
}
END_TEST

START_TEST(expand_gradient_through_a_product)
{
    cf_tensor *in[] = {rand_leaf(134, -1, 1, CF_SHAPE(4)), rand_leaf(135, -1, 1, CF_SHAPE(3, 4))};
    assert_gradcheck(f_expand_then_mul, NULL, 2, in, TOL);
}
END_TEST

START_TEST(expand_gradient_counts_the_copies)
{
    cf_tensor *x = cf_requires_grad(cf_zeros(CF_SHAPE(3, 1)), true);
    cf_backward(cf_sum_all(cf_expand(x, CF_SHAPE(2, 3, 4))));
    assert_values(x->grad, (float[]){8, 8, 8}, 0, 0);
}
END_TEST

START_TEST(expand_repeats_without_copying)
{
    cf_tensor *x = cf_from_array((float[]){1, 2}, CF_SHAPE(2, 1));
    cf_tensor *y = cf_expand(x, CF_SHAPE(2, -1, 3));
    assert_shape(y, CF_SHAPE(2, 2, 3));
    ck_assert_ptr_eq(y->data, x->data);
    assert_values(y, (float[]){1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2}, 0, 0);
}
END_TEST

START_TEST(expand_of_a_non_one_size_is_an_error)
{
    ck_assert_ptr_null(cf_expand(cf_zeros(CF_SHAPE(3, 2)), CF_SHAPE(3, 4)));
    assert_error(CF_ERR_SHAPE, "cf_expand", "[3, 2]", "[3, 4]", NULL);
}
END_TEST

START_TEST(squeeze_gradient)
{
    cf_tensor *in[] = {rand_leaf(136, -1, 1, CF_SHAPE(2, 1, 3))};
    assert_gradcheck(f_squeeze, NULL, 1, in, TOL);
}
END_TEST

START_TEST(squeeze_gradient_with_a_negative_dim)
{
    cf_tensor *in[] = {rand_leaf(137, -1, 1, CF_SHAPE(2, 1, 3))};
    assert_gradcheck(f_squeeze_negative, NULL, 1, in, TOL);
}
END_TEST

START_TEST(squeeze_removes_only_a_size_one_dim)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 1, 3));
    assert_shape(cf_squeeze(x, 1), CF_SHAPE(2, 3));
    assert_shape(cf_squeeze(x, -2), CF_SHAPE(2, 3));
    assert_shape(cf_squeeze(x, 0), CF_SHAPE(2, 1, 3));
}
END_TEST

START_TEST(unsqueeze_gradient)
{
    cf_tensor *in[] = {rand_leaf(138, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_unsqueeze, NULL, 1, in, TOL);
}
END_TEST

START_TEST(unsqueeze_gradient_at_the_end_of_a_transposed_tensor)
{
    cf_tensor *in[] = {rand_leaf(139, -1, 1, CF_SHAPE(2, 3))};
    assert_gradcheck(f_unsqueeze_last, NULL, 1, in, TOL);
}
END_TEST

START_TEST(unsqueeze_inserts_a_size_one_dim)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    assert_shape(cf_unsqueeze(x, 0), CF_SHAPE(1, 2, 3));
    assert_shape(cf_unsqueeze(x, 1), CF_SHAPE(2, 1, 3));
    assert_shape(cf_unsqueeze(x, -1), CF_SHAPE(2, 3, 1));
    assert_values(cf_unsqueeze(x, 1), (float[]){0, 1, 2, 3, 4, 5}, 0, 0);
}
END_TEST

START_TEST(contiguous_gradient_of_a_transposed_tensor)
{
    cf_tensor *in[] = {rand_leaf(140, -1, 1, CF_SHAPE(3, 4))};
    assert_gradcheck(f_contiguous_transposed, NULL, 1, in, TOL);
}
END_TEST

START_TEST(contiguous_gradient_of_a_contiguous_tensor)
{
    cf_tensor *in[] = {rand_leaf(141, -1, 1, CF_SHAPE(3, 4))};
    assert_gradcheck(f_contiguous, NULL, 1, in, TOL);
}
END_TEST

START_TEST(contiguous_of_a_transposed_tensor_lays_it_out_row_major)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    cf_tensor *y = cf_contiguous(cf_transpose(x, 0, 1));
    assert_shape(y, CF_SHAPE(3, 2));
    ck_assert(cf_is_contiguous(y));
    const float *p = y->data;
    const float want[] = {0, 3, 1, 4, 2, 5};
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(p[i], want[i]);
}
END_TEST

START_TEST(contiguous_of_a_contiguous_tensor_is_itself)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    ck_assert_ptr_eq(cf_contiguous(x), x);
}
END_TEST

START_TEST(clone_gradient)
{
    cf_tensor *in[] = {rand_leaf(142, -1, 1, CF_SHAPE(3, 4))};
    assert_gradcheck(f_clone, NULL, 1, in, TOL);
}
END_TEST

START_TEST(clone_gradient_of_a_strided_slice)
{
    cf_tensor *in[] = {rand_leaf(143, -1, 1, CF_SHAPE(3, 4))};
    assert_gradcheck(f_clone_sliced, NULL, 1, in, TOL);
}
END_TEST

START_TEST(clone_copies_the_storage)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    cf_tensor *y = cf_clone(x);
    ck_assert_ptr_ne(y->data, x->data);
    ck_assert(cf_is_contiguous(y));
    cf_set(x, CF_IDX(0, 0), 42);
    assert_values(y, (float[]){0, 1, 2, 3, 4, 5}, 0, 0);
}
END_TEST

START_TEST(a_view_gradient_flows_back_through_a_chain_of_views)
{
    /* sum(w * x^T[1:, ::2].unsqueeze(0)) for x [4, 3] */
    cf_tensor *x = cf_requires_grad(cf_zeros(CF_SHAPE(4, 3)), true);
    cf_tensor *v = cf_unsqueeze(cf_slice(cf_slice(cf_transpose(x, 0, 1), 0, 1, 3, 1), 1, 0, 4, 2),
                                0); /* [1, 2, 2]: x[0,1], x[2,1]; x[0,2], x[2,2] */
    cf_tensor *w = cf_from_array((float[]){1, 2, 3, 4}, CF_SHAPE(1, 2, 2));
    cf_backward(cf_sum_all(cf_mul(v, w)));
    assert_values(x->grad, (float[]){0, 1, 3, 0, 0, 0, 0, 2, 4, 0, 0, 0}, 0, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops");

    TCase *arith = tcase("arith");
    tcase_add_test(arith, add_gradient_same_shape);
    tcase_add_test(arith, sub_gradient_same_shape);
    tcase_add_test(arith, mul_gradient_same_shape);
    tcase_add_test(arith, div_gradient_same_shape);
    tcase_add_test(arith, add_gradient_broadcasts_3x1x5_with_4x1);
    tcase_add_test(arith, sub_gradient_broadcasts_3x1x5_with_4x1);
    tcase_add_test(arith, mul_gradient_broadcasts_over_leading_dims);
    tcase_add_test(arith, div_gradient_broadcasts_denominator_over_leading_dims);
    tcase_add_test(arith, div_gradient_broadcasts_numerator_over_leading_dims);
    tcase_add_test(arith, add_gradient_with_a_size_one_operand);
    tcase_add_test(arith, mul_gradient_with_a_size_one_operand_on_the_left);
    tcase_add_test(arith, add_gradient_with_a_0d_scalar_operand);
    tcase_add_test(arith, sub_gradient_with_a_0d_scalar_on_the_left);
    tcase_add_test(arith, mul_gradient_with_a_0d_scalar_operand);
    tcase_add_test(arith, div_gradient_with_a_0d_scalar_denominator);
    tcase_add_test(arith, mul_of_two_0d_scalars_gradient);
    tcase_add_test(arith, add_gradient_with_a_transposed_input);
    tcase_add_test(arith, sub_gradient_with_a_transposed_input);
    tcase_add_test(arith, mul_gradient_with_a_transposed_input);
    tcase_add_test(arith, div_gradient_with_a_transposed_denominator);
    tcase_add_test(arith, add_of_a_tensor_with_itself_gradient);
    tcase_add_test(arith, sub_of_a_tensor_from_itself_gradient_is_zero);
    tcase_add_test(arith, mul_of_a_tensor_with_itself_gradient);
    tcase_add_test(arith, mul_of_a_tensor_with_itself_gradient_is_twice_the_value);
    tcase_add_test(arith, div_of_a_tensor_by_itself_gradient);
    tcase_add_test(arith, neg_gradient);
    tcase_add_test(arith, add_scalar_gradient);
    tcase_add_test(arith, mul_scalar_gradient);
    tcase_add_test(arith, rsub_scalar_gradient);
    tcase_add_test(arith, rdiv_scalar_gradient);
    tcase_add_test(arith, square_gradient);
    tcase_add_test(arith, square_gradient_of_a_transposed_input);
    tcase_add_test(arith, add_broadcasts_a_row_against_a_column);
    tcase_add_test(arith, broadcast_of_3x1x5_with_4x1_gives_3x4x5);
    tcase_add_test(arith, a_0d_operand_keeps_the_other_shape);
    tcase_add_test(arith, two_0d_operands_give_a_0d_result);
    tcase_add_test(arith, scalar_ops_compute_their_formulas);
    tcase_add_test(arith, broadcast_gradient_sums_over_stretched_dims);
    suite_add_tcase(s, arith);

    TCase *unary = tcase("unary");
    tcase_add_test(unary, exp_gradient);
    tcase_add_test(unary, log_gradient);
    tcase_add_test(unary, tanh_gradient);
    tcase_add_test(unary, tanh_gradient_of_a_transposed_input);
    tcase_add_test(unary, sigmoid_gradient);
    tcase_add_test(unary, relu_gradient_away_from_zero);
    tcase_add_test(unary, relu_gradient_at_zero_is_zero);
    tcase_add_test(unary, relu_passes_nan_and_its_gradient_like_pytorch);
    tcase_add_test(unary, unary_functions_compute_their_values);
    tcase_add_test(unary, sigmoid_saturates_without_overflow);
    suite_add_tcase(s, unary);

    TCase *reduce = tcase("reduce");
    tcase_add_test(reduce, sum_gradient_over_one_dim);
    tcase_add_test(reduce, sum_gradient_over_one_dim_keepdim);
    tcase_add_test(reduce, sum_gradient_over_several_dims);
    tcase_add_test(reduce, sum_gradient_over_several_dims_keepdim);
    tcase_add_test(reduce, sum_gradient_over_negative_dims);
    tcase_add_test(reduce, sum_gradient_of_a_transposed_input);
    tcase_add_test(reduce, sum_all_gradient);
    tcase_add_test(reduce, sum_with_no_dims_reduces_everything);
    tcase_add_test(reduce, mean_gradient_over_one_dim);
    tcase_add_test(reduce, mean_gradient_over_one_dim_keepdim);
    tcase_add_test(reduce, mean_gradient_over_several_dims);
    tcase_add_test(reduce, mean_gradient_over_negative_dims_keepdim);
    tcase_add_test(reduce, mean_all_gradient);
    tcase_add_test(reduce, mean_all_gradient_is_one_over_numel);
    tcase_add_test(reduce, sum_over_dim_1_of_arange);
    tcase_add_test(reduce, sum_over_dim_0_of_arange);
    tcase_add_test(reduce, sum_keepdim_keeps_reduced_dims_as_size_one);
    tcase_add_test(reduce, negative_dims_count_from_the_end);
    tcase_add_test(reduce, mean_over_several_dims_of_arange);
    tcase_add_test(reduce, sum_all_and_mean_all_are_0d);
    tcase_add_test(reduce, sum_of_a_repeated_dim_is_an_error);
    tcase_add_test(reduce, sum_over_a_dim_out_of_range_is_an_error);
    suite_add_tcase(s, reduce);

    TCase *matmul = tcase("matmul");
    tcase_add_test(matmul, matmul_gradient_2d);
    tcase_add_test(matmul, matmul_gradient_1d_by_2d);
    tcase_add_test(matmul, matmul_gradient_2d_by_1d);
    tcase_add_test(matmul, matmul_gradient_1d_by_1d);
    tcase_add_test(matmul, matmul_of_a_column_by_a_row_is_their_outer_product);
    tcase_add_test(matmul, matmul_gradient_batched_3d);
    tcase_add_test(matmul, matmul_gradient_4d_by_2d_sums_weight_over_batch);
    tcase_add_test(matmul, matmul_gradient_2d_by_3d_broadcasts_the_left_operand);
    tcase_add_test(matmul, matmul_gradient_size_one_batch_broadcasts_against_3);
    tcase_add_test(matmul, matmul_gradient_3_batch_broadcasts_against_size_one);
    tcase_add_test(matmul, matmul_gradient_1d_by_3d);
    tcase_add_test(matmul, matmul_gradient_3d_by_1d);
    tcase_add_test(matmul, matmul_gradient_transposed_left);
    tcase_add_test(matmul, matmul_gradient_transposed_right);
    tcase_add_test(matmul, matmul_gradient_both_transposed);
    tcase_add_test(matmul, matmul_gradient_batched_transposed);
    tcase_add_test(matmul, matmul_gradient_batch_dim_permuted);
    tcase_add_test(matmul, matmul_of_2x3_by_3x2);
    tcase_add_test(matmul, matmul_of_transposed_views_reads_their_strides);
    tcase_add_test(matmul, matmul_1d_operands_drop_their_dim);
    tcase_add_test(matmul, matmul_batch_dims_broadcast);
    tcase_add_test(matmul, matmul_batched_values_use_each_batch);
    tcase_add_test(matmul, matmul_weight_gradient_sums_over_the_batch);
    tcase_add_test(matmul, matmul_with_mismatched_inner_sizes_is_an_error);
    tcase_add_test(matmul, affine_gradient_batched);
    tcase_add_test(matmul, affine_gradient_without_bias);
    tcase_add_test(matmul, affine_gradient_of_a_vector);
    tcase_add_test(matmul, affine_gradient_of_permuted_rows);
    tcase_add_test(matmul, affine_gradient_of_a_transposed_weight);
    tcase_add_test(matmul, affine_equals_matmul_plus_bias);
    tcase_add_test(matmul, affine_with_mismatched_sizes_is_an_error);
    suite_add_tcase(s, matmul);

    TCase *views = tcase("views");
    tcase_add_test(views, reshape_gradient);
    tcase_add_test(views, reshape_gradient_with_an_inferred_size);
    tcase_add_test(views, reshape_gradient_of_a_non_contiguous_source);
    tcase_add_test(views, reshape_infers_the_minus_one_size);
    tcase_add_test(views, reshape_of_a_contiguous_tensor_shares_storage);
    tcase_add_test(views, reshape_of_a_transposed_tensor_copies_in_its_order);
    tcase_add_test(views, reshape_with_a_wrong_size_is_an_error);
    tcase_add_test(views, view_gradient);
    tcase_add_test(views, view_gradient_splitting_a_dim_of_a_transposed_tensor);
    tcase_add_test(views, view_of_a_transposed_tensor_that_needs_a_copy_is_an_error);
    tcase_add_test(views, view_shares_storage);
    tcase_add_test(views, permute_gradient);
    tcase_add_test(views, permute_moves_dims);
    tcase_add_test(views, transpose_gradient);
    tcase_add_test(views, transpose_gradient_with_negative_dims);
    tcase_add_test(views, transpose_swaps_two_dims);
    tcase_add_test(views, slice_gradient_with_step_2);
    tcase_add_test(views, slice_gradient_with_a_negative_start);
    tcase_add_test(views, slice_gradient_with_a_negative_start_and_step_2);
    tcase_add_test(views, slice_gradient_of_a_slice);
    tcase_add_test(views, slice_gradient_is_zero_outside_the_slice);
    tcase_add_test(views, slice_takes_every_step_th_element);
    tcase_add_test(views, slice_negative_start_counts_from_the_end);
    tcase_add_test(views, slice_clamps_an_end_past_the_size);
    tcase_add_test(views, slice_along_an_inner_dim);
    tcase_add_test(views, slice_with_start_past_end_is_empty);
    tcase_add_test(views, slice_with_zero_step_is_an_error);
    tcase_add_test(views, expand_gradient_sums_over_expanded_dims);
    tcase_add_test(views, expand_gradient_keeping_a_size_with_minus_one);
    tcase_add_test(views, expand_gradient_through_a_product);
    tcase_add_test(views, expand_gradient_counts_the_copies);
    tcase_add_test(views, expand_repeats_without_copying);
    tcase_add_test(views, expand_of_a_non_one_size_is_an_error);
    tcase_add_test(views, squeeze_gradient);
    tcase_add_test(views, squeeze_gradient_with_a_negative_dim);
    tcase_add_test(views, squeeze_removes_only_a_size_one_dim);
    tcase_add_test(views, unsqueeze_gradient);
    tcase_add_test(views, unsqueeze_gradient_at_the_end_of_a_transposed_tensor);
    tcase_add_test(views, unsqueeze_inserts_a_size_one_dim);
    tcase_add_test(views, contiguous_gradient_of_a_transposed_tensor);
    tcase_add_test(views, contiguous_gradient_of_a_contiguous_tensor);
    tcase_add_test(views, contiguous_of_a_transposed_tensor_lays_it_out_row_major);
    tcase_add_test(views, contiguous_of_a_contiguous_tensor_is_itself);
    tcase_add_test(views, clone_gradient);
    tcase_add_test(views, clone_gradient_of_a_strided_slice);
    tcase_add_test(views, clone_copies_the_storage);
    tcase_add_test(views, a_view_gradient_flows_back_through_a_chain_of_views);
    suite_add_tcase(s, views);

    return run_suite(s);
}
