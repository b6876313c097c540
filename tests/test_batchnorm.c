/* BatchNorm1d (nn/batchnorm.c) against nn.BatchNorm1d
 * (tests/golden/gen_layers.py): values, gradients and running statistics in
 * training and eval, state_dicts with PyTorch's buffers, a gradient check and
 * bad input. */
#include "tests/gold.h"

#define LAYERS "layers.safetensors"

static cf_tensor *bn_fwd(cf_module *m, cf_tensor *x)
{
    return cf_batchnorm1d_forward((cf_batchnorm1d *)m, x);
}

static cf_module *bn(int C, float eps, float momentum, bool affine, bool track)
{
    return &cf_batchnorm1d_new(NULL, "bn", C, eps, momentum, affine, track)->base;
}

static cf_tensor *bn_train_fwd(cf_tensor *const *in, void *ud)
{
    return cf_batchnorm1d_forward(ud, in[0]);
}

TEST(golden_batchnorm_2d_input_training)
{
    gold_unary(LAYERS, "bn2d", bn(4, 1e-5f, 0.1f, true, true), bn_fwd, true, false);
}
END_TEST

TEST(golden_batchnorm_3d_input_training_with_momentum)
{
    gold_unary(LAYERS, "bn3d", bn(3, 1e-3f, 0.3f, true, true), bn_fwd, true, false);
}
END_TEST

TEST(golden_batchnorm_cumulative_average_without_momentum)
{
    gold_unary(LAYERS, "bn_cumulative", bn(3, 1e-5f, -1, true, true), bn_fwd, true, false);
}
END_TEST

TEST(golden_batchnorm_eval_uses_running_statistics)
{
    gold_unary(LAYERS, "bn_eval", bn(4, 1e-5f, 0.1f, true, true), bn_fwd, false, false);
}
END_TEST

TEST(golden_batchnorm_without_affine)
{
    gold_unary(LAYERS, "bn_plain", bn(3, 1e-5f, 0.1f, false, true), bn_fwd, true, false);
}
END_TEST

TEST(golden_batchnorm_untracked_uses_batch_statistics_in_eval)
{
    gold_unary(LAYERS, "bn_untracked_eval", bn(3, 1e-5f, 0.1f, true, false), bn_fwd, false, false);
}
END_TEST

TEST(batchnorm_state_dict_has_torch_names_and_parameters_exclude_buffers)
{
    cf_module *m = bn(4, 1e-5f, 0.1f, true, true);
    ck_assert_int_eq(cf_module_num_tensors(m), 5);
    ck_assert_int_eq(cf_module_num_params(m), 8);
    cf_tensor *n = cf_module_find(m, "num_batches_tracked");
    ck_assert_int_eq(n->dtype, CF_I32);
    ck_assert_int_eq(n->ndim, 0);
    ck_assert(!(cf_module_find(m, "running_var")->flags & CF_REQUIRES_GRAD));
    ck_assert_float_eq(cf_get(cf_module_find(m, "running_var"), CF_IDX(2)), 1);
    cf_module_free(m);
    m = bn(4, 1e-5f, 0.1f, false, false);
    ck_assert_int_eq(cf_module_num_tensors(m), 0);
    cf_module_free(m);
}
END_TEST

TEST(batchnorm_loads_a_pytorch_state_dict_with_an_int64_counter)
{
    /* The fixture's "bn3d.*" entries are a torch state_dict under the
     * prefix bn3d, num_batches_tracked int64. */
    cf_module *root = cf_module_new("Net", NULL, NULL);
    cf_batchnorm1d *b = cf_batchnorm1d_new(root, "bn3d", 3, 1e-3f, 0.3f, true, true);
    ck_assert_int_eq(cf_module_load(root, fixture_path("layers.safetensors"), false), CF_OK);
    ck_assert_int_eq(*(int32_t *)b->num_batches_tracked->data, 5);
    cf_safetensors *f = open_fixture("layers.safetensors");
    assert_golden(b->running_mean, f, "bn3d.running_mean");
    cf_safetensors_close(f);
    cf_module_free(root);
}
END_TEST

