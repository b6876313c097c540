/* RMSNorm (nn/rmsnorm.c) against nn.RMSNorm's definition
 * (tests/golden/gen_layers.py), a gradient check and bad input. */
#include "tests/gold.h"

#define LAYERS "layers.safetensors"

static cf_tensor *rms_fwd(cf_module *m, cf_tensor *x)
{
    return cf_rmsnorm_forward((cf_rmsnorm *)m, x);
}

static cf_tensor *rms_gc(cf_tensor *const *in, void *ud) { return cf_rmsnorm_forward(ud, in[0]); }

TEST(golden_rmsnorm_with_weight)
{
    gold_unary(LAYERS, "rmsnorm", &cf_rmsnorm_new(NULL, "norm", 6, 1e-6f, true)->base, rms_fwd,
               true, false);
}
END_TEST

TEST(golden_rmsnorm_without_weight_at_torch_default_eps)
{
    gold_unary(LAYERS, "rmsnorm_plain",
               &cf_rmsnorm_new(NULL, "norm", 5, 1.1920929e-07f, false)->base, rms_fwd, true, false);
}
END_TEST

TEST(rmsnorm_gradcheck)
{
    cf_rmsnorm *m = cf_rmsnorm_new(NULL, "norm", 4, 1e-5f, true);
    cf_fill_uniform(&(cf_rng){13, 0}, m->weight, 0.5f, 1.5f);
    cf_tensor *x = rand_leaf(14, -1, 1, CF_SHAPE(3, 4));
    assert_gradcheck(rms_gc, m, 1, &x, 2e-2f);
    cf_module_free(&m->base);
}
END_TEST

TEST(rmsnorm_refuses_bad_input)
{
    cf_rmsnorm *m = cf_rmsnorm_new(NULL, "norm", 4, 1e-5f, true);
    ck_assert_ptr_null(cf_rmsnorm_forward(m, cf_zeros(CF_SHAPE(2, 3))));
    assert_error(CF_ERR_SHAPE, "RMSNorm \"norm\"", "[2, 3]", "[..., 4]", NULL);
    ck_assert_ptr_null(cf_rmsnorm_new(NULL, "norm", 4, -1, true));
    assert_error(CF_ERR_ARG, "RMSNorm", "eps -1", NULL);
    cf_module_free(&m->base);
}
END_TEST
