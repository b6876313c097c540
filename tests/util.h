/* Shared helpers for the check suites. */
#ifndef CF_TEST_UTIL_H
#define CF_TEST_UTIL_H

#include <check.h>

#include "cformer/cformer.h"

/* Checked fixture: a fresh arena in use and a clear error state per test;
 * the teardown fails the test if an error was left recorded. */
void arena_setup(void);
void arena_teardown(void);
/* A TCase with the arena fixture. */
TCase *tcase(const char *name);
/* A TCase with the arena fixture and a scratch directory: an empty
 * directory (under $TMPDIR, else /tmp) made before each test and removed
 * with its files after it. */
TCase *tcase_scratch(const char *name);
/* The path of file in the scratch directory, or of the directory itself
 * for NULL; valid until four more calls. */
const char *scratch_path(const char *file);

#define ASSERT_NO_ERROR()                                                                          \
    ck_assert_msg(cf_error() == CF_OK, "unexpected error: %s", cf_error_message())

/* Fails unless every element of t is within atol + rtol*|want| of want[i]
 * (row-major), naming the first offending element. */
void assert_values(const cf_tensor *t, const float *want, float atol, float rtol);
/* The same against another tensor of the same shape. */
void assert_close(const cf_tensor *t, const cf_tensor *want, float atol, float rtol);
/* Fails unless the recorded error is `status` and its message contains
 * every one of the NULL-terminated fragments; then clears the error. */
void assert_error(cf_status status, ...);

/* Gradient check of f at the inputs with central differences (eps 1e-3),
 * failing when any input's largest error exceeds tol (relative to
 * max(|numeric|, 1)). */
void assert_gradcheck(cf_gradcheck_fn f, void *ud, int n, cf_tensor *const *inputs, float tol);

/* Runs fn (which builds its own inputs from fixed seeds and writes n floats
 * of results) with 1 and with 4 threads; fails unless the two are
 * bit-identical. Restores the thread count. */
void assert_thread_independent(void (*fn)(float *out), int64_t n);

/* A float tensor of the given shape with uniform values in [lo, hi) from a
 * generator seeded with seed, requiring a gradient. */
cf_tensor *rand_leaf(uint64_t seed, float lo, float hi, int ndim, const int64_t *shape);

/* Runs the suite; returns the process exit status. */
int run_suite(Suite *s);

#include "cformer/io.h"

/* Opens a fixture file under tests/golden (FIXTURES); fails the test if it
 * cannot. Close with cf_safetensors_close. */
cf_safetensors *open_fixture(const char *file);
/* The named tensor of a fixture, in the arena; fails the test if absent. */
cf_tensor *fixture(const cf_safetensors *f, const char *name);
/* Compares t with the named fixture tensor: |t - want| <= 1e-5 + 1e-4 *
 * |want| elementwise (the golden tolerance; NaN matches NaN, infinities
 * match exactly), reporting the largest error. */
void assert_golden(const cf_tensor *t, const cf_safetensors *f, const char *name);
/* The same against a tensor want, failure messages naming name. */
void assert_golden_tensor(const cf_tensor *t, const cf_tensor *want, const char *name);

/* Builds an op's output from its inputs (the fixture's leaves). */
typedef cf_tensor *(*golden_build)(cf_tensor *const *in, const void *ud);
/* Runs golden case name of fixture file (under tests/golden), in the layout
 * of gen_math.py, gen_index.py and gen_rnn.py: the leaves name.in<i> (float
 * ones requiring a gradient) go to build; its output is compared with
 * name.out; a float output is then run backward from name.dout and each
 * float leaf's gradient compared with name.grad<i>, while any other output
 * must need no gradient. At most 8 inputs. */
void assert_golden_case(const char *file, const char *name, int nin, golden_build build,
                        const void *ud);
/* A case table: each case's name, input count and builder. */
typedef struct {
    const char *name;
    int nin;
    cf_tensor *(*fn)(cf_tensor *const *in);
} golden_op;
/* assert_golden_case of every case of the table whose name starts with
 * prefix; fails if there is none. */
void assert_golden_ops(const char *file, const golden_op *cases, int n, const char *prefix);

/* Reads every parameter of m from the fixture tensor "<prefix>.<name>";
 * fails the test naming that tensor if it cannot. */
void load_params(cf_module *m, const cf_safetensors *f, const char *prefix);
/* assert_golden of every parameter's gradient against "<prefix>.<name>"
 * (a prefix such as "case.grad"). */
void assert_param_grads(cf_module *m, const cf_safetensors *f, const char *prefix);
/* Saves m's parameters to path under their names, leaving out the one
 * named skip and writing replacement in place of the one named replace
 * (either name may be NULL); fails the test if it cannot. */
void save_params(cf_module *m, const char *path, const char *skip, const char *replace,
                 cf_tensor *replacement);

#endif
