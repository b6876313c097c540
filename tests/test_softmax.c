/* Softmax, log-softmax and the reductions max, min, argmax, var, std and
 * logsumexp: values, gradients, PyTorch references (tests/golden/
 * gen_reduce.py), edge sizes, thread-count independence and errors. */
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers ---- */

/* Gradcheck wrappers: ud points at the op's integer argument. */
static cf_tensor *softmax_of(cf_tensor *const *in, void *ud)
{
    return cf_softmax(in[0], *(int *)ud);
}

static cf_tensor *log_softmax_of(cf_tensor *const *in, void *ud)
{
    return cf_log_softmax(in[0], *(int *)ud);
}

static cf_tensor *softmax_of_transposed(cf_tensor *const *in, void *ud)
{
    return cf_softmax(cf_transpose(in[0], 0, 2), *(int *)ud);
}

static cf_tensor *log_softmax_of_transposed(cf_tensor *const *in, void *ud)
{
    return cf_log_softmax(cf_transpose(in[0], 0, 2), *(int *)ud);
}

/* A tensor used by two ops: the second backward must add to the first. */
static cf_tensor *softmax_both_dims(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_add(cf_softmax(in[0], 0), cf_log_softmax(in[0], 1));
}

static cf_tensor *max_of(cf_tensor *const *in, void *ud)
{
    return cf_max(in[0], *(int *)ud, false, NULL);
}

static cf_tensor *min_of_transposed(cf_tensor *const *in, void *ud)
{
    return cf_min(cf_transpose(in[0], 0, 2), *(int *)ud, true, NULL);
}

typedef struct {
    int ndims;
    int dims[3];
    bool unbiased;
} dims_arg;

static cf_tensor *var_of(cf_tensor *const *in, void *ud)
{
    const dims_arg *d = ud;
    return cf_var(in[0], d->ndims, d->dims, d->unbiased, false);
}

static cf_tensor *std_of(cf_tensor *const *in, void *ud)
{
    const dims_arg *d = ud;
    return cf_std(cf_transpose(in[0], 0, 1), d->ndims, d->dims, d->unbiased, true);
}

static cf_tensor *logsumexp_of(cf_tensor *const *in, void *ud)
{
    const dims_arg *d = ud;
    return cf_logsumexp(cf_transpose(in[0], 0, 2), d->ndims, d->dims, false);
}

static bool same_bits(const cf_tensor *a, const cf_tensor *b)
{
    return cf_same_shape(a, b) && a->dtype == b->dtype &&
           memcmp(a->data, b->data, cf_numel(a) * cf_dtype_size(a->dtype)) == 0;
}

static void assert_shape(const cf_tensor *t, int ndim, const int64_t *shape)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        ck_assert_int_eq(t->shape[i], shape[i]);
}

static float *row_major(const cf_tensor *t)
{
    float *v = malloc(sizeof(float) * (cf_numel(t) ? cf_numel(t) : 1));
    cf_copy_to(t, v);
    return v;
}

/* ---- PyTorch references ---- */

typedef enum { SAME, TRANSPOSED, SLICED, EXPANDED } view_kind;

/* One row per case of gen_reduce.py, with the same view and arguments. */
typedef struct {
    const char *name;
    view_kind view;
    int dim; /* softmax, max, min, argmax */
    bool keepdim;
    int ndims; /* var, std, logsumexp */
    int dims[3];
    bool unbiased;
} golden_case;

