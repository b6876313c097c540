/* Linear (nn/linear.c) against nn.Linear (tests/golden/gen_nn.py): values and
 * gradients, on views, and bad input. */
#include "tests/gold.h"

#define NN "nn.safetensors"

static cf_tensor *linear_fwd(cf_module *m, cf_tensor *x)
{
    return cf_linear_forward((cf_linear *)m, x);
}

TEST(golden_linear_on_3d_input)
{
    gold_unary(NN, "linear", &cf_linear_new(NULL, "fc", 5, 7, true, NULL)->base, linear_fwd, true,
               false);
}
END_TEST

TEST(golden_linear_without_bias_on_a_vector)
{
    gold_unary(NN, "linear_vec", &cf_linear_new(NULL, "fc", 4, 3, false, NULL)->base, linear_fwd,
               true, false);
}
END_TEST

TEST(golden_linear_on_a_transposed_view)
{
    gold_unary(NN, "linear", &cf_linear_new(NULL, "fc", 5, 7, true, NULL)->base, linear_fwd, true,
               true);
}
END_TEST

TEST(linear_rejects_wrong_input_size_naming_module_and_shape)
{
    cf_linear *m = cf_linear_new(NULL, "fc", 5, 7, true, NULL);
    ck_assert_ptr_null(cf_linear_forward(m, cf_zeros(CF_SHAPE(2, 4))));
    assert_error(CF_ERR_SHAPE, "Linear", "\"fc\"", "[2, 4]", "5", NULL);
    ck_assert_ptr_null(cf_linear_forward(m, NULL));
    assert_error(CF_ERR_ARG, NULL);
    cf_module_free(&m->base);
}
END_TEST

TEST(linear_constructor_rejects_a_zero_size)
{
    ck_assert_ptr_null(cf_linear_new(NULL, "fc", 0, 3, true, NULL));
    assert_error(CF_ERR_ARG, "Linear", "\"fc\"", NULL);
}
END_TEST
