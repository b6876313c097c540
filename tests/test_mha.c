/* MultiheadAttention (nn/mha.c) against nn.MultiheadAttention
 * (tests/golden/gen_nn.py) with every kind of mask, incremental decoding
 * with a key/value cache, the sinusoidal encoding against the PyTorch
 * tutorial's, and bad input. */
#include "tests/gold.h"

#include <math.h>
#include <string.h>

#define NN "nn.safetensors"

typedef struct {
    const char *c;
    int E, H;
    bool bias;
    const char *q, *k, *v; /* input names; the same name: the same tensor */
    const char *kpm, *mask;
    bool causal, weights, average;
    bool views; /* pass the inputs as non-contiguous views */
} mha_case;

static void run_mha(mha_case mc)
{
    cf_mha *m = cf_mha_new(NULL, "attn", mc.E, mc.H, 0, mc.bias, NULL);
    gold g = gold_open(NN, mc.c, &m->base);
    cf_tensor *ins[3];
    const char *names[3];
    int n = 0;
    const char *qkv[3] = {mc.q, mc.k, mc.v};
    cf_tensor *t[3], *uniq[3];
    for (int i = 0; i < 3; i++) {
        int j = 0;
        while (j < n && strcmp(names[j], qkv[i]))
            j++;
        if (j == n) {
            names[n] = qkv[i];
            ins[n] = gold_in(&g, qkv[i]);
            uniq[n++] = mc.views ? strided(ins[j]) : ins[j];
        }
        t[i] = uniq[j];
    }
    cf_tensor *w = NULL;
    cf_mha_opts o = {
        .key_padding_mask = mc.kpm ? gold_get(&g, mc.kpm) : NULL,
        .attn_mask = mc.mask ? gold_get(&g, mc.mask) : NULL,
        .causal = mc.causal,
        .weights = mc.weights ? &w : NULL,
        .average_weights = mc.average,
    };
    cf_tensor *out = cf_mha_forward(m, t[0], t[1], t[2], &o);
    ASSERT_NO_ERROR();
    gold_check(&g, out, "out");
    if (mc.weights)
        gold_check(&g, w, "weights");
    gold_backward(&g, 1, &out, (const char *[]){"out"});
    gold_finish(&g, n, ins, names);
}

static cf_tensor *step_outputs(cf_mha *m, cf_tensor *x, cf_kv_cache *c, int first)
{
    int64_t T = x->shape[1];
    cf_tensor *outs[16];
    int n = 0;
    cf_mha_opts o = {.causal = true, .cache = c};
    for (int64_t t = 0; t < T; t = t == 0 ? first : t + 1) {
        int64_t end = t == 0 ? first : t + 1;
        cf_tensor *xt = cf_slice(x, 1, t, end, 1);
        outs[n++] = cf_mha_forward(m, xt, xt, xt, &o);
    }
    return cf_cat(n, outs, 1);
}

static void run_sinusoidal(const char *c, int64_t start, int64_t T, int dim)
{
    cf_safetensors *f = open_fixture("nn.safetensors");
    char name[64];
    snprintf(name, sizeof name, "sin_%s.out", c);
    cf_tensor *pe = cf_sinusoidal_encoding(start, T, dim);
    ASSERT_NO_ERROR();
    ck_assert_ptr_null(pe->op);
    assert_golden(pe, f, name);
    cf_safetensors_close(f);
}

/* ---- mha ---- */

