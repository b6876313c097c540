/* autograd/view.c: reshape, view, permute, transpose, slice, expand,
 * squeeze, unsqueeze, contiguous and clone. Values and gradients against
 * PyTorch with a finite-difference check of each case (gen_golden.py's
 * "view." cases), and by hand what a view shares and when it must copy. */
#include "tests/expr.h"
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>

TEST_WITH(views_match_pytorch_and_finite_differences, .golden = "view.")
{
    assert_golden_expr("ops.safetensors", "view.", _i);
}
END_TEST

TEST(reshape_infers_the_minus_one_size)
{
    cf_tensor *y = cf_reshape(cf_zeros(CF_SHAPE(4, 6)), CF_SHAPE(-1, 2, 3));
    assert_shape(y, CF_SHAPE(4, 2, 3));
}
END_TEST

TEST(reshape_of_a_contiguous_tensor_shares_storage)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    cf_tensor *y = cf_reshape(x, CF_SHAPE(3, 2));
    ck_assert_ptr_eq(y->data, x->data);
    assert_values(y, (float[]){0, 1, 2, 3, 4, 5}, 0, 0);
}
END_TEST

TEST(reshape_of_a_transposed_tensor_copies_in_its_order)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    cf_tensor *y = cf_reshape(cf_transpose(x, 0, 1), CF_SHAPE(6));
    assert_shape(y, CF_SHAPE(6));
    ck_assert_ptr_ne(y->data, x->data);
    assert_values(y, (float[]){0, 3, 1, 4, 2, 5}, 0, 0);
}
END_TEST

TEST(reshape_with_a_wrong_size_is_an_error)
{
    ck_assert_ptr_null(cf_reshape(cf_zeros(CF_SHAPE(2, 3)), CF_SHAPE(4, 2)));
    assert_error(CF_ERR_SHAPE, "cf_reshape", NULL);
}
END_TEST

TEST(view_of_a_transposed_tensor_that_needs_a_copy_is_an_error)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 3));
    ck_assert_ptr_null(cf_view(cf_transpose(x, 0, 1), CF_SHAPE(6)));
    assert_error(CF_ERR_SHAPE, "cf_view", "[3, 2]", "[6]", NULL);
}
END_TEST

TEST(view_shares_storage)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    cf_tensor *y = cf_view(x, CF_SHAPE(6));
    ck_assert_ptr_eq(y->data, x->data);
    cf_set(x, CF_IDX(1, 0), 42);
    ck_assert_float_eq(cf_get(y, CF_IDX(3)), 42);
}
END_TEST

TEST(permute_moves_dims)
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

TEST(transpose_swaps_two_dims)
{
    cf_tensor *y = cf_transpose(arange_as(CF_SHAPE(2, 3)), 0, 1);
    assert_shape(y, CF_SHAPE(3, 2));
    ck_assert(!cf_is_contiguous(y));
    assert_values(y, (float[]){0, 3, 1, 4, 2, 5}, 0, 0);
}
END_TEST

TEST(slice_gradient_is_zero_outside_the_slice)
{
    cf_tensor *x = cf_requires_grad(cf_zeros(CF_SHAPE(6)), true);
    cf_backward(cf_sum_all(cf_slice(x, 0, 1, 6, 2)));
    assert_values(x->grad, (float[]){0, 1, 0, 1, 0, 1}, 0, 0);
}
END_TEST

TEST(slice_takes_every_step_th_element)
{
    cf_tensor *x = cf_arange(0, 10, 1);
    cf_tensor *y = cf_slice(x, 0, 1, 8, 3);
    assert_shape(y, CF_SHAPE(3));
    assert_values(y, (float[]){1, 4, 7}, 0, 0);
}
END_TEST

TEST(slice_negative_start_counts_from_the_end)
{
    cf_tensor *y = cf_slice(cf_arange(0, 10, 1), 0, -4, 10, 2);
    assert_shape(y, CF_SHAPE(2));
    assert_values(y, (float[]){6, 8}, 0, 0);
}
END_TEST

TEST(slice_clamps_an_end_past_the_size)
{
    cf_tensor *y = cf_slice(cf_arange(0, 10, 1), 0, 2, 100, 3);
    assert_values(y, (float[]){2, 5, 8}, 0, 0);
}
END_TEST

TEST(slice_along_an_inner_dim)
{
    /* [[0..4], [5..9]] columns 1 and 3 */
    cf_tensor *y = cf_slice(arange_as(CF_SHAPE(2, 5)), 1, 1, 5, 2);
    assert_shape(y, CF_SHAPE(2, 2));
    assert_values(y, (float[]){1, 3, 6, 8}, 0, 0);
}
END_TEST