static const golden_case GOLDEN[] = {
    {"softmax.dim0_transposed", TRANSPOSED, .dim = 0},
    {"softmax.dim1_transposed", TRANSPOSED, .dim = 1},
    {"softmax.dimlast_transposed", TRANSPOSED, .dim = -1},
    {"softmax.dimlast", SAME, .dim = -1},
    {"softmax.large", SAME, .dim = -1},
    {"softmax.large_dim0", SAME, .dim = 0},
    {"softmax.rows_of_1", SAME, .dim = -1},
    {"softmax.rows_of_13", SAME, .dim = -1},
    {"softmax.long_rows", SAME, .dim = 1},
    {"softmax.sliced", SLICED, .dim = -1},
    {"softmax.expanded", EXPANDED, .dim = 1},
    {"log_softmax.dim0_transposed", TRANSPOSED, .dim = 0},
    {"log_softmax.dim1_transposed", TRANSPOSED, .dim = 1},
    {"log_softmax.dimlast_transposed", TRANSPOSED, .dim = -1},
    {"log_softmax.dimlast", SAME, .dim = -1},
    {"log_softmax.large", SAME, .dim = -1},
    {"log_softmax.large_dim0", SAME, .dim = 0},
    {"log_softmax.rows_of_1", SAME, .dim = -1},
    {"log_softmax.rows_of_13", SAME, .dim = -1},
    {"log_softmax.long_rows", SAME, .dim = 1},
    {"log_softmax.sliced", SLICED, .dim = -1},
    {"max.dim1", SAME, .dim = 1},
    {"max.ties_dim1", SAME, .dim = 1},
    {"max.ties_dim0_keepdim", SAME, .dim = 0, .keepdim = true},
    {"max.transposed_dim1", TRANSPOSED, .dim = 1},
    {"max.sliced", SLICED, .dim = -1, .keepdim = true},
    {"min.ties_dimlast", SAME, .dim = -1},
    {"min.ties_dim0", SAME, .dim = 0},
    {"min.transposed_dim0_keepdim", TRANSPOSED, .dim = 0, .keepdim = true},
    {"argmax.ties_dim1", SAME, .dim = 1},
    {"argmax.transposed_dim2_keepdim", TRANSPOSED, .dim = 2, .keepdim = true},
    {"var.dim1_unbiased", SAME, .ndims = 1, .dims = {1}, .unbiased = true},
    {"var.dim1_biased", SAME, .ndims = 1, .dims = {1}},
    {"var.dims_0_2_unbiased_keepdim", SAME, .keepdim = true, .ndims = 2, .dims = {0, 2},
     .unbiased = true},
    {"var.dims_2_0_biased", SAME, .ndims = 2, .dims = {2, 0}},
    {"var.all_unbiased", SAME, .ndims = 0, .unbiased = true},
    {"var.transposed_dims_0_1", TRANSPOSED, .ndims = 2, .dims = {0, 1}, .unbiased = true},
    {"var.offset_mean", SAME, .ndims = 1, .dims = {1}, .unbiased = true},
    {"std.dim1_unbiased", SAME, .ndims = 1, .dims = {1}, .unbiased = true},
    {"std.dim0_biased_keepdim", SAME, .keepdim = true, .ndims = 1, .dims = {0}},
    {"std.dims_1_2_unbiased", SAME, .ndims = 2, .dims = {1, 2}, .unbiased = true},
    {"std.all_biased", SAME, .ndims = 0},
    {"std.transposed_dim2_biased", TRANSPOSED, .ndims = 1, .dims = {2}},
    {"logsumexp.dim1", SAME, .ndims = 1, .dims = {1}},
    {"logsumexp.large_dim1", SAME, .ndims = 1, .dims = {1}},
    {"logsumexp.large_dims_0_2_keepdim", SAME, .keepdim = true, .ndims = 2, .dims = {0, 2}},
    {"logsumexp.all", SAME, .ndims = 0},
    {"logsumexp.transposed_dim0", TRANSPOSED, .ndims = 1, .dims = {0}},
};