TEST(int64_tensors_narrow_to_int32_only_when_they_fit)
{
    cf_safetensors *f = open_fixture("layers.safetensors");
    cf_tensor *n = cf_empty(CF_I32, 0, NULL), *x = cf_empty(CF_F32, 0, NULL);
    ck_assert_int_eq(cf_safetensors_read_into(f, "int64_too_big", n), CF_ERR_DTYPE);
    assert_error(CF_ERR_DTYPE, "int64_too_big", "1099511627776", "beyond int32", NULL);
    ck_assert_int_eq(cf_safetensors_read_into(f, "bn2d.num_batches_tracked", x), CF_ERR_DTYPE);
    assert_error(CF_ERR_DTYPE, "I64", "float32", NULL);
    ck_assert_ptr_null(cf_safetensors_get(f, "bn2d.num_batches_tracked"));
    assert_error(CF_ERR_DTYPE, "I64", NULL);
    cf_safetensors_close(f);
}
END_TEST

TEST(batchnorm_updates_running_statistics_only_in_training)
{
    cf_batchnorm1d *m = (cf_batchnorm1d *)bn(2, 1e-5f, 0.1f, true, true);
    cf_tensor *x = rand_leaf(9, -1, 1, CF_SHAPE(4, 2));
    cf_module_train(&m->base, false);
    cf_batchnorm1d_forward(m, x);
    ck_assert_int_eq(*(int32_t *)m->num_batches_tracked->data, 0);
    ck_assert_float_eq(cf_get(m->running_mean, CF_IDX(0)), 0);
    cf_module_train(&m->base, true);
    CF_NO_GRAD { cf_batchnorm1d_forward(m, x); }
    ck_assert_int_eq(*(int32_t *)m->num_batches_tracked->data, 1);
    ck_assert_float_ne(cf_get(m->running_mean, CF_IDX(0)), 0);
    cf_module_free(&m->base);
}
END_TEST

TEST(optimizers_leave_buffers_alone)
{
    cf_batchnorm1d *m = (cf_batchnorm1d *)bn(2, 1e-5f, 0.1f, true, true);
    cf_optim *o = cf_adamw_new(&m->base, &(cf_adamw_opts){.lr = 0.1f, .weight_decay = 0.5f});
    cf_tensor *y = cf_batchnorm1d_forward(m, rand_leaf(10, -1, 1, CF_SHAPE(4, 2)));
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_square(y))), CF_OK);
    float rv[2];
    cf_copy_to(m->running_var, rv);
    cf_optim_step(o);
    ck_assert_float_eq(cf_get(m->running_var, CF_IDX(0)), rv[0]);
    ck_assert_float_eq(cf_get(m->running_var, CF_IDX(1)), rv[1]);
    ck_assert_int_eq(*(int32_t *)m->num_batches_tracked->data, 1);
    cf_optim_free(o);
    cf_module_free(&m->base);
}
END_TEST

TEST(batchnorm_gradcheck_through_batch_statistics)
{
    cf_batchnorm1d *m = (cf_batchnorm1d *)bn(3, 1e-5f, 0.1f, true, false);
    cf_fill_uniform(&(cf_rng){11, 0}, m->weight, 0.5f, 1.5f);
    cf_tensor *x = rand_leaf(12, -1, 1, CF_SHAPE(4, 3, 2));
    assert_gradcheck(bn_train_fwd, m, 1, &x, 2e-2f);
    cf_module_free(&m->base);
}
END_TEST

TEST(batchnorm_refuses_bad_input)
{
    cf_batchnorm1d *m = (cf_batchnorm1d *)bn(3, 1e-5f, 0.1f, true, true);
    ck_assert_ptr_null(cf_batchnorm1d_forward(m, cf_zeros(CF_SHAPE(4, 2))));
    assert_error(CF_ERR_SHAPE, "BatchNorm1d \"bn\"", "[4, 2]", "[N, 3]", NULL);
    ck_assert_ptr_null(cf_batchnorm1d_forward(m, cf_zeros(CF_SHAPE(3))));
    assert_error(CF_ERR_SHAPE, "[3]", NULL);
    ck_assert_ptr_null(cf_batchnorm1d_forward(m, cf_zeros(CF_SHAPE(1, 3))));
    assert_error(CF_ERR_SHAPE, "1 value per channel", NULL);
    cf_module_train(&m->base, false);
    ck_assert_ptr_nonnull(cf_batchnorm1d_forward(m, cf_zeros(CF_SHAPE(1, 3))));
    ck_assert_ptr_null(cf_batchnorm1d_new(NULL, "b", 0, 1e-5f, 0.1f, true, true));
    assert_error(CF_ERR_ARG, "num_features 0", NULL);
    ck_assert_ptr_null(cf_batchnorm1d_new(NULL, "b", 3, 1e-5f, 1.5f, true, true));
    assert_error(CF_ERR_ARG, "momentum 1.5", NULL);
    cf_module_free(&m->base);
}
END_TEST
