/* Shared helpers for the check suites. */
#ifndef CF_TEST_UTIL_H
#define CF_TEST_UTIL_H

#include <check.h>

#include "cformer/cformer.h"

/* Checked fixture: a fresh arena in use and a clear error state per test;
 * the teardown fails the test if an error was left recorded. */
void arena_setup(void);
void arena_teardown(void);
/* Tests register themselves where they stand, so adding one is writing it:
 *
 *     TEST(name) { ... } END_TEST                 // arena fixture, 60 s
 *     SCRATCH_TEST(name) { ... } END_TEST         // and a scratch directory
 *     TEST_WITH(name, .loop = n, .scratch = true) { ... _i ... } END_TEST
 *
 * run_tests() runs a file's tests in the order they stand, each its own
 * test case named after it, with the arena fixture (arena_setup) and then
 * the options':
 * - loop: a loop test over _i = 0 .. loop-1 (a table's rows);
 * - golden: a loop over the expression cases of ops.safetensors whose
 *   names start so (tests/expr.h);
 * - scratch: a scratch directory, an empty directory (under $TMPDIR,
 *   else /tmp) made before each test and removed with its files after it;
 * - timeout: seconds instead of 60;
 * - setup, teardown: one more checked fixture, run after the others.
 * tests/main.c's main() calls run_tests(false); the suite is named after
 * the file (tests/test_math.c: "math"). */
typedef struct {
    int loop;
    const char *golden;
    bool scratch;
    int timeout;
    SFun setup, teardown;
} test_opts;

#define TEST_WITH(name, ...)                                                                       \
    static const TTest *name;                                                                      \
    __attribute__((constructor)) static void name##_register(void)                                 \
    {                                                                                              \
        test_register(name, (test_opts){__VA_ARGS__});                                             \
    }                                                                                              \
    START_TEST(name)
#define TEST(name)         TEST_WITH(name, 0)
#define SCRATCH_TEST(name) TEST_WITH(name, .scratch = true)

/* The number of elements of array a, as an int (a loop test's count). */
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Adds t to the file's tests (TEST_WITH does). */
void test_register(const TTest *t, test_opts o);
/* Runs the registered tests; fork: each in a child process even under
 * CK_FORK=no. Returns the process exit status. */
int run_tests(bool fork);

/* The path of file in the scratch directory, or of the directory itself
 * for NULL; valid until eight more calls. */
const char *scratch_path(const char *file);
/* The number of entries of the scratch directory whose names contain frag
 * ("" for all). */
int scratch_count(const char *frag);

/* The bytes of the file at path, malloc'd with a 0 after them; *size
 * receives their count. Fails the test if the file cannot be read. */
unsigned char *read_file(const char *path, size_t *size);
/* Writes n bytes to path, replacing it; fails the test if it cannot. */
void write_file(const char *path, const void *bytes, size_t n);

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

/* The graph that made t in Graphviz DOT (cf_graph_dot), malloc'd (free
 * it); fails the test if it cannot be written. */
char *dot_text(cf_tensor *t);
/* Makes p's gradient exactly g (the gradient of sum(p * g)). */
void set_grad(cf_tensor *p, cf_tensor *g);

/* Fails unless t is not NULL and has exactly the given shape. */
void assert_shape(const cf_tensor *t, int ndim, const int64_t *shape);
/* The values 0, 1, ..., n-1 in the given shape; no gradient. */
cf_tensor *arange_as(int ndim, const int64_t *shape);

/* The smallest, largest and mean value of t's elements and their
 * (population) variance. */
typedef struct {
    double min, max, mean, var;
} value_stats;
value_stats stats_of(const cf_tensor *t);
/* Fails unless every element of t equals want. */
void assert_all_equal(const cf_tensor *t, float want);

/* Whether a and b have the same shape, dtype and bytes (both contiguous). */
bool same_bits(const cf_tensor *a, const cf_tensor *b);
/* t's values in row-major order, malloc'd (free them). */
float *row_major(const cf_tensor *t);

#include "cformer/io.h"

/* The path of file under tests/golden (the source tree's, FIXTURES);
 * valid until four more calls. Callable outside a test. */
const char *fixture_path(const char *file);
/* Opens a fixture file under tests/golden (fixture_path); fails the test if it
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
 * of goldlib.case: the leaves name.in<i> (float ones requiring a gradient)
 * go to build; its output is compared with name.out; a float output is
 * then run backward from name.dout and each float leaf's gradient compared
 * with name.grad<i>, and build is gradient-checked at those inputs
 * (assert_gradcheck, tolerance 1e-2) unless the fixture's metadata
 * "<name>.kink" says why not (inputs where the op has no derivative); any
 * other output must need no gradient. At most 8 inputs. */
void assert_golden_case(const char *file, const char *name, int nin, golden_build build,
                        const void *ud);
/* A case table: each case's name, input count and builder. */
typedef struct {
    const char *name;
    int nin;
    cf_tensor *(*fn)(cf_tensor *const *in);
} golden_op;
/* assert_golden_case of a row of a golden_op table. */
void assert_golden_op(const char *file, const golden_op *c);

/* Safetensors files in the scratch directory, for the tests of the reader
 * and the writer. */
/* Writes raw.safetensors from a header text (its length prefixed as is, no
 * padding) and ndata data bytes; returns its path. */
const char *write_raw_safetensors(const char *header, const void *data, size_t ndata);
/* Saves a small valid file under name: "w" [2, 3] float 1..6, "idx" [2]
 * int32 7, -8, "mask" [3] bool 1, 0, 1, metadata {"k": "v"}; returns its
 * path. */
const char *save_sample_safetensors(const char *name);
/* Opens path; fails the test if it cannot. */
cf_safetensors *open_safetensors(const char *path);
/* Fails unless opening path fails with status s and a message naming the
 * file and containing frag (NULL: any); then clears the error. */
void expect_open_error(const char *path, cf_status s, const char *frag);
/* Fails unless a file of this header and 16 data bytes is refused as
 * corrupt (CF_ERR_FORMAT) with a message containing frag. */
void expect_bad_header(const char *header, const char *frag);
/* Whether a and b have the same shape and float values (any strides). */
bool same_values(const cf_tensor *a, const cf_tensor *b);

/* The names of m's tensors (parameters and buffers, as cf_module_visit
 * gives them) joined with commas into buf of size bytes; returns buf. */
const char *param_names(cf_module *m, char *buf, size_t size);
/* Reads every parameter of m from the fixture tensor "<prefix>.<name>";
 * fails the test naming that tensor if it cannot. */
void load_params(cf_module *m, const cf_safetensors *f, const char *prefix);
/* assert_golden of every parameter's gradient against "<prefix>.<name>"
 * (a prefix such as "case.grad"). */
void assert_param_grads(cf_module *m, const cf_safetensors *f, const char *prefix);
/* A root module "Params" with the n parameters names[i], each shaped and
 * valued as the fixture tensor "<prefix>.<names[i]>", written to p[i]. */
cf_module *fixture_params(const cf_safetensors *f, const char *prefix, int n,
                          const char *const *names, cf_tensor **p);
/* Saves m's parameters to path under their names, leaving out the one
 * named skip and writing replacement in place of the one named replace
 * (either name may be NULL); fails the test if it cannot. */
void save_params(cf_module *m, const char *path, const char *skip, const char *replace,
                 cf_tensor *replacement);

#endif
