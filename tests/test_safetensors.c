/* tensor/safetensors.c: opening and reading safetensors files: files
 * written by PyTorch (tests/golden/io.safetensors), lookups and their
 * errors, and every kind of corrupt file, which must give a clean error (the
 * fuzz cases check that no input crashes the reader; run them under
 * --enable-sanitizers to check that nothing is read out of bounds). */
#define _POSIX_C_SOURCE 200809L

#include "tests/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

SCRATCH_TEST(values_written_by_pytorch_read_back_exactly)
{
    cf_safetensors *f = open_fixture("io.safetensors");
    assert_values(cf_safetensors_get(f, "f32"), (float[]){0, 0.25f, 0.5f, 0.75f, 1, 1.25f}, 0, 0);
    cf_tensor *i = cf_safetensors_get(f, "i32");
    ck_assert_int_eq(i->dtype, CF_I32);
    ck_assert_mem_eq(i->data, ((int32_t[]){-2, 0, 7, INT32_MAX}), 16);
    cf_tensor *b = cf_safetensors_get(f, "bool");
    ck_assert_int_eq(b->dtype, CF_BOOL);
    ck_assert_mem_eq(b->data, ((uint8_t[]){1, 0, 1, 1, 0}), 5);
    cf_tensor *s = cf_safetensors_get(f, "scalar");
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_float_eq(cf_item(s), 3.5f);
    cf_tensor *e = cf_safetensors_get(f, "empty");
    ck_assert_int_eq(e->ndim, 2);
    ck_assert_int_eq(e->shape[0], 0);
    ck_assert_int_eq(e->shape[1], 3);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(other_dtypes_open_but_are_refused_when_requested)
{
    cf_safetensors *f = open_fixture("io.safetensors");
    ck_assert_int_eq(cf_safetensors_count(f), 12);
    const char *names[] = {"f16", "bf16", "f64", "i64", "u8"};
    const char *dtypes[] = {"F16", "BF16", "F64", "I64", "U8"};
    for (int i = 0; i < 5; i++) {
        ck_assert_ptr_null(cf_safetensors_get(f, names[i]));
        assert_error(CF_ERR_DTYPE, "io.safetensors", names[i], dtypes[i], NULL);
    }
    cf_tensor *t = cf_tensor_new(CF_F32, CF_SHAPE(3));
    ck_assert_int_eq(cf_safetensors_read_into(f, "f16", t), CF_ERR_DTYPE);
    assert_error(CF_ERR_DTYPE, "F16", NULL);
    cf_tensor_free(t);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(a_missing_name_is_a_format_error_naming_it)
{
    const char *path = save_sample_safetensors("s.safetensors");
    cf_safetensors *f = open_safetensors(path);
    ck_assert_ptr_null(cf_safetensors_get(f, "nope"));
    assert_error(CF_ERR_FORMAT, path, "no tensor named nope", NULL);
    cf_tensor *t = cf_tensor_new(CF_F32, CF_SHAPE(1));
    ck_assert_int_eq(cf_safetensors_read_into(f, "nope", t), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "no tensor named nope", NULL);
    cf_tensor_free(t);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(read_into_a_wrong_shape_names_file_tensor_and_both_shapes)
{
    const char *path = save_sample_safetensors("s.safetensors");
    cf_safetensors *f = open_safetensors(path);
    cf_tensor *t = cf_tensor_new(CF_F32, CF_SHAPE(3, 2));
    cf_fill(t, 9);
    ck_assert_int_eq(cf_safetensors_read_into(f, "w", t), CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, path, "w", "[2, 3]", "[3, 2]", NULL);
    assert_values(t, (float[]){9, 9, 9, 9, 9, 9}, 0, 0); /* untouched */
    cf_tensor_free(t);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(read_into_a_wrong_dtype_is_a_dtype_error)
{
    const char *path = save_sample_safetensors("s.safetensors");
    cf_safetensors *f = open_safetensors(path);
    cf_tensor *t = cf_tensor_new(CF_F32, CF_SHAPE(2));
    ck_assert_int_eq(cf_safetensors_read_into(f, "idx", t), CF_ERR_DTYPE);
    assert_error(CF_ERR_DTYPE, path, "idx", "I32", "float32", NULL);
    cf_tensor_free(t);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(read_into_a_broadcast_view_is_refused)
{
    const char *path = save_sample_safetensors("s.safetensors");
    cf_safetensors *f = open_safetensors(path);
    cf_tensor *v = cf_expand(cf_zeros(CF_SHAPE(1, 3)), CF_SHAPE(2, 3));
    ck_assert_int_eq(cf_safetensors_read_into(f, "w", v), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "broadcast", NULL);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(read_into_an_empty_tensor_with_zero_strides_succeeds)
{
    const char *path = scratch_path("e.safetensors");
    cf_tensor *e = cf_zeros(CF_SHAPE(5, 0));
    const char *names[] = {"e"};
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, &e, NULL), CF_OK);
    cf_safetensors *f = open_safetensors(path);
    cf_tensor *d = cf_zeros(CF_SHAPE(5, 0)); /* strides [0, 1] */
    ck_assert_int_eq(cf_safetensors_read_into(f, "e", d), CF_OK);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(a_failing_call_reports_its_own_error_over_an_older_one)
{
    const char *path = save_sample_safetensors("s.safetensors");
    cf_safetensors *f = open_safetensors(path);
    cf_item(cf_zeros(CF_SHAPE(2))); /* records CF_ERR_SHAPE, left unhandled */
    cf_tensor *t = cf_tensor_new(CF_F32, CF_SHAPE(1));
    ck_assert_int_eq(cf_safetensors_read_into(f, "nope", t), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "no tensor named nope", NULL);
    cf_tensor_free(t);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(a_succeeding_call_returns_ok_and_keeps_an_older_error)
{
    const char *path = save_sample_safetensors("s.safetensors");
    cf_safetensors *f = open_safetensors(path);
    cf_item(cf_zeros(CF_SHAPE(2)));
    cf_tensor *t = cf_tensor_new(CF_F32, CF_SHAPE(2, 3));
    ck_assert_int_eq(cf_safetensors_read_into(f, "w", t), CF_OK);
    assert_error(CF_ERR_SHAPE, "cf_item", NULL);
    cf_tensor_free(t);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(more_dims_than_cformer_holds_is_refused_on_get)
{
    static const unsigned char data[4];
    cf_safetensors *f = open_safetensors(write_raw_safetensors(
        "{\"deep\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", data,
        4));
    ck_assert_ptr_null(cf_safetensors_get(f, "deep"));
    assert_error(CF_ERR_DIM, "deep", "9 dims", NULL);
    cf_safetensors_close(f);
}
END_TEST

/* A valid header entry, for the corrupt headers built around it. */
#define T_OK "{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}"

SCRATCH_TEST(a_missing_file_or_a_directory_is_an_io_error)
{
    expect_open_error(scratch_path("absent.safetensors"), CF_ERR_IO, strerror(ENOENT));
    expect_open_error(scratch_path(NULL), CF_ERR_IO, strerror(EISDIR));
    cf_safetensors *f = (cf_safetensors *)1;
    ck_assert_int_eq(cf_safetensors_open(NULL, &f), CF_ERR_ARG);
    ck_assert_ptr_null(f);
    assert_error(CF_ERR_ARG, NULL);
    ck_assert_int_eq(cf_safetensors_open(scratch_path(NULL), NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, NULL);
}
END_TEST

SCRATCH_TEST(opening_a_fifo_is_refused_without_waiting_for_a_writer)
{
    const char *fifo = scratch_path("fifo.safetensors");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    expect_open_error(fifo, CF_ERR_IO, "not a regular file");
}
END_TEST

SCRATCH_TEST(a_file_shorter_than_the_length_prefix_is_refused)
{
    const char *path = scratch_path("short.safetensors");
    write_file(path, "", 0);
    expect_open_error(path, CF_ERR_FORMAT, "too short");
    write_file(path, "\x02\0\0\0\0\0\0", 7);
    expect_open_error(path, CF_ERR_FORMAT, "too short");
}
END_TEST

SCRATCH_TEST(a_header_length_beyond_the_file_is_refused)
{
    const char *path = scratch_path("long.safetensors");
    unsigned char b[8 + 2] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_file(path, b, sizeof b);
    expect_open_error(path, CF_ERR_FORMAT, "header length 100");
    memset(b, 0xff, 8); /* 2^64 - 1: must not wrap around */
    write_file(path, b, sizeof b);
    expect_open_error(path, CF_ERR_FORMAT, "exceeds");
}
END_TEST

SCRATCH_TEST(a_header_longer_than_the_100_mb_limit_is_refused)
{
    /* A sparse file, so the test writes almost nothing. */
    const char *path = scratch_path("huge.safetensors");
    uint64_t h = 100000001;
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(h >> (8 * i));
    write_file(path, b, 8);
    ck_assert_int_eq(truncate(path, (off_t)(8 + h + 16)), 0);
    expect_open_error(path, CF_ERR_FORMAT, "limit");
}
END_TEST

SCRATCH_TEST(a_truncated_header_is_refused)
{
    const char *full = "{\"a\":" T_OK "}";
    for (size_t n = 0; n < strlen(full); n++) {
        char h[128];
        memcpy(h, full, n);
        h[n] = '\0';
        expect_bad_header(h, NULL);
    }
}
END_TEST

SCRATCH_TEST(an_unknown_dtype_is_refused_naming_the_tensor)
{
    expect_bad_header("{\"w1\":{\"dtype\":\"F12\",\"shape\":[4],\"data_offsets\":[0,16]}}", "w1");
    expect_bad_header("{\"w1\":{\"dtype\":\"f32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                      "unknown dtype");
}
END_TEST

SCRATCH_TEST(a_shape_that_does_not_match_its_byte_range_is_refused)
{
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}",
                      "needs 24 bytes");
    expect_bad_header("{\"w\":{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[0,16]}}", "w");
    /* A size product that overflows 64 bits. */
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,"
                      "4294967296],\"data_offsets\":[0,16]}}",
                      "w");
    /* Packed 4-bit values that do not fill a whole byte. */
    expect_bad_header("{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,16]}}", "w");
}
END_TEST

SCRATCH_TEST(byte_ranges_outside_the_data_area_are_refused)
{
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}",
                      "outside the data area");
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[17,17]}}",
                      "outside the data area");
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":"
                      "[9223372036854775807,4]}}",
                      "w");
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,0]}}",
                      "end before they begin");
}
END_TEST

