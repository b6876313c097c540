/* More pointwise functions (autograd/math.c): PyTorch 1.13 golden cases
 * (tests/golden/gen_math.py), gradient-checked at their inputs; gradients
 * at the kinks as PyTorch defines them, and errors. */
#include "tests/util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static cf_tensor *T(cf_tensor *x) { return cf_transpose(x, 0, 1); }

static cf_tensor *bools(const float *v, int ndim, const int64_t *shape)
{
    cf_tensor *t = cf_empty(CF_BOOL, ndim, shape);
    cf_copy_from(t, v);
    return t;
}

static cf_tensor *leaf(const float *v, int ndim, const int64_t *shape)
{
    return cf_requires_grad(cf_from_array(v, ndim, shape), true);
}

/* ---- Golden cases ---- */

/* Builders: the same expressions as gen_math.py, views included. */
typedef cf_tensor *(*unary_fn)(cf_tensor *);
typedef cf_tensor *(*binary_fn)(cf_tensor *, cf_tensor *);

static cf_tensor *b_unary(cf_tensor *const *in, const void *ud)
{
    return (*(const unary_fn *)ud)(in[0]);
}
static cf_tensor *b_unary_t(cf_tensor *const *in, const void *ud)
{
    return (*(const unary_fn *)ud)(T(in[0]));
}
static cf_tensor *b_binary(cf_tensor *const *in, const void *ud)
{
    return (*(const binary_fn *)ud)(in[0], in[1]);
}
static cf_tensor *b_binary_t(cf_tensor *const *in, const void *ud)
{
    return (*(const binary_fn *)ud)(T(in[0]), in[1]);
}
static cf_tensor *b_pow_scalar_t(cf_tensor *const *in, const void *ud)
{
    return cf_pow_scalar(T(in[0]), *(const float *)ud);
}
static cf_tensor *b_pow_scalar(cf_tensor *const *in, const void *ud)
{
    return cf_pow_scalar(in[0], *(const float *)ud);
}
static cf_tensor *b_rsqrt_sliced(cf_tensor *const *in, const void *ud)
{
    (void)ud;
    return cf_rsqrt(cf_slice(in[0], 1, 0, INT64_MAX, 2));
}
static cf_tensor *b_clamp(cf_tensor *const *in, const void *ud)
{
    const float *b = ud;
    return cf_clamp(in[0], b[0], b[1]);
}
static cf_tensor *b_clamp_t(cf_tensor *const *in, const void *ud)
{
    const float *b = ud;
    return cf_clamp(T(in[0]), b[0], b[1]);
}
static cf_tensor *b_where(cf_tensor *const *in, const void *ud)
{
    (void)ud;
    return cf_where(in[0], in[1], in[2]);
}
static cf_tensor *b_where_t(cf_tensor *const *in, const void *ud)
{
    (void)ud;
    return cf_where(in[0], T(in[1]), in[2]);
}
static cf_tensor *b_masked_fill(cf_tensor *const *in, const void *ud)
{
    return cf_masked_fill(in[0], in[1], *(const float *)ud);
}
static cf_tensor *b_masked_fill_t(cf_tensor *const *in, const void *ud)
{
    return cf_masked_fill(T(in[0]), in[1], *(const float *)ud);
}
static cf_tensor *b_gelu(cf_tensor *const *in, const void *ud)
{
    return cf_gelu(in[0], *(const bool *)ud);
}
static cf_tensor *b_gelu_t(cf_tensor *const *in, const void *ud)
{
    return cf_gelu(T(in[0]), *(const bool *)ud);
}

static const unary_fn u_sqrt = cf_sqrt, u_abs = cf_abs, u_silu = cf_silu,
                      u_logical_not = cf_logical_not;
static const binary_fn f_pow = cf_pow, f_maximum = cf_maximum, f_minimum = cf_minimum, f_eq = cf_eq,
                       f_lt = cf_lt, f_gt = cf_gt;

/* gen_math.py's cases, each checked against PyTorch's values and gradients
 * and by finite differences at its inputs, unless the generator marks it
 * as sitting on a kink on purpose (assert_golden_case). */
