/* Tensors: creation, views, element access, arenas, random numbers,
 * printing and errors of the tensor layer. */
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- creation ---- */

START_TEST(zeros_ones_and_full_fill_every_element)
{
    assert_values(cf_zeros(CF_SHAPE(2, 2)), (float[]){0, 0, 0, 0}, 0, 0);
    assert_values(cf_ones(CF_SHAPE(3)), (float[]){1, 1, 1}, 0, 0);
    assert_values(cf_full(2.5f, CF_SHAPE(1, 2)), (float[]){2.5f, 2.5f}, 0, 0);
}
END_TEST

START_TEST(arange_counts_up_and_down_like_torch)
{
    cf_tensor *up = cf_arange(0, 5, 2);
    ck_assert_int_eq(up->shape[0], 3);
    assert_values(up, (float[]){0, 2, 4}, 0, 0);
    assert_values(cf_arange(3, 0, -1), (float[]){3, 2, 1}, 0, 0);
    ck_assert_int_eq(cf_numel(cf_arange(2, 2, 1)), 0);
}
END_TEST

START_TEST(from_array_copies_the_data)
{
    float src[] = {1, 2, 3, 4, 5, 6};
    cf_tensor *t = cf_from_array(src, CF_SHAPE(2, 3));
    src[0] = 100;
    ck_assert_float_eq(cf_get(t, CF_IDX(0, 0)), 1);
    ck_assert_float_eq(cf_get(t, CF_IDX(1, 2)), 6);
    ck_assert(cf_is_contiguous(t));
}
END_TEST

START_TEST(int_tensors_hold_indices)
{
    cf_tensor *t = cf_from_ints((int32_t[]){3, -1, 7}, CF_SHAPE(3));
    ck_assert_int_eq(t->dtype, CF_I32);
    ck_assert_int_eq(((int32_t *)t->data)[2], 7);
    ck_assert_float_eq(cf_get(t, CF_IDX(1)), -1);
}
END_TEST

START_TEST(scalar_has_zero_dims_and_one_element)
{
    cf_tensor *s = cf_scalar(4);
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_int_eq(cf_numel(s), 1);
    ck_assert_float_eq(cf_item(s), 4);
}
END_TEST

START_TEST(item_of_a_larger_tensor_is_an_error)
{
    float v = cf_item(cf_zeros(CF_SHAPE(2)));
    ck_assert(v != v);
    assert_error(CF_ERR_SHAPE, "cf_item", "[2]", NULL);
}
END_TEST

START_TEST(heap_tensor_outlives_arena_reset)
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