static cf_tensor *golden_view(cf_tensor *x, view_kind v)
{
    switch (v) {
    case TRANSPOSED: return cf_transpose(x, 0, 2);
    case SLICED: return cf_slice(x, 1, 0, 10, 2);
    case EXPANDED: return cf_expand(x, CF_SHAPE(3, 4));
    default: return x;
    }
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Evaluates the case; *idx receives positions for max, min and argmax. */
static cf_tensor *golden_eval(const golden_case *c, cf_tensor *v, cf_tensor **idx)
{
    if (has_prefix(c->name, "softmax."))
        return cf_softmax(v, c->dim);
    if (has_prefix(c->name, "log_softmax."))
        return cf_log_softmax(v, c->dim);
    if (has_prefix(c->name, "max."))
        return cf_max(v, c->dim, c->keepdim, idx);
    if (has_prefix(c->name, "min."))
        return cf_min(v, c->dim, c->keepdim, idx);
    if (has_prefix(c->name, "argmax.")) {
        *idx = cf_argmax(v, c->dim, c->keepdim);
        return NULL;
    }
    if (has_prefix(c->name, "var."))
        return cf_var(v, c->ndims, c->dims, c->unbiased, c->keepdim);
    if (has_prefix(c->name, "std."))
        return cf_std(v, c->ndims, c->dims, c->unbiased, c->keepdim);
    return cf_logsumexp(v, c->ndims, c->dims, c->keepdim);
}

/* Checks every case of one op (name prefix) against the fixture. */
static void assert_golden_cases(const char *prefix)
{
    cf_safetensors *f = open_fixture("reduce.safetensors");
    int ran = 0;
    char key[128];
    for (size_t i = 0; i < sizeof GOLDEN / sizeof GOLDEN[0]; i++) {
        const golden_case *c = &GOLDEN[i];
        if (!has_prefix(c->name, prefix))
            continue;
        snprintf(key, sizeof key, "%s.in", c->name);
        cf_tensor *x = cf_requires_grad(fixture(f, key), true);
        cf_tensor *idx = NULL;
        cf_tensor *out = golden_eval(c, golden_view(x, c->view), &idx);
        ck_assert_msg(cf_error() == CF_OK, "%s: %s", c->name, cf_error_message());
        if (idx) {
            snprintf(key, sizeof key, "%s.idx", c->name);
            assert_golden(idx, f, key);
        }
        if (out) {
            snprintf(key, sizeof key, "%s.out", c->name);
            assert_golden(out, f, key);
            snprintf(key, sizeof key, "%s.dout", c->name);
            ck_assert_int_eq(cf_backward_with(out, fixture(f, key)), CF_OK);
            snprintf(key, sizeof key, "%s.grad", c->name);
            assert_golden(x->grad, f, key);
        }
        ran++;
    }
    cf_safetensors_close(f);
    ck_assert_int_gt(ran, 0);
}

/* ---- softmax ---- */

START_TEST(softmax_matches_the_definition)
{
    cf_tensor *x = cf_from_array((float[]){1, 2, 3, -1, 0, 1}, CF_SHAPE(2, 3));
    float e = expf(1), z = 1 + e + e * e;
    assert_values(cf_softmax(x, 1), (float[]){1 / z, e / z, e * e / z, 1 / z, e / z, e * e / z}, 0,
                  2e-7f);
}
END_TEST

START_TEST(softmax_rows_sum_to_one)
{
    cf_tensor *x = rand_leaf(1, -5, 5, CF_SHAPE(7, 301));
    cf_tensor *s = cf_sum(cf_softmax(x, -1), CF_DIMS(-1), false);
    float ones[7] = {1, 1, 1, 1, 1, 1, 1};
    assert_values(s, ones, 1e-6f, 0);
}
END_TEST

START_TEST(softmax_is_stable_for_large_inputs)
{
    cf_tensor *big =
        cf_from_array((float[]){1000, 1001, 1002, -1000, -1001, -1002}, CF_SHAPE(2, 3));
    cf_tensor *small = cf_from_array((float[]){0, 1, 2, 0, -1, -2}, CF_SHAPE(2, 3));
    assert_close(cf_softmax(big, 1), cf_softmax(small, 1), 0, 0);
}
END_TEST

START_TEST(softmax_gives_zero_where_the_input_is_minus_infinity)
{
    cf_tensor *x = cf_from_array((float[]){0, -INFINITY, 0, -INFINITY}, CF_SHAPE(4));
    assert_values(cf_softmax(x, 0), (float[]){0.5f, 0, 0.5f, 0}, 0, 0);
}
END_TEST

START_TEST(softmax_of_a_row_of_minus_infinity_or_nan_is_nan)
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
START_TEST(softmax_of_long_rows_is_accurate_to_float_rounding)
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

START_TEST(softmax_along_any_dim_of_a_view_equals_it_on_a_contiguous_copy)
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

START_TEST(softmax_of_a_size1_dim_is_one)
{
    cf_tensor *x = rand_leaf(4, -3, 3, CF_SHAPE(3, 1, 2));
    assert_values(cf_softmax(x, 1), (float[]){1, 1, 1, 1, 1, 1}, 0, 0);
    cf_backward_with(cf_softmax(x, 1), cf_ones(CF_SHAPE(3, 1, 2)));
    assert_values(x->grad, (float[]){0, 0, 0, 0, 0, 0}, 0, 0);
}
END_TEST

START_TEST(softmax_of_a_0d_tensor_is_one)
{
    cf_tensor *x = cf_requires_grad(cf_scalar(5), true);
    cf_tensor *y = cf_softmax(x, 0);
    assert_shape(y, 0, NULL);
    ck_assert_float_eq(cf_item(y), 1);
    cf_backward(y);
    ck_assert_float_eq(cf_item(x->grad), 0);
}
END_TEST

START_TEST(softmax_of_an_empty_tensor_is_empty)
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

START_TEST(softmax_gradients_match_finite_differences)
{
    cf_tensor *x = rand_leaf(5, -2, 2, CF_SHAPE(3, 4, 5));
    for (int dim = -1; dim < 3; dim++) {
        assert_gradcheck(softmax_of, &dim, 1, &x, 1e-2f);
        assert_gradcheck(softmax_of_transposed, &dim, 1, &x, 1e-2f);
    }
}
END_TEST

START_TEST(softmax_gradient_accumulates_over_uses)
{
    cf_tensor *x = rand_leaf(6, -2, 2, CF_SHAPE(4, 3));
    assert_gradcheck(softmax_both_dims, NULL, 1, &x, 1e-2f);
}
END_TEST

START_TEST(softmax_is_the_same_for_any_thread_count)
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

START_TEST(softmax_matches_pytorch) { assert_golden_cases("softmax."); }
END_TEST

START_TEST(softmax_of_bad_input_is_an_error)
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

START_TEST(log_softmax_is_the_log_of_softmax)
{
    cf_tensor *x = rand_leaf(8, -4, 4, CF_SHAPE(3, 17));
    assert_close(cf_log_softmax(x, 1), cf_log(cf_softmax(x, 1)), 1e-6f, 1e-6f);
}
END_TEST

START_TEST(log_softmax_is_stable_for_large_inputs)
{
    cf_tensor *x = cf_from_array((float[]){1000, 1001, -1000, -2000}, CF_SHAPE(2, 2));
    float l = logf(1 + expf(-1));
    assert_values(cf_log_softmax(x, 1), (float[]){-1 - l, -l, 0, -1000}, 1e-6f, 0);
}
END_TEST

START_TEST(log_softmax_gives_minus_infinity_and_passes_the_gradient_there)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){0, -INFINITY, 0}, CF_SHAPE(3)), true);
    cf_tensor *y = cf_log_softmax(x, 0);
    assert_values(y, (float[]){-logf(2), -INFINITY, -logf(2)}, 1e-7f, 0);
    cf_backward_with(y, cf_ones(CF_SHAPE(3)));
    assert_values(x->grad, (float[]){-0.5f, 1, -0.5f}, 1e-7f, 0);
}
END_TEST