static const struct {
    const char *name;
    int nin;
    golden_build build;
    const void *ud;
} GOLDEN[] = {
    {"pow.broadcast", 2, b_binary, &f_pow},
    {"pow.transposed", 2, b_binary_t, &f_pow},
    {"pow.special", 2, b_binary, &f_pow},
    {"pow_scalar.p2", 1, b_pow_scalar_t, &(float){2}},
    {"pow_scalar.p0.5", 1, b_pow_scalar_t, &(float){0.5f}},
    {"pow_scalar.p-1.5", 1, b_pow_scalar_t, &(float){-1.5f}},
    {"pow_scalar.p3", 1, b_pow_scalar_t, &(float){3}},
    {"pow_scalar.p0", 1, b_pow_scalar_t, &(float){0}},
    {"pow_scalar.zero_base", 1, b_pow_scalar, &(float){1}},
    {"sqrt", 1, b_unary_t, &u_sqrt},
    {"rsqrt", 1, b_rsqrt_sliced, NULL},
    {"abs", 1, b_unary, &u_abs},
    {"abs.transposed", 1, b_unary_t, &u_abs},
    {"abs.away_from_zero", 1, b_unary, &u_abs},
    {"clamp.bounds", 1, b_clamp, (float[]){-1, 2}},
    {"clamp.transposed", 1, b_clamp_t, (float[]){-0.5f, 0.5f}},
    {"clamp.min_only", 1, b_clamp, (float[]){0, INFINITY}},
    {"clamp.crossed", 1, b_clamp, (float[]){1, -1}},
    {"maximum.ties", 2, b_binary, &f_maximum},
    {"minimum.ties", 2, b_binary, &f_minimum},
    {"maximum.transposed", 2, b_binary_t, &f_maximum},
    {"minimum.transposed", 2, b_binary_t, &f_minimum},
    {"where.broadcast", 3, b_where, NULL},
    {"where.transposed", 3, b_where_t, NULL},
    {"masked_fill.broadcast", 2, b_masked_fill, &(float){2.5f}},
    {"masked_fill.transposed", 2, b_masked_fill_t, &(float){-1e4f}},
    {"eq.float", 2, b_binary, &f_eq},
    {"eq.int", 2, b_binary, &f_eq},
    {"lt.float", 2, b_binary, &f_lt},
    {"lt.int", 2, b_binary, &f_lt},
    {"gt.float", 2, b_binary, &f_gt},
    {"gt.int", 2, b_binary, &f_gt},
    {"eq.transposed", 2, b_binary_t, &f_eq},
    {"logical_not", 1, b_unary_t, &u_logical_not},
    {"gelu.none", 1, b_gelu_t, &(bool){false}},
    {"gelu.none.kinks", 1, b_gelu, &(bool){false}},
    {"gelu.tanh", 1, b_gelu_t, &(bool){true}},
    {"gelu.tanh.kinks", 1, b_gelu, &(bool){true}},
    {"silu", 1, b_unary_t, &u_silu},
    {"silu.tails", 1, b_unary, &u_silu},
};

TEST_WITH(cases_match_pytorch_and_finite_differences, .loop = COUNT(GOLDEN))
{
    assert_golden_case("math.safetensors", GOLDEN[_i].name, GOLDEN[_i].nin, GOLDEN[_i].build,
                       GOLDEN[_i].ud);
}
END_TEST

/* ---- pow ---- */

TEST(pow_exponent_gradient_is_zero_at_zero_base)
{
    cf_tensor *a = leaf((float[]){0, 0}, CF_SHAPE(2));
    cf_tensor *b = leaf((float[]){0, 2.5f}, CF_SHAPE(2));
    cf_backward(cf_sum_all(cf_pow(a, b)));
    assert_values(b->grad, (float[]){0, 0}, 0, 0);
    assert_values(a->grad, (float[]){0, 0}, 0, 0);
}
END_TEST

TEST(pow_base_gradient_is_infinite_at_zero_to_a_fractional_power)
{
    cf_tensor *a = leaf((float[]){0}, CF_SHAPE(1));
    cf_tensor *b = cf_from_array((float[]){0.5f}, CF_SHAPE(1));
    cf_backward(cf_sum_all(cf_pow(a, b)));
    ck_assert(isinf(cf_item(a->grad)) && cf_item(a->grad) > 0);
}
END_TEST

