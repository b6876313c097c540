/* Losses: cross entropy, nll_loss, mse_loss. Golden cases come from
 * tests/golden/gen_loss.py (PyTorch 1.13); see there for the case list. */
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IGN (-100)

/* The view a golden case applies to its stored leaf. */
typedef enum { AS_IS, TRANSPOSED, PERMUTED_021 } view_kind;

static cf_tensor *view_of(cf_tensor *x, view_kind v)
{
    switch (v) {
    case TRANSPOSED: return cf_transpose(x, 0, 1);
    case PERMUTED_021: return cf_permute(x, (const int[]){0, 2, 1});
    default: return x;
    }
}

static cf_tensor *targets(const int32_t *v, int ndim, const int64_t *shape)
{
    return cf_from_ints(v, ndim, shape);
}

/* Element i of t (any strides) as a float. */
static float at(const cf_tensor *t, int64_t i)
{
    int64_t n = cf_numel(t);
    float *all = malloc(sizeof(float) * n);
    cf_copy_to(t, all);
    float v = all[i];
    free(all);
    return v;
}

/* ---- cross_entropy ---- */

static const struct ce_case {
    const char *name;
    view_kind view;
    int ignore_index;
    float label_smoothing;
    cf_reduction reduction;
} ce_cases[] = {
    {"ce.mean", AS_IS, IGN, 0, CF_REDUCE_MEAN},
    {"ce.sum", AS_IS, IGN, 0, CF_REDUCE_SUM},
    {"ce.none", AS_IS, IGN, 0, CF_REDUCE_NONE},
    {"ce.ignore.mean", AS_IS, IGN, 0, CF_REDUCE_MEAN},
    {"ce.ignore.sum", AS_IS, IGN, 0, CF_REDUCE_SUM},
    {"ce.ignore.none", AS_IS, IGN, 0, CF_REDUCE_NONE},
    {"ce.ignore_class", AS_IS, 2, 0, CF_REDUCE_MEAN},
    {"ce.smooth.mean", AS_IS, IGN, 0.1f, CF_REDUCE_MEAN},
    {"ce.smooth.sum", AS_IS, IGN, 0.1f, CF_REDUCE_SUM},
    {"ce.smooth.none", AS_IS, IGN, 0.1f, CF_REDUCE_NONE},
    {"ce.smooth_ignore.mean", AS_IS, IGN, 0.1f, CF_REDUCE_MEAN},
    {"ce.smooth_ignore.sum", AS_IS, IGN, 0.1f, CF_REDUCE_SUM},
    {"ce.smooth_ignore.none", AS_IS, IGN, 0.1f, CF_REDUCE_NONE},
    {"ce.nd", AS_IS, IGN, 0.1f, CF_REDUCE_MEAN},
    {"ce.nd_permuted", PERMUTED_021, IGN, 0.1f, CF_REDUCE_NONE},
    {"ce.c1", AS_IS, IGN, 0.1f, CF_REDUCE_MEAN},
    {"ce.prime_transposed", TRANSPOSED, IGN, 0.1f, CF_REDUCE_SUM},
    {"ce.wide", AS_IS, IGN, 0, CF_REDUCE_MEAN},
    {"ce.sharp", AS_IS, IGN, 0.1f, CF_REDUCE_MEAN},
};

static cf_tensor *ce_case(cf_tensor *const *in, const void *ud)
{
    const struct ce_case *c = ud;
    return cf_cross_entropy(view_of(in[0], c->view), in[1],
                            &(cf_loss_opts){.ignore = true,
                                            .ignore_index = c->ignore_index,
                                            .label_smoothing = c->label_smoothing,
                                            .reduction = c->reduction});
}

TEST_WITH(cross_entropy_matches_pytorch_and_finite_differences, .loop = COUNT(ce_cases))
{
    assert_golden_case("loss.safetensors", ce_cases[_i].name, 2, ce_case, &ce_cases[_i]);
}
END_TEST

TEST(cross_entropy_of_uniform_logits_is_log_of_the_class_count)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 4));
    cf_tensor *t = targets((int32_t[]){1, 3}, CF_SHAPE(2));
    assert_values(cf_cross_entropy(x, t, &(cf_loss_opts){.ignore = true, .ignore_index = IGN}),
                  (float[]){logf(4)}, 1e-6f, 0);
}
END_TEST

