/* autograd/matmul.c: matmul (torch.matmul's ranks and batch broadcasting)
 * and affine (F.linear). Values and gradients against PyTorch with a
 * finite-difference check of each case (gen_golden.py's "matmul." cases),
 * and the semantics by hand: 1-d operands, strided views, errors.
 *
 * Gradient tolerance of the check by hand: TOL = 1e-2 on the error
 * relative to max(|numeric|, 1) (util.h's assert_gradcheck). */
#include "tests/expr.h"
#include "tests/util.h"

#include <blis.h>
#include <math.h>
#include <stdlib.h>

#define TOL 1e-2f

TEST_WITH(products_match_pytorch_and_finite_differences, .golden = "matmul.")
{
    assert_golden_expr("ops.safetensors", "matmul.", _i);
}
END_TEST

TEST(blis_never_runs_its_generic_kernels_on_a_processor_with_avx2)
{
    /* On Zen 5 they run at a sixth of the speed of its AVX-512 kernels;
     * tensor/gemm.c chooses those for processors BLIS 0.9 does not know. */
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    bli_init(); /* bli_arch_query_id before it aborts when BLIS_ARCH_TYPE is set */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        ck_assert_str_ne(bli_arch_string(bli_arch_query_id()), "generic");
#endif
}
END_TEST

TEST(matmul_of_a_column_by_a_row_is_their_outer_product)
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

TEST(matmul_of_2x3_by_3x2)
{
    cf_tensor *a = cf_from_array((float[]){1, 2, 3, 4, 5, 6}, CF_SHAPE(2, 3));
    cf_tensor *b = cf_from_array((float[]){7, 8, 9, 10, 11, 12}, CF_SHAPE(3, 2));
    cf_tensor *c = cf_matmul(a, b);
    assert_shape(c, CF_SHAPE(2, 2));
    /* [1*7 + 2*9 + 3*11, 1*8 + 2*10 + 3*12; 4*7 + 5*9 + 6*11, 4*8 + 5*10 + 6*12] */
    assert_values(c, (float[]){58, 64, 139, 154}, 0, 0);
}
END_TEST

TEST(matmul_of_transposed_views_reads_their_strides)
{
    /* a^T with a = [[1, 4], [2, 5], [3, 6]] is [[1, 2, 3], [4, 5, 6]]. */
    cf_tensor *a = cf_from_array((float[]){1, 4, 2, 5, 3, 6}, CF_SHAPE(3, 2));
    /* b^T with b = [[7, 9, 11], [8, 10, 12]] is [[7, 8], [9, 10], [11, 12]]. */
    cf_tensor *b = cf_from_array((float[]){7, 9, 11, 8, 10, 12}, CF_SHAPE(2, 3));
    cf_tensor *c = cf_matmul(cf_transpose(a, 0, 1), cf_transpose(b, 0, 1));
    assert_values(c, (float[]){58, 64, 139, 154}, 0, 0);
}
END_TEST

TEST(matmul_1d_operands_drop_their_dim)
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

TEST(matmul_batch_dims_broadcast)
{
    assert_shape(cf_matmul(cf_ones(CF_SHAPE(2, 3, 2, 4)), cf_ones(CF_SHAPE(4, 5))),
                 CF_SHAPE(2, 3, 2, 5));
    assert_shape(cf_matmul(cf_ones(CF_SHAPE(1, 2, 4)), cf_ones(CF_SHAPE(3, 4, 5))),
                 CF_SHAPE(3, 2, 5));
    assert_shape(cf_matmul(cf_ones(CF_SHAPE(2, 1, 2, 4)), cf_ones(CF_SHAPE(3, 4, 5))),
                 CF_SHAPE(2, 3, 2, 5));
}
END_TEST

TEST(matmul_batched_values_use_each_batch)
{
    /* Batch 0 multiplies by I, batch 1 by 2I. */
    cf_tensor *a = cf_from_array((float[]){1, 2, 3, 4, 1, 2, 3, 4}, CF_SHAPE(2, 2, 2));
    cf_tensor *b = cf_from_array((float[]){1, 0, 0, 1, 2, 0, 0, 2}, CF_SHAPE(2, 2, 2));
    assert_values(cf_matmul(a, b), (float[]){1, 2, 3, 4, 2, 4, 6, 8}, 0, 0);
}
END_TEST

TEST(matmul_weight_gradient_sums_over_the_batch)
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

TEST(matmul_with_mismatched_inner_sizes_is_an_error)
{
    ck_assert_ptr_null(cf_matmul(cf_ones(CF_SHAPE(2, 3)), cf_ones(CF_SHAPE(4, 2))));
    assert_error(CF_ERR_SHAPE, "[2, 3]", "[4, 2]", NULL);
}
END_TEST

/* ---- affine: x W^T + b ---- */

static cf_tensor *f_affine_nobias(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_affine(in[0], in[1], NULL);
}
TEST(affine_gradient_without_bias)
{
    cf_tensor *in[] = {rand_leaf(153, -1, 1, CF_SHAPE(3, 4)),
                       rand_leaf(154, -1, 1, CF_SHAPE(5, 4))};
    assert_gradcheck(f_affine_nobias, NULL, 2, in, TOL);
}
END_TEST

TEST(affine_equals_matmul_plus_bias)
{
    cf_tensor *x = rand_leaf(164, -1, 1, CF_SHAPE(2, 3, 4));
    cf_tensor *w = rand_leaf(165, -1, 1, CF_SHAPE(5, 4)), *b = rand_leaf(166, -1, 1, CF_SHAPE(5));
    cf_tensor *want = cf_add(cf_matmul(x, cf_transpose(w, 0, 1)), b);
    assert_close(cf_affine(x, w, b), want, 1e-6f, 1e-5f);
}
END_TEST

TEST(affine_with_mismatched_sizes_is_an_error)
{
    ck_assert_ptr_null(cf_affine(cf_zeros(CF_SHAPE(2, 3)), cf_zeros(CF_SHAPE(5, 4)), NULL));
    assert_error(CF_ERR_SHAPE, "cf_affine", "[2, 3]", "[5, 4]", NULL);
    ck_assert_ptr_null(
        cf_affine(cf_zeros(CF_SHAPE(2, 4)), cf_zeros(CF_SHAPE(5, 4)), cf_zeros(CF_SHAPE(4))));
    assert_error(CF_ERR_SHAPE, "cf_affine", "bias [4]", NULL);
}
END_TEST