TEST(pow_of_shapes_that_do_not_broadcast_is_an_error)
{
    ck_assert_ptr_null(cf_pow(cf_ones(CF_SHAPE(2, 3)), cf_ones(CF_SHAPE(2))));
    assert_error(CF_ERR_SHAPE, "cf_pow", "[2, 3]", "[2]", NULL);
}
END_TEST

TEST(pow_of_an_int_tensor_is_an_error)
{
    cf_tensor *i = cf_from_ints((int32_t[]){1, 2}, CF_SHAPE(2));
    ck_assert_ptr_null(cf_pow(cf_ones(CF_SHAPE(2)), i));
    assert_error(CF_ERR_DTYPE, "cf_pow", "int32", NULL);
}
END_TEST

TEST(pow_of_null_is_an_error)
{
    ck_assert_ptr_null(cf_pow(NULL, cf_ones(CF_SHAPE(2))));
    assert_error(CF_ERR_ARG, "cf_pow", "NULL", NULL);
}
END_TEST

/* ---- pow_scalar ---- */

TEST(pow_scalar_zero_has_zero_gradient_even_at_zero)
{
    cf_tensor *x = leaf((float[]){0, -1, 2}, CF_SHAPE(3));
    cf_tensor *y = cf_pow_scalar(x, 0);
    assert_values(y, (float[]){1, 1, 1}, 0, 0);
    cf_backward(cf_sum_all(y));
    assert_values(x->grad, (float[]){0, 0, 0}, 0, 0);
}
END_TEST

TEST(pow_scalar_of_an_int_tensor_is_an_error)
{
    ck_assert_ptr_null(cf_pow_scalar(cf_from_ints((int32_t[]){1}, CF_SHAPE(1)), 2));
    assert_error(CF_ERR_DTYPE, "cf_pow_scalar", "int32", NULL);
}
END_TEST

/* ---- sqrt, rsqrt ---- */

TEST(sqrt_of_negative_is_nan) { ck_assert(isnan(cf_item(cf_sqrt(cf_scalar(-1))))); }
END_TEST

TEST(sqrt_of_an_int_tensor_is_an_error)
{
    ck_assert_ptr_null(cf_rsqrt(cf_from_ints((int32_t[]){4}, CF_SHAPE(1))));
    assert_error(CF_ERR_DTYPE, "cf_rsqrt", NULL);
}
END_TEST

/* ---- abs ---- */

TEST(abs_gradient_at_zero_is_zero)
{
    cf_tensor *x = leaf((float[]){0.0f, -0.0f, -2, 3}, CF_SHAPE(4));
    cf_backward(cf_sum_all(cf_abs(x)));
    assert_values(x->grad, (float[]){0, 0, -1, 1}, 0, 0);
}
END_TEST

/* ---- clamp ---- */

TEST(clamp_passes_the_gradient_at_the_bounds)
{
    cf_tensor *x = leaf((float[]){-2, -1, 0, 1, 2}, CF_SHAPE(5));
    cf_tensor *y = cf_clamp(x, -1, 1);
    assert_values(y, (float[]){-1, -1, 0, 1, 1}, 0, 0);
    cf_backward(cf_sum_all(y));
    assert_values(x->grad, (float[]){0, 1, 1, 1, 0}, 0, 0);
}
END_TEST

TEST(clamp_keeps_nan)
{
    cf_tensor *x = leaf((float[]){NAN}, CF_SHAPE(1));
    cf_tensor *y = cf_clamp(x, 0, 1);
    ck_assert(isnan(cf_item(y)));
    cf_backward(cf_sum_all(y));
    assert_values(x->grad, (float[]){0}, 0, 0);
}
END_TEST

TEST(clamp_with_a_nan_bound_is_an_error)
{
    ck_assert_ptr_null(cf_clamp(cf_ones(CF_SHAPE(2)), NAN, 1));
    assert_error(CF_ERR_ARG, "cf_clamp", "NaN", NULL);
}
END_TEST

TEST(clamp_of_an_int_tensor_is_an_error)
{
    ck_assert_ptr_null(cf_clamp(cf_from_ints((int32_t[]){4}, CF_SHAPE(1)), 0, 1));
    assert_error(CF_ERR_DTYPE, "cf_clamp", "int32", NULL);
}
END_TEST

/* ---- maximum, minimum ---- */

