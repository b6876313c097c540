/* Additive (Bahdanau) attention (nn/additive.c) against the reference of
 * tests/golden/gen_nn.py, through the context and the weights, and bad
 * input. */
#include "tests/gold.h"

#define NN "nn.safetensors"

static void run_additive(const char *c, int Q, int K, int A, bool masked)
{
    cf_additive_attention *m = cf_additive_attention_new(NULL, "attn", Q, K, A, NULL);
    gold g = gold_open(NN, c, &m->base);
    cf_tensor *ins[2] = {gold_in(&g, "q"), gold_in(&g, "keys")};
    cf_tensor *outs[2];
    cf_tensor *pk = cf_additive_attention_keys(m, ins[1]);
    outs[0] = cf_additive_attention_forward(m, ins[0], ins[1], pk,
                                            masked ? gold_get(&g, "kpm") : NULL, &outs[1]);
    ASSERT_NO_ERROR();
    const char *names[2] = {"out", "weights"};
    gold_check(&g, outs[0], "out");
    gold_check(&g, outs[1], "weights");
    gold_backward(&g, masked ? 2 : 1, outs, names);
    gold_finish(&g, 2, ins, (const char *[]){"q", "keys"});
}

TEST(golden_additive_attention_with_padding_through_context_and_weights)
{
    run_additive("additive", 6, 5, 4, true);
}
END_TEST

TEST(golden_additive_attention_without_mask) { run_additive("additive_nomask", 3, 2, 5, false); }
END_TEST

TEST(additive_attention_rejects_wrong_shapes_naming_module)
{
    cf_additive_attention *m = cf_additive_attention_new(NULL, "attn", 6, 5, 4, NULL);
    cf_tensor *keys = cf_zeros(CF_SHAPE(2, 7, 5));
    cf_tensor *pk = cf_additive_attention_keys(m, keys);
    ck_assert_ptr_null(
        cf_additive_attention_forward(m, cf_zeros(CF_SHAPE(2, 5)), keys, pk, NULL, NULL));
    assert_error(CF_ERR_SHAPE, "AdditiveAttention", "\"attn\"", "[2, 5]", NULL);
    ck_assert_ptr_null(
        cf_additive_attention_forward(m, cf_zeros(CF_SHAPE(3, 6)), keys, pk, NULL, NULL));
    assert_error(CF_ERR_SHAPE, "\"attn\"", "[3, 6]", "[2, 7, 5]", NULL);
    ck_assert_ptr_null(cf_additive_attention_forward(m, cf_zeros(CF_SHAPE(2, 6)), keys,
                                                     cf_zeros(CF_SHAPE(2, 6, 4)), NULL, NULL));
    assert_error(CF_ERR_SHAPE, "\"attn\"", "[2, 6, 4]", NULL);
    cf_tensor *kpm = cf_empty(CF_BOOL, CF_SHAPE(2, 6));
    memset(kpm->data, 0, 12);
    ck_assert_ptr_null(
        cf_additive_attention_forward(m, cf_zeros(CF_SHAPE(2, 6)), keys, pk, kpm, NULL));
    assert_error(CF_ERR_SHAPE, "\"attn\"", "key_padding_mask", "[2, 6]", NULL);
    cf_module_free(&m->base);
}
END_TEST

TEST(additive_attention_constructor_rejects_a_zero_key_size)
{
    ck_assert_ptr_null(cf_additive_attention_new(NULL, "attn", 3, 0, 4, NULL));
    assert_error(CF_ERR_ARG, NULL);
}
END_TEST
