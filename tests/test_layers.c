/* Embedding, LayerNorm, Dropout and the residual connection (nn/layers.c):
 * against nn.Embedding and nn.LayerNorm (tests/golden/gen_nn.py), dropout
 * streams, the fused residual against its composition, and bad input. */
#include "tests/gold.h"

#include <string.h>

#define NN "nn.safetensors"

static cf_tensor *embedding_fwd(cf_module *m, cf_tensor *x)
{
    return cf_embedding_forward((cf_embedding_mod *)m, x);
}

static cf_tensor *layernorm_fwd(cf_module *m, cf_tensor *x)
{
    return cf_layernorm_forward((cf_layernorm *)m, x);
}

/* ---- embedding ---- */

TEST(golden_embedding_with_padding_idx_and_repeated_indices)
{
    gold_unary(NN, "embedding", &cf_embedding_new(NULL, "emb", 10, 4, 2, NULL)->base, embedding_fwd,
               true, false);
}
END_TEST

TEST(embedding_rejects_float_indices_naming_module)
{
    cf_embedding_mod *m = cf_embedding_new(NULL, "emb", 5, 3, -1, NULL);
    ck_assert_ptr_null(cf_embedding_forward(m, cf_zeros(CF_SHAPE(2))));
    assert_error(CF_ERR_DTYPE, "Embedding", "\"emb\"", "float32", NULL);
    ck_assert_ptr_null(cf_embedding_forward(m, cf_from_ints((const int32_t[]){1, 5}, CF_SHAPE(2))));
    assert_error(CF_ERR_INDEX, "5", NULL);
    cf_module_free(&m->base);
}
END_TEST

TEST(embedding_constructor_rejects_a_padding_index_out_of_range)
{
    ck_assert_ptr_null(cf_embedding_new(NULL, "emb", 5, 3, 5, NULL));
    assert_error(CF_ERR_ARG, "Embedding", "padding index 5", NULL);
}
END_TEST

/* ---- layernorm ---- */

TEST(golden_layernorm_affine)
{
    gold_unary(NN, "layernorm", &cf_layernorm_new(NULL, "norm", 7, 1e-5f, true)->base,
               layernorm_fwd, true, false);
}
END_TEST

TEST(golden_layernorm_without_affine)
{
    gold_unary(NN, "layernorm_plain", &cf_layernorm_new(NULL, "norm", 5, 1e-6f, false)->base,
               layernorm_fwd, true, false);
}
END_TEST

TEST(golden_layernorm_on_a_transposed_view)
{
    gold_unary(NN, "layernorm", &cf_layernorm_new(NULL, "norm", 7, 1e-5f, true)->base,
               layernorm_fwd, true, true);
}
END_TEST

TEST(layernorm_rejects_wrong_last_dim_naming_module)
{
    cf_layernorm *m = cf_layernorm_new(NULL, "norm", 4, 1e-5f, false);
    ck_assert_ptr_null(cf_layernorm_forward(m, cf_zeros(CF_SHAPE(2, 3))));
    assert_error(CF_ERR_SHAPE, "LayerNorm", "\"norm\"", "[2, 3]", NULL);
    cf_module_free(&m->base);
}
END_TEST

TEST(layernorm_constructor_rejects_a_zero_size)
{
    ck_assert_ptr_null(cf_layernorm_new(NULL, "norm", 0, 1e-5f, true));
    assert_error(CF_ERR_ARG, "LayerNorm", NULL);
}
END_TEST

/* ---- dropout ---- */

TEST(dropout_module_is_identity_in_eval)
{
    cf_dropout_mod *d = cf_dropout_new(NULL, "drop", 0.5f, 3);
    cf_tensor *x = rand_leaf(3, -1, 1, CF_SHAPE(4, 5));
    cf_module_train(&d->base, false);
    assert_close(cf_dropout_forward(d, x), x, 0, 0);
    cf_module_free(&d->base);
}
END_TEST

TEST(dropout_module_scales_kept_elements_in_training)
{
    cf_dropout_mod *d = cf_dropout_new(NULL, "drop", 0.25f, 3);
    cf_tensor *x = cf_ones(CF_SHAPE(1000));
    cf_tensor *y = cf_dropout_forward(d, x);
    ASSERT_NO_ERROR();
    int kept = 0;
    for (int64_t i = 0; i < 1000; i++) {
        float v = cf_get(y, CF_IDX(i));
        ck_assert(v == 0 || fabsf(v - 4.0f / 3) < 1e-6f);
        kept += v != 0;
    }
    ck_assert_int_ge(kept, 700);
    ck_assert_int_le(kept, 800);
    cf_module_free(&d->base);
}
END_TEST

TEST(dropout_constructor_rejects_p_above_one)
{
    ck_assert_ptr_null(cf_dropout_new(NULL, "drop", 1.5f, 0));
    assert_error(CF_ERR_ARG, "Dropout", "1.5", NULL);
}
END_TEST

TEST(layers_made_from_one_generator_drop_different_elements)
{
    cf_rng g;
    cf_rng_init(&g, 42);
    cf_module *net = cf_module_new("Net", NULL, NULL);
    cf_ffn *f[2] = {cf_ffn_new(net, "l0", 4, 8, 0.5f, CF_ACT_RELU, &g),
                    cf_ffn_new(net, "l1", 4, 8, 0.5f, CF_ACT_RELU, &g)};
    cf_mha *a[2] = {cf_mha_new(net, "a0", 4, 2, 0.5f, true, &g),
                    cf_mha_new(net, "a1", 4, 2, 0.5f, true, &g)};
    cf_gru *r[2] = {cf_gru_new(net, "r0", 4, 4, 2, false, 0.5f, true, &g),
                    cf_gru_new(net, "r1", 4, 4, 2, false, 0.5f, true, &g)};
    cf_tensor *x = cf_ones(CF_SHAPE(1000));
    cf_tensor *y0 = cf_dropout_forward(f[0]->dropout, x),
              *y1 = cf_dropout_forward(f[1]->dropout, x);
    ASSERT_NO_ERROR();
    int same = 0;
    for (int64_t i = 0; i < 1000; i++)
        same += cf_get(y0, CF_IDX(i)) == cf_get(y1, CF_IDX(i));
    ck_assert_int_lt(same, 600);
    ck_assert(a[0]->rng.seed != a[1]->rng.seed);
    ck_assert(r[0]->rng.seed != r[1]->rng.seed);
    cf_module_free(net);
}
END_TEST