TEST(maximum_splits_the_gradient_of_a_tie)
{
    cf_tensor *a = leaf((float[]){1, 2, 3}, CF_SHAPE(3));
    cf_tensor *b = leaf((float[]){1, 5, 0}, CF_SHAPE(3));
    cf_tensor *y = cf_maximum(a, b);
    assert_values(y, (float[]){1, 5, 3}, 0, 0);
    cf_backward(cf_sum_all(y));
    assert_values(a->grad, (float[]){0.5f, 0, 1}, 0, 0);
    assert_values(b->grad, (float[]){0.5f, 1, 0}, 0, 0);
}
END_TEST

TEST(minimum_splits_the_gradient_of_a_tie)
{
    cf_tensor *a = leaf((float[]){1, 2, 3}, CF_SHAPE(3));
    cf_tensor *b = leaf((float[]){1, 5, 0}, CF_SHAPE(3));
    cf_tensor *y = cf_minimum(a, b);
    assert_values(y, (float[]){1, 2, 0}, 0, 0);
    cf_backward(cf_sum_all(y));
    assert_values(a->grad, (float[]){0.5f, 1, 0}, 0, 0);
    assert_values(b->grad, (float[]){0.5f, 0, 1}, 0, 0);
}
END_TEST

TEST(maximum_and_minimum_propagate_nan)
{
    cf_tensor *a = cf_from_array((float[]){NAN, 1}, CF_SHAPE(2));
    cf_tensor *b = cf_from_array((float[]){1, NAN}, CF_SHAPE(2));
    float v[2];
    cf_copy_to(cf_maximum(a, b), v);
    ck_assert(isnan(v[0]) && isnan(v[1]));
    cf_copy_to(cf_minimum(a, b), v);
    ck_assert(isnan(v[0]) && isnan(v[1]));
}
END_TEST

TEST(maximum_of_shapes_that_do_not_broadcast_is_an_error)
{
    ck_assert_ptr_null(cf_minimum(cf_ones(CF_SHAPE(3)), cf_ones(CF_SHAPE(4))));
    assert_error(CF_ERR_SHAPE, "cf_minimum", "[3]", "[4]", NULL);
}
END_TEST

/* ---- where ---- */

TEST(where_sends_the_gradient_to_the_chosen_input)
{
    cf_tensor *c = bools((float[]){1, 0, 1}, CF_SHAPE(3));
    cf_tensor *a = leaf((float[]){1, 2, 3}, CF_SHAPE(3));
    cf_tensor *b = leaf((float[]){10, 20, 30}, CF_SHAPE(3));
    cf_tensor *y = cf_where(c, a, b);
    assert_values(y, (float[]){1, 20, 3}, 0, 0);
    cf_backward(cf_sum_all(y));
    assert_values(a->grad, (float[]){1, 0, 1}, 0, 0);
    assert_values(b->grad, (float[]){0, 1, 0}, 0, 0);
}
END_TEST

TEST(where_sums_the_gradient_of_a_broadcast_input)
{
    cf_tensor *c = bools((float[]){1, 0, 0, 1, 1, 1}, CF_SHAPE(2, 3));
    cf_tensor *a = leaf((float[]){5}, CF_SHAPE(1));
    cf_tensor *b = leaf((float[]){1, 2, 3}, CF_SHAPE(3));
    cf_backward(cf_sum_all(cf_where(c, a, b)));
    assert_values(a->grad, (float[]){4}, 0, 0);
    assert_values(b->grad, (float[]){0, 1, 1}, 0, 0);
}
END_TEST

TEST(where_with_a_float_condition_is_an_error)
{
    cf_tensor *x = cf_ones(CF_SHAPE(2));
    ck_assert_ptr_null(cf_where(x, x, x));
    assert_error(CF_ERR_DTYPE, "cf_where", "cond", "float32", NULL);
}
END_TEST

TEST(where_of_int_values_is_an_error)
{
    cf_tensor *c = bools((float[]){1, 0}, CF_SHAPE(2));
    cf_tensor *i = cf_from_ints((int32_t[]){1, 2}, CF_SHAPE(2));
    ck_assert_ptr_null(cf_where(c, cf_ones(CF_SHAPE(2)), i));
    assert_error(CF_ERR_DTYPE, "cf_where", "int32", NULL);
}
END_TEST

