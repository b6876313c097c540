/* autograd/softmax.c: softmax and log-softmax. Values, gradients, PyTorch
 * references (tests/golden/gen_softmax.py), edge sizes, thread-count
 * independence and errors. */
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers ---- */

/* A tensor used by two ops: the second backward must add to the first. */
static cf_tensor *softmax_both_dims(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_add(cf_softmax(in[0], 0), cf_log_softmax(in[0], 1));
}

/* ---- PyTorch references ---- */

typedef enum { SAME, TRANSPOSED, SLICED, EXPANDED } view_kind;

/* The cases of gen_softmax.py, each run for softmax and for log_softmax,
 * with the same view and dim. */
static const struct {
    const char *name;
    view_kind view;
    int dim;
} GOLDEN[] = {
    {"dim0_transposed", TRANSPOSED, 0},
    {"dim1_transposed", TRANSPOSED, 1},
    {"dimlast_transposed", TRANSPOSED, -1},
    {"dimlast", SAME, -1},
    {"large", SAME, -1},
    {"large_dim0", SAME, 0},
    {"rows_of_1", SAME, -1},
    {"rows_of_13", SAME, -1},
    {"long_rows", SAME, 1},
    {"sliced", SLICED, -1},
    {"expanded", EXPANDED, 1},
};

typedef struct {
    bool log;
    view_kind view;
    int dim;
} golden_arg;

static cf_tensor *softmax_build(cf_tensor *const *in, const void *ud)
{
    const golden_arg *a = ud;
    cf_tensor *x = a->view == TRANSPOSED ? cf_transpose(in[0], 0, 2)
                   : a->view == SLICED   ? cf_slice(in[0], 1, 0, 10, 2)
                   : a->view == EXPANDED ? cf_expand(in[0], CF_SHAPE(3, 4))
                                         : in[0];
    return a->log ? cf_log_softmax(x, a->dim) : cf_softmax(x, a->dim);
}

/* Row i of GOLDEN, of log_softmax if log, else of softmax. */
static void assert_golden_row(bool log, int i)
{
    char name[64];
    snprintf(name, sizeof name, "%s.%s", log ? "log_softmax" : "softmax", GOLDEN[i].name);
    golden_arg a = {log, GOLDEN[i].view, GOLDEN[i].dim};
    assert_golden_case("softmax.safetensors", name, 1, softmax_build, &a);
}

/* ---- softmax ---- */

TEST(softmax_matches_the_definition)
{
    cf_tensor *x = cf_from_array((float[]){1, 2, 3, -1, 0, 1}, CF_SHAPE(2, 3));
    float e = expf(1), z = 1 + e + e * e;
    assert_values(cf_softmax(x, 1), (float[]){1 / z, e / z, e * e / z, 1 / z, e / z, e * e / z}, 0,
                  2e-7f);
}
END_TEST

TEST(softmax_rows_sum_to_one)
{
    cf_tensor *x = rand_leaf(1, -5, 5, CF_SHAPE(7, 301));
    cf_tensor *s = cf_sum(cf_softmax(x, -1), CF_DIMS(-1), false);
    float ones[7] = {1, 1, 1, 1, 1, 1, 1};
    assert_values(s, ones, 1e-6f, 0);
}
END_TEST

TEST(softmax_is_stable_for_large_inputs)
{
    cf_tensor *big =
        cf_from_array((float[]){1000, 1001, 1002, -1000, -1001, -1002}, CF_SHAPE(2, 3));
    cf_tensor *small = cf_from_array((float[]){0, 1, 2, 0, -1, -2}, CF_SHAPE(2, 3));
    assert_close(cf_softmax(big, 1), cf_softmax(small, 1), 0, 0);
}
END_TEST

TEST(softmax_gives_zero_where_the_input_is_minus_infinity)
{
    cf_tensor *x = cf_from_array((float[]){0, -INFINITY, 0, -INFINITY}, CF_SHAPE(4));
    assert_values(cf_softmax(x, 0), (float[]){0.5f, 0, 0.5f, 0}, 0, 0);
}
END_TEST