START_TEST(too_many_dims_is_an_error)
{
    int64_t shape[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    ck_assert_ptr_null(cf_zeros(9, shape));
    assert_error(CF_ERR_DIM, "cf_zeros", "9 dims", NULL);
}
END_TEST

START_TEST(negative_size_is_an_error)
{
    ck_assert_ptr_null(cf_zeros(CF_SHAPE(2, -1)));
    assert_error(CF_ERR_DIM, "negative size", "[2, -1]", NULL);
}
END_TEST

START_TEST(a_shape_of_more_than_2_pow_60_elements_is_refused)
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

START_TEST(a_null_shape_or_data_is_an_argument_error)
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

START_TEST(an_invalid_dtype_is_refused)
{
    ck_assert_ptr_null(cf_empty((cf_dtype)7, CF_SHAPE(2)));
    assert_error(CF_ERR_DTYPE, "cf_empty", "invalid dtype 7", NULL);
    ck_assert_ptr_null(cf_tensor_new((cf_dtype)-1, CF_SHAPE(2)));
    assert_error(CF_ERR_DTYPE, "cf_tensor_new", "invalid dtype -1", NULL);
}
END_TEST

START_TEST(item_of_null_is_an_argument_error)
{
    ck_assert(isnan(cf_item(NULL)));
    assert_error(CF_ERR_ARG, "cf_item", "NULL", NULL);
}
END_TEST

START_TEST(arange_of_too_many_elements_says_too_large)
{
    ck_assert_ptr_null(cf_arange(0, 1e30f, 1));
    assert_error(CF_ERR_ARG, "cf_arange", "too large", NULL);
}
END_TEST

START_TEST(get_and_set_out_of_range_are_index_errors)
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

/* ---- views ---- */

START_TEST(views_share_storage_with_their_source)
{
    cf_tensor *t = cf_arange(0, 6, 1);
    cf_tensor *v = cf_view(t, CF_SHAPE(2, 3));
    cf_tensor *p = cf_transpose(v, 0, 1);
    cf_set(p, CF_IDX(2, 1), 50);
    ck_assert_float_eq(cf_get(t, CF_IDX(5)), 50);
    ck_assert_ptr_eq(v->data, t->data);
}
END_TEST

START_TEST(transpose_swaps_strides_without_copying)
{
    cf_tensor *t = cf_zeros(CF_SHAPE(2, 3));
    cf_tensor *tt = cf_transpose(t, 0, 1);
    ck_assert_int_eq(tt->shape[0], 3);
    ck_assert_int_eq(tt->stride[0], 1);
    ck_assert_int_eq(tt->stride[1], 3);
    ck_assert(!cf_is_contiguous(tt));
}
END_TEST

START_TEST(view_of_a_transposed_tensor_needs_reshape)
{
    cf_tensor *tt = cf_transpose(cf_view(cf_arange(0, 6, 1), CF_SHAPE(2, 3)), 0, 1);
    ck_assert_ptr_null(cf_view(tt, CF_SHAPE(6)));
    assert_error(CF_ERR_SHAPE, "cf_view", "[3, 2]", "[6]", "cf_reshape", NULL);
    cf_tensor *r = cf_reshape(tt, CF_SHAPE(6));
    assert_values(r, (float[]){0, 3, 1, 4, 2, 5}, 0, 0);
}
END_TEST

START_TEST(view_infers_one_size)
{
    cf_tensor *v = cf_view(cf_zeros(CF_SHAPE(4, 6)), CF_SHAPE(-1, 3));
    ck_assert_int_eq(v->shape[0], 8);
    ck_assert_ptr_null(cf_view(cf_zeros(CF_SHAPE(4, 6)), CF_SHAPE(-1, 5)));
    assert_error(CF_ERR_SHAPE, "[4, 6]", "[-1, 5]", NULL);
}
END_TEST

START_TEST(slice_with_step_picks_every_other_element)
{
    cf_tensor *t = cf_arange(0, 10, 1);
    assert_values(cf_slice(t, 0, 1, 8, 2), (float[]){1, 3, 5, 7}, 0, 0);
    assert_values(cf_slice(t, 0, -3, 100, 1), (float[]){7, 8, 9}, 0, 0);
    ck_assert_int_eq(cf_numel(cf_slice(t, 0, 5, 2, 1)), 0);
}
END_TEST

START_TEST(slice_with_extreme_bounds_and_step_does_not_overflow)
{
    cf_tensor *t = cf_arange(0, 4, 1);
    cf_tensor *s = cf_slice(t, 0, INT64_MIN, INT64_MAX, INT64_MAX);
    ck_assert_int_eq(s->shape[0], 1);
    assert_values(s, (float[]){0}, 0, 0);
    assert_values(cf_slice(t, 0, 1, INT64_MAX, INT64_MAX - 1), (float[]){1}, 0, 0);
    ck_assert_int_eq(cf_numel(cf_slice(t, 0, INT64_MAX, INT64_MIN, 1)), 0);
}
END_TEST

START_TEST(expand_or_view_to_more_than_2_pow_60_elements_is_refused)
{
    int64_t big = (int64_t)1 << 32;
    ck_assert_ptr_null(cf_expand(cf_zeros(CF_SHAPE(1, 1)), CF_SHAPE(big, big)));
    assert_error(CF_ERR_DIM, "cf_expand", "too large", NULL);
    ck_assert_ptr_null(cf_view(cf_zeros(CF_SHAPE(0)), CF_SHAPE(0, INT64_MAX, INT64_MAX)));
    assert_error(CF_ERR_SHAPE, "cf_view", NULL);
}
END_TEST

START_TEST(expand_broadcasts_with_zero_stride)
{
    cf_tensor *e = cf_expand(cf_arange(0, 3, 1), CF_SHAPE(2, 3));
    ck_assert_int_eq(e->stride[0], 0);
    assert_values(e, (float[]){0, 1, 2, 0, 1, 2}, 0, 0);
    ck_assert_ptr_null(cf_expand(cf_zeros(CF_SHAPE(2)), CF_SHAPE(3)));
    assert_error(CF_ERR_SHAPE, "cf_expand", "[2]", "[3]", NULL);
}
END_TEST

START_TEST(squeeze_and_unsqueeze_add_and_remove_unit_dims)
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

START_TEST(permute_rejects_a_repeated_dim)
{
    ck_assert_ptr_null(cf_permute(cf_zeros(CF_SHAPE(2, 3)), (int[]){0, 0}));
    assert_error(CF_ERR_DIM, "cf_permute", NULL);
}
END_TEST

START_TEST(contiguous_copies_only_when_needed)
{
    cf_tensor *t = cf_zeros(CF_SHAPE(2, 3));
    ck_assert_ptr_eq(cf_contiguous(t), t);
    cf_tensor *c = cf_contiguous(cf_transpose(t, 0, 1));
    ck_assert(cf_is_contiguous(c));
    ck_assert_ptr_ne(c->data, t->data);
}
END_TEST

START_TEST(dim_out_of_range_names_the_op)
{
    ck_assert_ptr_null(cf_transpose(cf_zeros(CF_SHAPE(2, 3)), 0, 2));
    assert_error(CF_ERR_DIM, "cf_transpose", "dim 2", NULL);
}
END_TEST

/* ---- arenas ---- */

START_TEST(arena_reuses_its_memory_after_the_first_step)
{
    cf_arena *a = cf_arena_new(1 << 16);
    cf_arena *prev = cf_arena_use(a);
    size_t cap = 0;
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < 10; i++)
            ck_assert_ptr_nonnull(cf_zeros(CF_SHAPE(64, 64))); /* 16 KiB each */
        if (step == 1)
            cap = cf_arena_capacity(a);
        if (step == 2)
            ck_assert_uint_eq(cf_arena_capacity(a), cap);
        cf_arena_reset(a);
    }
    ck_assert_uint_ge(cf_arena_high_water(a), 10 * 64 * 64 * sizeof(float));
    ck_assert_uint_eq(cf_arena_used(a), 0);
    cf_arena_use(prev);
    cf_arena_free(a);
}
END_TEST

