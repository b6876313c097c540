/* tensor/json.c, through the safetensors reader and writer: JSON the
 * header may hold and JSON it may not, string escapes and UTF-8 (names,
 * metadata, U+0000), and the metadata text cf_safetensors_save accepts. */
#define _POSIX_C_SOURCE 200809L

#include "tests/util.h"

#include <stdlib.h>
#include <string.h>

/* A valid header entry, for the corrupt headers built around it. */
#define T_OK "{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}"

SCRATCH_TEST(bad_json_is_refused)
{
    const char *bad[] = {
        "",
        "   ",
        "[]",
        "\"a\"",
        "null",
        "{\"a\" " T_OK "}",
        "{\"a\":" T_OK ",}",
        "{\"a\":" T_OK ",,\"b\":" T_OK "}",
        "{a:" T_OK "}",
        "{'a':" T_OK "}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2,],\"data_offsets\":[0,16]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2 2],\"data_offsets\":[0,16]}}",
        "{\"a\":{\"dtype\":\"F32\" \"shape\":[2,2],\"data_offsets\":[0,16]}}",
        "{\"a\":{\"dtype\":F32,\"shape\":[2,2],\"data_offsets\":[0,16]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[02,2],\"data_offsets\":[0,16]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0,2],\"data_offsets\":[0,16]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2e0,2],\"data_offsets\":[0,16]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2,2],\"data_offsets\":[0,16]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[+2,2],\"data_offsets\":[0,16]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999,2],\"data_offsets\":[0,16]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16,3]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,16]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16],\"x\":1}}",
        "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
        "{\"a\":{}}",
        "{\"a\":[]}",
        "{\"a\":1}",
        "{\"a\":\"F32\"}",
        "{\"a\":" T_OK "} {}",
        "{\"a\":" T_OK "}x",
        "{\"a\\x\":" T_OK "}",
        "{\"a\\u12\":" T_OK "}",
        "{\"a\\ud800\":" T_OK "}",
        "{\"a\\udc00\":" T_OK "}",
        "{\"a\n\":" T_OK "}",
        "{\"a\xff\":" T_OK "}",
        "{\"a\xc0\x80\":" T_OK "}",
        "{\"a\xed\xa0\x80\":" T_OK "}",
        "{\"a\xe2\x9c\":" T_OK "}",
        "{\"__metadata__\":{\"k\":1},\"a\":" T_OK "}",
        "{\"__metadata__\":[],\"a\":" T_OK "}",
        "{\"__metadata__\":{},\"__metadata__\":{},\"a\":" T_OK "}",
        "{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"},\"a\":" T_OK "}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_bad_header(bad[i], NULL);

    /* Padding with NUL bytes instead of spaces. */
    const char *path = scratch_path("nul.safetensors");
    char b[8 + 64 + 16] = {0};
    const char *h = "{\"a\":" T_OK "}";
    size_t hl = (strlen(h) + 7) / 8 * 8;
    b[0] = (char)hl;
    memcpy(b + 8, h, strlen(h));
    write_file(path, b, 8 + hl + 16);
    expect_open_error(path, CF_ERR_FORMAT, "trailing characters");
}
END_TEST

SCRATCH_TEST(valid_json_variants_are_accepted)
{
    static const unsigned char data[16];
    const char *good[] = {
        "{\"a\":" T_OK "}",
        " \t\r\n{ \"a\" : { \"shape\" : [ 2 , 2 ] , \"data_offsets\" : [ 0 , 16 ] , "
        "\"dtype\" : \"F32\" } }   ",
        "{\"__metadata__\":null,\"a\":" T_OK "}",
        "{\"\\u0061\":" T_OK "}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cf_safetensors *f = open_safetensors(write_raw_safetensors(good[i], data, sizeof data));
        ck_assert_ptr_nonnull(cf_safetensors_get(f, "a"));
        cf_safetensors_close(f);
    }
}
END_TEST