TEST(softmax_of_a_row_of_minus_infinity_or_nan_is_nan)
{
    cf_tensor *x = cf_from_array((float[]){-INFINITY, -INFINITY, 1, NAN}, CF_SHAPE(2, 2));
    float *y = row_major(cf_softmax(x, 1));
    for (int i = 0; i < 4; i++)
        ck_assert_msg(isnan(y[i]), "element %d is %g", i, y[i]);
    free(y);
}
END_TEST

/* The exponentials are rounded like expf, and summed in double: each output
 * is within 2 ulp of the exact softmax, even in rows of thousands. */
TEST(softmax_of_long_rows_is_accurate_to_float_rounding)
{
    int64_t n = 10007;
    cf_tensor *x = rand_leaf(2, -30, 30, CF_SHAPE(2, n));
    float *xv = row_major(x), *y = row_major(cf_softmax(x, 1));
    for (int r = 0; r < 2; r++) {
        const float *xr = xv + r * n;
        double m = -INFINITY, s = 0;
        for (int64_t i = 0; i < n; i++)
            m = fmax(m, xr[i]);
        for (int64_t i = 0; i < n; i++)
            s += exp(xr[i] - m);
        for (int64_t i = 0; i < n; i++) {
            double want = exp(xr[i] - m) / s, got = y[r * n + i];
            ck_assert_msg(fabs(got - want) <= 2 * 0x1p-24 * want + 0x1p-149,
                          "row %d element %lld: %.9g, want %.12g", r, (long long)i, got, want);
        }
    }
    free(xv);
    free(y);
}
END_TEST

TEST(softmax_along_any_dim_of_a_view_equals_it_on_a_contiguous_copy)
{
    cf_tensor *x = rand_leaf(3, -3, 3, CF_SHAPE(4, 5, 6));
    cf_tensor *views[] = {cf_transpose(x, 0, 2), cf_slice(x, 2, 1, 6, 2),
                          cf_permute(x, (int[]){1, 2, 0})};
    for (int v = 0; v < 3; v++)
        for (int dim = -3; dim < 3; dim++) {
            cf_tensor *copy = cf_contiguous(views[v]);
            ck_assert(same_bits(cf_softmax(views[v], dim), cf_softmax(copy, dim)));
            ck_assert(same_bits(cf_log_softmax(views[v], dim), cf_log_softmax(copy, dim)));
        }
}
END_TEST

TEST(softmax_of_a_size1_dim_is_one)
{
    cf_tensor *x = rand_leaf(4, -3, 3, CF_SHAPE(3, 1, 2));
    assert_values(cf_softmax(x, 1), (float[]){1, 1, 1, 1, 1, 1}, 0, 0);
    cf_backward_with(cf_softmax(x, 1), cf_ones(CF_SHAPE(3, 1, 2)));
    assert_values(x->grad, (float[]){0, 0, 0, 0, 0, 0}, 0, 0);
}
END_TEST

TEST(softmax_of_a_0d_tensor_is_one)
{
    cf_tensor *x = cf_requires_grad(cf_scalar(5), true);
    cf_tensor *y = cf_softmax(x, 0);
    assert_shape(y, 0, NULL);
    ck_assert_float_eq(cf_item(y), 1);
    cf_backward(y);
    ck_assert_float_eq(cf_item(x->grad), 0);
}
END_TEST

TEST(softmax_of_an_empty_tensor_is_empty)
{
    cf_tensor *a = cf_requires_grad(cf_zeros(CF_SHAPE(0, 3)), true);
    cf_tensor *b = cf_requires_grad(cf_zeros(CF_SHAPE(2, 0)), true);
    cf_tensor *ya = cf_softmax(a, 1), *yb = cf_log_softmax(b, 1);
    assert_shape(ya, 2, (int64_t[]){0, 3});
    assert_shape(yb, 2, (int64_t[]){2, 0});
    ck_assert_int_eq(cf_backward_with(ya, cf_zeros(CF_SHAPE(0, 3))), CF_OK);
    ck_assert_int_eq(cf_backward_with(yb, cf_zeros(CF_SHAPE(2, 0))), CF_OK);
}
END_TEST

TEST(softmax_gradient_accumulates_over_uses)
{
    cf_tensor *x = rand_leaf(6, -2, 2, CF_SHAPE(4, 3));
    assert_gradcheck(softmax_both_dims, NULL, 1, &x, 1e-2f);
}
END_TEST