START_TEST(log_softmax_of_a_size1_dim_is_zero)
{
    cf_tensor *x = rand_leaf(9, -3, 3, CF_SHAPE(4, 1));
    assert_values(cf_log_softmax(x, -1), (float[]){0, 0, 0, 0}, 0, 0);
}
END_TEST

START_TEST(log_softmax_gradients_match_finite_differences)
{
    cf_tensor *x = rand_leaf(10, -2, 2, CF_SHAPE(3, 4, 5));
    for (int dim = -1; dim < 3; dim++) {
        assert_gradcheck(log_softmax_of, &dim, 1, &x, 1e-2f);
        assert_gradcheck(log_softmax_of_transposed, &dim, 1, &x, 1e-2f);
    }
}
END_TEST

START_TEST(log_softmax_matches_pytorch) { assert_golden_cases("log_softmax."); }
END_TEST

START_TEST(log_softmax_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_log_softmax(cf_zeros(CF_SHAPE(2)), 1));
    assert_error(CF_ERR_DIM, "cf_log_softmax", "dim 1", NULL);
    ck_assert_ptr_null(cf_log_softmax(cf_from_ints((int32_t[]){1}, CF_SHAPE(1)), 0));
    assert_error(CF_ERR_DTYPE, "cf_log_softmax", NULL);
}
END_TEST

/* ---- max, min, argmax ---- */

START_TEST(max_gives_values_and_first_positions)
{
    cf_tensor *x = cf_from_array((float[]){1, 5, 5, 2, 7, 3, 7, 0}, CF_SHAPE(2, 4));
    cf_tensor *idx = NULL;
    cf_tensor *v = cf_max(x, 1, false, &idx);
    assert_values(v, (float[]){5, 7}, 0, 0);
    ck_assert_int_eq(idx->dtype, CF_I32);
    assert_shape(idx, 1, (int64_t[]){2});
    assert_values(idx, (float[]){1, 0}, 0, 0);
}
END_TEST

START_TEST(max_gradient_goes_to_the_first_maximum)
{
    cf_tensor *x =
        cf_requires_grad(cf_from_array((float[]){1, 3, 3, 2, 4, 4}, CF_SHAPE(3, 2)), true);
    cf_backward_with(cf_max(x, 0, true, NULL), cf_from_array((float[]){10, 20}, CF_SHAPE(1, 2)));
    assert_values(x->grad, (float[]){0, 0, 0, 0, 10, 20}, 0, 0);
    cf_zero_grad(x);
    cf_backward_with(cf_max(x, 1, false, NULL), cf_from_array((float[]){1, 2, 3}, CF_SHAPE(3)));
    assert_values(x->grad, (float[]){0, 1, 2, 0, 3, 0}, 0, 0);
}
END_TEST

START_TEST(whole_tensor_max_min_argmax_flatten_row_major)
{
    /* A transposed view: row-major order of the view, not of storage. */
    cf_tensor *x =
        cf_requires_grad(cf_from_array((float[]){1, 9, -4, 2, 9, 0}, CF_SHAPE(2, 3)), true);
    cf_tensor *xt = cf_transpose(x, 0, 1); /* [[1, 2], [9, 9], [-4, 0]] */
    ck_assert_float_eq(cf_item(cf_max_all(xt)), 9);
    ck_assert_float_eq(cf_item(cf_min_all(xt)), -4);
    cf_tensor *i = cf_argmax_all(xt);
    ck_assert_int_eq(i->ndim, 0);
    ck_assert_int_eq(*(int32_t *)i->data, 2);
    cf_backward(cf_max_all(xt)); /* the first maximum of the view: x[0, 1] */
    assert_values(x->grad, (float[]){0, 1, 0, 0, 0, 0}, 0, 0);
    const float nan[3] = {1, NAN, 2};
    ck_assert(isnan(cf_item(cf_max_all(cf_from_array(nan, CF_SHAPE(3))))));
    ck_assert_ptr_null(cf_max_all(cf_zeros(CF_SHAPE(0, 3))));
    assert_error(CF_ERR_SHAPE, "cf_max_all", NULL);
}
END_TEST

START_TEST(max_keepdim_keeps_a_size1_dim)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 3, 4));
    cf_tensor *idx;
    assert_shape(cf_max(x, 1, true, &idx), 3, (int64_t[]){2, 1, 4});
    assert_shape(idx, 3, (int64_t[]){2, 1, 4});
    assert_shape(cf_max(x, -1, false, NULL), 2, (int64_t[]){2, 3});
}
END_TEST

