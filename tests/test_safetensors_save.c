/* tensor/safetensors_save.c: what cf_safetensors_save writes (round trips
 * of every dtype, order, strided views, padding and alignment, large and
 * empty files, metadata) and the arguments it refuses. */
#define _POSIX_C_SOURCE 200809L

#include "tests/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

SCRATCH_TEST(saved_tensors_load_with_the_same_dtypes_shapes_and_values)
{
    const char *path = scratch_path("a.safetensors");
    cf_tensor *f32 = cf_from_array((float[]){1.5f, -2, 3e-38f, 1e30f, 0, -0.0f}, CF_SHAPE(2, 3));
    cf_tensor *i32 = cf_from_ints((int32_t[]){INT32_MIN, -1, 0, INT32_MAX}, CF_SHAPE(2, 1, 2));
    cf_tensor *b = cf_empty(CF_BOOL, CF_SHAPE(5));
    memcpy(b->data, (uint8_t[]){1, 0, 0, 1, 1}, 5);
    cf_tensor *s = cf_scalar(42.25f);
    cf_tensor *e = cf_zeros(CF_SHAPE(0, 3));
    cf_tensor *ts[] = {f32, i32, b, s, e};
    const char *names[] = {"f32", "i32", "mask", "scalar", "empty"};
    ck_assert_int_eq(cf_safetensors_save(path, 5, names, ts, NULL), CF_OK);

    cf_safetensors *f = open_safetensors(path);
    ck_assert_int_eq(cf_safetensors_count(f), 5);
    cf_tensor *g = cf_safetensors_get(f, "f32");
    ck_assert_int_eq(g->dtype, CF_F32);
    ck_assert(same_values(g, f32));
    g = cf_safetensors_get(f, "i32");
    ck_assert_int_eq(g->dtype, CF_I32);
    ck_assert(cf_same_shape(g, i32));
    ck_assert_mem_eq(g->data, i32->data, 4 * sizeof(int32_t));
    g = cf_safetensors_get(f, "mask");
    ck_assert_int_eq(g->dtype, CF_BOOL);
    ck_assert_mem_eq(g->data, b->data, 5);
    g = cf_safetensors_get(f, "scalar");
    ck_assert_int_eq(g->ndim, 0);
    ck_assert_float_eq(cf_item(g), 42.25f);
    g = cf_safetensors_get(f, "empty");
    ck_assert(cf_same_shape(g, e));
    ck_assert(!(g->flags & CF_REQUIRES_GRAD));
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(names_come_back_in_the_order_they_were_saved)
{
    const char *path = scratch_path("order.safetensors");
    cf_tensor *t = cf_ones(CF_SHAPE(1));
    cf_tensor *ts[] = {t, t, t};
    const char *names[] = {"zeta", "alpha", "mid"};
    ck_assert_int_eq(cf_safetensors_save(path, 3, names, ts, NULL), CF_OK);
    cf_safetensors *f = open_safetensors(path);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(cf_safetensors_name(f, i), names[i]);
    ck_assert_ptr_null(cf_safetensors_name(f, 3));
    ck_assert_ptr_null(cf_safetensors_name(f, -1));
    ck_assert_ptr_null(cf_safetensors_name(NULL, 0));
    ck_assert_int_eq(cf_safetensors_count(NULL), 0);
    cf_safetensors_close(f);
    cf_safetensors_close(NULL);
}
END_TEST

SCRATCH_TEST(strided_views_are_written_row_major)
{
    const char *path = scratch_path("t.safetensors");
    cf_tensor *x = cf_from_array((float[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, CF_SHAPE(3, 4));
    cf_tensor *xt = cf_transpose(x, 0, 1);                   /* [4, 3] */
    cf_tensor *xs = cf_slice(x, 1, 1, 4, 2);                 /* [3, 2] */
    cf_tensor *xe = cf_expand(cf_scalar(7), CF_SHAPE(2, 2)); /* stride 0 */
    cf_tensor *ts[] = {xt, xs, xe};
    const char *names[] = {"xt", "xs", "xe"};
    ck_assert_int_eq(cf_safetensors_save(path, 3, names, ts, NULL), CF_OK);
    cf_safetensors *f = open_safetensors(path);
    assert_values(cf_safetensors_get(f, "xt"), (float[]){0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, 0,
                  0);
    assert_values(cf_safetensors_get(f, "xs"), (float[]){1, 3, 5, 7, 9, 11}, 0, 0);
    assert_values(cf_safetensors_get(f, "xe"), (float[]){7, 7, 7, 7}, 0, 0);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(read_into_fills_a_parameter_and_strided_destinations)
{
    const char *path = save_sample_safetensors("s.safetensors");
    cf_safetensors *f = open_safetensors(path);
    cf_tensor *w = cf_tensor_new(CF_F32, CF_SHAPE(2, 3));
    ck_assert_int_eq(cf_safetensors_read_into(f, "w", w), CF_OK);
    assert_values(w, (float[]){1, 2, 3, 4, 5, 6}, 0, 0);

    /* Into the transpose of a [3, 2] tensor: element (i, j) lands at (j, i). */
    cf_tensor *base = cf_zeros(CF_SHAPE(3, 2));
    ck_assert_int_eq(cf_safetensors_read_into(f, "w", cf_transpose(base, 0, 1)), CF_OK);
    assert_values(base, (float[]){1, 4, 2, 5, 3, 6}, 0, 0);

    cf_tensor *idx = cf_tensor_new(CF_I32, CF_SHAPE(2));
    ck_assert_int_eq(cf_safetensors_read_into(f, "idx", idx), CF_OK);
    ck_assert_int_eq(((int32_t *)idx->data)[1], -8);
    cf_tensor_free(w);
    cf_tensor_free(idx);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(the_header_is_padded_to_eight_bytes_and_float_data_stays_aligned)
{
    const char *path = scratch_path("align.safetensors");
    cf_tensor *b = cf_empty(CF_BOOL, CF_SHAPE(3));
    memset(b->data, 1, 3);
    cf_tensor *ts[] = {b, cf_ones(CF_SHAPE(5))}; /* a 3-byte tensor first */
    const char *names[] = {"b", "x"};
    ck_assert_int_eq(cf_safetensors_save(path, 2, names, ts, "{\"a\":\"b\"}"), CF_OK);
    size_t n;
    unsigned char *raw = read_file(path, &n);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | raw[i];
    ck_assert_uint_eq(h % 8, 0);
    ck_assert_uint_eq(n, 8 + h + 3 + 5 * 4);
    ck_assert_int_eq(raw[8], '{');
    ck_assert_int_eq(raw[8 + h - 1] == ' ' || raw[8 + h - 1] == '}', 1);
    /* The float tensor comes first in the data area, so it is aligned. */
    ck_assert_ptr_nonnull(strstr((char *)raw + 8, "\"data_offsets\":[0,20]"));
    free(raw);
}
END_TEST

SCRATCH_TEST(a_file_larger_than_a_mebibyte_round_trips)
{
    const char *path = scratch_path("big.safetensors");
    cf_rng g;
    cf_rng_init(&g, 5);
    cf_tensor *x = cf_uniform(&g, -1, 1, CF_SHAPE(600, 500));
    cf_tensor *ts[] = {x, cf_transpose(x, 0, 1)};
    const char *names[] = {"x", "xt"};
    ck_assert_int_eq(cf_safetensors_save(path, 2, names, ts, NULL), CF_OK);
    cf_safetensors *f = open_safetensors(path);
    ck_assert(same_values(cf_safetensors_get(f, "x"), x));
    ck_assert(same_values(cf_safetensors_get(f, "xt"), cf_transpose(x, 0, 1)));
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(a_file_with_no_tensors_round_trips)
{
    const char *path = scratch_path("none.safetensors");
    ck_assert_int_eq(cf_safetensors_save(path, 0, NULL, NULL, NULL), CF_OK);
    cf_safetensors *f = open_safetensors(path);
    ck_assert_int_eq(cf_safetensors_count(f), 0);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(names_with_quotes_and_control_characters_round_trip)
{
    const char *path = scratch_path("q.safetensors");
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(1)), cf_zeros(CF_SHAPE(1))};
    const char *names[] = {"a \"b\" \\c\n\x01", "\xe2\x9c\x93"};
    ck_assert_int_eq(cf_safetensors_save(path, 2, names, ts, NULL), CF_OK);
    cf_safetensors *f = open_safetensors(path);
    ck_assert_str_eq(cf_safetensors_name(f, 0), names[0]);
    ck_assert_str_eq(cf_safetensors_name(f, 1), names[1]);
    assert_values(cf_safetensors_get(f, names[0]), (float[]){1}, 0, 0);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(a_file_without_metadata_has_none)
{
    const char *path = scratch_path("nm.safetensors");
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(1))};
    const char *names[] = {"x"};
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, ts, NULL), CF_OK);
    cf_safetensors *f = open_safetensors(path);
    ck_assert_ptr_null(cf_safetensors_metadata(f, "format"));
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(duplicate_names_are_an_argument_error)
{
    const char *path = scratch_path("dup.safetensors");
    cf_tensor *t = cf_ones(CF_SHAPE(1));
    cf_tensor *ts[] = {t, t, t};
    const char *names[] = {"a", "b", "a"};
    ck_assert_int_eq(cf_safetensors_save(path, 3, names, ts, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "duplicate", "a", NULL);
    ck_assert_int_eq(scratch_count(""), 0);
}
END_TEST

SCRATCH_TEST(null_and_reserved_arguments_are_argument_errors)
{
    const char *path = scratch_path("x.safetensors");
    cf_tensor *t = cf_ones(CF_SHAPE(1));
    cf_tensor *ts[] = {t, NULL};
    const char *names[] = {"a", "b"};
    ck_assert_int_eq(cf_safetensors_save(path, 2, names, ts, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "tensor b is NULL", NULL);
    ck_assert_int_eq(cf_safetensors_save(NULL, 1, names, ts, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "path", NULL);
    ck_assert_int_eq(cf_safetensors_save(path, 1, NULL, ts, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "names", NULL);
    const char *reserved[] = {"__metadata__"};
    ck_assert_int_eq(cf_safetensors_save(path, 1, reserved, ts, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "__metadata__", NULL);
    const char *not_utf8[] = {"\xc0\xaf"};
    ck_assert_int_eq(cf_safetensors_save(path, 1, not_utf8, ts, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "invalid tensor name", NULL);
    ck_assert_int_eq(scratch_count(""), 0);
}
END_TEST

SCRATCH_TEST(saving_into_a_missing_directory_is_an_io_error_naming_the_path)
{
    const char *path = scratch_path("no/such/dir/x.safetensors");
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(1))};
    const char *names[] = {"x"};
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, ts, NULL), CF_ERR_IO);
    assert_error(CF_ERR_IO, path, strerror(ENOENT), NULL);
}
END_TEST
