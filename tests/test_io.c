/* Safetensors files: round trips, metadata, atomic replacement, files written
 * by PyTorch, and every kind of corrupt file, which must give a clean error
 * (the fuzz cases below check that no input crashes the reader; run them
 * under --enable-sanitizers to check that nothing is read out of bounds). */
#define _POSIX_C_SOURCE 200809L

#include "tests/util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- A scratch directory per test ---- */

static char dir[256];

static void dir_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/cformer-io-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            chmod(p, 0700);
            remove_tree(p);
        } else {
            unlink(p);
        }
    }
    closedir(d);
    rmdir(path);
}

static void dir_teardown(void) { remove_tree(dir); }

/* A TCase whose tests get an arena and a scratch directory. */
static TCase *io_tcase(const char *name)
{
    TCase *tc = tcase(name);
    tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
    return tc;
}

/* The path of a file in the scratch directory (one static buffer per slot). */
static const char *path_in(int slot, const char *name)
{
    static char paths[4][512];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", dir, name);
    return paths[slot];
}

/* Number of entries in the scratch directory whose name contains frag. */
static int count_files(const char *frag)
{
    int n = 0;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, frag))
            n++;
    closedir(d);
    return n;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(p, 1, n, fp), n);
    ck_assert_int_eq(fclose(fp), 0);
}

/* Reads a whole file into a malloc'd buffer; *n receives its size. */
static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc(size ? (size_t)size : 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    *n = (size_t)size;
    return b;
}

/* Writes a safetensors file from a header text (its length is prefixed as
 * is, no padding) and data bytes. */
static const char *write_raw(const char *header, const void *data, size_t ndata)
{
    const char *path = path_in(0, "raw.safetensors");
    size_t h = strlen(header);
    unsigned char *b = malloc(8 + h + ndata);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    if (ndata)
        memcpy(b + 8 + h, data, ndata);
    write_bytes(path, b, 8 + h + ndata);
    free(b);
    return path;
}

/* Opens path expecting failure with status s and a message naming the file
 * and containing frag (NULL: no fragment to check). */
static void expect_open_error(const char *path, cf_status s, const char *frag)
{
    cf_safetensors *f = (cf_safetensors *)1;
    ck_assert_int_eq(cf_safetensors_open(path, &f), s);
    ck_assert_ptr_null(f);
    assert_error(s, path, frag, NULL);
}

/* A header that must be rejected as corrupt, with 16 data bytes. */
static void expect_bad_header(const char *header, const char *frag)
{
    static const unsigned char zeros[16];
    expect_open_error(write_raw(header, zeros, sizeof zeros), CF_ERR_FORMAT, frag);
}

static cf_safetensors *open_ok(const char *path)
{
    cf_safetensors *f = NULL;
    ck_assert_msg(cf_safetensors_open(path, &f) == CF_OK, "open %s: %s", path, cf_error_message());
    ck_assert_ptr_nonnull(f);
    return f;
}

static bool same_floats(const cf_tensor *a, const cf_tensor *b)
{
    int64_t n = cf_numel(a);
    if (!cf_same_shape(a, b))
        return false;
    float *x = malloc(sizeof(float) * (n ? n : 1)), *y = malloc(sizeof(float) * (n ? n : 1));
    cf_copy_to(a, x);
    cf_copy_to(b, y);
    bool same = memcmp(x, y, sizeof(float) * n) == 0;
    free(x);
    free(y);
    return same;
}

/* A small valid file with three tensors and metadata, for the error and
 * fuzz cases. */
static const char *save_sample(const char *name)
{
    const char *path = path_in(1, name);
    cf_tensor *ts[] = {cf_from_array((float[]){1, 2, 3, 4, 5, 6}, CF_SHAPE(2, 3)),
                       cf_from_ints((int32_t[]){7, -8}, CF_SHAPE(2)),
                       cf_empty(CF_BOOL, CF_SHAPE(3))};
    uint8_t *m = ts[2]->data;
    m[0] = 1, m[1] = 0, m[2] = 1;
    const char *names[] = {"w", "idx", "mask"};
    ck_assert_int_eq(cf_safetensors_save(path, 3, names, ts, "{\"k\": \"v\"}"), CF_OK);
    return path;
}

/* ---- Round trips ---- */