TEST(slice_with_start_past_end_is_empty)
{
    cf_tensor *y = cf_slice(cf_arange(0, 10, 1), 0, 7, 3, 1);
    assert_shape(y, CF_SHAPE(0));
}
END_TEST

TEST(slice_with_zero_step_is_an_error)
{
    ck_assert_ptr_null(cf_slice(cf_arange(0, 10, 1), 0, 0, 10, 0));
    assert_error(CF_ERR_ARG, "cf_slice", NULL);
}
END_TEST

TEST(expand_gradient_counts_the_copies)
{
    cf_tensor *x = cf_requires_grad(cf_zeros(CF_SHAPE(3, 1)), true);
    cf_backward(cf_sum_all(cf_expand(x, CF_SHAPE(2, 3, 4))));
    assert_values(x->grad, (float[]){8, 8, 8}, 0, 0);
}
END_TEST

TEST(expand_repeats_without_copying)
{
    cf_tensor *x = cf_from_array((float[]){1, 2}, CF_SHAPE(2, 1));
    cf_tensor *y = cf_expand(x, CF_SHAPE(2, -1, 3));
    assert_shape(y, CF_SHAPE(2, 2, 3));
    ck_assert_ptr_eq(y->data, x->data);
    assert_values(y, (float[]){1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2}, 0, 0);
}
END_TEST

TEST(expand_of_a_non_one_size_is_an_error)
{
    ck_assert_ptr_null(cf_expand(cf_zeros(CF_SHAPE(3, 2)), CF_SHAPE(3, 4)));
    assert_error(CF_ERR_SHAPE, "cf_expand", "[3, 2]", "[3, 4]", NULL);
}
END_TEST

TEST(squeeze_removes_only_a_size_one_dim)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 1, 3));
    assert_shape(cf_squeeze(x, 1), CF_SHAPE(2, 3));
    assert_shape(cf_squeeze(x, -2), CF_SHAPE(2, 3));
    assert_shape(cf_squeeze(x, 0), CF_SHAPE(2, 1, 3));
}
END_TEST

TEST(unsqueeze_inserts_a_size_one_dim)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    assert_shape(cf_unsqueeze(x, 0), CF_SHAPE(1, 2, 3));
    assert_shape(cf_unsqueeze(x, 1), CF_SHAPE(2, 1, 3));
    assert_shape(cf_unsqueeze(x, -1), CF_SHAPE(2, 3, 1));
    assert_values(cf_unsqueeze(x, 1), (float[]){0, 1, 2, 3, 4, 5}, 0, 0);
}
END_TEST

TEST(contiguous_of_a_transposed_tensor_lays_it_out_row_major)
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

TEST(contiguous_of_a_contiguous_tensor_is_itself)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    ck_assert_ptr_eq(cf_contiguous(x), x);
}
END_TEST

TEST(clone_copies_the_storage)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    cf_tensor *y = cf_clone(x);
    ck_assert_ptr_ne(y->data, x->data);
    ck_assert(cf_is_contiguous(y));
    cf_set(x, CF_IDX(0, 0), 42);
    assert_values(y, (float[]){0, 1, 2, 3, 4, 5}, 0, 0);
}
END_TEST

TEST(a_view_gradient_flows_back_through_a_chain_of_views)
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

/* ---- storage: views share it, copies happen only when needed ---- */

TEST(views_share_storage_with_their_source)
{
    cf_tensor *t = cf_arange(0, 6, 1);
    cf_tensor *v = cf_view(t, CF_SHAPE(2, 3));
    cf_tensor *p = cf_transpose(v, 0, 1);
    cf_set(p, CF_IDX(2, 1), 50);
    ck_assert_float_eq(cf_get(t, CF_IDX(5)), 50);
    ck_assert_ptr_eq(v->data, t->data);
}
END_TEST

TEST(transpose_swaps_strides_without_copying)
{
    cf_tensor *t = cf_zeros(CF_SHAPE(2, 3));
    cf_tensor *tt = cf_transpose(t, 0, 1);
    ck_assert_int_eq(tt->shape[0], 3);
    ck_assert_int_eq(tt->stride[0], 1);
    ck_assert_int_eq(tt->stride[1], 3);
    ck_assert(!cf_is_contiguous(tt));
}
END_TEST

TEST(view_of_a_transposed_tensor_needs_reshape)
{
    cf_tensor *tt = cf_transpose(cf_view(cf_arange(0, 6, 1), CF_SHAPE(2, 3)), 0, 1);
    ck_assert_ptr_null(cf_view(tt, CF_SHAPE(6)));
    assert_error(CF_ERR_SHAPE, "cf_view", "[3, 2]", "[6]", "cf_reshape", NULL);
    cf_tensor *r = cf_reshape(tt, CF_SHAPE(6));
    assert_values(r, (float[]){0, 3, 1, 4, 2, 5}, 0, 0);
}
END_TEST

