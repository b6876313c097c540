/* autograd/arith.c: add, sub, mul and div with broadcasting, neg, the
 * scalar forms and square. Values and gradients against PyTorch, with a
 * finite-difference check of each case (tests/golden/gen_golden.py's
 * "arith." cases, through tests/expr.c), and the semantics pinned down by
 * hand: broadcast shapes, 0-d operands, gradients summed over stretched
 * dims. Binary ops broadcast like PyTorch; every expectation here matches
 * torch. */
#include "tests/expr.h"
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>

TEST_WITH(arith_ops_match_pytorch_and_finite_differences, .golden = "arith.")
{
    assert_golden_expr("ops.safetensors", "arith.", _i);
}
END_TEST

TEST(sub_of_a_tensor_from_itself_gradient_is_zero)
{
    cf_tensor *x = rand_leaf(36, -1, 1, CF_SHAPE(2, 3));
    cf_backward(cf_sum_all(cf_sub(x, x)));
    assert_values(x->grad, (float[]){0, 0, 0, 0, 0, 0}, 0, 0);
}
END_TEST

TEST(mul_of_a_tensor_with_itself_gradient_is_twice_the_value)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){1, -2, 3}, CF_SHAPE(3)), true);
    cf_backward(cf_sum_all(cf_mul(x, x)));
    assert_values(x->grad, (float[]){2, -4, 6}, 0, 0);
}
END_TEST

TEST(square_gradient_of_a_transposed_input)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){1, 2, 3, 4}, CF_SHAPE(2, 2)), true);
    cf_backward(cf_sum_all(cf_mul(cf_square(cf_transpose(x, 0, 1)),
                                  cf_from_array((float[]){1, 10, 100, 1000}, CF_SHAPE(2, 2)))));
    /* d/dx[i][j] = 2 x[i][j] * w[j][i] */
    assert_values(x->grad, (float[]){2, 400, 60, 8000}, 0, 0);
}
END_TEST

TEST(add_broadcasts_a_row_against_a_column)
{
    cf_tensor *col = cf_from_array((float[]){10, 20}, CF_SHAPE(2, 1));
    cf_tensor *row = cf_from_array((float[]){1, 2, 3}, CF_SHAPE(3));
    cf_tensor *y = cf_add(col, row);
    assert_shape(y, CF_SHAPE(2, 3));
    assert_values(y, (float[]){11, 12, 13, 21, 22, 23}, 0, 0);
}
END_TEST

TEST(broadcast_of_3x1x5_with_4x1_gives_3x4x5)
{
    cf_tensor *y = cf_mul(cf_ones(CF_SHAPE(3, 1, 5)), cf_ones(CF_SHAPE(4, 1)));
    assert_shape(y, CF_SHAPE(3, 4, 5));
}
END_TEST

TEST(a_0d_operand_keeps_the_other_shape)
{
    cf_tensor *y = cf_sub(cf_scalar(10), cf_from_array((float[]){1, 2, 3}, CF_SHAPE(3)));
    assert_shape(y, CF_SHAPE(3));
    assert_values(y, (float[]){9, 8, 7}, 0, 0);
}
END_TEST

TEST(two_0d_operands_give_a_0d_result)
{
    cf_tensor *y = cf_div(cf_scalar(3), cf_scalar(4));
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->ndim, 0);
    ck_assert_float_eq_tol(cf_item(y), 0.75f, 1e-7f);
}
END_TEST

TEST(scalar_ops_compute_their_formulas)
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

TEST(broadcast_gradient_sums_over_stretched_dims)
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