START_TEST(saved_tensors_load_with_the_same_dtypes_shapes_and_values)
{
    const char *path = path_in(0, "a.safetensors");
    cf_tensor *f32 = cf_from_array((float[]){1.5f, -2, 3e-38f, 1e30f, 0, -0.0f}, CF_SHAPE(2, 3));
    cf_tensor *i32 = cf_from_ints((int32_t[]){INT32_MIN, -1, 0, INT32_MAX}, CF_SHAPE(2, 1, 2));
    cf_tensor *b = cf_empty(CF_BOOL, CF_SHAPE(5));
    memcpy(b->data, (uint8_t[]){1, 0, 0, 1, 1}, 5);
    cf_tensor *s = cf_scalar(42.25f);
    cf_tensor *e = cf_zeros(CF_SHAPE(0, 3));
    cf_tensor *ts[] = {f32, i32, b, s, e};
    const char *names[] = {"f32", "i32", "mask", "scalar", "empty"};
    ck_assert_int_eq(cf_safetensors_save(path, 5, names, ts, NULL), CF_OK);

    cf_safetensors *f = open_ok(path);
    ck_assert_int_eq(cf_safetensors_count(f), 5);
    cf_tensor *g = cf_safetensors_get(f, "f32");
    ck_assert_int_eq(g->dtype, CF_F32);
    ck_assert(same_floats(g, f32));
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

START_TEST(names_come_back_in_the_order_they_were_saved)
{
    const char *path = path_in(0, "order.safetensors");
    cf_tensor *t = cf_ones(CF_SHAPE(1));
    cf_tensor *ts[] = {t, t, t};
    const char *names[] = {"zeta", "alpha", "mid"};
    ck_assert_int_eq(cf_safetensors_save(path, 3, names, ts, NULL), CF_OK);
    cf_safetensors *f = open_ok(path);
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

START_TEST(strided_views_are_written_row_major)
{
    const char *path = path_in(0, "t.safetensors");
    cf_tensor *x = cf_from_array((float[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, CF_SHAPE(3, 4));
    cf_tensor *xt = cf_transpose(x, 0, 1);                   /* [4, 3] */
    cf_tensor *xs = cf_slice(x, 1, 1, 4, 2);                 /* [3, 2] */
    cf_tensor *xe = cf_expand(cf_scalar(7), CF_SHAPE(2, 2)); /* stride 0 */
    cf_tensor *ts[] = {xt, xs, xe};
    const char *names[] = {"xt", "xs", "xe"};
    ck_assert_int_eq(cf_safetensors_save(path, 3, names, ts, NULL), CF_OK);
    cf_safetensors *f = open_ok(path);
    assert_values(cf_safetensors_get(f, "xt"), (float[]){0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, 0,
                  0);
    assert_values(cf_safetensors_get(f, "xs"), (float[]){1, 3, 5, 7, 9, 11}, 0, 0);
    assert_values(cf_safetensors_get(f, "xe"), (float[]){7, 7, 7, 7}, 0, 0);
    cf_safetensors_close(f);
}
END_TEST

START_TEST(read_into_fills_a_parameter_and_strided_destinations)
{
    const char *path = save_sample("s.safetensors");
    cf_safetensors *f = open_ok(path);
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

START_TEST(the_header_is_padded_to_eight_bytes_and_float_data_stays_aligned)
{
    const char *path = path_in(0, "align.safetensors");
    cf_tensor *b = cf_empty(CF_BOOL, CF_SHAPE(3));
    memset(b->data, 1, 3);
    cf_tensor *ts[] = {b, cf_ones(CF_SHAPE(5))}; /* a 3-byte tensor first */
    const char *names[] = {"b", "x"};
    ck_assert_int_eq(cf_safetensors_save(path, 2, names, ts, "{\"a\":\"b\"}"), CF_OK);
    size_t n;
    unsigned char *raw = read_bytes(path, &n);
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

START_TEST(a_file_larger_than_a_mebibyte_round_trips)
{
    const char *path = path_in(0, "big.safetensors");
    cf_rng g;
    cf_rng_init(&g, 5);
    cf_tensor *x = cf_uniform(&g, -1, 1, CF_SHAPE(600, 500));
    cf_tensor *ts[] = {x, cf_transpose(x, 0, 1)};
    const char *names[] = {"x", "xt"};
    ck_assert_int_eq(cf_safetensors_save(path, 2, names, ts, NULL), CF_OK);
    cf_safetensors *f = open_ok(path);
    ck_assert(same_floats(cf_safetensors_get(f, "x"), x));
    ck_assert(same_floats(cf_safetensors_get(f, "xt"), cf_transpose(x, 0, 1)));
    cf_safetensors_close(f);
}
END_TEST

START_TEST(a_file_with_no_tensors_round_trips)
{
    const char *path = path_in(0, "none.safetensors");
    ck_assert_int_eq(cf_safetensors_save(path, 0, NULL, NULL, NULL), CF_OK);
    cf_safetensors *f = open_ok(path);
    ck_assert_int_eq(cf_safetensors_count(f), 0);
    cf_safetensors_close(f);
}
END_TEST

/* ---- Metadata ---- */

START_TEST(metadata_round_trips_with_escapes_and_unicode)
{
    const char *path = path_in(0, "m.safetensors");
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(1))};
    const char *names[] = {"x"};
    const char *meta = "{ \"epoch\" : \"3\", \"quote\\\"\": \"a\\\\b\\n\\t\\u00e9\","
                       " \"utf8\": \"\xce\xbb \xe2\x9c\x93\", \"empty\": \"\" }";
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, ts, meta), CF_OK);
    cf_safetensors *f = open_ok(path);
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

START_TEST(a_file_without_metadata_has_none)
{
    const char *path = path_in(0, "nm.safetensors");
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(1))};
    const char *names[] = {"x"};
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, ts, NULL), CF_OK);
    cf_safetensors *f = open_ok(path);
    ck_assert_ptr_null(cf_safetensors_metadata(f, "format"));
    cf_safetensors_close(f);
}
END_TEST

