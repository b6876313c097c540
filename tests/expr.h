/* Ops written as text, for the golden cases of tests/golden/gen_golden.py.
 *
 * An expression names cformer's ops without the cf_ prefix and reads the
 * inputs x0, x1, ...: "matmul(transpose(x0, 0, 1), x1)", "sum(x0, [0, 2],
 * 1)". gen_golden.py evaluates the same text with PyTorch and stores it in
 * ops.safetensors' metadata under the case's name; the case's tensors have
 * the layout of every other golden fixture (<name>.in<i>, .out, .dout,
 * .grad<i>; see assert_golden_case in util.h). */
#ifndef CF_TEST_EXPR_H
#define CF_TEST_EXPR_H

#include <check.h>

#include "cformer/cformer.h"

/* Evaluates expr over the n inputs; returns its tensor (in the arena), or
 * NULL with the reason written to err (size bytes). */
cf_tensor *expr_eval(const char *expr, cf_tensor *const *in, int n, char *err, size_t size);

/* How many cases of fixture file (under tests/golden) have a name starting
 * with prefix and an expression; -1 if the file cannot be opened. Callable
 * outside a test (it asserts nothing), so run_tests can size a loop
 * test (TEST_WITH's .golden). */
int golden_expr_count(const char *file, const char *prefix);

/* Runs the i-th such case (in the file's order): assert_golden_case with
 * its expression, then a gradient check of the expression at the fixture's
 * inputs (assert_gradcheck, tolerance 1e-2), unless the generator recorded
 * in "<name>.kink" why the inputs sit where the op has no derivative. Fails
 * when there is no i-th case. */
void assert_golden_expr(const char *file, const char *prefix, int i);

#endif
