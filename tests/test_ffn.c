/* The feed-forward block and the learned positional embedding (nn/ffn.c):
 * against PyTorch (tests/golden/gen_nn.py), the fused block against its
 * composition, and bad input. */
#include "tests/gold.h"

#include <string.h>

#define NN "nn.safetensors"

static cf_tensor *ffn_fwd(cf_module *m, cf_tensor *x) { return cf_ffn_forward((cf_ffn *)m, x); }

/* ---- ffn ---- */

TEST(golden_ffn_relu_named_like_transformer_layer)
{
    gold_unary(NN, "ffn_relu", &cf_ffn_new(NULL, "", 6, 10, 0, CF_ACT_RELU, NULL)->base, ffn_fwd,
               true, false);
}
END_TEST

TEST(golden_ffn_gelu)
{
    gold_unary(NN, "ffn_gelu", &cf_ffn_new(NULL, "ffn", 5, 7, 0, CF_ACT_GELU, NULL)->base, ffn_fwd,
               true, false);
}
END_TEST

TEST(ffn_in_training_equals_its_composition_bit_for_bit)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    cf_rng g;
    cf_rng_init(&g, 8);
    cf_ffn *ffn = cf_ffn_new(net, "ffn", 6, 16, 0.3f, CF_ACT_RELU, &g);
    cf_tensor *x = rand_leaf(18, -1, 1, CF_SHAPE(5, 6));
    float out[2][30], gx[2][30], gw[2][96];
    for (int k = 0; k < 2; k++) {
        cf_rng_init(&ffn->dropout->rng, 4);
        cf_zero_grad(x);
        cf_zero_grad(ffn->linear1->weight);
        cf_tensor *y =
            k ? cf_linear_forward(
                    ffn->linear2,
                    cf_dropout_forward(ffn->dropout, cf_relu(cf_linear_forward(ffn->linear1, x))))
              : cf_ffn_forward(ffn, x);
        cf_copy_to(y, out[k]);
        cf_backward(cf_sum_all(cf_square(y)));
        cf_copy_to(x->grad, gx[k]);
        cf_copy_to(ffn->linear1->weight->grad, gw[k]);
    }
    ASSERT_NO_ERROR();
    ck_assert(memcmp(out[0], out[1], sizeof out[0]) == 0);
    ck_assert(memcmp(gx[0], gx[1], sizeof gx[0]) == 0);
    ck_assert(memcmp(gw[0], gw[1], sizeof gw[0]) == 0);
    cf_module_free(net);
}
END_TEST

TEST(ffn_rejects_wrong_input_size_naming_module)
{
    cf_ffn *m = cf_ffn_new(NULL, "ffn", 6, 10, 0, CF_ACT_RELU, NULL);
    ck_assert_ptr_null(cf_ffn_forward(m, cf_zeros(CF_SHAPE(2, 3, 5))));
    assert_error(CF_ERR_SHAPE, "FeedForward", "\"ffn\"", "[2, 3, 5]", "6", NULL);
    cf_module_free(&m->base);
}
END_TEST

TEST(ffn_constructor_rejects_a_zero_width)
{
    ck_assert_ptr_null(cf_ffn_new(NULL, "ffn", 4, 0, 0, CF_ACT_RELU, NULL));
    assert_error(CF_ERR_ARG, NULL);
}
END_TEST

/* ---- pos_embedding ---- */

TEST(pos_embedding_returns_rows_of_its_table)
{
    cf_pos_embedding *m = cf_pos_embedding_new(NULL, "pos", 8, 4, NULL);
    assert_close(cf_pos_embedding_forward(m, 2, 3), cf_slice(m->weight, 0, 2, 5, 1), 0, 0);
    cf_module_free(&m->base);
}
END_TEST

TEST(pos_embedding_rejects_positions_beyond_max_len)
{
    cf_pos_embedding *m = cf_pos_embedding_new(NULL, "pos", 8, 4, NULL);
    ck_assert_ptr_nonnull(cf_pos_embedding_forward(m, 5, 3));
    ck_assert_ptr_null(cf_pos_embedding_forward(m, 6, 3));
    assert_error(CF_ERR_INDEX, "PositionalEmbedding", "\"pos\"", "8", NULL);
    cf_module_free(&m->base);
}
END_TEST

TEST(positions_past_int64_are_out_of_range_not_an_overflow)
{
    cf_pos_embedding *pe = cf_pos_embedding_new(NULL, "pe", 8, 4, NULL);
    ck_assert_ptr_null(cf_pos_embedding_forward(pe, 2, INT64_MAX));
    assert_error(CF_ERR_INDEX, "PositionalEmbedding", NULL);
    cf_module_free(&pe->base);
}
END_TEST

TEST(pos_embedding_constructor_rejects_zero_positions)
{
    ck_assert_ptr_null(cf_pos_embedding_new(NULL, "pos", 0, 4, NULL));
    assert_error(CF_ERR_ARG, "PositionalEmbedding", NULL);
}
END_TEST