START_TEST(invalid_metadata_json_is_an_argument_error_and_writes_nothing)
{
    const char *path = path_in(0, "bad.safetensors");
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
    ck_assert_int_eq(count_files(""), 0);
}
END_TEST

/* ---- Save errors ---- */

START_TEST(duplicate_names_are_an_argument_error)
{
    const char *path = path_in(0, "dup.safetensors");
    cf_tensor *t = cf_ones(CF_SHAPE(1));
    cf_tensor *ts[] = {t, t, t};
    const char *names[] = {"a", "b", "a"};
    ck_assert_int_eq(cf_safetensors_save(path, 3, names, ts, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "duplicate", "a", NULL);
    ck_assert_int_eq(count_files(""), 0);
}
END_TEST

START_TEST(null_and_reserved_arguments_are_argument_errors)
{
    const char *path = path_in(0, "x.safetensors");
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
    ck_assert_int_eq(count_files(""), 0);
}
END_TEST

START_TEST(saving_into_a_missing_directory_is_an_io_error_naming_the_path)
{
    const char *path = path_in(0, "no/such/dir/x.safetensors");
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(1))};
    const char *names[] = {"x"};
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, ts, NULL), CF_ERR_IO);
    assert_error(CF_ERR_IO, path, strerror(ENOENT), NULL);
}
END_TEST

START_TEST(names_with_quotes_and_control_characters_round_trip)
{
    const char *path = path_in(0, "q.safetensors");
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(1)), cf_zeros(CF_SHAPE(1))};
    const char *names[] = {"a \"b\" \\c\n\x01", "\xe2\x9c\x93"};
    ck_assert_int_eq(cf_safetensors_save(path, 2, names, ts, NULL), CF_OK);
    cf_safetensors *f = open_ok(path);
    ck_assert_str_eq(cf_safetensors_name(f, 0), names[0]);
    ck_assert_str_eq(cf_safetensors_name(f, 1), names[1]);
    assert_values(cf_safetensors_get(f, names[0]), (float[]){1}, 0, 0);
    cf_safetensors_close(f);
}
END_TEST

/* ---- Atomic replacement ---- */

START_TEST(saving_over_a_file_replaces_it)
{
    const char *path = path_in(0, "m.safetensors");
    const char *names[] = {"x"};
    cf_tensor *a[] = {cf_full(1, CF_SHAPE(2))}, *b[] = {cf_full(2, CF_SHAPE(3))};
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, a, NULL), CF_OK);
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, b, NULL), CF_OK);
    cf_safetensors *f = open_ok(path);
    assert_values(cf_safetensors_get(f, "x"), (float[]){2, 2, 2}, 0, 0);
    cf_safetensors_close(f);
    ck_assert_int_eq(count_files(".tmp-"), 0);
}
END_TEST

START_TEST(a_save_that_fails_midway_keeps_the_old_file_and_no_temporary)
{
    const char *path = path_in(0, "m.safetensors");
    const char *names[] = {"x"};
    cf_tensor *small[] = {cf_full(1, CF_SHAPE(4))};
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, small, NULL), CF_OK);

    /* Limit file size (works as root too), so the write of a 400 kB tensor
     * fails with EFBIG after the temporary file is created. */
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    cf_tensor *big[] = {cf_full(2, CF_SHAPE(100000))};
    cf_status s = cf_safetensors_save(path, 1, names, big, NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);

    ck_assert_int_eq(s, CF_ERR_IO);
    assert_error(CF_ERR_IO, path, strerror(EFBIG), NULL);
    ck_assert_int_eq(count_files(".tmp-"), 0);
    cf_safetensors *f = open_ok(path);
    assert_values(cf_safetensors_get(f, "x"), (float[]){1, 1, 1, 1}, 0, 0);
    cf_safetensors_close(f);
}
END_TEST

START_TEST(a_save_whose_rename_fails_leaves_no_temporary)
{
    const char *path = path_in(0, "sub");
    ck_assert_int_eq(mkdir(path, 0700), 0); /* a directory where the file should go */
    const char *names[] = {"x"};
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(2))};
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, ts, NULL), CF_ERR_IO);
    assert_error(CF_ERR_IO, path, NULL);
    ck_assert_int_eq(count_files(".tmp-"), 0);
}
END_TEST

START_TEST(a_save_into_a_read_only_directory_fails_cleanly)
{
    const char *sub = path_in(2, "ro");
    ck_assert_int_eq(mkdir(sub, 0500), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/x.safetensors", sub);
    const char *names[] = {"x"};
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(2))};
    cf_status s = cf_safetensors_save(path, 1, names, ts, NULL);
    if (geteuid() == 0) { /* root writes anyway */
        ck_assert_int_eq(s, CF_OK);
        return;
    }
    ck_assert_int_eq(s, CF_ERR_IO);
    assert_error(CF_ERR_IO, path, strerror(EACCES), NULL);
}
END_TEST