START_TEST(arena_grows_past_its_chunk_size)
{
    cf_arena *a = cf_arena_new(1024);
    cf_arena *prev = cf_arena_use(a);
    cf_tensor *big = cf_zeros(CF_SHAPE(1000, 100));
    ck_assert_ptr_nonnull(big);
    ck_assert_uint_ge(cf_arena_capacity(a), 400000);
    cf_arena_use(prev);
    cf_arena_free(a);
}
END_TEST

START_TEST(ops_without_an_arena_report_it)
{
    cf_arena *prev = cf_arena_use(NULL);
    ck_assert_ptr_null(cf_zeros(CF_SHAPE(2)));
    cf_arena_use(prev);
    assert_error(CF_ERR_NO_ARENA, "cf_zeros", "cf_arena_use", NULL);
}
END_TEST

START_TEST(arena_alloc_is_aligned)
{
    char *p = cf_arena_alloc(3), *q = cf_arena_alloc(5);
    ck_assert_uint_eq((uintptr_t)p % 64, 0);
    ck_assert_uint_eq((uintptr_t)q % 64, 0);
}
END_TEST

/* ---- random numbers ---- */

START_TEST(same_seed_gives_same_numbers)
{
    cf_rng a, b;
    cf_rng_init(&a, 42);
    cf_rng_init(&b, 42);
    assert_close(cf_normal(&a, 0, 1, CF_SHAPE(100)), cf_normal(&b, 0, 1, CF_SHAPE(100)), 0, 0);
}
END_TEST

/* Random123's known answer for Philox4x32-10 with counter and key zero:
 * the words 6627e8d5 e169c58d bc57ac4c 9b00dbd8, each giving a uniform
 * from its top 24 bits. */
