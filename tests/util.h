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

#define ASSERT_NO_ERROR() ck_assert_msg(cf_error() == CF_OK, "unexpected error: %s", cf_error_message())

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
 * |want| elementwise (the golden tolerance), reporting the largest error. */
void assert_golden(const cf_tensor *t, const cf_safetensors *f, const char *name);

#endif