START_TEST(max_of_nan_is_nan_at_its_first_position)
{
    cf_tensor *x = cf_from_array((float[]){1, NAN, 9, NAN}, CF_SHAPE(4));
    cf_tensor *idx;
    ck_assert(isnan(cf_item(cf_max(x, 0, false, &idx))));
    ck_assert_float_eq(cf_item(idx), 1);
    ck_assert_float_eq(cf_item(cf_argmax(x, 0, false)), 1);
}
END_TEST

START_TEST(max_of_a_0d_tensor_is_itself_at_position_0)
{
    cf_tensor *idx;
    cf_tensor *v = cf_max(cf_scalar(3), 0, false, &idx);
    assert_shape(v, 0, NULL);
    ck_assert_float_eq(cf_item(v), 3);
    ck_assert_float_eq(cf_item(idx), 0);
}
END_TEST

START_TEST(max_over_an_empty_dim_is_an_error_but_empty_rows_are_fine)
{
    ck_assert_ptr_null(cf_max(cf_zeros(CF_SHAPE(2, 0)), 1, false, NULL));
    assert_error(CF_ERR_SHAPE, "cf_max", "dim 1", "size 0", "[2, 0]", NULL);
    cf_tensor *idx;
    assert_shape(cf_max(cf_zeros(CF_SHAPE(0, 3)), 1, false, &idx), 1, (int64_t[]){0});
    assert_shape(idx, 1, (int64_t[]){0});
}
END_TEST

START_TEST(max_gradients_match_finite_differences)
{
    cf_tensor *x = rand_leaf(11, -2, 2, CF_SHAPE(3, 4, 5));
    for (int dim = -1; dim < 3; dim++)
        assert_gradcheck(max_of, &dim, 1, &x, 1e-2f);
}
END_TEST

START_TEST(max_matches_pytorch) { assert_golden_cases("max."); }
END_TEST

START_TEST(max_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_max(cf_zeros(CF_SHAPE(2, 3)), 2, false, NULL));
    assert_error(CF_ERR_DIM, "cf_max", "dim 2", NULL);
    ck_assert_ptr_null(cf_max(cf_from_ints((int32_t[]){1}, CF_SHAPE(1)), 0, false, NULL));
    assert_error(CF_ERR_DTYPE, "cf_max", NULL);
    ck_assert_ptr_null(cf_max(NULL, 0, false, NULL));
    assert_error(CF_ERR_ARG, "cf_max", NULL);
}
END_TEST

START_TEST(min_gives_values_and_first_positions)
{
    cf_tensor *x = cf_from_array((float[]){4, 1, 1, 2, -7, 3, -7, 0}, CF_SHAPE(2, 4));
    cf_tensor *idx;
    assert_values(cf_min(x, -1, false, &idx), (float[]){1, -7}, 0, 0);
    assert_values(idx, (float[]){1, 0}, 0, 0);
}
END_TEST

START_TEST(min_gradient_goes_to_the_first_minimum)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){2, 0, 0, 5}, CF_SHAPE(4)), true);
    cf_backward(cf_min(x, 0, false, NULL));
    assert_values(x->grad, (float[]){0, 1, 0, 0}, 0, 0);
}
END_TEST

START_TEST(min_gradients_match_finite_differences)
{
    cf_tensor *x = rand_leaf(12, -2, 2, CF_SHAPE(3, 4, 5));
    for (int dim = 0; dim < 3; dim++)
        assert_gradcheck(min_of_transposed, &dim, 1, &x, 1e-2f);
}
END_TEST

START_TEST(min_matches_pytorch) { assert_golden_cases("min."); }
END_TEST

START_TEST(min_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_min(cf_zeros(CF_SHAPE(3)), -2, false, NULL));
    assert_error(CF_ERR_DIM, "cf_min", "dim -2", NULL);
    ck_assert_ptr_null(cf_min(cf_zeros(CF_SHAPE(3, 0)), 1, true, NULL));
    assert_error(CF_ERR_SHAPE, "cf_min", "[3, 0]", NULL);
}
END_TEST

START_TEST(argmax_gives_int32_first_positions_without_a_gradient)
{
    cf_tensor *x = rand_leaf(13, 0, 1, CF_SHAPE(2, 3));
    cf_set(x, CF_IDX(0, 0), 2);
    cf_set(x, CF_IDX(0, 2), 2);
    cf_set(x, CF_IDX(1, 1), 2);
    cf_tensor *i = cf_argmax(x, 1, true);
    ck_assert_int_eq(i->dtype, CF_I32);
    assert_shape(i, 2, (int64_t[]){2, 1});
    assert_values(i, (float[]){0, 1}, 0, 0);
    ck_assert(!(i->flags & CF_REQUIRES_GRAD));
}
END_TEST

START_TEST(argmax_matches_pytorch) { assert_golden_cases("argmax."); }
END_TEST