START_TEST(first_draws_of_seed_zero_are_philoxs_known_answer)
{
    static const uint32_t words[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    cf_rng g;
    cf_rng_init(&g, 0);
    const float *u = cf_uniform(&g, 0, 1, CF_SHAPE(4))->data;
    for (int j = 0; j < 4; j++)
        ck_assert_float_eq(u[j], (float)(words[j] >> 8) / 16777216.0f);
}
END_TEST

START_TEST(successive_draws_differ)
{
    cf_rng g;
    cf_rng_init(&g, 1);
    cf_tensor *x = cf_uniform(&g, 0, 1, CF_SHAPE(8)), *y = cf_uniform(&g, 0, 1, CF_SHAPE(8));
    ck_assert(memcmp(x->data, y->data, 8 * sizeof(float)) != 0);
}
END_TEST

START_TEST(random_numbers_do_not_depend_on_thread_count)
{
    int nt = cf_get_num_threads();
    cf_rng g;
    cf_set_num_threads(1);
    cf_rng_init(&g, 7);
    cf_tensor *x = cf_normal(&g, 0, 1, CF_SHAPE(300001));
    cf_set_num_threads(4);
    cf_rng_init(&g, 7);
    cf_tensor *y = cf_normal(&g, 0, 1, CF_SHAPE(300001));
    cf_set_num_threads(nt);
    ck_assert(memcmp(x->data, y->data, 300001 * sizeof(float)) == 0);
}
END_TEST

START_TEST(normal_has_the_requested_moments)
{
    cf_rng g;
    cf_rng_init(&g, 3);
    cf_tensor *x = cf_normal(&g, 2, 3, CF_SHAPE(200000));
    float mean = cf_item(cf_mean_all(x));
    float var = cf_item(cf_mean_all(cf_square(cf_add_scalar(x, -mean))));
    ck_assert_float_eq_tol(mean, 2, 0.03);
    ck_assert_float_eq_tol(var, 9, 0.15);
}
END_TEST

START_TEST(uniform_stays_in_range_and_bernoulli_hits_its_rate)
{
    cf_rng g;
    cf_rng_init(&g, 5);
    cf_tensor *u = cf_uniform(&g, -2, 3, CF_SHAPE(10000));
    float *d = u->data;
    for (int i = 0; i < 10000; i++)
        ck_assert(d[i] >= -2 && d[i] < 3);
    ck_assert_float_eq_tol(cf_item(cf_mean_all(cf_bernoulli(&g, 0.3f, CF_SHAPE(100000)))), 0.3,
                           0.01);
    ck_assert_ptr_null(cf_bernoulli(&g, 1.5f, CF_SHAPE(2)));
    assert_error(CF_ERR_ARG, "cf_bernoulli", NULL);
}
END_TEST

/* ---- printing ---- */

START_TEST(print_truncates_long_dims)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cf_fprint(f, cf_arange(0, 100, 1));
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "shape=[100]"));
    ck_assert_ptr_nonnull(strstr(buf, "float32"));
    ck_assert_ptr_nonnull(strstr(buf, "[0, 1, 2, ..., 97, 98, 99]"));
    free(buf);
}
END_TEST

/* ---- errors ---- */

static int handler_calls;
static void count_errors(cf_status s, const char *msg, void *ud)
{
    (void)s, (void)msg, (void)ud;
    handler_calls++;
}

START_TEST(error_handler_sees_the_first_error_only)
{
    cf_set_error_handler(count_errors, NULL);
    cf_zeros(CF_SHAPE(-1));
    cf_zeros(CF_SHAPE(-2));
    cf_set_error_handler(NULL, NULL);
    ck_assert_int_eq(handler_calls, 1);
    assert_error(CF_ERR_DIM, "[-1]", NULL);
}
END_TEST

/* A status function of the user's, written as the library's are. */
static cf_status user_call(bool fail)
{
    cf_error_frame fr;
    cf_error_enter(&fr);
    if (fail)
        cf_zeros(CF_SHAPE(-1));
    return cf_error_leave(&fr, fail ? CF_ERR_DIM : CF_OK);
}