TEST(cross_entropy_gradient_is_softmax_minus_one_hot)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){0, logf(3)}, CF_SHAPE(1, 2)), true);
    cf_tensor *t = targets((int32_t[]){1}, CF_SHAPE(1));
    cf_backward(cf_cross_entropy(
        x, t, &(cf_loss_opts){.ignore = true, .ignore_index = IGN, .reduction = CF_REDUCE_SUM}));
    assert_values(x->grad, (float[]){0.25f, 0.75f - 1}, 1e-6f, 0);
}
END_TEST

TEST(cross_entropy_smoothed_gradient_subtracts_the_smoothed_one_hot)
{
    cf_tensor *x = cf_requires_grad(cf_zeros(CF_SHAPE(1, 4)), true);
    cf_tensor *t = targets((int32_t[]){2}, CF_SHAPE(1));
    cf_backward(cf_cross_entropy(x, t,
                                 &(cf_loss_opts){.ignore = true,
                                                 .ignore_index = IGN,
                                                 .label_smoothing = 0.2f,
                                                 .reduction = CF_REDUCE_SUM}));
    /* softmax 0.25 each; target 0.8 + 0.2 / 4 at class 2, 0.05 elsewhere */
    assert_values(x->grad, (float[]){0.2f, 0.2f, 0.25f - 0.85f, 0.2f}, 1e-6f, 0);
}
END_TEST

TEST(cross_entropy_mean_counts_only_targets_not_ignored)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(3, 4));
    cf_tensor *t = targets((int32_t[]){0, IGN, 1}, CF_SHAPE(3));
    /* Each counted row loses log 4 with or without smoothing. */
    assert_values(cf_cross_entropy(x, t, &(cf_loss_opts){.ignore = true, .ignore_index = IGN}),
                  (float[]){logf(4)}, 1e-6f, 0);
    assert_values(
        cf_cross_entropy(
            x, t, &(cf_loss_opts){.ignore = true, .ignore_index = IGN, .label_smoothing = 0.1f}),
        (float[]){logf(4)}, 1e-6f, 0);
}
END_TEST

TEST(cross_entropy_ignored_targets_lose_nothing_and_get_no_gradient)
{
    cf_tensor *x = rand_leaf(3, -1, 1, CF_SHAPE(2, 3));
    cf_tensor *t = targets((int32_t[]){IGN, 1}, CF_SHAPE(2));
    cf_tensor *out = cf_cross_entropy(x, t,
                                      &(cf_loss_opts){.ignore = true,
                                                      .ignore_index = IGN,
                                                      .label_smoothing = 0.1f,
                                                      .reduction = CF_REDUCE_NONE});
    ck_assert_float_eq(at(out, 0), 0);
    ck_assert_int_eq(cf_backward_with(out, cf_ones(CF_SHAPE(2))), CF_OK);
    assert_values(cf_slice(x->grad, 0, 0, 1, 1), (float[]){0, 0, 0}, 0, 0);
}
END_TEST

TEST(cross_entropy_mean_over_only_ignored_targets_is_nan_with_zero_gradient)
{
    cf_tensor *x = rand_leaf(4, -1, 1, CF_SHAPE(2, 3));
    cf_tensor *t = targets((int32_t[]){IGN, IGN}, CF_SHAPE(2));
    for (int smooth = 0; smooth < 2; smooth++) {
        cf_tensor *out = cf_cross_entropy(x, t,
                                          &(cf_loss_opts){.ignore = true,
                                                          .ignore_index = IGN,
                                                          .label_smoothing = smooth ? 0.1f : 0});
        ck_assert(isnan(cf_item(out)));
        cf_backward(out);
        assert_values(x->grad, (float[]){0, 0, 0, 0, 0, 0}, 0, 0);
    }
    ck_assert_float_eq(
        cf_item(cf_cross_entropy(
            x, t,
            &(cf_loss_opts){.ignore = true, .ignore_index = IGN, .reduction = CF_REDUCE_SUM})),
        0);
}
END_TEST

TEST(cross_entropy_is_stable_for_large_logits)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){1000, 0, -1000}, CF_SHAPE(1, 3)), true);
    cf_tensor *out = cf_cross_entropy(
        x, targets((int32_t[]){1}, CF_SHAPE(1)),
        &(cf_loss_opts){.ignore = true, .ignore_index = IGN, .reduction = CF_REDUCE_SUM});
    assert_values(out, (float[]){1000}, 0, 1e-6f);
    cf_backward(out);
    assert_values(x->grad, (float[]){1, -1, 0}, 0, 0);
}
END_TEST

