/* autograd/reduce.c. sum and mean: values and gradients against PyTorch
 * with a finite-difference check of each case (gen_golden.py's "reduce."
 * cases), reduction dims, keepdim and errors by hand. max, min, argmax, var,
 * std and logsumexp: values, gradients, PyTorch references (gen_reduce.py),
 * ties, NaN and infinities, edge sizes, thread-count independence and
 * errors. */
#include "tests/expr.h"
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

TEST_WITH(sums_and_means_match_pytorch_and_finite_differences, .golden = "reduce.")
{
    assert_golden_expr("ops.safetensors", "reduce.", _i);
}
END_TEST

/* ---- sum, mean ---- */

TEST(mean_all_gradient_is_one_over_numel)
{
    cf_tensor *x = cf_requires_grad(cf_zeros(CF_SHAPE(2, 2)), true);
    cf_backward(cf_mean_all(x));
    assert_values(x->grad, (float[]){0.25f, 0.25f, 0.25f, 0.25f}, 0, 0);
}
END_TEST

TEST(sum_over_dim_1_of_arange)
{
    /* [[0, 1, 2], [3, 4, 5]] */
    cf_tensor *y = cf_sum(arange_as(CF_SHAPE(2, 3)), CF_DIMS(1), false);
    assert_shape(y, CF_SHAPE(2));
    assert_values(y, (float[]){3, 12}, 0, 0);
}
END_TEST

TEST(sum_over_dim_0_of_arange)
{
    cf_tensor *y = cf_sum(arange_as(CF_SHAPE(2, 3)), CF_DIMS(0), false);
    assert_shape(y, CF_SHAPE(3));
    assert_values(y, (float[]){3, 5, 7}, 0, 0);
}
END_TEST

TEST(sum_keepdim_keeps_reduced_dims_as_size_one)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 3, 4));
    assert_shape(cf_sum(x, CF_DIMS(0, 2), true), CF_SHAPE(1, 3, 1));
    assert_shape(cf_sum(x, CF_DIMS(0, 2), false), CF_SHAPE(3));
    assert_shape(cf_mean(x, CF_DIMS(-1), true), CF_SHAPE(2, 3, 1));
    assert_shape(cf_mean(x, CF_DIMS(-1), false), CF_SHAPE(2, 3));
}
END_TEST

TEST(negative_dims_count_from_the_end)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3, 4));
    assert_close(cf_sum(x, CF_DIMS(-1), false), cf_sum(x, CF_DIMS(2), false), 0, 0);
    assert_close(cf_mean(x, CF_DIMS(-3, -2), false), cf_mean(x, CF_DIMS(0, 1), false), 0, 0);
}
END_TEST

TEST(mean_over_several_dims_of_arange)
{
    /* x[i][j][k] = 12i + 4j + k; the mean over i and k is 6 + 4j + 1.5. */
    cf_tensor *y = cf_mean(arange_as(CF_SHAPE(2, 3, 4)), CF_DIMS(0, 2), false);
    assert_values(y, (float[]){7.5f, 11.5f, 15.5f}, 0, 1e-6f);
}
END_TEST

TEST(sum_all_and_mean_all_are_0d)
{
    cf_tensor *x = arange_as(CF_SHAPE(2, 3));
    cf_tensor *s = cf_sum_all(x), *m = cf_mean_all(x);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_int_eq(m->ndim, 0);
    ck_assert_float_eq(cf_item(s), 15);
    ck_assert_float_eq(cf_item(m), 2.5f);
}
END_TEST

TEST(sum_of_a_repeated_dim_is_an_error)
{
    ck_assert_ptr_null(cf_sum(cf_zeros(CF_SHAPE(2, 3)), CF_DIMS(1, -1), false));
    assert_error(CF_ERR_DIM, NULL);
}
END_TEST

TEST(sum_over_a_dim_out_of_range_is_an_error)
{
    ck_assert_ptr_null(cf_mean(cf_zeros(CF_SHAPE(2, 3)), CF_DIMS(2), false));
    assert_error(CF_ERR_DIM, NULL);
}
END_TEST

/* ---- PyTorch references (gen_reduce.py) ---- */

typedef enum { SAME, TRANSPOSED, SLICED } view_kind;

/* One row per case of gen_reduce.py, with the same view and arguments; max
 * and min cases also have <name>.idx, their positions. */