/* The cases of nn.safetensors, against nn.MultiheadAttention. */
static const mha_case MHA_CASES[] = {
    /* self-attention, a key padding mask, weights averaged over the heads */
    {"mha_self_kpm", 8, 2, true, "x", "x", "x", .kpm = "kpm", .weights = true, .average = true},
    /* cross-attention with key = value, weights per head */
    {"mha_cross", 8, 2, true, "q", "kv", "kv", .kpm = "kpm", .weights = true, .average = false},
    /* self-attention on a non-contiguous view */
    {"mha_self_kpm", 8, 2, true, "x", "x", "x", .kpm = "kpm", .weights = true, .average = true,
     .views = true},
    /* cross-attention on non-contiguous views */
    {"mha_cross", 8, 2, true, "q", "kv", "kv", .kpm = "kpm", .weights = true, .average = false,
     .views = true},
    /* separate query, key and value */
    {"mha_cross_kv", 8, 4, true, "q", "k", "v", .weights = false},
    /* a bool attn_mask: true is masked */
    {"mha_bool_mask", 8, 2, true, "x", "x", "x", .mask = "mask", .weights = true, .average = false},
    /* a float attn_mask with a key padding mask */
    {"mha_float_mask", 8, 2, true, "x", "x", "x", .kpm = "kpm", .mask = "mask", .weights = true,
     .average = true},
    /* the causal flag: PyTorch's upper-triangular -inf mask */
    {"mha_causal", 8, 2, true, "x", "x", "x", .causal = true, .weights = true, .average = true},
    /* that mask given as a float attn_mask */
    {"mha_causal", 8, 2, true, "x", "x", "x", .mask = "mask", .weights = true, .average = true},
    /* a float mask per head */
    {"mha_head_mask", 6, 3, true, "q", "kv", "kv", .mask = "mask", .weights = true,
     .average = false},
    /* no bias, one query */
    {"mha_nobias", 6, 3, false, "q", "kv", "kv", .weights = true, .average = true},
};

TEST_WITH(mha_matches_pytorch, .loop = COUNT(MHA_CASES)) { run_mha(MHA_CASES[_i]); }
END_TEST

TEST(mha_dropout_acts_in_training_only)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 8, 2, 0.5f, true, NULL);
    cf_tensor *x = rand_leaf(10, -1, 1, CF_SHAPE(2, 6, 8));
    cf_tensor *train = cf_mha_forward(m, x, x, x, NULL);
    cf_module_train(&m->base, false);
    cf_tensor *eval = cf_mha_forward(m, x, x, x, NULL);
    ASSERT_NO_ERROR();
    ck_assert(stats_of(cf_abs(cf_sub(train, eval))).max > 1e-3);
    assert_close(cf_mha_forward(m, x, x, x, NULL), eval, 0, 0);
    cf_module_free(&m->base);
}
END_TEST

TEST(mha_rejects_wrong_input_shapes_naming_module)
{
    cf_mha *m = cf_mha_new(NULL, "self_attn", 8, 2, 0, true, NULL);
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 5, 8));
    ck_assert_ptr_null(cf_mha_forward(m, cf_zeros(CF_SHAPE(2, 5, 6)), x, x, NULL));
    assert_error(CF_ERR_SHAPE, "MultiheadAttention", "\"self_attn\"", "[2, 5, 6]", NULL);
    ck_assert_ptr_null(cf_mha_forward(m, x, x, cf_zeros(CF_SHAPE(2, 4, 8)), NULL));
    assert_error(CF_ERR_SHAPE, "\"self_attn\"", "[2, 4, 8]", NULL);
    ck_assert_ptr_null(cf_mha_forward(m, x, cf_zeros(CF_SHAPE(3, 5, 8)), x, NULL));
    assert_error(CF_ERR_SHAPE, "\"self_attn\"", "[3, 5, 8]", NULL);
    ck_assert_ptr_null(cf_mha_forward(m, cf_zeros(CF_SHAPE(5, 8)), x, x, NULL));
    assert_error(CF_ERR_SHAPE, "\"self_attn\"", "[5, 8]", NULL);
    cf_module_free(&m->base);
}
END_TEST

TEST(mha_rejects_key_padding_mask_of_wrong_shape)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 8, 2, 0, true, NULL);
    cf_tensor *q = cf_zeros(CF_SHAPE(2, 3, 8)), *kv = cf_zeros(CF_SHAPE(2, 5, 8));
    cf_tensor *kpm = cf_empty(CF_BOOL, CF_SHAPE(2, 3));
    memset(kpm->data, 0, 6);
    ck_assert_ptr_null(cf_mha_forward(m, q, kv, kv, &(cf_mha_opts){.key_padding_mask = kpm}));
    assert_error(CF_ERR_SHAPE, "\"attn\"", "key_padding_mask", "[2, 3]", "[2, 5]", NULL);
    cf_module_free(&m->base);
}
END_TEST

TEST(mha_rejects_key_padding_mask_of_wrong_dtype)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 8, 2, 0, true, NULL);
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 5, 8));
    cf_mha_opts o = {.key_padding_mask = cf_zeros(CF_SHAPE(2, 5))};
    ck_assert_ptr_null(cf_mha_forward(m, x, x, x, &o));
    assert_error(CF_ERR_DTYPE, "\"attn\"", "key_padding_mask", "float32", NULL);
    cf_module_free(&m->base);
}
END_TEST