TEST(cross_entropy_treats_minus_infinity_logits_as_impossible_classes)
{
    cf_tensor *x =
        cf_requires_grad(cf_from_array((float[]){0, -INFINITY, 0}, CF_SHAPE(1, 3)), true);
    cf_tensor *out = cf_cross_entropy(x, targets((int32_t[]){0}, CF_SHAPE(1)),
                                      &(cf_loss_opts){.ignore = true, .ignore_index = IGN});
    assert_values(out, (float[]){logf(2)}, 1e-6f, 0);
    cf_backward(out);
    assert_values(x->grad, (float[]){-0.5f, 0, 0.5f}, 1e-6f, 0);
}
END_TEST

TEST(cross_entropy_propagates_nan)
{
    cf_tensor *x = cf_from_array((float[]){0, NAN, 1, 0, 1, 2}, CF_SHAPE(2, 3));
    cf_tensor *out = cf_cross_entropy(
        x, targets((int32_t[]){0, 2}, CF_SHAPE(2)),
        &(cf_loss_opts){.ignore = true, .ignore_index = IGN, .reduction = CF_REDUCE_NONE});
    ck_assert(isnan(at(out, 0)));
    ck_assert(!isnan(at(out, 1)));
}
END_TEST

TEST(cross_entropy_of_one_class_is_zero)
{
    cf_tensor *x = rand_leaf(5, -3, 3, CF_SHAPE(3, 1));
    cf_tensor *out = cf_cross_entropy(x, targets((int32_t[]){0, 0, 0}, CF_SHAPE(3)),
                                      &(cf_loss_opts){.ignore = true,
                                                      .ignore_index = IGN,
                                                      .label_smoothing = 0.1f,
                                                      .reduction = CF_REDUCE_NONE});
    assert_values(out, (float[]){0, 0, 0}, 0, 0);
    cf_backward_with(out, cf_ones(CF_SHAPE(3)));
    assert_values(x->grad, (float[]){0, 0, 0}, 1e-7f, 0);
}
END_TEST

TEST(cross_entropy_takes_a_single_prediction_of_shape_C)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){0, logf(3)}, CF_SHAPE(2)), true);
    cf_tensor *t = cf_from_ints((int32_t[]){1}, 0, NULL);
    cf_tensor *out = cf_cross_entropy(
        x, t, &(cf_loss_opts){.ignore = true, .ignore_index = IGN, .reduction = CF_REDUCE_NONE});
    ck_assert_int_eq(out->ndim, 0);
    assert_values(out, (float[]){-logf(0.75f)}, 1e-6f, 0);
    cf_backward(out);
    assert_values(x->grad, (float[]){0.25f, -0.25f}, 1e-6f, 0);
}
END_TEST

TEST(cross_entropy_reads_targets_of_any_strides)
{
    cf_tensor *x = rand_leaf(10, -2, 2, CF_SHAPE(2, 4, 3));
    cf_tensor *t = targets((int32_t[]){0, 3, 1, IGN, 2, 1}, CF_SHAPE(3, 2));
    cf_tensor *strided = cf_cross_entropy(x, cf_transpose(t, 0, 1),
                                          &(cf_loss_opts){.ignore = true,
                                                          .ignore_index = IGN,
                                                          .label_smoothing = 0.1f,
                                                          .reduction = CF_REDUCE_NONE});
    cf_tensor *copied = cf_cross_entropy(x, cf_contiguous(cf_transpose(t, 0, 1)),
                                         &(cf_loss_opts){.ignore = true,
                                                         .ignore_index = IGN,
                                                         .label_smoothing = 0.1f,
                                                         .reduction = CF_REDUCE_NONE});
    assert_close(strided, copied, 0, 0);
}
END_TEST

/* Loss and gradient bytes of a cross entropy on nt threads. */
static void ce_bytes(int nt, cf_tensor *x, cf_tensor *t, cf_reduction red, float *loss, float *grad)
{
    cf_set_num_threads(nt);
    cf_zero_grad(x);
    cf_tensor *out = cf_cross_entropy(x, t,
                                      &(cf_loss_opts){.ignore = true,
                                                      .ignore_index = 185,
                                                      .label_smoothing = 0.1f,
                                                      .reduction = red}); /* row 5 ignored */
    cf_tensor *dout = cf_ones(out->ndim, out->shape);
    cf_backward_with(out, dout);
    cf_copy_to(out, loss);
    cf_copy_to(x->grad, grad);
}