SCRATCH_TEST(overlapping_or_gapped_byte_ranges_are_refused)
{
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                      "overlap");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
                      "unused");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                      "unused");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                      "8 bytes after the last tensor");
    expect_bad_header("{}", "16 bytes after");
}
END_TEST

SCRATCH_TEST(duplicate_tensor_names_are_refused)
{
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                      "duplicate tensor name a");
}
END_TEST

SCRATCH_TEST(data_truncated_after_the_header_is_refused_naming_the_tensor)
{
    const char *path = save_sample_safetensors("s.safetensors");
    size_t n;
    unsigned char *b = read_file(path, &n);
    write_file(path, b, n - 1);
    expect_open_error(path, CF_ERR_FORMAT, "outside the data area");
    free(b);
}
END_TEST

/* Opens the file at path, which may be anything: the outcome must be a clean
 * CF_OK (then every tensor is requested) or a clean error. */
static void open_anything(const char *path)
{
    cf_safetensors *f = NULL;
    cf_status s = cf_safetensors_open(path, &f);
    if (s != CF_OK) {
        ck_assert_msg(s == CF_ERR_FORMAT, "status %s: %s", cf_status_str(s), cf_error_message());
        ck_assert_ptr_null(f);
        ck_assert_int_eq(cf_error(), CF_ERR_FORMAT);
        ck_assert(strlen(cf_error_message()) > 0);
        cf_error_clear();
        return;
    }
    for (int i = 0; i < cf_safetensors_count(f); i++) {
        const char *name = cf_safetensors_name(f, i);
        cf_tensor *t = cf_safetensors_get(f, name);
        cf_status e = cf_error();
        ck_assert_msg(t || e == CF_ERR_DTYPE || e == CF_ERR_DIM, "get %s: %s", name,
                      cf_error_message());
        cf_error_clear();
    }
    cf_safetensors_close(f);
    cf_arena_reset(cf_arena_current());
}