/* The header buffer fails to grow (a 48 MB metadata value under an address
 * space limit): the save must return, not pad the header forever. The limit
 * cannot be used under AddressSanitizer, which reserves terabytes. */
#if defined(__SANITIZE_ADDRESS__)
#define NO_AS_LIMIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_AS_LIMIT 1
#endif
#endif
START_TEST(a_save_whose_header_cannot_grow_returns_nomem)
{
#ifdef NO_AS_LIMIT
    return;
#else
    const char *path = path_in(0, "big.safetensors");
    size_t n = (size_t)48 << 20;
    char *meta = malloc(n + 16);
    ck_assert_ptr_nonnull(meta);
    strcpy(meta, "{\"k\":\"");
    memset(meta + 6, 'a', n);
    strcpy(meta + 6 + n, "\"}");
    const char *names[] = {"x"};
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(3))};
    long pages = 0;
    FILE *fp = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fscanf(fp, "%ld", &pages), 1);
    fclose(fp);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)100 << 20);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
    cf_status st = cf_safetensors_save(path, 1, names, ts, meta);
    setrlimit(RLIMIT_AS, &old);
    free(meta);
    ck_assert_int_eq(st, CF_ERR_NOMEM);
    assert_error(CF_ERR_NOMEM, path, "out of memory", NULL);
    ck_assert_int_eq(count_files("big"), 0);
#endif
}
END_TEST

START_TEST(saving_over_a_file_keeps_its_permissions)
{
    const char *path = save_sample("s.safetensors");
    ck_assert_int_eq(chmod(path, 0600), 0);
    save_sample("s.safetensors");
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    ck_assert_int_eq(chmod(path, 0640), 0);
    save_sample("s.safetensors");
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0640);
}
END_TEST

START_TEST(saving_to_a_symbolic_link_writes_through_to_its_target)
{
    const char *target = save_sample("real.safetensors");
    const char *link = path_in(2, "link.safetensors");
    ck_assert_int_eq(symlink("real.safetensors", link), 0);
    const char *names[] = {"y"};
    cf_tensor *ts[] = {cf_full(5, CF_SHAPE(2))};
    ck_assert_int_eq(cf_safetensors_save(link, 1, names, ts, NULL), CF_OK);
    struct stat sb;
    ck_assert_int_eq(lstat(link, &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
    cf_safetensors *f = open_ok(target);
    ck_assert_int_eq(cf_safetensors_count(f), 1);
    assert_values(cf_safetensors_get(f, "y"), (float[]){5, 5}, 0, 0);
    cf_safetensors_close(f);
    ck_assert_int_eq(count_files(".tmp-"), 0);
}
END_TEST

START_TEST(saving_to_a_link_to_nothing_is_refused_saying_so)
{
    const char *link = path_in(2, "dangling.safetensors");
    ck_assert_int_eq(symlink("missing/x.safetensors", link), 0);
    const char *names[] = {"y"};
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(2))};
    ck_assert_int_eq(cf_safetensors_save(link, 1, names, ts, NULL), CF_ERR_IO);
    assert_error(CF_ERR_IO, link, "symbolic link", strerror(ENOENT), NULL);
}
END_TEST

START_TEST(saving_over_a_directory_or_a_fifo_is_refused)
{
    const char *names[] = {"y"};
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(2))};
    const char *sub = path_in(2, "d.safetensors");
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_eq(cf_safetensors_save(sub, 1, names, ts, NULL), CF_ERR_IO);
    assert_error(CF_ERR_IO, sub, "not a regular file", NULL);
    const char *fifo = path_in(3, "p.safetensors");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(cf_safetensors_save(fifo, 1, names, ts, NULL), CF_ERR_IO);
    assert_error(CF_ERR_IO, fifo, "not a regular file", NULL);
    ck_assert_int_eq(count_files(".tmp-"), 0);
}
END_TEST

START_TEST(a_save_removes_the_stale_temporaries_of_its_target_only)
{
    static const char junk[] = "left by a killed save";
    write_bytes(path_in(0, "m.safetensors.tmp-Ab3xY9"), junk, sizeof junk);
    write_bytes(path_in(0, "m.safetensors.tmp-zzzzzz"), junk, sizeof junk);
    write_bytes(path_in(0, "other.safetensors.tmp-Ab3xY9"), junk, sizeof junk);
    write_bytes(path_in(0, "m.safetensors.tmp-short"), junk, sizeof junk);
    /* One that a live save holds locked stays. */
    const char *live = path_in(1, "m.safetensors.tmp-L1ve00");
    write_bytes(live, junk, sizeof junk);
    FILE *lf = fopen(live, "r");
    ck_assert_int_eq(flock(fileno(lf), LOCK_EX), 0);
    save_sample("m.safetensors");
    ck_assert_int_eq(count_files("m.safetensors.tmp-"), 2);
    ck_assert_int_eq(access(live, F_OK), 0);
    ck_assert_int_eq(access(path_in(0, "m.safetensors.tmp-short"), F_OK), 0);
    ck_assert_int_eq(count_files("other.safetensors.tmp-"), 1);
    fclose(lf);
    save_sample("m.safetensors");
    ck_assert_int_eq(count_files("m.safetensors.tmp-"), 1);
}
END_TEST