TEST(dropout_streams_are_reproducible_from_the_seed)
{
    cf_rng g1, g2;
    cf_rng_init(&g1, 9);
    cf_rng_init(&g2, 9);
    cf_ffn *a = cf_ffn_new(NULL, "ffn", 4, 8, 0.5f, CF_ACT_RELU, &g1);
    cf_ffn *b = cf_ffn_new(NULL, "ffn", 4, 8, 0.5f, CF_ACT_RELU, &g2);
    cf_tensor *x = cf_ones(CF_SHAPE(100));
    assert_close(cf_dropout_forward(a->dropout, x), cf_dropout_forward(b->dropout, x), 0, 0);
    assert_close(a->linear2->weight, b->linear2->weight, 0, 0);
    cf_module_free(&a->base);
    cf_module_free(&b->base);
}
END_TEST

/* ---- residual ---- */

/* Gradients of x, y and the sublayer's weight for sum(r * f(x, y)), with a
 * fixed r; f is the residual or its composition from cf_add and dropout. */
static void residual_grads(bool fused, cf_dropout_mod *d, cf_linear *lin, cf_tensor *x, float *out,
                           float *gx, float *gw)
{
    cf_rng_init(&d->rng, 7);
    cf_zero_grad(x);
    cf_zero_grad(lin->weight);
    cf_tensor *y = cf_linear_forward(lin, x);
    cf_tensor *sum = fused ? cf_residual_forward(d, x, y) : cf_add(x, cf_dropout_forward(d, y));
    cf_copy_to(sum, out);
    cf_rng g;
    cf_rng_init(&g, 3);
    cf_backward(cf_sum_all(cf_mul(sum, cf_uniform(&g, -1, 1, sum->ndim, sum->shape))));
    cf_copy_to(x->grad, gx);
    cf_copy_to(lin->weight->grad, gw);
}

TEST(residual_equals_add_of_dropout_bit_for_bit)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    cf_rng g;
    cf_rng_init(&g, 5);
    cf_linear *lin = cf_linear_new(net, "lin", 8, 8, true, &g);
    cf_dropout_mod *d = cf_dropout_new(net, "drop", 0.4f, 11);
    cf_tensor *x = rand_leaf(12, -1, 1, CF_SHAPE(3, 5, 8));
    float o[2][120], gx[2][120], gw[2][64];
    residual_grads(true, d, lin, x, o[0], gx[0], gw[0]);
    residual_grads(false, d, lin, x, o[1], gx[1], gw[1]);
    ASSERT_NO_ERROR();
    ck_assert(memcmp(o[0], o[1], sizeof o[0]) == 0);
    ck_assert(memcmp(gx[0], gx[1], sizeof gx[0]) == 0);
    ck_assert(memcmp(gw[0], gw[1], sizeof gw[0]) == 0);
    cf_module_free(net);
}
END_TEST

TEST(residual_writes_over_a_linear_output_but_not_over_a_leaf)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    cf_linear *lin = cf_linear_new(net, "lin", 4, 4, true, NULL);
    cf_tensor *x = rand_leaf(13, -1, 1, CF_SHAPE(2, 4));
    cf_tensor *y = cf_linear_forward(lin, x);
    ck_assert_ptr_eq(cf_residual_forward(NULL, x, y)->data, y->data);
    cf_tensor *leaf = rand_leaf(14, -1, 1, CF_SHAPE(2, 4));
    float before[8];
    cf_copy_to(leaf, before);
    ck_assert_ptr_ne(cf_residual_forward(NULL, x, leaf)->data, leaf->data);
    assert_values(leaf, before, 0, 0);
    ASSERT_NO_ERROR();
    cf_module_free(net);
}
END_TEST

typedef struct {
    cf_dropout_mod *d;
    cf_linear *lin;
} residual_net;

/* The residual around a linear layer, with the dropout mask drawn afresh
 * from the same seed at every call, so that the function is fixed. */
static cf_tensor *f_residual(cf_tensor *const *in, void *ud)
{
    residual_net *r = ud;
    cf_rng_init(&r->d->rng, 21);
    return cf_residual_forward(r->d, in[0], cf_linear_forward(r->lin, in[0]));
}

TEST(residual_gradient_with_dropout)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    residual_net r = {cf_dropout_new(net, "drop", 0.3f, 1),
                      cf_linear_new(net, "lin", 5, 5, true, NULL)};
    cf_tensor *in[] = {rand_leaf(15, -1, 1, CF_SHAPE(4, 5))};
    assert_gradcheck(f_residual, &r, 1, in, 1e-2f);
    cf_module_free(net);
}
END_TEST

TEST(residual_of_different_shapes_broadcasts_like_add)
{
    cf_tensor *x = rand_leaf(16, -1, 1, CF_SHAPE(3, 4)), *y = rand_leaf(17, -1, 1, CF_SHAPE(4));
    assert_close(cf_residual_forward(NULL, x, y), cf_add(x, y), 0, 0);
}
END_TEST
