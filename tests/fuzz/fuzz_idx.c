/* Fuzz target: the IDX reader of the examples (examples/common/idx.c).
 * Parses the input from memory with ex_idx_parse, then writes it to a file
 * and reads that with ex_idx_load, which also inflates gzip data. A parse
 * that succeeds must describe the buffer exactly (its views inside it, the
 * data filling it to the end); a failed call must record its error with a
 * message. Seeds: tests/fuzz/corpus/idx. */
#include "examples/common/idx.h"
#include "tests/fuzz/fuzz.h"

static void check_parsed(const ex_idx *x, const uint8_t *buf, size_t len, const char *what)
{
    FUZZ_ASSERT(x->ndim >= 1 && x->ndim <= EX_IDX_MAX_DIMS, "%s: ndim %d", what, x->ndim);
    size_t n = 1;
    for (int i = 0; i < x->ndim; i++) {
        FUZZ_ASSERT(x->dims[i] > 0, "%s: dim %d is 0", what, i);
        FUZZ_ASSERT(n <= SIZE_MAX / x->dims[i], "%s: sizes overflow", what);
        n *= x->dims[i];
    }
    FUZZ_ASSERT(n == x->size, "%s: size %zu, dims give %zu", what, x->size, n);
    FUZZ_ASSERT(x->data >= buf && x->data + x->size == buf + len,
                "%s: the data does not end the buffer", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const cf_status errors[] = {CF_ERR_FORMAT};
    static const cf_status load_errors[] = {CF_ERR_FORMAT, CF_ERR_NOMEM};
    cf_error_clear();
    ex_idx x;
    cf_status parsed = ex_idx_parse(data, size, "fuzz", &x);
    if (parsed == CF_OK) {
        fuzz_check_success("ex_idx_parse");
        check_parsed(&x, data, size, "ex_idx_parse");
    } else {
        fuzz_check_failure("ex_idx_parse", parsed, 1, errors);
    }

    ex_idx_file f = {0};
    cf_status st = ex_idx_load(fuzz_file(data, size), NULL, &f);
    if (st == CF_OK) {
        fuzz_check_success("ex_idx_load");
        FUZZ_ASSERT(f.buf != NULL, "ex_idx_load: no buffer");
        check_parsed(&f.idx, f.buf, (size_t)(f.idx.data + f.idx.size - f.buf), "ex_idx_load");
        ex_idx_file_free(&f);
    } else {
        fuzz_check_failure("ex_idx_load", st, 2, load_errors);
        FUZZ_ASSERT(f.buf == NULL, "a failed ex_idx_load kept its buffer");
    }
    /* Plain data (not gzip) must load exactly as it parses. */
    if (size < 2 || data[0] != 0x1f || data[1] != 0x8b)
        FUZZ_ASSERT((st == CF_OK) == (parsed == CF_OK), "ex_idx_load and ex_idx_parse disagree");
    return 0;
}