SCRATCH_TEST(u0000_in_names_and_metadata_is_accepted_as_c0_80)
{
    static const float two[2] = {1, 2};
    const char *path = write_raw_safetensors(
        "{\"__metadata__\":{\"k\\u0000\":\"v\\u0000w\"},"
        "\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"a\\u0000c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        two, sizeof two);
    cf_safetensors *f = open_safetensors(path);
    ck_assert_int_eq(cf_safetensors_count(f), 2);
    ck_assert_str_eq(cf_safetensors_name(f, 0), "a\xc0\x80"
                                                "b");
    ck_assert_str_eq(cf_safetensors_metadata(f, "k\xc0\x80"), "v\xc0\x80w");
    assert_values(cf_safetensors_get(f, "a\xc0\x80"
                                        "c"),
                  (float[]){2}, 0, 0);
    /* Saved back, the pair is written as \u0000 again. */
    const char *again = scratch_path("again.safetensors");
    const char *names[] = {cf_safetensors_name(f, 0)};
    cf_tensor *ts[] = {cf_safetensors_get(f, names[0])};
    ck_assert_int_eq(cf_safetensors_save(again, 1, names, ts, "{\"m\": \"x\\u0000\"}"), CF_OK);
    cf_safetensors_close(f);
    size_t n;
    unsigned char *b = read_file(again, &n);
    ck_assert_ptr_nonnull(memmem(b, n, "\"a\\u0000b\"", 10));
    ck_assert_ptr_nonnull(memmem(b, n, "\"x\\u0000\"", 9));
    ck_assert_ptr_null(memmem(b, n, "\xc0\x80", 2));
    free(b);
    f = open_safetensors(again);
    ck_assert_str_eq(cf_safetensors_metadata(f, "m"), "x\xc0\x80");
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(metadata_round_trips_with_escapes_and_unicode)
{
    const char *path = scratch_path("m.safetensors");
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(1))};
    const char *names[] = {"x"};
    const char *meta = "{ \"epoch\" : \"3\", \"quote\\\"\": \"a\\\\b\\n\\t\\u00e9\","
                       " \"utf8\": \"\xce\xbb \xe2\x9c\x93\", \"empty\": \"\" }";
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, ts, meta), CF_OK);
    cf_safetensors *f = open_safetensors(path);
    ck_assert_str_eq(cf_safetensors_metadata(f, "epoch"), "3");
    ck_assert_str_eq(cf_safetensors_metadata(f, "quote\""), "a\\b\n\t\xc3\xa9");
    ck_assert_str_eq(cf_safetensors_metadata(f, "utf8"), "\xce\xbb \xe2\x9c\x93");
    ck_assert_str_eq(cf_safetensors_metadata(f, "empty"), "");
    ck_assert_ptr_null(cf_safetensors_metadata(f, "missing"));
    ck_assert_ptr_null(cf_safetensors_metadata(f, NULL));
    ck_assert_ptr_null(cf_safetensors_metadata(NULL, "epoch"));
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(invalid_metadata_json_is_an_argument_error_and_writes_nothing)
{
    const char *path = scratch_path("bad.safetensors");
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(1))};
    const char *names[] = {"x"};
    const char *bad[] = {"",
                         "[]",
                         "{\"a\": 1}",
                         "{\"a\": \"b\"",
                         "{\"a\": \"b\"} x",
                         "{\"a\": \"b\", \"a\": \"c\"}",
                         "{'a': 'b'}",
                         "{\"a\": \"b\",}",
                         "{\"a\": \"\xff\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(cf_safetensors_save(path, 1, names, ts, bad[i]) == CF_ERR_ARG,
                      "metadata %s was accepted", bad[i]);
        assert_error(CF_ERR_ARG, "metadata_json", NULL);
    }
    ck_assert_int_eq(scratch_count(""), 0);
}
END_TEST

SCRATCH_TEST(escaped_names_and_metadata_are_decoded_to_utf8)
{
    cf_safetensors *f = open_fixture("io.safetensors");
    assert_values(cf_safetensors_get(f, "caf\xc3\xa9 \"quoted\""), (float[]){1}, 0, 0);
    assert_values(cf_safetensors_get(f, "\xf0\x9f\x98\x80"), (float[]){2}, 0, 0);
    ck_assert_str_eq(cf_safetensors_metadata(f, "format"), "pt");
    ck_assert_str_eq(cf_safetensors_metadata(f, "note"), "line\nbreak, tab\t, check \xe2\x9c\x93");
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(messages_escape_control_bytes_from_the_file)
{
    static const unsigned char zeros[16];
    const char *path =
        write_raw_safetensors("{\"evil\\nname\\u0007\\u0000\":{\"dtype\":\"F32\",\"shape\":[9],"
                              "\"data_offsets\":[0,16]}}",
                              zeros, sizeof zeros);
    expect_open_error(path, CF_ERR_FORMAT, "evil\\nname\\x07\\u0000");
    path = write_raw_safetensors(
        "{\"a\":{\"dtype\":\"F\\r32\",\"shape\":[4],\"data_offsets\":[0,16]}}", zeros,
        sizeof zeros);
    cf_safetensors *f;
    ck_assert_int_eq(cf_safetensors_open(path, &f), CF_ERR_FORMAT);
    ck_assert_ptr_null(strchr(cf_error_message(), '\r'));
    assert_error(CF_ERR_FORMAT, "unknown dtype \"F\\r32\"", NULL);
}
END_TEST