typedef struct {
    const char *name;
    view_kind view;
    int dim; /* max, min, argmax */
    bool keepdim;
    int ndims; /* var, std, logsumexp */
    int dims[3];
    bool unbiased;
} golden_row;

static const golden_row GOLDEN[] = {
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

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

typedef struct {
    const golden_row *c;
    bool positions; /* max and min: the .idx case */
} golden_arg;

static cf_tensor *reduce_build(cf_tensor *const *in, const void *ud)
{
    const golden_arg *a = ud;
    const golden_row *c = a->c;
    cf_tensor *v = c->view == TRANSPOSED ? cf_transpose(in[0], 0, 2)
                   : c->view == SLICED   ? cf_slice(in[0], 1, 0, 10, 2)
                                         : in[0];
    cf_tensor *idx = NULL, *out = NULL;
    if (has_prefix(c->name, "max."))
        out = cf_max(v, c->dim, c->keepdim, &idx);
    else if (has_prefix(c->name, "min."))
        out = cf_min(v, c->dim, c->keepdim, &idx);
    else if (has_prefix(c->name, "argmax."))
        out = cf_argmax(v, c->dim, c->keepdim);
    else if (has_prefix(c->name, "var."))
        out = cf_var(v, c->ndims, c->dims, c->unbiased, c->keepdim);
    else if (has_prefix(c->name, "std."))
        out = cf_std(v, c->ndims, c->dims, c->unbiased, c->keepdim);
    else
        out = cf_logsumexp(v, c->ndims, c->dims, c->keepdim);
    return a->positions ? idx : out;
}

/* Each row against the fixture and finite differences; max and min also
 * their positions (<name>.idx). */
TEST_WITH(cases_match_pytorch_and_finite_differences, .loop = COUNT(GOLDEN))
{
    const golden_row *c = &GOLDEN[_i];
    assert_golden_case("reduce.safetensors", c->name, 1, reduce_build, &(golden_arg){c, false});
    if (has_prefix(c->name, "max.") || has_prefix(c->name, "min.")) {
        char name[128];
        snprintf(name, sizeof name, "%s.idx", c->name);
        assert_golden_case("reduce.safetensors", name, 1, reduce_build, &(golden_arg){c, true});
    }
}
END_TEST

/* ---- max, min, argmax ---- */

TEST(max_gives_values_and_first_positions)
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

TEST(max_gradient_goes_to_the_first_maximum)
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

TEST(whole_tensor_max_min_argmax_flatten_row_major)
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

TEST(max_keepdim_keeps_a_size1_dim)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 3, 4));
    cf_tensor *idx;
    assert_shape(cf_max(x, 1, true, &idx), 3, (int64_t[]){2, 1, 4});
    assert_shape(idx, 3, (int64_t[]){2, 1, 4});
    assert_shape(cf_max(x, -1, false, NULL), 2, (int64_t[]){2, 3});
}
END_TEST

TEST(max_of_nan_is_nan_at_its_first_position)
{
    cf_tensor *x = cf_from_array((float[]){1, NAN, 9, NAN}, CF_SHAPE(4));
    cf_tensor *idx;
    ck_assert(isnan(cf_item(cf_max(x, 0, false, &idx))));
    ck_assert_float_eq(cf_item(idx), 1);
    ck_assert_float_eq(cf_item(cf_argmax(x, 0, false)), 1);
}
END_TEST

TEST(max_of_a_0d_tensor_is_itself_at_position_0)
{
    cf_tensor *idx;
    cf_tensor *v = cf_max(cf_scalar(3), 0, false, &idx);
    assert_shape(v, 0, NULL);
    ck_assert_float_eq(cf_item(v), 3);
    ck_assert_float_eq(cf_item(idx), 0);
}
END_TEST

TEST(max_over_an_empty_dim_is_an_error_but_empty_rows_are_fine)
{
    ck_assert_ptr_null(cf_max(cf_zeros(CF_SHAPE(2, 0)), 1, false, NULL));
    assert_error(CF_ERR_SHAPE, "cf_max", "dim 1", "size 0", "[2, 0]", NULL);
    cf_tensor *idx;
    assert_shape(cf_max(cf_zeros(CF_SHAPE(0, 3)), 1, false, &idx), 1, (int64_t[]){0});
    assert_shape(idx, 1, (int64_t[]){0});
}
END_TEST