START_TEST(opening_a_fifo_is_refused_without_waiting_for_a_writer)
{
    const char *fifo = path_in(0, "fifo.safetensors");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    expect_open_error(fifo, CF_ERR_IO, "not a regular file");
}
END_TEST

START_TEST(u0000_in_names_and_metadata_is_accepted_as_c0_80)
{
    static const float two[2] = {1, 2};
    const char *path =
        write_raw("{\"__metadata__\":{\"k\\u0000\":\"v\\u0000w\"},"
                  "\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"a\\u0000c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  two, sizeof two);
    cf_safetensors *f = open_ok(path);
    ck_assert_int_eq(cf_safetensors_count(f), 2);
    ck_assert_str_eq(cf_safetensors_name(f, 0), "a\xc0\x80"
                                                "b");
    ck_assert_str_eq(cf_safetensors_metadata(f, "k\xc0\x80"), "v\xc0\x80w");
    assert_values(cf_safetensors_get(f, "a\xc0\x80"
                                        "c"),
                  (float[]){2}, 0, 0);
    /* Saved back, the pair is written as \u0000 again. */
    const char *again = path_in(1, "again.safetensors");
    const char *names[] = {cf_safetensors_name(f, 0)};
    cf_tensor *ts[] = {cf_safetensors_get(f, names[0])};
    ck_assert_int_eq(cf_safetensors_save(again, 1, names, ts, "{\"m\": \"x\\u0000\"}"), CF_OK);
    cf_safetensors_close(f);
    size_t n;
    unsigned char *b = read_bytes(again, &n);
    ck_assert_ptr_nonnull(memmem(b, n, "\"a\\u0000b\"", 10));
    ck_assert_ptr_nonnull(memmem(b, n, "\"x\\u0000\"", 9));
    ck_assert_ptr_null(memmem(b, n, "\xc0\x80", 2));
    free(b);
    f = open_ok(again);
    ck_assert_str_eq(cf_safetensors_metadata(f, "m"), "x\xc0\x80");
    cf_safetensors_close(f);
}
END_TEST

START_TEST(messages_escape_control_bytes_from_the_file)
{
    static const unsigned char zeros[16];
    const char *path = write_raw("{\"evil\\nname\\u0007\\u0000\":{\"dtype\":\"F32\",\"shape\":[9],"
                                 "\"data_offsets\":[0,16]}}",
                                 zeros, sizeof zeros);
    expect_open_error(path, CF_ERR_FORMAT, "evil\\nname\\x07\\u0000");
    path = write_raw("{\"a\":{\"dtype\":\"F\\r32\",\"shape\":[4],\"data_offsets\":[0,16]}}", zeros,
                     sizeof zeros);
    cf_safetensors *f;
    ck_assert_int_eq(cf_safetensors_open(path, &f), CF_ERR_FORMAT);
    ck_assert_ptr_null(strchr(cf_error_message(), '\r'));
    assert_error(CF_ERR_FORMAT, "unknown dtype \"F\\r32\"", NULL);
}
END_TEST

/* ---- Files written by PyTorch (tests/golden/io.safetensors) ---- */

START_TEST(values_written_by_pytorch_read_back_exactly)
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

START_TEST(escaped_names_and_metadata_are_decoded_to_utf8)
{
    cf_safetensors *f = open_fixture("io.safetensors");
    assert_values(cf_safetensors_get(f, "caf\xc3\xa9 \"quoted\""), (float[]){1}, 0, 0);
    assert_values(cf_safetensors_get(f, "\xf0\x9f\x98\x80"), (float[]){2}, 0, 0);
    ck_assert_str_eq(cf_safetensors_metadata(f, "format"), "pt");
    ck_assert_str_eq(cf_safetensors_metadata(f, "note"), "line\nbreak, tab\t, check \xe2\x9c\x93");
    cf_safetensors_close(f);
}
END_TEST

START_TEST(other_dtypes_open_but_are_refused_when_requested)
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

/* ---- Lookups ---- */

START_TEST(a_missing_name_is_a_format_error_naming_it)
{
    const char *path = save_sample("s.safetensors");
    cf_safetensors *f = open_ok(path);
    ck_assert_ptr_null(cf_safetensors_get(f, "nope"));
    assert_error(CF_ERR_FORMAT, path, "no tensor named nope", NULL);
    cf_tensor *t = cf_tensor_new(CF_F32, CF_SHAPE(1));
    ck_assert_int_eq(cf_safetensors_read_into(f, "nope", t), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "no tensor named nope", NULL);
    cf_tensor_free(t);
    cf_safetensors_close(f);
}
END_TEST