SCRATCH_TEST(truncating_a_valid_file_anywhere_gives_a_clean_error)
{
    const char *path = save_sample_safetensors("s.safetensors");
    size_t n;
    unsigned char *b = read_file(path, &n);
    const char *cut = scratch_path("cut.safetensors");
    for (size_t len = 0; len < n; len++) {
        write_file(cut, b, len);
        cf_safetensors *f = NULL;
        ck_assert_int_eq(cf_safetensors_open(cut, &f), CF_ERR_FORMAT);
        ck_assert_ptr_null(f);
        cf_error_clear();
    }
    write_file(cut, b, n);
    cf_safetensors_close(open_safetensors(cut));
    free(b);
}
END_TEST

SCRATCH_TEST(flipping_bits_in_the_header_gives_a_clean_result)
{
    const char *path = save_sample_safetensors("s.safetensors");
    size_t n;
    unsigned char *b = read_file(path, &n);
    size_t h = 0; /* the header length */
    for (int i = 7; i >= 0; i--)
        h = (h << 8) | b[i];
    const char *fz = scratch_path("fuzz.safetensors");
    static const unsigned char masks[] = {0x01, 0x02, 0x08, 0x20, 0x80, 0xff};
    for (size_t pos = 0; pos < 8 + h; pos++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            b[pos] ^= masks[m];
            write_file(fz, b, n);
            open_anything(fz);
            b[pos] ^= masks[m];
        }
    }
    free(b);
}
END_TEST

SCRATCH_TEST(random_bytes_after_a_plausible_prefix_give_a_clean_result)
{
    /* A tiny generator (xorshift) so the cases are the same on every run. */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    const char *alphabet = "{}[]\",:0123456789 \\uFIBOL_dtypeshapdaofs";
    size_t alen = strlen(alphabet);
    const char *fz = scratch_path("rand.safetensors");
    for (int it = 0; it < 2000; it++) {
        unsigned char b[256];
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t len = 8 + x % 200, h = x / 200 % (len - 7);
        for (int i = 0; i < 8; i++)
            b[i] = (unsigned char)((uint64_t)h >> (8 * i));
        for (size_t i = 8; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* Mostly JSON-ish characters, so the parser gets deep. */
            b[i] = (x & 3) ? (unsigned char)alphabet[(x >> 8) % alen] : (unsigned char)(x >> 16);
        }
        if (it % 2 == 0 && len > 12) { /* start like a real header */
            memcpy(b + 8, "{\"a\":", len - 8 < 5 ? len - 8 : 5);
        }
        write_file(fz, b, len);
        open_anything(fz);
    }
}
END_TEST