TEST(max_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_max(cf_zeros(CF_SHAPE(2, 3)), 2, false, NULL));
    assert_error(CF_ERR_DIM, "cf_max", "dim 2", NULL);
    ck_assert_ptr_null(cf_max(cf_from_ints((int32_t[]){1}, CF_SHAPE(1)), 0, false, NULL));
    assert_error(CF_ERR_DTYPE, "cf_max", NULL);
    ck_assert_ptr_null(cf_max(NULL, 0, false, NULL));
    assert_error(CF_ERR_ARG, "cf_max", NULL);
}
END_TEST

TEST(min_gives_values_and_first_positions)
{
    cf_tensor *x = cf_from_array((float[]){4, 1, 1, 2, -7, 3, -7, 0}, CF_SHAPE(2, 4));
    cf_tensor *idx;
    assert_values(cf_min(x, -1, false, &idx), (float[]){1, -7}, 0, 0);
    assert_values(idx, (float[]){1, 0}, 0, 0);
}
END_TEST

TEST(min_gradient_goes_to_the_first_minimum)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){2, 0, 0, 5}, CF_SHAPE(4)), true);
    cf_backward(cf_min(x, 0, false, NULL));
    assert_values(x->grad, (float[]){0, 1, 0, 0}, 0, 0);
}
END_TEST

TEST(min_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_min(cf_zeros(CF_SHAPE(3)), -2, false, NULL));
    assert_error(CF_ERR_DIM, "cf_min", "dim -2", NULL);
    ck_assert_ptr_null(cf_min(cf_zeros(CF_SHAPE(3, 0)), 1, true, NULL));
    assert_error(CF_ERR_SHAPE, "cf_min", "[3, 0]", NULL);
}
END_TEST

TEST(argmax_gives_int32_first_positions_without_a_gradient)
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

TEST(argmax_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_argmax(cf_zeros(CF_SHAPE(2)), 3, false));
    assert_error(CF_ERR_DIM, "cf_argmax", "dim 3", NULL);
    ck_assert_ptr_null(cf_argmax(cf_zeros(CF_SHAPE(0)), 0, false));
    assert_error(CF_ERR_SHAPE, "cf_argmax", "size 0", NULL);
}
END_TEST

/* ---- var, std ---- */

TEST(var_divides_by_n_minus_1_when_unbiased_else_by_n)
{
    cf_tensor *x = cf_from_array((float[]){1, 2, 3, 4, 2, 2, 2, 2}, CF_SHAPE(2, 4));
    assert_values(cf_var(x, CF_DIMS(1), true, false), (float[]){5.0f / 3, 0}, 1e-7f, 1e-7f);
    assert_values(cf_var(x, CF_DIMS(1), false, false), (float[]){1.25f, 0}, 1e-7f, 1e-7f);
    assert_values(cf_var(x, 0, NULL, false, false), (float[]){0.6875f}, 1e-7f, 1e-7f);
}
END_TEST

TEST(var_over_several_dims_keeps_them_with_keepdim)
{
    cf_tensor *x = rand_leaf(14, -1, 1, CF_SHAPE(2, 3, 4));
    cf_tensor *v = cf_var(x, CF_DIMS(0, 2), true, true);
    assert_shape(v, 3, (int64_t[]){1, 3, 1});
    cf_tensor *p = cf_contiguous(cf_permute(x, (int[]){1, 0, 2}));
    cf_tensor *flat = cf_reshape(p, CF_SHAPE(3, 8));
    assert_close(cf_reshape(v, CF_SHAPE(3)), cf_var(flat, CF_DIMS(1), true, false), 1e-7f, 1e-6f);
}
END_TEST

TEST(var_is_accurate_far_from_zero)
{
    cf_tensor *x = cf_from_array((float[]){10000.5f, 10001.5f, 10002.5f}, CF_SHAPE(3));
    assert_values(cf_var(x, 0, NULL, true, false), (float[]){1}, 0, 0);
}
END_TEST

TEST(var_of_one_element_unbiased_is_nan)
{
    cf_tensor *x = cf_from_array((float[]){3, 4}, CF_SHAPE(2, 1));
    float *v = row_major(cf_var(x, CF_DIMS(1), true, false));
    ck_assert(isnan(v[0]) && isnan(v[1]));
    free(v);
    assert_values(cf_var(x, CF_DIMS(1), false, false), (float[]){0, 0}, 0, 0);
}
END_TEST