TEST(softmax_is_the_same_for_any_thread_count)
{
    int saved = cf_get_num_threads();
    cf_tensor *x = rand_leaf(7, -8, 8, CF_SHAPE(64, 33, 40));
    cf_tensor *dy = cf_uniform(NULL, -1, 1, CF_SHAPE(64, 33, 40));
    cf_tensor *want[6];
    for (int t = 0; t < 2; t++) {
        cf_set_num_threads(t ? 4 : 1);
        for (int dim = 0; dim < 3; dim++) {
            cf_zero_grad(x);
            cf_tensor *y = dim == 1 ? cf_log_softmax(x, dim) : cf_softmax(x, dim);
            cf_backward_with(y, dy);
            if (t == 0) {
                want[2 * dim] = y;
                want[2 * dim + 1] = cf_clone(x->grad);
            } else {
                ck_assert_msg(same_bits(y, want[2 * dim]), "dim %d forward", dim);
                ck_assert_msg(same_bits(x->grad, want[2 * dim + 1]), "dim %d backward", dim);
            }
        }
    }
    cf_set_num_threads(saved);
}
END_TEST

TEST_WITH(softmax_matches_pytorch_and_finite_differences, .loop = COUNT(GOLDEN))
{
    assert_golden_row(false, _i);
}
END_TEST

TEST(softmax_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_softmax(cf_zeros(CF_SHAPE(2, 3)), 2));
    assert_error(CF_ERR_DIM, "cf_softmax", "dim 2", NULL);
    ck_assert_ptr_null(cf_softmax(cf_zeros(CF_SHAPE(2, 3)), -3));
    assert_error(CF_ERR_DIM, "cf_softmax", "dim -3", NULL);
    ck_assert_ptr_null(cf_softmax(cf_from_ints((int32_t[]){1, 2}, CF_SHAPE(2)), 0));
    assert_error(CF_ERR_DTYPE, "cf_softmax", "int32", NULL);
    ck_assert_ptr_null(cf_softmax(NULL, 0));
    assert_error(CF_ERR_ARG, "cf_softmax", NULL);
}
END_TEST

/* ---- log_softmax ---- */

TEST(log_softmax_is_the_log_of_softmax)
{
    cf_tensor *x = rand_leaf(8, -4, 4, CF_SHAPE(3, 17));
    assert_close(cf_log_softmax(x, 1), cf_log(cf_softmax(x, 1)), 1e-6f, 1e-6f);
}
END_TEST

TEST(log_softmax_is_stable_for_large_inputs)
{
    cf_tensor *x = cf_from_array((float[]){1000, 1001, -1000, -2000}, CF_SHAPE(2, 2));
    float l = logf(1 + expf(-1));
    assert_values(cf_log_softmax(x, 1), (float[]){-1 - l, -l, 0, -1000}, 1e-6f, 0);
}
END_TEST

TEST(log_softmax_gives_minus_infinity_and_passes_the_gradient_there)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){0, -INFINITY, 0}, CF_SHAPE(3)), true);
    cf_tensor *y = cf_log_softmax(x, 0);
    assert_values(y, (float[]){-logf(2), -INFINITY, -logf(2)}, 1e-7f, 0);
    cf_backward_with(y, cf_ones(CF_SHAPE(3)));
    assert_values(x->grad, (float[]){-0.5f, 1, -0.5f}, 1e-7f, 0);
}
END_TEST

TEST(log_softmax_of_a_size1_dim_is_zero)
{
    cf_tensor *x = rand_leaf(9, -3, 3, CF_SHAPE(4, 1));
    assert_values(cf_log_softmax(x, -1), (float[]){0, 0, 0, 0}, 0, 0);
}
END_TEST

TEST_WITH(log_softmax_matches_pytorch_and_finite_differences, .loop = COUNT(GOLDEN))
{
    assert_golden_row(true, _i);
}
END_TEST

TEST(log_softmax_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_log_softmax(cf_zeros(CF_SHAPE(2)), 1));
    assert_error(CF_ERR_DIM, "cf_log_softmax", "dim 1", NULL);
    ck_assert_ptr_null(cf_log_softmax(cf_from_ints((int32_t[]){1}, CF_SHAPE(1)), 0));
    assert_error(CF_ERR_DTYPE, "cf_log_softmax", NULL);
}
END_TEST