START_TEST(argmax_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_argmax(cf_zeros(CF_SHAPE(2)), 3, false));
    assert_error(CF_ERR_DIM, "cf_argmax", "dim 3", NULL);
    ck_assert_ptr_null(cf_argmax(cf_zeros(CF_SHAPE(0)), 0, false));
    assert_error(CF_ERR_SHAPE, "cf_argmax", "size 0", NULL);
}
END_TEST

/* ---- var, std ---- */

START_TEST(var_divides_by_n_minus_1_when_unbiased_else_by_n)
{
    cf_tensor *x = cf_from_array((float[]){1, 2, 3, 4, 2, 2, 2, 2}, CF_SHAPE(2, 4));
    assert_values(cf_var(x, CF_DIMS(1), true, false), (float[]){5.0f / 3, 0}, 1e-7f, 1e-7f);
    assert_values(cf_var(x, CF_DIMS(1), false, false), (float[]){1.25f, 0}, 1e-7f, 1e-7f);
    assert_values(cf_var(x, 0, NULL, false, false), (float[]){0.6875f}, 1e-7f, 1e-7f);
}
END_TEST

START_TEST(var_over_several_dims_keeps_them_with_keepdim)
{
    cf_tensor *x = rand_leaf(14, -1, 1, CF_SHAPE(2, 3, 4));
    cf_tensor *v = cf_var(x, CF_DIMS(0, 2), true, true);
    assert_shape(v, 3, (int64_t[]){1, 3, 1});
    cf_tensor *p = cf_contiguous(cf_permute(x, (int[]){1, 0, 2}));
    cf_tensor *flat = cf_reshape(p, CF_SHAPE(3, 8));
    assert_close(cf_reshape(v, CF_SHAPE(3)), cf_var(flat, CF_DIMS(1), true, false), 1e-7f, 1e-6f);
}
END_TEST

START_TEST(var_is_accurate_far_from_zero)
{
    cf_tensor *x = cf_from_array((float[]){10000.5f, 10001.5f, 10002.5f}, CF_SHAPE(3));
    assert_values(cf_var(x, 0, NULL, true, false), (float[]){1}, 0, 0);
}
END_TEST

START_TEST(var_of_one_element_unbiased_is_nan)
{
    cf_tensor *x = cf_from_array((float[]){3, 4}, CF_SHAPE(2, 1));
    float *v = row_major(cf_var(x, CF_DIMS(1), true, false));
    ck_assert(isnan(v[0]) && isnan(v[1]));
    free(v);
    assert_values(cf_var(x, CF_DIMS(1), false, false), (float[]){0, 0}, 0, 0);
}
END_TEST

START_TEST(var_gradients_match_finite_differences)
{
    cf_tensor *x = rand_leaf(15, -2, 2, CF_SHAPE(3, 4, 5));
    dims_arg args[] = {{1, {1}, true}, {2, {0, 2}, false}, {0, {0}, true}, {2, {-1, 1}, true}};
    for (int i = 0; i < 4; i++)
        assert_gradcheck(var_of, &args[i], 1, &x, 1e-2f);
}
END_TEST

START_TEST(var_matches_pytorch) { assert_golden_cases("var."); }
END_TEST

START_TEST(var_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_var(cf_zeros(CF_SHAPE(2, 3)), CF_DIMS(1, -1), true, false));
    assert_error(CF_ERR_DIM, "cf_var", "listed twice", NULL);
    ck_assert_ptr_null(cf_var(cf_zeros(CF_SHAPE(2, 3)), CF_DIMS(2), true, false));
    assert_error(CF_ERR_DIM, "cf_var", "dim 2", NULL);
    ck_assert_ptr_null(cf_var(cf_from_ints((int32_t[]){1}, CF_SHAPE(1)), 0, NULL, true, false));
    assert_error(CF_ERR_DTYPE, "cf_var", NULL);
}
END_TEST

START_TEST(std_is_the_square_root_of_var)
{
    cf_tensor *x = rand_leaf(16, -3, 3, CF_SHAPE(4, 9));
    assert_close(cf_std(x, CF_DIMS(1), true, false), cf_sqrt(cf_var(x, CF_DIMS(1), true, false)), 0,
                 2e-7f);
    assert_close(cf_std(x, CF_DIMS(0), false, true), cf_sqrt(cf_var(x, CF_DIMS(0), false, true)), 0,
                 2e-7f);
}
END_TEST

START_TEST(std_gradient_is_zero_where_std_is_zero)
{
    cf_tensor *x =
        cf_requires_grad(cf_from_array((float[]){2, 2, 2, 1, 2, 3}, CF_SHAPE(2, 3)), true);
    cf_backward_with(cf_std(x, CF_DIMS(1), true, false), cf_ones(CF_SHAPE(2)));
    assert_values(x->grad, (float[]){0, 0, 0, -0.5f, 0, 0.5f}, 1e-7f, 0);
}
END_TEST

START_TEST(std_gradients_match_finite_differences)
{
    cf_tensor *x = rand_leaf(17, -2, 2, CF_SHAPE(3, 4, 5));
    dims_arg args[] = {{1, {1}, true}, {2, {0, 2}, false}, {0, {0}, true}};
    for (int i = 0; i < 3; i++)
        assert_gradcheck(std_of, &args[i], 1, &x, 1e-2f);
}
END_TEST