TEST(var_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_var(cf_zeros(CF_SHAPE(2, 3)), CF_DIMS(1, -1), true, false));
    assert_error(CF_ERR_DIM, "cf_var", "listed twice", NULL);
    ck_assert_ptr_null(cf_var(cf_zeros(CF_SHAPE(2, 3)), CF_DIMS(2), true, false));
    assert_error(CF_ERR_DIM, "cf_var", "dim 2", NULL);
    ck_assert_ptr_null(cf_var(cf_from_ints((int32_t[]){1}, CF_SHAPE(1)), 0, NULL, true, false));
    assert_error(CF_ERR_DTYPE, "cf_var", NULL);
}
END_TEST

TEST(std_is_the_square_root_of_var)
{
    cf_tensor *x = rand_leaf(16, -3, 3, CF_SHAPE(4, 9));
    assert_close(cf_std(x, CF_DIMS(1), true, false), cf_sqrt(cf_var(x, CF_DIMS(1), true, false)), 0,
                 2e-7f);
    assert_close(cf_std(x, CF_DIMS(0), false, true), cf_sqrt(cf_var(x, CF_DIMS(0), false, true)), 0,
                 2e-7f);
}
END_TEST

TEST(std_gradient_is_zero_where_std_is_zero)
{
    cf_tensor *x =
        cf_requires_grad(cf_from_array((float[]){2, 2, 2, 1, 2, 3}, CF_SHAPE(2, 3)), true);
    cf_backward_with(cf_std(x, CF_DIMS(1), true, false), cf_ones(CF_SHAPE(2)));
    assert_values(x->grad, (float[]){0, 0, 0, -0.5f, 0, 0.5f}, 1e-7f, 0);
}
END_TEST

TEST(std_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_std(cf_zeros(CF_SHAPE(2)), CF_DIMS(-2), false, false));
    assert_error(CF_ERR_DIM, "cf_std", "dim -2", NULL);
    ck_assert_ptr_null(cf_std(NULL, 0, NULL, false, false));
    assert_error(CF_ERR_ARG, "cf_std", NULL);
}
END_TEST

/* ---- logsumexp ---- */

TEST(logsumexp_matches_the_definition)
{
    cf_tensor *x = cf_from_array((float[]){0, 1, 2, -1, -1, -1}, CF_SHAPE(2, 3));
    assert_values(cf_logsumexp(x, CF_DIMS(1), false),
                  (float[]){logf(1 + expf(1) + expf(2)), -1 + logf(3)}, 1e-6f, 1e-6f);
}
END_TEST

TEST(logsumexp_is_stable_for_large_inputs)
{
    cf_tensor *x = cf_from_array((float[]){1000, 1000, -1000, -1000}, CF_SHAPE(2, 2));
    assert_values(cf_logsumexp(x, CF_DIMS(-1), true), (float[]){1000 + logf(2), -1000 + logf(2)}, 0,
                  1e-7f);
}
END_TEST

TEST(logsumexp_of_infinities_and_of_nothing)
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

TEST(logsumexp_over_several_dims_equals_it_over_a_flattened_copy)
{
    cf_tensor *x = rand_leaf(18, -50, 50, CF_SHAPE(3, 4, 5));
    cf_tensor *flat = cf_reshape(cf_contiguous(cf_permute(x, (int[]){1, 0, 2})), CF_SHAPE(4, 15));
    assert_close(cf_logsumexp(x, CF_DIMS(2, 0), false), cf_logsumexp(flat, CF_DIMS(1), false), 0,
                 1e-7f);
}
END_TEST

TEST(logsumexp_of_bad_input_is_an_error)
{
    ck_assert_ptr_null(cf_logsumexp(cf_zeros(CF_SHAPE(2, 3)), CF_DIMS(0, 0), false));
    assert_error(CF_ERR_DIM, "cf_logsumexp", "listed twice", NULL);
    ck_assert_ptr_null(cf_logsumexp(cf_from_ints((int32_t[]){1}, CF_SHAPE(1)), 0, NULL, false));
    assert_error(CF_ERR_DTYPE, "cf_logsumexp", NULL);
}
END_TEST

/* ---- All reductions ---- */

TEST(reductions_are_the_same_for_any_thread_count)
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