TEST(cross_entropy_is_identical_for_any_thread_count)
{
    int saved = cf_get_num_threads();
    cf_tensor *x = rand_leaf(6, -5, 5, CF_SHAPE(67, 1000, 3));
    cf_tensor *t = cf_empty(CF_I32, CF_SHAPE(67, 3));
    int32_t *tp = t->data;
    for (int i = 0; i < 67 * 3; i++)
        tp[i] = (i * 37) % 1000;
    int64_t n = cf_numel(x);
    float *g1 = malloc(sizeof(float) * n), *g2 = malloc(sizeof(float) * n);
    float l1[67 * 3], l2[67 * 3];
    for (cf_reduction red = CF_REDUCE_MEAN; red <= CF_REDUCE_NONE; red++) {
        int64_t nl = red == CF_REDUCE_NONE ? 67 * 3 : 1;
        ce_bytes(1, x, t, red, l1, g1);
        for (int nt = 2; nt <= 5; nt += 3) {
            ce_bytes(nt, x, t, red, l2, g2);
            ck_assert_msg(memcmp(l1, l2, sizeof(float) * nl) == 0, "loss differs on %d threads",
                          nt);
            ck_assert_msg(memcmp(g1, g2, sizeof(float) * n) == 0, "gradient differs on %d threads",
                          nt);
        }
    }
    free(g1);
    free(g2);
    cf_set_num_threads(saved);
}
END_TEST

TEST(cross_entropy_of_a_target_out_of_range_is_an_index_error)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(3, 5));
    ck_assert_ptr_null(cf_cross_entropy(x, targets((int32_t[]){0, 7, 1}, CF_SHAPE(3)),
                                        &(cf_loss_opts){.ignore = true, .ignore_index = IGN}));
    assert_error(CF_ERR_INDEX, "cf_cross_entropy", "target 7", "5 classes", NULL);
    ck_assert_ptr_null(cf_cross_entropy(x, targets((int32_t[]){0, -1, 1}, CF_SHAPE(3)),
                                        &(cf_loss_opts){.ignore = true, .ignore_index = IGN}));
    assert_error(CF_ERR_INDEX, "cf_cross_entropy", "target -1", "5 classes", NULL);
}
END_TEST

TEST(cross_entropy_with_targets_of_the_wrong_shape_is_a_shape_error)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(4, 5, 3));
    ck_assert_ptr_null(cf_cross_entropy(x, cf_empty(CF_I32, CF_SHAPE(4, 5)),
                                        &(cf_loss_opts){.ignore = true, .ignore_index = IGN}));
    assert_error(CF_ERR_SHAPE, "cf_cross_entropy", "[4, 5]", "[4, 5, 3]", "want [4, 3]", NULL);
    ck_assert_ptr_null(cf_cross_entropy(cf_scalar(1), cf_empty(CF_I32, 0, NULL),
                                        &(cf_loss_opts){.ignore = true, .ignore_index = IGN}));
    assert_error(CF_ERR_SHAPE, "cf_cross_entropy", NULL);
}
END_TEST

TEST(cross_entropy_with_float_targets_or_int_logits_is_a_dtype_error)
{
    ck_assert_ptr_null(cf_cross_entropy(cf_zeros(CF_SHAPE(2, 3)), cf_zeros(CF_SHAPE(2)),
                                        &(cf_loss_opts){.ignore = true, .ignore_index = IGN}));
    assert_error(CF_ERR_DTYPE, "cf_cross_entropy", "int32", NULL);
    ck_assert_ptr_null(cf_cross_entropy(cf_empty(CF_I32, CF_SHAPE(2, 3)),
                                        cf_empty(CF_I32, CF_SHAPE(2)),
                                        &(cf_loss_opts){.ignore = true, .ignore_index = IGN}));
    assert_error(CF_ERR_DTYPE, "cf_cross_entropy", "float32", NULL);
}
END_TEST

TEST(cross_entropy_with_bad_arguments_is_an_argument_error)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 3));
    cf_tensor *t = targets((int32_t[]){0, 1}, CF_SHAPE(2));
    ck_assert_ptr_null(cf_cross_entropy(
        x, t, &(cf_loss_opts){.ignore = true, .ignore_index = IGN, .label_smoothing = 1.5f}));
    assert_error(CF_ERR_ARG, "cf_cross_entropy", "label_smoothing 1.5", NULL);
    ck_assert_ptr_null(cf_cross_entropy(
        x, t, &(cf_loss_opts){.ignore = true, .ignore_index = IGN, .label_smoothing = NAN}));
    assert_error(CF_ERR_ARG, "label_smoothing", NULL);
    ck_assert_ptr_null(cf_cross_entropy(
        x, t, &(cf_loss_opts){.ignore = true, .ignore_index = IGN, .reduction = (cf_reduction)7}));
    assert_error(CF_ERR_ARG, "cf_cross_entropy", "reduction 7", NULL);
    ck_assert_ptr_null(
        cf_cross_entropy(NULL, t, &(cf_loss_opts){.ignore = true, .ignore_index = IGN}));
    assert_error(CF_ERR_ARG, "cf_cross_entropy", NULL);
}
END_TEST