TEST(view_infers_one_size)
{
    cf_tensor *v = cf_view(cf_zeros(CF_SHAPE(4, 6)), CF_SHAPE(-1, 3));
    ck_assert_int_eq(v->shape[0], 8);
    ck_assert_ptr_null(cf_view(cf_zeros(CF_SHAPE(4, 6)), CF_SHAPE(-1, 5)));
    assert_error(CF_ERR_SHAPE, "[4, 6]", "[-1, 5]", NULL);
}
END_TEST

TEST(slice_with_step_picks_every_other_element)
{
    cf_tensor *t = cf_arange(0, 10, 1);
    assert_values(cf_slice(t, 0, 1, 8, 2), (float[]){1, 3, 5, 7}, 0, 0);
    assert_values(cf_slice(t, 0, -3, 100, 1), (float[]){7, 8, 9}, 0, 0);
    ck_assert_int_eq(cf_numel(cf_slice(t, 0, 5, 2, 1)), 0);
}
END_TEST

TEST(expand_broadcasts_with_zero_stride)
{
    cf_tensor *e = cf_expand(cf_arange(0, 3, 1), CF_SHAPE(2, 3));
    ck_assert_int_eq(e->stride[0], 0);
    assert_values(e, (float[]){0, 1, 2, 0, 1, 2}, 0, 0);
    ck_assert_ptr_null(cf_expand(cf_zeros(CF_SHAPE(2)), CF_SHAPE(3)));
    assert_error(CF_ERR_SHAPE, "cf_expand", "[2]", "[3]", NULL);
}
END_TEST

TEST(slice_with_extreme_bounds_and_step_does_not_overflow)
{
    cf_tensor *t = cf_arange(0, 4, 1);
    cf_tensor *s = cf_slice(t, 0, INT64_MIN, INT64_MAX, INT64_MAX);
    ck_assert_int_eq(s->shape[0], 1);
    assert_values(s, (float[]){0}, 0, 0);
    assert_values(cf_slice(t, 0, 1, INT64_MAX, INT64_MAX - 1), (float[]){1}, 0, 0);
    ck_assert_int_eq(cf_numel(cf_slice(t, 0, INT64_MAX, INT64_MIN, 1)), 0);
}
END_TEST

TEST(expand_or_view_to_more_than_2_pow_60_elements_is_refused)
{
    int64_t big = (int64_t)1 << 32;
    ck_assert_ptr_null(cf_expand(cf_zeros(CF_SHAPE(1, 1)), CF_SHAPE(big, big)));
    assert_error(CF_ERR_DIM, "cf_expand", "too large", NULL);
    ck_assert_ptr_null(cf_view(cf_zeros(CF_SHAPE(0)), CF_SHAPE(0, INT64_MAX, INT64_MAX)));
    assert_error(CF_ERR_SHAPE, "cf_view", NULL);
}
END_TEST

TEST(squeeze_and_unsqueeze_add_and_remove_unit_dims)
{
    cf_tensor *t = cf_zeros(CF_SHAPE(2, 3));
    cf_tensor *u = cf_unsqueeze(t, 1);
    ck_assert_int_eq(u->ndim, 3);
    ck_assert_int_eq(u->shape[1], 1);
    cf_tensor *s = cf_squeeze(u, 1);
    ck_assert(cf_same_shape(s, t));
    ck_assert_int_eq(cf_squeeze(t, 0)->ndim, 2); /* size 2: unchanged, like torch */
    ck_assert_int_eq(cf_unsqueeze(t, -1)->shape[2], 1);
}
END_TEST

TEST(permute_rejects_a_repeated_dim)
{
    ck_assert_ptr_null(cf_permute(cf_zeros(CF_SHAPE(2, 3)), (int[]){0, 0}));
    assert_error(CF_ERR_DIM, "cf_permute", NULL);
}
END_TEST

TEST(contiguous_copies_only_when_needed)
{
    cf_tensor *t = cf_zeros(CF_SHAPE(2, 3));
    ck_assert_ptr_eq(cf_contiguous(t), t);
    cf_tensor *c = cf_contiguous(cf_transpose(t, 0, 1));
    ck_assert(cf_is_contiguous(c));
    ck_assert_ptr_ne(c->data, t->data);
}
END_TEST

TEST(dim_out_of_range_names_the_op)
{
    ck_assert_ptr_null(cf_transpose(cf_zeros(CF_SHAPE(2, 3)), 0, 2));
    assert_error(CF_ERR_DIM, "cf_transpose", "dim 2", NULL);
}
END_TEST