START_TEST(error_frames_report_the_call_not_an_older_error)
{
    cf_item(cf_zeros(CF_SHAPE(2))); /* an older error, left recorded */
    ck_assert_int_eq(user_call(false), CF_OK);
    assert_error(CF_ERR_SHAPE, "cf_item", NULL);
    cf_item(cf_zeros(CF_SHAPE(2)));
    ck_assert_int_eq(user_call(true), CF_ERR_DIM);
    assert_error(CF_ERR_DIM, "negative size", NULL);
}
END_TEST

START_TEST(status_strings_describe_each_status)
{
    ck_assert_str_eq(cf_status_str(CF_OK), "ok");
    ck_assert_str_eq(cf_status_str(CF_ERR_SHAPE), "shape mismatch");
    ck_assert_str_eq(cf_status_str(CF_ERR_FORMAT), "bad file format");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase("creation");
    tcase_add_test(tc, zeros_ones_and_full_fill_every_element);
    tcase_add_test(tc, arange_counts_up_and_down_like_torch);
    tcase_add_test(tc, from_array_copies_the_data);
    tcase_add_test(tc, int_tensors_hold_indices);
    tcase_add_test(tc, scalar_has_zero_dims_and_one_element);
    tcase_add_test(tc, item_of_a_larger_tensor_is_an_error);
    tcase_add_test(tc, heap_tensor_outlives_arena_reset);
    tcase_add_test(tc, too_many_dims_is_an_error);
    tcase_add_test(tc, negative_size_is_an_error);
    tcase_add_test(tc, a_shape_of_more_than_2_pow_60_elements_is_refused);
    tcase_add_test(tc, a_null_shape_or_data_is_an_argument_error);
    tcase_add_test(tc, an_invalid_dtype_is_refused);
    tcase_add_test(tc, item_of_null_is_an_argument_error);
    tcase_add_test(tc, arange_of_too_many_elements_says_too_large);
    tcase_add_test(tc, get_and_set_out_of_range_are_index_errors);
    suite_add_tcase(s, tc);

    tc = tcase("views");
    tcase_add_test(tc, views_share_storage_with_their_source);
    tcase_add_test(tc, transpose_swaps_strides_without_copying);
    tcase_add_test(tc, view_of_a_transposed_tensor_needs_reshape);
    tcase_add_test(tc, view_infers_one_size);
    tcase_add_test(tc, slice_with_step_picks_every_other_element);
    tcase_add_test(tc, expand_broadcasts_with_zero_stride);
    tcase_add_test(tc, slice_with_extreme_bounds_and_step_does_not_overflow);
    tcase_add_test(tc, expand_or_view_to_more_than_2_pow_60_elements_is_refused);
    tcase_add_test(tc, squeeze_and_unsqueeze_add_and_remove_unit_dims);
    tcase_add_test(tc, permute_rejects_a_repeated_dim);
    tcase_add_test(tc, contiguous_copies_only_when_needed);
    tcase_add_test(tc, dim_out_of_range_names_the_op);
    suite_add_tcase(s, tc);

    tc = tcase("arena");
    tcase_add_test(tc, arena_reuses_its_memory_after_the_first_step);
    tcase_add_test(tc, arena_grows_past_its_chunk_size);
    tcase_add_test(tc, ops_without_an_arena_report_it);
    tcase_add_test(tc, arena_alloc_is_aligned);
    suite_add_tcase(s, tc);

    tc = tcase("random");
    tcase_add_test(tc, same_seed_gives_same_numbers);
    tcase_add_test(tc, first_draws_of_seed_zero_are_philoxs_known_answer);
    tcase_add_test(tc, successive_draws_differ);
    tcase_add_test(tc, random_numbers_do_not_depend_on_thread_count);
    tcase_add_test(tc, normal_has_the_requested_moments);
    tcase_add_test(tc, uniform_stays_in_range_and_bernoulli_hits_its_rate);
    suite_add_tcase(s, tc);

    tc = tcase("print_and_errors");
    tcase_add_test(tc, print_truncates_long_dims);
    tcase_add_test(tc, error_handler_sees_the_first_error_only);
    tcase_add_test(tc, status_strings_describe_each_status);
    tcase_add_test(tc, error_frames_report_the_call_not_an_older_error);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