TEST(mha_rejects_attn_mask_of_wrong_shape_or_dtype)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 8, 2, 0, true, NULL);
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 5, 8));
    cf_mha_opts o = {.attn_mask = cf_zeros(CF_SHAPE(5, 4))};
    ck_assert_ptr_null(cf_mha_forward(m, x, x, x, &o));
    assert_error(CF_ERR_SHAPE, "\"attn\"", "attn_mask", "[5, 4]", NULL);
    o.attn_mask = cf_zeros(CF_SHAPE(2, 3, 5, 5));
    ck_assert_ptr_null(cf_mha_forward(m, x, x, x, &o));
    assert_error(CF_ERR_SHAPE, "\"attn\"", "attn_mask", "[2, 3, 5, 5]", NULL);
    o.attn_mask = cf_from_ints((const int32_t[25]){0}, CF_SHAPE(5, 5));
    ck_assert_ptr_null(cf_mha_forward(m, x, x, x, &o));
    assert_error(CF_ERR_DTYPE, "\"attn\"", "attn_mask", "int32", NULL);
    cf_module_free(&m->base);
}
END_TEST

TEST(mha_constructor_rejects_heads_not_dividing_the_width)
{
    ck_assert_ptr_null(cf_mha_new(NULL, "attn", 10, 3, 0, true, NULL));
    assert_error(CF_ERR_ARG, "MultiheadAttention", "\"attn\"", NULL);
}
END_TEST

/* ---- kv_cache ---- */

TEST(mha_cache_step_by_step_equals_causal_full_sequence)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 8, 2, 0, true, NULL);
    cf_fill_uniform(NULL, m->in_proj_bias, -0.5f, 0.5f);
    cf_tensor *x = rand_leaf(4, -1, 1, CF_SHAPE(2, 7, 8));
    cf_tensor *full = cf_mha_forward(m, x, x, x, &(cf_mha_opts){.causal = true});
    cf_kv_cache *c = cf_kv_cache_new(m, 2, 7);
    cf_tensor *steps = step_outputs(m, x, c, 1);
    ASSERT_NO_ERROR();
    ck_assert_int_eq(c->len, 7);
    assert_close(steps, full, 1e-5f, 0);
    cf_kv_cache_free(c);
    cf_module_free(&m->base);
}
END_TEST

TEST(mha_cache_prefill_of_several_positions_then_steps)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 6, 3, 0, true, NULL);
    cf_fill_uniform(NULL, m->in_proj_bias, -0.5f, 0.5f);
    cf_tensor *x = rand_leaf(5, -1, 1, CF_SHAPE(3, 8, 6));
    cf_tensor *full = cf_mha_forward(m, x, x, x, &(cf_mha_opts){.causal = true});
    cf_kv_cache *c = cf_kv_cache_new(m, 3, 10);
    cf_tensor *steps;
    CF_NO_GRAD { steps = step_outputs(m, x, c, 4); }
    ASSERT_NO_ERROR();
    assert_close(steps, full, 1e-5f, 0);
    cf_kv_cache_free(c);
    cf_module_free(&m->base);
}
END_TEST

TEST(mha_cache_with_key_padding_mask_over_all_cached_positions)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 8, 2, 0, true, NULL);
    cf_tensor *x = rand_leaf(11, -1, 1, CF_SHAPE(2, 5, 8));
    cf_tensor *kpm = cf_empty(CF_BOOL, CF_SHAPE(2, 5));
    memset(kpm->data, 0, 10);
    ((uint8_t *)kpm->data)[5 + 2] = 1; /* batch 1, position 2 */
    ((uint8_t *)kpm->data)[3] = 1;     /* batch 0, position 3 */
    cf_tensor *full =
        cf_mha_forward(m, x, x, x, &(cf_mha_opts){.causal = true, .key_padding_mask = kpm});
    cf_kv_cache *c = cf_kv_cache_new(m, 2, 5);
    cf_tensor *outs[5];
    for (int64_t t = 0; t < 5; t++) {
        cf_tensor *xt = cf_slice(x, 1, t, t + 1, 1);
        cf_mha_opts o = {
            .causal = true, .cache = c, .key_padding_mask = cf_slice(kpm, 1, 0, t + 1, 1)};
        outs[t] = cf_mha_forward(m, xt, xt, xt, &o);
    }
    cf_tensor *steps = cf_cat(5, outs, 1);
    ASSERT_NO_ERROR();
    assert_close(steps, full, 1e-5f, 0);
    cf_kv_cache_free(c);
    cf_module_free(&m->base);
}
END_TEST

