/* Luong attention (nn/luong.c), dot and general, against the reference of
 * tests/golden/gen_layers.py, a gradient check, masking and bad input. */
#include "tests/gold.h"

#define LAYERS "layers.safetensors"

static void run_luong(const char *c, cf_luong_attention *m, bool masked)
{
    gold g = gold_open(LAYERS, c, &m->base);
    cf_tensor *ins[2] = {gold_in(&g, "q"), gold_in(&g, "keys")};
    cf_tensor *outs[2];
    outs[0] = cf_luong_attention_forward(m, ins[0], ins[1], cf_luong_attention_keys(m, ins[1]),
                                         masked ? gold_get(&g, "kpm") : NULL, &outs[1]);
    gold_outputs(&g, 2, outs, (const char *[]){"out", "weights"});
    gold_finish(&g, 2, ins, (const char *[]){"q", "keys"});
}

static cf_tensor *luong_gc(cf_tensor *const *in, void *ud)
{
    cf_luong_attention *m = ud;
    cf_tensor *w = NULL;
    cf_tensor *kpm = cf_from_ints((int32_t[]){0, 0, 1, 0, 0, 0}, CF_SHAPE(2, 3));
    kpm = cf_gt(kpm, cf_from_ints((int32_t[]){0}, 0, NULL));
    cf_tensor *ctx =
        cf_luong_attention_forward(m, in[0], in[1], cf_luong_attention_keys(m, in[1]), kpm, &w);
    return cf_cat(2, (cf_tensor *[]){ctx, w}, 1);
}

TEST(golden_luong_dot_with_padding)
{
    run_luong("luong_dot", cf_luong_attention_new(NULL, "attn", CF_LUONG_DOT, 5, 5, NULL), true);
}
END_TEST

TEST(golden_luong_general_with_padding)
{
    run_luong("luong_general", cf_luong_attention_new(NULL, "attn", CF_LUONG_GENERAL, 4, 6, NULL),
              true);
}
END_TEST

TEST(golden_luong_general_without_mask)
{
    run_luong("luong_general_nomask",
              cf_luong_attention_new(NULL, "attn", CF_LUONG_GENERAL, 3, 2, NULL), false);
}
END_TEST

TEST(luong_gradcheck)
{
    cf_luong_attention *m = cf_luong_attention_new(NULL, "attn", CF_LUONG_GENERAL, 2, 3, NULL);
    cf_tensor *in[2] = {rand_leaf(22, -1, 1, CF_SHAPE(2, 2)),
                        rand_leaf(23, -1, 1, CF_SHAPE(2, 3, 3))};
    assert_gradcheck(luong_gc, m, 2, in, 2e-2f);
    cf_module_free(&m->base);
}
END_TEST

TEST(luong_masked_keys_get_no_weight)
{
    cf_luong_attention *m = cf_luong_attention_new(NULL, "attn", CF_LUONG_DOT, 2, 2, NULL);
    cf_tensor *keys = rand_leaf(24, -1, 1, CF_SHAPE(1, 3, 2)), *w = NULL;
    cf_tensor *kpm = cf_gt(cf_from_ints((int32_t[]){0, 1, 0}, CF_SHAPE(1, 3)),
                           cf_from_ints((int32_t[]){0}, 0, NULL));
    ck_assert_ptr_nonnull(
        cf_luong_attention_forward(m, rand_leaf(25, -1, 1, CF_SHAPE(1, 2)), keys, keys, kpm, &w));
    ck_assert_float_eq(cf_get(w, CF_IDX(0, 1)), 0);
    ck_assert_float_eq_tol(cf_get(w, CF_IDX(0, 0)) + cf_get(w, CF_IDX(0, 2)), 1, 1e-6f);
    ck_assert_int_eq(cf_module_num_tensors(&m->base), 0);
    cf_module_free(&m->base);
}
END_TEST

TEST(luong_refuses_bad_input)
{
    ck_assert_ptr_null(cf_luong_attention_new(NULL, "attn", CF_LUONG_DOT, 3, 4, NULL));
    assert_error(CF_ERR_ARG, "LuongAttention \"attn\"", "dot", NULL);
    cf_luong_attention *m = cf_luong_attention_new(NULL, "attn", CF_LUONG_GENERAL, 3, 4, NULL);
    cf_tensor *keys = cf_zeros(CF_SHAPE(2, 5, 4));
    ck_assert_ptr_null(cf_luong_attention_forward(m, cf_zeros(CF_SHAPE(2, 4)), keys,
                                                  cf_luong_attention_keys(m, keys), NULL, NULL));
    assert_error(CF_ERR_SHAPE, "LuongAttention \"attn\"", "query [2, 4]", NULL);
    ck_assert_ptr_null(cf_luong_attention_forward(m, cf_zeros(CF_SHAPE(2, 3)), keys,
                                                  cf_luong_attention_keys(m, keys),
                                                  cf_zeros(CF_SHAPE(2, 5)), NULL));
    assert_error(CF_ERR_SHAPE, "key_padding_mask float32 [2, 5]", NULL);
    cf_module_free(&m->base);
}
END_TEST