START_TEST(read_into_a_wrong_shape_names_file_tensor_and_both_shapes)
{
    const char *path = save_sample("s.safetensors");
    cf_safetensors *f = open_ok(path);
    cf_tensor *t = cf_tensor_new(CF_F32, CF_SHAPE(3, 2));
    cf_fill(t, 9);
    ck_assert_int_eq(cf_safetensors_read_into(f, "w", t), CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, path, "w", "[2, 3]", "[3, 2]", NULL);
    assert_values(t, (float[]){9, 9, 9, 9, 9, 9}, 0, 0); /* untouched */
    cf_tensor_free(t);
    cf_safetensors_close(f);
}
END_TEST

START_TEST(read_into_a_wrong_dtype_is_a_dtype_error)
{
    const char *path = save_sample("s.safetensors");
    cf_safetensors *f = open_ok(path);
    cf_tensor *t = cf_tensor_new(CF_F32, CF_SHAPE(2));
    ck_assert_int_eq(cf_safetensors_read_into(f, "idx", t), CF_ERR_DTYPE);
    assert_error(CF_ERR_DTYPE, path, "idx", "I32", "float32", NULL);
    cf_tensor_free(t);
    cf_safetensors_close(f);
}
END_TEST

START_TEST(read_into_a_broadcast_view_is_refused)
{
    const char *path = save_sample("s.safetensors");
    cf_safetensors *f = open_ok(path);
    cf_tensor *v = cf_expand(cf_zeros(CF_SHAPE(1, 3)), CF_SHAPE(2, 3));
    ck_assert_int_eq(cf_safetensors_read_into(f, "w", v), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "broadcast", NULL);
    cf_safetensors_close(f);
}
END_TEST

START_TEST(read_into_an_empty_tensor_with_zero_strides_succeeds)
{
    const char *path = path_in(0, "e.safetensors");
    cf_tensor *e = cf_zeros(CF_SHAPE(5, 0));
    const char *names[] = {"e"};
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, &e, NULL), CF_OK);
    cf_safetensors *f = open_ok(path);
    cf_tensor *d = cf_zeros(CF_SHAPE(5, 0)); /* strides [0, 1] */
    ck_assert_int_eq(cf_safetensors_read_into(f, "e", d), CF_OK);
    cf_safetensors_close(f);
}
END_TEST

START_TEST(a_failing_call_reports_its_own_error_over_an_older_one)
{
    const char *path = save_sample("s.safetensors");
    cf_safetensors *f = open_ok(path);
    cf_item(cf_zeros(CF_SHAPE(2))); /* records CF_ERR_SHAPE, left unhandled */
    cf_tensor *t = cf_tensor_new(CF_F32, CF_SHAPE(1));
    ck_assert_int_eq(cf_safetensors_read_into(f, "nope", t), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "no tensor named nope", NULL);
    cf_tensor_free(t);
    cf_safetensors_close(f);
}
END_TEST

START_TEST(a_succeeding_call_returns_ok_and_keeps_an_older_error)
{
    const char *path = save_sample("s.safetensors");
    cf_safetensors *f = open_ok(path);
    cf_item(cf_zeros(CF_SHAPE(2)));
    cf_tensor *t = cf_tensor_new(CF_F32, CF_SHAPE(2, 3));
    ck_assert_int_eq(cf_safetensors_read_into(f, "w", t), CF_OK);
    assert_error(CF_ERR_SHAPE, "cf_item", NULL);
    cf_tensor_free(t);
    cf_safetensors_close(f);
}
END_TEST

/* ---- Corrupt files ---- */

#define T_OK "{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}"

START_TEST(a_missing_file_or_a_directory_is_an_io_error)
{
    expect_open_error(path_in(0, "absent.safetensors"), CF_ERR_IO, strerror(ENOENT));
    expect_open_error(dir, CF_ERR_IO, strerror(EISDIR));
    cf_safetensors *f = (cf_safetensors *)1;
    ck_assert_int_eq(cf_safetensors_open(NULL, &f), CF_ERR_ARG);
    ck_assert_ptr_null(f);
    assert_error(CF_ERR_ARG, NULL);
    ck_assert_int_eq(cf_safetensors_open(dir, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, NULL);
}
END_TEST

START_TEST(a_file_shorter_than_the_length_prefix_is_refused)
{
    const char *path = path_in(0, "short.safetensors");
    write_bytes(path, "", 0);
    expect_open_error(path, CF_ERR_FORMAT, "too short");
    write_bytes(path, "\x02\0\0\0\0\0\0", 7);
    expect_open_error(path, CF_ERR_FORMAT, "too short");
}
END_TEST

START_TEST(a_header_length_beyond_the_file_is_refused)
{
    const char *path = path_in(0, "long.safetensors");
    unsigned char b[8 + 2] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_bytes(path, b, sizeof b);
    expect_open_error(path, CF_ERR_FORMAT, "header length 100");
    memset(b, 0xff, 8); /* 2^64 - 1: must not wrap around */
    write_bytes(path, b, sizeof b);
    expect_open_error(path, CF_ERR_FORMAT, "exceeds");
}
END_TEST

START_TEST(a_header_longer_than_the_100_mb_limit_is_refused)
{
    /* A sparse file, so the test writes almost nothing. */
    const char *path = path_in(0, "huge.safetensors");
    uint64_t h = 100000001;
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(h >> (8 * i));
    write_bytes(path, b, 8);
    ck_assert_int_eq(truncate(path, (off_t)(8 + h + 16)), 0);
    expect_open_error(path, CF_ERR_FORMAT, "limit");
}
END_TEST

START_TEST(a_truncated_header_is_refused)
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

START_TEST(bad_json_is_refused)
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
    const char *path = path_in(0, "nul.safetensors");
    char b[8 + 64 + 16] = {0};
    const char *h = "{\"a\":" T_OK "}";
    size_t hl = (strlen(h) + 7) / 8 * 8;
    b[0] = (char)hl;
    memcpy(b + 8, h, strlen(h));
    write_bytes(path, b, 8 + hl + 16);
    expect_open_error(path, CF_ERR_FORMAT, "trailing characters");
}
END_TEST