START_TEST(std_matches_pytorch) { assert_golden_cases("std."); }
END_TEST

START_TEST(std_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_std(cf_zeros(CF_SHAPE(2)), CF_DIMS(-2), false, false));
    assert_error(CF_ERR_DIM, "cf_std", "dim -2", NULL);
    ck_assert_ptr_null(cf_std(NULL, 0, NULL, false, false));
    assert_error(CF_ERR_ARG, "cf_std", NULL);
}
END_TEST

/* ---- logsumexp ---- */

START_TEST(logsumexp_matches_the_definition)
{
    cf_tensor *x = cf_from_array((float[]){0, 1, 2, -1, -1, -1}, CF_SHAPE(2, 3));
    assert_values(cf_logsumexp(x, CF_DIMS(1), false),
                  (float[]){logf(1 + expf(1) + expf(2)), -1 + logf(3)}, 1e-6f, 1e-6f);
}
END_TEST

START_TEST(logsumexp_is_stable_for_large_inputs)
{
    cf_tensor *x = cf_from_array((float[]){1000, 1000, -1000, -1000}, CF_SHAPE(2, 2));
    assert_values(cf_logsumexp(x, CF_DIMS(-1), true), (float[]){1000 + logf(2), -1000 + logf(2)}, 0,
                  1e-7f);
}
END_TEST

START_TEST(logsumexp_of_infinities_and_of_nothing)
{
    cf_tensor *x =
        cf_from_array((float[]){-INFINITY, -INFINITY, INFINITY, 1, NAN, 1}, CF_SHAPE(3, 2));
    float *v = row_major(cf_logsumexp(x, CF_DIMS(1), false));
    ck_assert(v[0] == -INFINITY && v[1] == INFINITY && isnan(v[2]));
    free(v);
    cf_tensor *e = cf_logsumexp(cf_zeros(CF_SHAPE(2, 0)), CF_DIMS(1), false);
    assert_values(e, (float[]){-INFINITY, -INFINITY}, 0, 0);
}
END_TEST

START_TEST(logsumexp_over_several_dims_equals_it_over_a_flattened_copy)
{
    cf_tensor *x = rand_leaf(18, -50, 50, CF_SHAPE(3, 4, 5));
    cf_tensor *flat = cf_reshape(cf_contiguous(cf_permute(x, (int[]){1, 0, 2})), CF_SHAPE(4, 15));
    assert_close(cf_logsumexp(x, CF_DIMS(2, 0), false), cf_logsumexp(flat, CF_DIMS(1), false), 0,
                 1e-7f);
}
END_TEST

START_TEST(logsumexp_gradients_match_finite_differences)
{
    cf_tensor *x = rand_leaf(19, -3, 3, CF_SHAPE(3, 4, 5));
    dims_arg args[] = {{1, {0}, false}, {2, {0, 2}, false}, {0, {0}, false}};
    for (int i = 0; i < 3; i++)
        assert_gradcheck(logsumexp_of, &args[i], 1, &x, 1e-2f);
}
END_TEST

START_TEST(logsumexp_matches_pytorch) { assert_golden_cases("logsumexp."); }
END_TEST

START_TEST(logsumexp_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_logsumexp(cf_zeros(CF_SHAPE(2, 3)), CF_DIMS(0, 0), false));
    assert_error(CF_ERR_DIM, "cf_logsumexp", "listed twice", NULL);
    ck_assert_ptr_null(cf_logsumexp(cf_from_ints((int32_t[]){1}, CF_SHAPE(1)), 0, NULL, false));
    assert_error(CF_ERR_DTYPE, "cf_logsumexp", NULL);
}
END_TEST

/* ---- All reductions ---- */