TEST(mha_cache_clear_starts_a_new_sequence)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 4, 2, 0, true, NULL);
    cf_tensor *x = rand_leaf(6, -1, 1, CF_SHAPE(1, 3, 4));
    cf_tensor *y = rand_leaf(7, -1, 1, CF_SHAPE(1, 3, 4));
    cf_kv_cache *c = cf_kv_cache_new(m, 1, 3);
    step_outputs(m, x, c, 1);
    cf_kv_cache_clear(c);
    ck_assert_int_eq(c->len, 0);
    cf_tensor *steps = step_outputs(m, y, c, 1);
    cf_tensor *full = cf_mha_forward(m, y, y, y, &(cf_mha_opts){.causal = true});
    ASSERT_NO_ERROR();
    assert_close(steps, full, 1e-5f, 0);
    cf_kv_cache_free(c);
    cf_module_free(&m->base);
}
END_TEST

TEST(mha_cache_overflow_is_an_index_error)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 4, 2, 0, true, NULL);
    cf_tensor *x = rand_leaf(8, -1, 1, CF_SHAPE(1, 2, 4));
    cf_kv_cache *c = cf_kv_cache_new(m, 1, 3);
    cf_mha_opts o = {.causal = true, .cache = c};
    ck_assert_ptr_nonnull(cf_mha_forward(m, x, x, x, &o));
    ck_assert_ptr_null(cf_mha_forward(m, x, x, x, &o));
    assert_error(CF_ERR_INDEX, "cache", "3 positions", NULL);
    ck_assert_int_eq(c->len, 2);
    cf_kv_cache_free(c);
    cf_module_free(&m->base);
}
END_TEST

TEST(mha_cache_of_another_batch_size_is_a_shape_error)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 4, 2, 0, true, NULL);
    cf_tensor *x = rand_leaf(8, -1, 1, CF_SHAPE(2, 1, 4));
    cf_kv_cache *c = cf_kv_cache_new(m, 3, 4);
    ck_assert_ptr_null(cf_mha_forward(m, x, x, x, &(cf_mha_opts){.cache = c}));
    assert_error(CF_ERR_SHAPE, "MultiheadAttention", "\"attn\"", "cache", NULL);
    ck_assert_int_eq(c->len, 0);
    cf_kv_cache_free(c);
    cf_module_free(&m->base);
}
END_TEST

TEST(kv_cache_free_null_is_a_no_op)
{
    cf_kv_cache_free(NULL);
    cf_kv_cache_clear(NULL);
}
END_TEST

/* ---- sinusoidal ---- */

TEST(golden_sinusoidal_from_offset) { run_sinusoidal("small", 3, 9, 16); }
END_TEST

TEST(golden_sinusoidal_64_positions) { run_sinusoidal("long", 0, 64, 32); }
END_TEST

TEST(golden_sinusoidal_two_columns) { run_sinusoidal("two", 5, 2, 2); }
END_TEST

TEST(golden_sinusoidal_far_positions_odd_half_width) { run_sinusoidal("far", 900, 10, 18); }
END_TEST

TEST(sinusoidal_from_offset_is_a_slice_of_the_full_table)
{
    cf_tensor *all = cf_sinusoidal_encoding(0, 12, 10);
    cf_tensor *part = cf_sinusoidal_encoding(5, 4, 10);
    assert_close(part, cf_slice(all, 0, 5, 9, 1), 0, 0);
}
END_TEST

TEST(sinusoidal_odd_dim_ends_with_a_sine_column)
{
    cf_tensor *pe = cf_sinusoidal_encoding(0, 3, 5);
    ASSERT_NO_ERROR();
    ck_assert_int_eq(pe->shape[1], 5);
    /* column 4 is sin(pos * 10000^(-4/5)) */
    for (int64_t t = 0; t < 3; t++)
        ck_assert_float_eq_tol(cf_get(pe, CF_IDX(t, 4)), sinf((float)t * powf(1e4f, -0.8f)), 1e-6f);
}
END_TEST