TEST(where_of_shapes_that_do_not_broadcast_is_an_error)
{
    cf_tensor *c = bools((float[]){1, 0, 1}, CF_SHAPE(3, 1));
    ck_assert_ptr_null(cf_where(c, cf_ones(CF_SHAPE(2, 4)), cf_ones(CF_SHAPE(4))));
    assert_error(CF_ERR_SHAPE, "cf_where", "[3, 1]", "[2, 4]", "[4]", NULL);
}
END_TEST

TEST(where_of_null_is_an_error)
{
    cf_tensor *x = cf_ones(CF_SHAPE(2));
    ck_assert_ptr_null(cf_where(NULL, x, x));
    assert_error(CF_ERR_ARG, "cf_where", NULL);
}
END_TEST

/* ---- masked_fill ---- */

TEST(masked_fill_gives_no_gradient_where_filled)
{
    cf_tensor *a = leaf((float[]){1, 2, 3, 4}, CF_SHAPE(2, 2));
    cf_tensor *m = bools((float[]){0, 1}, CF_SHAPE(2));
    cf_tensor *y = cf_masked_fill(a, m, -INFINITY);
    float v[4];
    cf_copy_to(y, v);
    ck_assert(v[0] == 1 && v[1] == -INFINITY && v[2] == 3 && v[3] == -INFINITY);
    cf_backward(cf_sum_all(cf_exp(y)));
    assert_values(a->grad, (float[]){expf(1), 0, expf(3), 0}, 0, 1e-6f);
}
END_TEST

TEST(masked_fill_with_a_mask_larger_than_the_input_is_an_error)
{
    cf_tensor *m = bools((float[]){1, 0, 1, 0}, CF_SHAPE(2, 2));
    ck_assert_ptr_null(cf_masked_fill(cf_ones(CF_SHAPE(1, 2)), m, 0));
    assert_error(CF_ERR_SHAPE, "cf_masked_fill", "[2, 2]", "[1, 2]", NULL);
}
END_TEST

TEST(masked_fill_with_a_float_mask_is_an_error)
{
    ck_assert_ptr_null(cf_masked_fill(cf_ones(CF_SHAPE(2)), cf_ones(CF_SHAPE(2)), 0));
    assert_error(CF_ERR_DTYPE, "cf_masked_fill", "mask", "float32", NULL);
}
END_TEST

/* ---- comparisons, logical_not ---- */

TEST(comparisons_give_bool_tensors_that_need_no_gradient)
{
    cf_tensor *a = leaf((float[]){1, 2, 3}, CF_SHAPE(3));
    cf_tensor *b = leaf((float[]){2}, CF_SHAPE(1));
    cf_tensor *lt = cf_lt(a, b), *gt = cf_gt(a, b), *eq = cf_eq(a, b);
    ck_assert_int_eq(lt->dtype, CF_BOOL);
    ck_assert(!(lt->flags & CF_REQUIRES_GRAD) && !lt->op);
    assert_values(lt, (float[]){1, 0, 0}, 0, 0);
    assert_values(gt, (float[]){0, 0, 1}, 0, 0);
    assert_values(eq, (float[]){0, 1, 0}, 0, 0);
}
END_TEST

TEST(comparisons_with_nan_are_false)
{
    cf_tensor *a = cf_from_array((float[]){NAN}, CF_SHAPE(1));
    ck_assert_float_eq(cf_item(cf_eq(a, a)), 0);
    ck_assert_float_eq(cf_item(cf_lt(a, a)), 0);
    ck_assert_float_eq(cf_item(cf_gt(a, a)), 0);
}
END_TEST

TEST(comparison_of_mixed_dtypes_is_an_error)
{
    cf_tensor *i = cf_from_ints((int32_t[]){1, 2}, CF_SHAPE(2));
    ck_assert_ptr_null(cf_eq(cf_ones(CF_SHAPE(2)), i));
    assert_error(CF_ERR_DTYPE, "cf_eq", "float32", "int32", NULL);
}
END_TEST

TEST(comparison_of_bool_tensors_is_an_error)
{
    cf_tensor *m = bools((float[]){1, 0}, CF_SHAPE(2));
    ck_assert_ptr_null(cf_lt(m, m));
    assert_error(CF_ERR_DTYPE, "cf_lt", "bool", NULL);
}
END_TEST

