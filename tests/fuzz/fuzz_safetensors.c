/* Fuzz target: the safetensors reader. Opens the input as a file; when it
 * opens, reads every tensor with cf_safetensors_get and with
 * cf_safetensors_read_into (which must agree byte for byte), and into
 * destinations of the wrong shape and dtype (which must fail and leave
 * them as they were). A failed call must record its error with a message.
 * Seeds: tests/fuzz/corpus/safetensors (tests/fuzz/seeds.c). */
#include "tests/fuzz/fuzz.h"

#include <string.h>

static cf_arena *arena;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    arena = cf_arena_new(1 << 20);
    cf_arena_use(arena);
    return 0;
}

/* A tensor like t, filled with a byte pattern no valid read produces in
 * full. */
static cf_tensor *sentinel(cf_dtype dtype, int ndim, const int64_t *shape)
{
    cf_tensor *d = cf_empty(dtype, ndim, shape);
    FUZZ_ASSERT(d != NULL, "cf_empty: %s", cf_error_message());
    memset(d->data, 0xA5, (size_t)cf_numel(d) * cf_dtype_size(dtype));
    return d;
}

static bool untouched(const cf_tensor *d)
{
    const unsigned char *p = d->data;
    size_t n = (size_t)cf_numel(d) * cf_dtype_size(d->dtype);
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0xA5)
            return false;
    return true;
}

static void read_tensor(const cf_safetensors *f, const char *name)
{
    static const cf_status get_errors[] = {CF_ERR_DTYPE, CF_ERR_DIM, CF_ERR_NOMEM};
    cf_tensor *t = cf_safetensors_get(f, name);
    if (!t) {
        fuzz_check_failure("cf_safetensors_get", cf_error(), 3, get_errors);
        return;
    }
    fuzz_check_success("cf_safetensors_get");
    FUZZ_ASSERT(cf_is_contiguous(t) && t->ndim >= 0 && t->ndim <= CF_MAX_DIMS, "tensor %s", name);
    size_t bytes = (size_t)cf_numel(t) * cf_dtype_size(t->dtype);
    if (t->dtype == CF_BOOL)
        for (size_t i = 0; i < bytes; i++)
            FUZZ_ASSERT(((unsigned char *)t->data)[i] <= 1, "bool tensor %s holds a byte > 1",
                        name);

    cf_tensor *d = sentinel(t->dtype, t->ndim, t->shape);
    cf_status st = cf_safetensors_read_into(f, name, d);
    FUZZ_ASSERT(st == CF_OK, "read_into %s after get: %s", name, cf_error_message());
    fuzz_check_success("cf_safetensors_read_into");
    FUZZ_ASSERT(memcmp(d->data, t->data, bytes) == 0, "get and read_into disagree on %s", name);

    static const cf_status shape_errors[] = {CF_ERR_SHAPE};
    int64_t other = cf_numel(t) + 1;
    d = sentinel(t->dtype, 1, &other);
    fuzz_check_failure("read_into a wrong shape", cf_safetensors_read_into(f, name, d), 1,
                       shape_errors);
    FUZZ_ASSERT(untouched(d), "read_into a wrong shape wrote into it (%s)", name);

    static const cf_status dtype_errors[] = {CF_ERR_DTYPE};
    d = sentinel(t->dtype == CF_F32 ? CF_I32 : CF_F32, t->ndim, t->shape);
    fuzz_check_failure("read_into a wrong dtype", cf_safetensors_read_into(f, name, d), 1,
                       dtype_errors);
    FUZZ_ASSERT(untouched(d), "read_into a wrong dtype wrote into it (%s)", name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const cf_status open_errors[] = {CF_ERR_FORMAT, CF_ERR_NOMEM};
    const char *path = fuzz_file(data, size);
    cf_error_clear();
    cf_safetensors *f = (cf_safetensors *)&f;
    cf_status st = cf_safetensors_open(path, &f);
    if (st != CF_OK) {
        FUZZ_ASSERT(f == NULL, "a failed open left a handle");
        fuzz_check_failure("cf_safetensors_open", st, 2, open_errors);
        return 0;
    }
    fuzz_check_success("cf_safetensors_open");
    int n = cf_safetensors_count(f);
    FUZZ_ASSERT(n >= 0 && cf_safetensors_name(f, n) == NULL && cf_safetensors_name(f, -1) == NULL,
                "count %d", n);
    for (int i = 0; i < n; i++) {
        const char *name = cf_safetensors_name(f, i);
        FUZZ_ASSERT(name != NULL, "tensor %d has no name", i);
        read_tensor(f, name);
        cf_arena_reset(arena);
    }
    static const cf_status missing[] = {CF_ERR_FORMAT};
    FUZZ_ASSERT(cf_safetensors_get(f, "__metadata__") == NULL, "__metadata__ read as a tensor");
    fuzz_check_failure("get __metadata__", cf_error(), 1, missing);
    const char *v = cf_safetensors_metadata(f, "format");
    FUZZ_ASSERT(v == NULL || strlen(v) < size, "metadata longer than the file");
    cf_safetensors_close(f);
    cf_arena_reset(arena);
    return 0;
}