TEST(cross_entropy_without_options_ignores_no_class_and_takes_the_mean)
{
    /* Target 0 counts: an ignore_index of 0 must be asked for. */
    cf_tensor *x = cf_from_array((float[]){0, 0, 0, 0, 0, 0}, CF_SHAPE(2, 3));
    cf_tensor *t = targets((int32_t[]){0, 1}, CF_SHAPE(2));
    ck_assert_float_eq_tol(cf_item(cf_cross_entropy(x, t, NULL)), logf(3), 1e-6f);
    cf_tensor *pad0 =
        cf_cross_entropy(x, t, &(cf_loss_opts){.ignore = true, .reduction = CF_REDUCE_SUM});
    ck_assert_float_eq_tol(cf_item(pad0), logf(3), 1e-6f);
}
END_TEST

/* ---- nll_loss ---- */

static const struct reduced_case {
    const char *name;
    view_kind view;
    cf_reduction reduction;
} nll_cases[] = {
    {"nll.mean", AS_IS, CF_REDUCE_MEAN},
    {"nll.sum", AS_IS, CF_REDUCE_SUM},
    {"nll.none", AS_IS, CF_REDUCE_NONE},
    {"nll.nd_permuted", PERMUTED_021, CF_REDUCE_MEAN},
};

static cf_tensor *nll_case(cf_tensor *const *in, const void *ud)
{
    const struct reduced_case *c = ud;
    return cf_nll_loss(
        view_of(in[0], c->view), in[1],
        &(cf_loss_opts){.ignore = true, .ignore_index = IGN, .reduction = c->reduction});
}

TEST_WITH(nll_loss_matches_pytorch_and_finite_differences, .loop = COUNT(nll_cases))
{
    assert_golden_case("loss.safetensors", nll_cases[_i].name, 2, nll_case, &nll_cases[_i]);
}
END_TEST

TEST(nll_loss_is_minus_the_log_probability_of_the_target)
{
    cf_tensor *lp = cf_from_array((float[]){-1, -2, -3, -4, -5, -6}, CF_SHAPE(2, 3));
    cf_tensor *t = targets((int32_t[]){2, 0}, CF_SHAPE(2));
    assert_values(
        cf_nll_loss(
            lp, t,
            &(cf_loss_opts){.ignore = true, .ignore_index = IGN, .reduction = CF_REDUCE_NONE}),
        (float[]){3, 4}, 0, 0);
    assert_values(cf_nll_loss(lp, t, &(cf_loss_opts){.ignore = true, .ignore_index = IGN}),
                  (float[]){3.5f}, 0, 0);
    assert_values(cf_nll_loss(lp, t, &(cf_loss_opts){.ignore = true, .ignore_index = 0}),
                  (float[]){3}, 0, 0);
}
END_TEST

TEST(nll_loss_mean_over_only_ignored_targets_is_nan)
{
    cf_tensor *lp = cf_zeros(CF_SHAPE(2, 3));
    cf_tensor *t = targets((int32_t[]){IGN, IGN}, CF_SHAPE(2));
    ck_assert(
        isnan(cf_item(cf_nll_loss(lp, t, &(cf_loss_opts){.ignore = true, .ignore_index = IGN}))));
}
END_TEST

TEST(nll_loss_of_a_target_out_of_range_is_an_index_error)
{
    cf_tensor *lp = cf_zeros(CF_SHAPE(2, 3));
    ck_assert_ptr_null(cf_nll_loss(
        lp, targets((int32_t[]){3, 0}, CF_SHAPE(2)),
        &(cf_loss_opts){.ignore = true, .ignore_index = IGN, .reduction = CF_REDUCE_SUM}));
    assert_error(CF_ERR_INDEX, "cf_nll_loss", "target 3", "3 classes", NULL);
}
END_TEST