TEST(comparison_of_shapes_that_do_not_broadcast_is_an_error)
{
    ck_assert_ptr_null(cf_gt(cf_ones(CF_SHAPE(2, 3)), cf_ones(CF_SHAPE(2))));
    assert_error(CF_ERR_SHAPE, "cf_gt", "[2, 3]", "[2]", NULL);
}
END_TEST

TEST(logical_not_of_a_float_tensor_is_an_error)
{
    ck_assert_ptr_null(cf_logical_not(cf_ones(CF_SHAPE(2))));
    assert_error(CF_ERR_DTYPE, "cf_logical_not", "float32", NULL);
}
END_TEST

/* ---- gelu, silu ---- */

TEST(gelu_forms_differ)
{
    cf_tensor *x = cf_scalar(1);
    ck_assert_float_ne(cf_item(cf_gelu(x, false)), cf_item(cf_gelu(x, true)));
}
END_TEST

/* Its erf is a polynomial fit (so that the loops vectorise): checked here
 * against libm's double erf over a sweep much denser than the fixtures. */
TEST(gelu_and_its_gradient_follow_erf_within_1e_6_over_a_dense_sweep)
{
    enum { N = 200001 };
    cf_tensor *x = cf_zeros(CF_SHAPE(N));
    float *xv = x->data;
    for (int i = 0; i < N; i++)
        xv[i] = -10.0f + 20.0f * (float)i / (N - 1);
    cf_requires_grad(x, true);
    cf_tensor *y = cf_gelu(x, false);
    ck_assert_int_eq(cf_backward(cf_sum_all(y)), CF_OK);
    const float *yv = y->data, *gv = x->grad->data;
    for (int i = 0; i < N; i++) {
        double v = xv[i], cdf = 0.5 * (1 + erf(v / sqrt(2)));
        double pdf = exp(-0.5 * v * v) / sqrt(2 * M_PI);
        ck_assert_double_le(fabs(yv[i] - v * cdf), 1e-6 + 1e-6 * fabs(v));
        ck_assert_double_le(fabs(gv[i] - (cdf + v * pdf)), 1e-6);
    }
}
END_TEST

TEST(gelu_keeps_nan_and_infinity)
{
    cf_tensor *y = cf_gelu(cf_from_array((float[]){NAN, INFINITY}, CF_SHAPE(2)), false);
    const float *v = y->data;
    ck_assert(isnan(v[0]));
    ck_assert(isinf(v[1]) && v[1] > 0);
}
END_TEST

TEST(gelu_of_an_int_tensor_is_an_error)
{
    ck_assert_ptr_null(cf_gelu(cf_from_ints((int32_t[]){1}, CF_SHAPE(1)), true));
    assert_error(CF_ERR_DTYPE, "cf_gelu", "int32", NULL);
}
END_TEST

TEST(silu_of_null_is_an_error)
{
    ck_assert_ptr_null(cf_silu(NULL));
    assert_error(CF_ERR_ARG, "cf_silu", NULL);
}
END_TEST

/* ---- threads ---- */

/* Large enough for several parallel chunks, with broadcast operands. */
TEST(results_do_not_depend_on_the_thread_count)
{
    int64_t n = 300 * 257;
    float *first = NULL;
    int prev = cf_get_num_threads();
    for (int nt = 1; nt <= 4; nt += 3) {
        cf_set_num_threads(nt);
        cf_tensor *xt = rand_leaf(15, -3, 3, CF_SHAPE(257, 300)), *x = T(xt);
        cf_tensor *b = rand_leaf(16, -3, 3, CF_SHAPE(257));
        cf_tensor *c = cf_gt(x, cf_zeros(CF_SHAPE(300, 1)));
        cf_tensor *y = cf_where(c, cf_gelu(x, false), cf_pow(cf_abs(x), b));
        cf_backward(cf_sum_all(cf_maximum(y, cf_silu(b))));
        float *v = cf_arena_alloc(sizeof(float) * (size_t)(2 * n + 257));
        cf_copy_to(y, v);
        cf_copy_to(xt->grad, v + n);
        cf_copy_to(b->grad, v + 2 * n);
        if (first)
            ck_assert(memcmp(first, v, sizeof(float) * (size_t)(2 * n + 257)) == 0);
        first = v;
    }
    cf_set_num_threads(prev);
}
END_TEST
