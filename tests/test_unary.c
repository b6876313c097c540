/* autograd/unary.c: exp, log, tanh, sigmoid and relu. Values and
 * gradients against PyTorch, with a finite-difference check of each case
 * (gen_golden.py's "unary." cases; relu's cases with inputs at its kink get
 * none, relu_away_from_zero does), and the edges by hand: relu at 0 and
 * NaN, sigmoid's saturation. */
#include "tests/expr.h"
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>

TEST_WITH(unary_ops_match_pytorch_and_finite_differences, .golden = "unary.")
{
    assert_golden_expr("ops.safetensors", "unary.", _i);
}
END_TEST

TEST(relu_gradient_at_zero_is_zero)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){-1, 0, 2}, CF_SHAPE(3)), true);
    cf_backward(cf_sum_all(cf_relu(x)));
    assert_values(x->grad, (float[]){0, 0, 1}, 0, 0);
}
END_TEST

TEST(relu_passes_nan_and_its_gradient_like_pytorch)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){NAN, -1}, CF_SHAPE(2)), true);
    cf_tensor *y = cf_relu(x);
    ck_assert(isnan(cf_get(y, CF_IDX(0))));
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_mul_scalar(y, 3))), CF_OK);
    assert_values(x->grad, (float[]){3, 0}, 0, 0); /* NaN <= 0 is false */
}
END_TEST

TEST(unary_functions_compute_their_values)
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

TEST(sigmoid_saturates_without_overflow)
{
    cf_tensor *y = cf_sigmoid(cf_from_array((float[]){-100, 100}, CF_SHAPE(2)));
    assert_values(y, (float[]){0, 1}, 1e-7f, 0);
}
END_TEST
