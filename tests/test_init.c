/* Initialisation (nn/init.c and each module's defaults): PyTorch's schemes,
 * checked by their bounds and moments, and reproducible from a generator. */
#include "tests/util.h"

#include <math.h>

#define NN "nn.safetensors"

TEST(init_linear_is_kaiming_uniform_sqrt5_that_is_one_over_sqrt_in)
{
    cf_rng g;
    cf_rng_init(&g, 11);
    cf_linear *m = cf_linear_new(NULL, "fc", 50, 400, true, &g);
    double bound = 1 / sqrt(50.0);
    value_stats w = stats_of(m->weight), b = stats_of(m->bias);
    ck_assert(w.min >= -bound && w.max <= bound);
    ck_assert(w.min < -0.99 * bound && w.max > 0.99 * bound);
    ck_assert(fabs(w.mean) < 0.01 * bound);
    ck_assert(fabs(w.var / (bound * bound / 3) - 1) < 0.02);
    ck_assert(b.min >= -bound && b.max <= bound);
    ck_assert(b.min < -0.9 * bound && b.max > 0.9 * bound);
    cf_module_free(&m->base);
}
END_TEST

TEST(init_xavier_uniform_bound_and_variance)
{
    cf_tensor *w = cf_zeros(CF_SHAPE(300, 100));
    cf_init_xavier_uniform(w, 2.0f, NULL);
    double bound = 2 * sqrt(6.0 / 400);
    value_stats s = stats_of(w);
    ck_assert(s.min >= -bound && s.max <= bound && s.max > 0.99 * bound);
    ck_assert(fabs(s.var / (bound * bound / 3) - 1) < 0.02);
}
END_TEST

TEST(init_kaiming_uniform_counts_receptive_field_in_fan_in)
{
    cf_tensor *w = cf_zeros(CF_SHAPE(64, 4, 3, 3)); /* fan_in 36 */
    cf_init_kaiming_uniform(w, 0, NULL);
    double bound = sqrt(2.0) * sqrt(3.0 / 36);
    value_stats s = stats_of(w);
    ck_assert(s.min >= -bound && s.max <= bound && s.max > 0.99 * bound);
    ck_assert(fabs(s.var / (bound * bound / 3) - 1) < 0.03);
}
END_TEST

TEST(init_kaiming_normal_std)
{
    cf_tensor *w = cf_zeros(CF_SHAPE(400, 100));
    cf_init_kaiming_normal(w, 1.0f, NULL); /* std = sqrt(2 / 2) / sqrt(100) */
    value_stats s = stats_of(w);
    ck_assert(fabs(s.mean) < 0.002);
    ck_assert(fabs(sqrt(s.var) / 0.1 - 1) < 0.01);
}
END_TEST

TEST(init_normal_all_draws_matrices_zeroes_biases_keeps_norms)
{
    cf_rng g;
    cf_rng_init(&g, 3);
    cf_module *net = cf_module_new("Net", NULL, NULL);
    cf_linear *fc = cf_linear_new(net, "fc", 200, 300, true, &g);
    cf_layernorm *ln = cf_layernorm_new(net, "ln", 300, 1e-5f, true);
    cf_mha *att = cf_mha_new(net, "att", 64, 4, 0, true, &g);
    cf_fill(fc->bias, 1);
    cf_fill(ln->bias, 2);
    cf_module_init_normal(net, 0.02f, &g);
    value_stats s = stats_of(fc->weight);
    ck_assert(fabs(s.mean) < 0.0005);
    ck_assert(fabs(sqrt(s.var) / 0.02 - 1) < 0.01);
    ck_assert(fabs(sqrt(stats_of(att->in_proj_weight).var) / 0.02 - 1) < 0.02);
    ck_assert(stats_of(fc->bias).min == 0 && stats_of(fc->bias).max == 0);
    ck_assert(stats_of(ln->bias).min == 0 && stats_of(att->in_proj_bias).max == 0);
    ck_assert(stats_of(ln->weight).min == 1 && stats_of(ln->weight).max == 1);
    cf_module_free(net);
}
END_TEST

TEST(init_is_reproducible_from_the_generator)
{
    cf_rng g1, g2;
    cf_rng_init(&g1, 5);
    cf_rng_init(&g2, 5);
    cf_linear *a = cf_linear_new(NULL, "a", 7, 3, true, &g1);
    cf_linear *b = cf_linear_new(NULL, "b", 7, 3, true, &g2);
    assert_close(a->weight, b->weight, 0, 0);
    assert_close(a->bias, b->bias, 0, 0);
    cf_module_free(&a->base);
    cf_module_free(&b->base);
}
END_TEST

TEST(init_embedding_is_standard_normal_with_zero_padding_row)
{
    cf_embedding_mod *m = cf_embedding_new(NULL, "emb", 500, 64, 7, NULL);
    assert_all_equal(cf_slice(m->weight, 0, 7, 8, 1), 0);
    value_stats s = stats_of(m->weight);
    ck_assert(fabs(s.mean) < 0.01);
    ck_assert(fabs(s.var - 1) < 0.02);
    cf_module_free(&m->base);
}
END_TEST

TEST(init_layernorm_weight_ones_bias_zeros)
{
    cf_layernorm *m = cf_layernorm_new(NULL, "norm", 9, 1e-5f, true);
    assert_all_equal(m->weight, 1);
    assert_all_equal(m->bias, 0);
    cf_layernorm *plain = cf_layernorm_new(NULL, "norm", 9, 1e-5f, false);
    ck_assert_ptr_null(plain->weight);
    ck_assert_ptr_null(plain->bias);
    ck_assert_int_eq(cf_module_num_tensors(&plain->base), 0);
    cf_module_free(&m->base);
    cf_module_free(&plain->base);
}
END_TEST

TEST(init_mha_xavier_in_proj_and_zero_biases)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 32, 4, 0, true, NULL);
    assert_all_equal(m->in_proj_bias, 0);
    assert_all_equal(m->out_proj->bias, 0);
    double xb = sqrt(6.0 / (32 + 96)), kb = 1 / sqrt(32.0);
    value_stats in = stats_of(m->in_proj_weight), out = stats_of(m->out_proj->weight);
    ck_assert(in.min >= -xb && in.max <= xb && in.max > 0.98 * xb);
    ck_assert(out.min >= -kb && out.max <= kb && out.max > 0.95 * kb);
    cf_module_free(&m->base);
}
END_TEST

TEST(init_gru_uniform_one_over_sqrt_hidden)
{
    cf_gru *m = cf_gru_new(NULL, "gru", 6, 25, 1, true, 0, true, NULL);
    for (int d = 0; d < 2; d++) {
        for (int i = 0; i < 4; i++) {
            value_stats s = stats_of(m->w[d][i]);
            ck_assert(s.min >= -0.2 && s.max <= 0.2 && s.max > 0.19);
        }
    }
    cf_module_free(&m->base);
}
END_TEST