START_TEST(reductions_are_the_same_for_any_thread_count)
{
    int saved = cf_get_num_threads();
    cf_tensor *x = rand_leaf(20, -8, 8, CF_SHAPE(48, 50, 30));
    cf_tensor *want[5];
    for (int t = 0; t < 2; t++) {
        cf_set_num_threads(t ? 4 : 1);
        cf_tensor *got[5] = {cf_max(x, 1, false, NULL), cf_argmax(x, 0, false),
                             cf_var(x, CF_DIMS(0, 2), true, false),
                             cf_std(x, 0, NULL, false, false), cf_logsumexp(x, CF_DIMS(1), false)};
        for (int i = 0; i < 5; i++) {
            if (t == 0)
                want[i] = got[i];
            else
                ck_assert_msg(same_bits(got[i], want[i]), "reduction %d", i);
        }
    }
    cf_set_num_threads(saved);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("softmax");
    TCase *tc = tcase("softmax");
    tcase_add_test(tc, softmax_matches_the_definition);
    tcase_add_test(tc, softmax_rows_sum_to_one);
    tcase_add_test(tc, softmax_is_stable_for_large_inputs);
    tcase_add_test(tc, softmax_gives_zero_where_the_input_is_minus_infinity);
    tcase_add_test(tc, softmax_of_a_row_of_minus_infinity_or_nan_is_nan);
    tcase_add_test(tc, softmax_of_long_rows_is_accurate_to_float_rounding);
    tcase_add_test(tc, softmax_along_any_dim_of_a_view_equals_it_on_a_contiguous_copy);
    tcase_add_test(tc, softmax_of_a_size1_dim_is_one);
    tcase_add_test(tc, softmax_of_a_0d_tensor_is_one);
    tcase_add_test(tc, softmax_of_an_empty_tensor_is_empty);
    tcase_add_test(tc, softmax_gradients_match_finite_differences);
    tcase_add_test(tc, softmax_gradient_accumulates_over_uses);
    tcase_add_test(tc, softmax_is_the_same_for_any_thread_count);
    tcase_add_test(tc, softmax_matches_pytorch);
    tcase_add_test(tc, softmax_of_bad_input_is_an_error);
    suite_add_tcase(s, tc);

    tc = tcase("log_softmax");
    tcase_add_test(tc, log_softmax_is_the_log_of_softmax);
    tcase_add_test(tc, log_softmax_is_stable_for_large_inputs);
    tcase_add_test(tc, log_softmax_gives_minus_infinity_and_passes_the_gradient_there);
    tcase_add_test(tc, log_softmax_of_a_size1_dim_is_zero);
    tcase_add_test(tc, log_softmax_gradients_match_finite_differences);
    tcase_add_test(tc, log_softmax_matches_pytorch);
    tcase_add_test(tc, log_softmax_of_bad_input_is_an_error);
    suite_add_tcase(s, tc);

    tc = tcase("max");
    tcase_add_test(tc, max_gives_values_and_first_positions);
    tcase_add_test(tc, max_gradient_goes_to_the_first_maximum);
    tcase_add_test(tc, whole_tensor_max_min_argmax_flatten_row_major);
    tcase_add_test(tc, max_keepdim_keeps_a_size1_dim);
    tcase_add_test(tc, max_of_nan_is_nan_at_its_first_position);
    tcase_add_test(tc, max_of_a_0d_tensor_is_itself_at_position_0);
    tcase_add_test(tc, max_over_an_empty_dim_is_an_error_but_empty_rows_are_fine);
    tcase_add_test(tc, max_gradients_match_finite_differences);
    tcase_add_test(tc, max_matches_pytorch);
    tcase_add_test(tc, max_of_bad_input_is_an_error);
    suite_add_tcase(s, tc);

    tc = tcase("min");
    tcase_add_test(tc, min_gives_values_and_first_positions);
    tcase_add_test(tc, min_gradient_goes_to_the_first_minimum);
    tcase_add_test(tc, min_gradients_match_finite_differences);
    tcase_add_test(tc, min_matches_pytorch);
    tcase_add_test(tc, min_of_bad_input_is_an_error);
    suite_add_tcase(s, tc);

    tc = tcase("argmax");
    tcase_add_test(tc, argmax_gives_int32_first_positions_without_a_gradient);
    tcase_add_test(tc, argmax_matches_pytorch);
    tcase_add_test(tc, argmax_of_bad_input_is_an_error);
    suite_add_tcase(s, tc);

    tc = tcase("var");
    tcase_add_test(tc, var_divides_by_n_minus_1_when_unbiased_else_by_n);
    tcase_add_test(tc, var_over_several_dims_keeps_them_with_keepdim);
    tcase_add_test(tc, var_is_accurate_far_from_zero);
    tcase_add_test(tc, var_of_one_element_unbiased_is_nan);
    tcase_add_test(tc, var_gradients_match_finite_differences);
    tcase_add_test(tc, var_matches_pytorch);
    tcase_add_test(tc, var_of_bad_input_is_an_error);
    suite_add_tcase(s, tc);

    tc = tcase("std");
    tcase_add_test(tc, std_is_the_square_root_of_var);
    tcase_add_test(tc, std_gradient_is_zero_where_std_is_zero);
    tcase_add_test(tc, std_gradients_match_finite_differences);
    tcase_add_test(tc, std_matches_pytorch);
    tcase_add_test(tc, std_of_bad_input_is_an_error);
    suite_add_tcase(s, tc);

    tc = tcase("logsumexp");
    tcase_add_test(tc, logsumexp_matches_the_definition);
    tcase_add_test(tc, logsumexp_is_stable_for_large_inputs);
    tcase_add_test(tc, logsumexp_of_infinities_and_of_nothing);
    tcase_add_test(tc, logsumexp_over_several_dims_equals_it_over_a_flattened_copy);
    tcase_add_test(tc, logsumexp_gradients_match_finite_differences);
    tcase_add_test(tc, logsumexp_matches_pytorch);
    tcase_add_test(tc, logsumexp_of_bad_input_is_an_error);
    suite_add_tcase(s, tc);

    tc = tcase("determinism");
    tcase_add_test(tc, reductions_are_the_same_for_any_thread_count);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
