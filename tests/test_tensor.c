/* Tensors (tensor/tensor.c): creation, dtypes, element access, heap tensors
 * and the errors of bad shapes, sizes and indices. */
#include "tests/util.h"

TEST(zeros_ones_and_full_fill_every_element)
{
    assert_values(cf_zeros(CF_SHAPE(2, 2)), (float[]){0, 0, 0, 0}, 0, 0);
    assert_values(cf_ones(CF_SHAPE(3)), (float[]){1, 1, 1}, 0, 0);
    assert_values(cf_full(2.5f, CF_SHAPE(1, 2)), (float[]){2.5f, 2.5f}, 0, 0);
}
END_TEST

TEST(arange_counts_up_and_down_like_torch)
{
    cf_tensor *up = cf_arange(0, 5, 2);
    ck_assert_int_eq(up->shape[0], 3);
    assert_values(up, (float[]){0, 2, 4}, 0, 0);
    assert_values(cf_arange(3, 0, -1), (float[]){3, 2, 1}, 0, 0);
    ck_assert_int_eq(cf_numel(cf_arange(2, 2, 1)), 0);
}
END_TEST

TEST(from_array_copies_the_data)
{
    float src[] = {1, 2, 3, 4, 5, 6};
    cf_tensor *t = cf_from_array(src, CF_SHAPE(2, 3));
    src[0] = 100;
    ck_assert_float_eq(cf_get(t, CF_IDX(0, 0)), 1);
    ck_assert_float_eq(cf_get(t, CF_IDX(1, 2)), 6);
    ck_assert(cf_is_contiguous(t));
}
END_TEST

TEST(int_tensors_hold_indices)
{
    cf_tensor *t = cf_from_ints((int32_t[]){3, -1, 7}, CF_SHAPE(3));
    ck_assert_int_eq(t->dtype, CF_I32);
    ck_assert_int_eq(((int32_t *)t->data)[2], 7);
    ck_assert_float_eq(cf_get(t, CF_IDX(1)), -1);
}
END_TEST

TEST(scalar_has_zero_dims_and_one_element)
{
    cf_tensor *s = cf_scalar(4);
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_int_eq(cf_numel(s), 1);
    ck_assert_float_eq(cf_item(s), 4);
}
END_TEST

TEST(item_of_a_larger_tensor_is_an_error)
{
    float v = cf_item(cf_zeros(CF_SHAPE(2)));
    ck_assert(v != v);
    assert_error(CF_ERR_SHAPE, "cf_item", "[2]", NULL);
}
END_TEST

TEST(heap_tensor_outlives_arena_reset)
{
    cf_tensor *p = cf_tensor_new(CF_F32, CF_SHAPE(4));
    cf_fill(p, 3);
    cf_arena_reset(cf_arena_current());
    assert_values(p, (float[]){3, 3, 3, 3}, 0, 0);
    ck_assert(p->flags & CF_HEAP);
    cf_tensor_free(p);
    cf_tensor_free(NULL);
}
END_TEST

TEST(too_many_dims_is_an_error)
{
    int64_t shape[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    ck_assert_ptr_null(cf_zeros(9, shape));
    assert_error(CF_ERR_DIM, "cf_zeros", "9 dims", NULL);
}
END_TEST

TEST(negative_size_is_an_error)
{
    ck_assert_ptr_null(cf_zeros(CF_SHAPE(2, -1)));
    assert_error(CF_ERR_DIM, "negative size", "[2, -1]", NULL);
}
END_TEST

TEST(a_shape_of_more_than_2_pow_60_elements_is_refused)
{
    int64_t big = (int64_t)1 << 32;
    ck_assert_ptr_null(cf_tensor_new(CF_F32, CF_SHAPE(big, big)));
    assert_error(CF_ERR_DIM, "cf_tensor_new", "[4294967296, 4294967296]", "too large", NULL);
    ck_assert_ptr_null(cf_zeros(CF_SHAPE(INT64_MAX, 2)));
    assert_error(CF_ERR_DIM, "cf_zeros", "too large", NULL);
    /* A zero size does not excuse the others: strides multiply them. */
    ck_assert_ptr_null(cf_empty(CF_F32, CF_SHAPE(0, big, big)));
    assert_error(CF_ERR_DIM, "cf_empty", "too large", NULL);
}
END_TEST

TEST(a_null_shape_or_data_is_an_argument_error)
{
    ck_assert_ptr_null(cf_zeros(2, NULL));
    assert_error(CF_ERR_ARG, "cf_zeros", "shape is NULL", NULL);
    ck_assert_ptr_null(cf_from_array(NULL, CF_SHAPE(2)));
    assert_error(CF_ERR_ARG, "cf_from_array", "data is NULL", NULL);
    ck_assert_ptr_null(cf_from_ints(NULL, CF_SHAPE(1)));
    assert_error(CF_ERR_ARG, "cf_from_ints", "data is NULL", NULL);
    ck_assert_int_eq(cf_numel(cf_from_array(NULL, CF_SHAPE(0))), 0);
}
END_TEST

TEST(an_invalid_dtype_is_refused)
{
    ck_assert_ptr_null(cf_empty((cf_dtype)7, CF_SHAPE(2)));
    assert_error(CF_ERR_DTYPE, "cf_empty", "invalid dtype 7", NULL);
    ck_assert_ptr_null(cf_tensor_new((cf_dtype)-1, CF_SHAPE(2)));
    assert_error(CF_ERR_DTYPE, "cf_tensor_new", "invalid dtype -1", NULL);
}
END_TEST

TEST(item_of_null_is_an_argument_error)
{
    ck_assert(isnan(cf_item(NULL)));
    assert_error(CF_ERR_ARG, "cf_item", "NULL", NULL);
}
END_TEST

TEST(arange_of_too_many_elements_says_too_large)
{
    ck_assert_ptr_null(cf_arange(0, 1e30f, 1));
    assert_error(CF_ERR_ARG, "cf_arange", "too large", NULL);
}
END_TEST

TEST(get_and_set_out_of_range_are_index_errors)
{
    cf_tensor *t = cf_arange(0, 6, 1);
    ck_assert(isnan(cf_get(t, CF_IDX(6))));
    assert_error(CF_ERR_INDEX, "cf_get", "[6]", "[6]", NULL);
    ck_assert(isnan(cf_get(t, CF_IDX(-1))));
    assert_error(CF_ERR_INDEX, "cf_get", "[-1]", NULL);
    cf_set(t, CF_IDX(INT64_MAX), 5);
    assert_error(CF_ERR_INDEX, "cf_set", NULL);
    assert_values(t, (float[]){0, 1, 2, 3, 4, 5}, 0, 0);
    ck_assert(isnan(cf_get(NULL, CF_IDX(0))));
    assert_error(CF_ERR_ARG, "cf_get", "NULL", NULL);
    ck_assert(isnan(cf_get(t, NULL)));
    assert_error(CF_ERR_ARG, "cf_get", "idx is NULL", NULL);
}
END_TEST