START_TEST(valid_json_variants_are_accepted)
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
        cf_safetensors *f = open_ok(write_raw(good[i], data, sizeof data));
        ck_assert_ptr_nonnull(cf_safetensors_get(f, "a"));
        cf_safetensors_close(f);
    }
}
END_TEST

START_TEST(an_unknown_dtype_is_refused_naming_the_tensor)
{
    expect_bad_header("{\"w1\":{\"dtype\":\"F12\",\"shape\":[4],\"data_offsets\":[0,16]}}", "w1");
    expect_bad_header("{\"w1\":{\"dtype\":\"f32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                      "unknown dtype");
}
END_TEST

START_TEST(a_shape_that_does_not_match_its_byte_range_is_refused)
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

START_TEST(byte_ranges_outside_the_data_area_are_refused)
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

START_TEST(overlapping_or_gapped_byte_ranges_are_refused)
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

START_TEST(duplicate_tensor_names_are_refused)
{
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                      "duplicate tensor name a");
}
END_TEST

START_TEST(data_truncated_after_the_header_is_refused_naming_the_tensor)
{
    const char *path = save_sample("s.safetensors");
    size_t n;
    unsigned char *b = read_bytes(path, &n);
    write_bytes(path, b, n - 1);
    expect_open_error(path, CF_ERR_FORMAT, "outside the data area");
    free(b);
}
END_TEST

START_TEST(more_dims_than_cformer_holds_is_refused_on_get)
{
    static const unsigned char data[4];
    cf_safetensors *f = open_ok(write_raw(
        "{\"deep\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", data,
        4));
    ck_assert_ptr_null(cf_safetensors_get(f, "deep"));
    assert_error(CF_ERR_DIM, "deep", "9 dims", NULL);
    cf_safetensors_close(f);
}
END_TEST

/* ---- Fuzzing ---- */

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

START_TEST(truncating_a_valid_file_anywhere_gives_a_clean_error)
{
    const char *path = save_sample("s.safetensors");
    size_t n;
    unsigned char *b = read_bytes(path, &n);
    const char *cut = path_in(2, "cut.safetensors");
    for (size_t len = 0; len < n; len++) {
        write_bytes(cut, b, len);
        cf_safetensors *f = NULL;
        ck_assert_int_eq(cf_safetensors_open(cut, &f), CF_ERR_FORMAT);
        ck_assert_ptr_null(f);
        cf_error_clear();
    }
    write_bytes(cut, b, n);
    cf_safetensors_close(open_ok(cut));
    free(b);
}
END_TEST

START_TEST(flipping_bits_in_the_header_gives_a_clean_result)
{
    const char *path = save_sample("s.safetensors");
    size_t n;
    unsigned char *b = read_bytes(path, &n);
    size_t h = 0; /* the header length */
    for (int i = 7; i >= 0; i--)
        h = (h << 8) | b[i];
    const char *fz = path_in(2, "fuzz.safetensors");
    static const unsigned char masks[] = {0x01, 0x02, 0x08, 0x20, 0x80, 0xff};
    for (size_t pos = 0; pos < 8 + h; pos++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            b[pos] ^= masks[m];
            write_bytes(fz, b, n);
            open_anything(fz);
            b[pos] ^= masks[m];
        }
    }
    free(b);
}
END_TEST