TEST(nll_loss_with_targets_of_the_wrong_shape_is_a_shape_error)
{
    ck_assert_ptr_null(cf_nll_loss(
        cf_zeros(CF_SHAPE(2, 3)), cf_empty(CF_I32, CF_SHAPE(3)),
        &(cf_loss_opts){.ignore = true, .ignore_index = IGN, .reduction = CF_REDUCE_SUM}));
    assert_error(CF_ERR_SHAPE, "cf_nll_loss", "[3]", "[2, 3]", NULL);
}
END_TEST

/* ---- mse_loss ---- */

static const struct reduced_case mse_cases[] = {
    {"mse.mean", AS_IS, CF_REDUCE_MEAN},
    {"mse.sum", AS_IS, CF_REDUCE_SUM},
    {"mse.none", AS_IS, CF_REDUCE_NONE},
    {"mse.transposed", TRANSPOSED, CF_REDUCE_MEAN},
};

static cf_tensor *mse_case(cf_tensor *const *in, const void *ud)
{
    const struct reduced_case *c = ud;
    return cf_mse_loss(view_of(in[0], c->view), in[1], &(cf_loss_opts){.reduction = c->reduction});
}

TEST_WITH(mse_loss_matches_pytorch_and_finite_differences, .loop = COUNT(mse_cases))
{
    assert_golden_case("loss.safetensors", mse_cases[_i].name, 2, mse_case, &mse_cases[_i]);
}
END_TEST

TEST(mse_loss_is_the_mean_squared_difference)
{
    cf_tensor *a = cf_from_array((float[]){1, 2, 3}, CF_SHAPE(3));
    cf_tensor *b = cf_from_array((float[]){1, 4, 0}, CF_SHAPE(3));
    assert_values(cf_mse_loss(a, b, NULL), (float[]){13.0f / 3}, 0, 1e-7f);
    assert_values(cf_mse_loss(a, b, &(cf_loss_opts){.reduction = CF_REDUCE_SUM}), (float[]){13}, 0,
                  0);
    assert_values(cf_mse_loss(a, b, &(cf_loss_opts){.reduction = CF_REDUCE_NONE}),
                  (float[]){0, 4, 9}, 0, 0);
}
END_TEST

TEST(mse_loss_mean_of_nothing_is_nan)
{
    cf_tensor *a = cf_zeros(CF_SHAPE(0, 3));
    ck_assert(isnan(cf_item(cf_mse_loss(a, a, NULL))));
    ck_assert_float_eq(cf_item(cf_mse_loss(a, a, &(cf_loss_opts){.reduction = CF_REDUCE_SUM})), 0);
}
END_TEST

TEST(mse_loss_of_shapes_that_do_not_broadcast_is_a_shape_error)
{
    ck_assert_ptr_null(cf_mse_loss(cf_zeros(CF_SHAPE(2, 3)), cf_zeros(CF_SHAPE(4)), NULL));
    assert_error(CF_ERR_SHAPE, "cf_mse_loss", "[2, 3]", "[4]", NULL);
}
END_TEST

TEST(mse_loss_with_bad_arguments_is_an_error)
{
    cf_tensor *a = cf_zeros(CF_SHAPE(2));
    ck_assert_ptr_null(cf_mse_loss(a, cf_empty(CF_I32, CF_SHAPE(2)), NULL));
    assert_error(CF_ERR_DTYPE, "cf_mse_loss", NULL);
    ck_assert_ptr_null(cf_mse_loss(a, a, &(cf_loss_opts){.reduction = (cf_reduction)-1}));
    assert_error(CF_ERR_ARG, "cf_mse_loss", "reduction", NULL);
    ck_assert_ptr_null(cf_mse_loss(a, NULL, NULL));
    assert_error(CF_ERR_ARG, "cf_mse_loss", NULL);
    ck_assert_ptr_null(cf_mse_loss(a, a, &(cf_loss_opts){.label_smoothing = 0.1f}));
    assert_error(CF_ERR_ARG, "cf_mse_loss", "class targets", NULL);
    ck_assert_ptr_null(cf_mse_loss(a, a, &(cf_loss_opts){.ignore = true}));
    assert_error(CF_ERR_ARG, "cf_mse_loss", NULL);
}
END_TEST

TEST(nll_loss_refuses_label_smoothing)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 3));
    cf_tensor *t = targets((int32_t[]){0, 1}, CF_SHAPE(2));
    ck_assert_ptr_null(cf_nll_loss(x, t, &(cf_loss_opts){.label_smoothing = 0.1f}));
    assert_error(CF_ERR_ARG, "cf_nll_loss", "label_smoothing", NULL);
}
END_TEST