START_TEST(random_bytes_after_a_plausible_prefix_give_a_clean_result)
{
    /* A tiny generator (xorshift) so the cases are the same on every run. */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    const char *alphabet = "{}[]\",:0123456789 \\uFIBOL_dtypeshapdaofs";
    size_t alen = strlen(alphabet);
    const char *fz = path_in(2, "rand.safetensors");
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
        write_bytes(fz, b, len);
        open_anything(fz);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io");
    TCase *tc = io_tcase("round_trip");
    tcase_add_test(tc, saved_tensors_load_with_the_same_dtypes_shapes_and_values);
    tcase_add_test(tc, names_come_back_in_the_order_they_were_saved);
    tcase_add_test(tc, strided_views_are_written_row_major);
    tcase_add_test(tc, read_into_fills_a_parameter_and_strided_destinations);
    tcase_add_test(tc, the_header_is_padded_to_eight_bytes_and_float_data_stays_aligned);
    tcase_add_test(tc, a_file_larger_than_a_mebibyte_round_trips);
    tcase_add_test(tc, a_file_with_no_tensors_round_trips);
    tcase_add_test(tc, names_with_quotes_and_control_characters_round_trip);
    suite_add_tcase(s, tc);

    tc = io_tcase("metadata");
    tcase_add_test(tc, metadata_round_trips_with_escapes_and_unicode);
    tcase_add_test(tc, a_file_without_metadata_has_none);
    tcase_add_test(tc, invalid_metadata_json_is_an_argument_error_and_writes_nothing);
    suite_add_tcase(s, tc);

    tc = io_tcase("save_errors");
    tcase_add_test(tc, duplicate_names_are_an_argument_error);
    tcase_add_test(tc, null_and_reserved_arguments_are_argument_errors);
    tcase_add_test(tc, saving_into_a_missing_directory_is_an_io_error_naming_the_path);
    suite_add_tcase(s, tc);

    tc = io_tcase("atomic_save");
    tcase_add_test(tc, saving_over_a_file_replaces_it);
    tcase_add_test(tc, a_save_that_fails_midway_keeps_the_old_file_and_no_temporary);
    tcase_add_test(tc, a_save_whose_rename_fails_leaves_no_temporary);
    tcase_add_test(tc, a_save_into_a_read_only_directory_fails_cleanly);
    tcase_add_test(tc, a_save_whose_header_cannot_grow_returns_nomem);
    tcase_add_test(tc, saving_over_a_file_keeps_its_permissions);
    tcase_add_test(tc, saving_to_a_symbolic_link_writes_through_to_its_target);
    tcase_add_test(tc, saving_to_a_link_to_nothing_is_refused_saying_so);
    tcase_add_test(tc, saving_over_a_directory_or_a_fifo_is_refused);
    tcase_add_test(tc, a_save_removes_the_stale_temporaries_of_its_target_only);
    suite_add_tcase(s, tc);

    tc = io_tcase("pytorch_files");
    tcase_add_test(tc, values_written_by_pytorch_read_back_exactly);
    tcase_add_test(tc, escaped_names_and_metadata_are_decoded_to_utf8);
    tcase_add_test(tc, other_dtypes_open_but_are_refused_when_requested);
    suite_add_tcase(s, tc);

    tc = io_tcase("lookup_errors");
    tcase_add_test(tc, a_missing_name_is_a_format_error_naming_it);
    tcase_add_test(tc, read_into_a_wrong_shape_names_file_tensor_and_both_shapes);
    tcase_add_test(tc, read_into_a_wrong_dtype_is_a_dtype_error);
    tcase_add_test(tc, read_into_a_broadcast_view_is_refused);
    tcase_add_test(tc, read_into_an_empty_tensor_with_zero_strides_succeeds);
    tcase_add_test(tc, a_failing_call_reports_its_own_error_over_an_older_one);
    tcase_add_test(tc, a_succeeding_call_returns_ok_and_keeps_an_older_error);
    tcase_add_test(tc, more_dims_than_cformer_holds_is_refused_on_get);
    suite_add_tcase(s, tc);

    tc = io_tcase("corrupt_files");
    tcase_add_test(tc, a_missing_file_or_a_directory_is_an_io_error);
    tcase_add_test(tc, opening_a_fifo_is_refused_without_waiting_for_a_writer);
    tcase_add_test(tc, u0000_in_names_and_metadata_is_accepted_as_c0_80);
    tcase_add_test(tc, messages_escape_control_bytes_from_the_file);
    tcase_add_test(tc, a_file_shorter_than_the_length_prefix_is_refused);
    tcase_add_test(tc, a_header_length_beyond_the_file_is_refused);
    tcase_add_test(tc, a_header_longer_than_the_100_mb_limit_is_refused);
    tcase_add_test(tc, a_truncated_header_is_refused);
    tcase_add_test(tc, bad_json_is_refused);
    tcase_add_test(tc, valid_json_variants_are_accepted);
    tcase_add_test(tc, an_unknown_dtype_is_refused_naming_the_tensor);
    tcase_add_test(tc, a_shape_that_does_not_match_its_byte_range_is_refused);
    tcase_add_test(tc, byte_ranges_outside_the_data_area_are_refused);
    tcase_add_test(tc, overlapping_or_gapped_byte_ranges_are_refused);
    tcase_add_test(tc, duplicate_tensor_names_are_refused);
    tcase_add_test(tc, data_truncated_after_the_header_is_refused_naming_the_tensor);
    suite_add_tcase(s, tc);

    tc = io_tcase("fuzz");
    tcase_add_test(tc, truncating_a_valid_file_anywhere_gives_a_clean_error);
    tcase_add_test(tc, flipping_bits_in_the_header_gives_a_clean_result);
    tcase_add_test(tc, random_bytes_after_a_plausible_prefix_give_a_clean_result);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
