/* The nn modules: the module tree, initialisation, PyTorch golden cases
 * (tests/golden/gen_nn.py), incremental decoding with a key/value cache, and
 * bad input. */
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers ---- */

/* Every module in the tree under m, depth first, m first. */
static int collect(cf_module *m, cf_module **out, int n)
{
    out[n++] = m;
    for (cf_module *c = m->first_child; c; c = c->next)
        n = collect(c, out, n);
    return n;
}

/* The full parameter names under m, joined with commas, into buf. */
typedef struct {
    char *buf;
    size_t size;
} joined;

static void join_one(const char *name, cf_tensor *t, void *ud)
{
    (void)t;
    joined *j = ud;
    size_t len = strlen(j->buf);
    snprintf(j->buf + len, j->size - len, "%s%s", len ? "," : "", name);
}

static const char *param_names(cf_module *m, char *buf, size_t size)
{
    buf[0] = '\0';
    joined j = {buf, size};
    cf_module_visit(m, join_one, &j);
    return buf;
}

/* Statistics of a tensor's elements. */
typedef struct {
    double min, max, mean, var;
} stats;

static stats stats_of(const cf_tensor *t)
{
    int64_t n = cf_numel(t);
    float *v = malloc(sizeof(float) * n);
    cf_copy_to(t, v);
    stats s = {INFINITY, -INFINITY, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        s.min = fmin(s.min, v[i]);
        s.max = fmax(s.max, v[i]);
        s.mean += v[i];
    }
    s.mean /= (double)n;
    for (int64_t i = 0; i < n; i++)
        s.var += (v[i] - s.mean) * (v[i] - s.mean);
    s.var /= (double)n;
    free(v);
    return s;
}

static void assert_all_equal(const cf_tensor *t, float want)
{
    stats s = stats_of(t);
    ck_assert_msg(s.min == want && s.max == want, "values in [%g, %g], want all %g", s.min, s.max,
                  want);
}

/* ---- Golden cases ---- */

/* One case of nn.safetensors: the file, the case name and the module whose
 * parameters it loaded. */
typedef struct {
    cf_safetensors *f;
    const char *c;
    cf_module *m;
} gold;

/* Opens case c for module m: checks that m's parameter names are PyTorch's,
 * in PyTorch's order, and loads PyTorch's values into them. */
static gold gold_open(const char *c, cf_module *m)
{
    ck_assert_msg(m != NULL, "%s: module not created: %s", c, cf_error_message());
    gold g = {open_fixture("nn.safetensors"), c, m};
    const char *want = cf_safetensors_metadata(g.f, c);
    ck_assert_ptr_nonnull(want);
    char got[1024];
    ck_assert_str_eq(param_names(m, got, sizeof got), want);
    load_params(m, g.f, c);
    return g;
}

static cf_tensor *gold_get(const gold *g, const char *n)
{
    char name[160];
    snprintf(name, sizeof name, "%s.%s", g->c, n);
    return fixture(g->f, name);
}

/* An input leaf: float inputs require a gradient. */
static cf_tensor *gold_in(const gold *g, const char *n)
{
    cf_tensor *t = gold_get(g, n);
    return t->dtype == CF_F32 ? cf_requires_grad(t, true) : t;
}

static void gold_check(const gold *g, const cf_tensor *t, const char *n)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", g->c, n);
    assert_golden(t, g->f, name);
}

/* Backward from the n outputs with their stored upstream gradients
 * d<name>: cf_backward_with for one, the sum of the dot products for more. */
static void gold_backward(const gold *g, int n, cf_tensor *const *outs, const char *const *names)
{
    char d[64];
    if (n == 1) {
        snprintf(d, sizeof d, "d%s", names[0]);
        ck_assert_int_eq(cf_backward_with(outs[0], gold_get(g, d)), CF_OK);
        return;
    }
    cf_tensor *loss = NULL;
    for (int i = 0; i < n; i++) {
        snprintf(d, sizeof d, "d%s", names[i]);
        cf_tensor *dot = cf_sum_all(cf_mul(outs[i], gold_get(g, d)));
        loss = loss ? cf_add(loss, dot) : dot;
    }
    ck_assert_int_eq(cf_backward(loss), CF_OK);
}

/* Checks the named input gradients and every parameter's gradient, then
 * closes the case and frees the module. */
static void gold_finish(gold *g, int n, cf_tensor *const *ins, const char *const *names)
{
    ASSERT_NO_ERROR();
    for (int i = 0; i < n; i++) {
        char gn[64];
        snprintf(gn, sizeof gn, "grad_%s", names[i]);
        gold_check(g, ins[i]->grad, gn);
    }
    char grads[64];
    snprintf(grads, sizeof grads, "%s.grad", g->c);
    assert_param_grads(g->m, g->f, grads);
    cf_safetensors_close(g->f);
    cf_module_free(g->m);
}

/* x's values in a non-contiguous layout (dims 0 and 1 swapped in memory),
 * still differentiable with respect to x. */
static cf_tensor *strided(cf_tensor *x)
{
    cf_tensor *y = cf_transpose(cf_contiguous(cf_transpose(x, 0, 1)), 0, 1);
    ck_assert(!cf_is_contiguous(y));
    return y;
}

/* A module with one input x and one output out; with `views`, x is passed
 * as a non-contiguous view. */
static void run_unary(const char *c, cf_module *m, cf_tensor *(*fwd)(cf_module *, cf_tensor *),
                      bool views)
{
    gold g = gold_open(c, m);
    cf_tensor *x = gold_in(&g, "x");
    cf_tensor *out = fwd(m, views ? strided(x) : x);
    ASSERT_NO_ERROR();
    gold_check(&g, out, "out");
    gold_backward(&g, 1, &out, (const char *[]){"out"});
    gold_finish(&g, x->dtype == CF_F32, &x, (const char *[]){"x"});
}

static cf_tensor *linear_fwd(cf_module *m, cf_tensor *x)
{
    return cf_linear_forward((cf_linear *)m, x);
}
static cf_tensor *embedding_fwd(cf_module *m, cf_tensor *x)
{
    return cf_embedding_forward((cf_embedding_mod *)m, x);
}
static cf_tensor *layernorm_fwd(cf_module *m, cf_tensor *x)
{
    return cf_layernorm_forward((cf_layernorm *)m, x);
}
static cf_tensor *ffn_fwd(cf_module *m, cf_tensor *x) { return cf_ffn_forward((cf_ffn *)m, x); }

START_TEST(golden_linear_on_3d_input)
{
    run_unary("linear", &cf_linear_new(NULL, "fc", 5, 7, true, NULL)->base, linear_fwd, false);
}
END_TEST

START_TEST(golden_linear_without_bias_on_a_vector)
{
    run_unary("linear_vec", &cf_linear_new(NULL, "fc", 4, 3, false, NULL)->base, linear_fwd, false);
}
END_TEST

START_TEST(golden_linear_on_a_transposed_view)
{
    run_unary("linear", &cf_linear_new(NULL, "fc", 5, 7, true, NULL)->base, linear_fwd, true);
}
END_TEST

START_TEST(golden_embedding_with_padding_idx_and_repeated_indices)
{
    run_unary("embedding", &cf_embedding_new(NULL, "emb", 10, 4, 2, NULL)->base, embedding_fwd,
              false);
}
END_TEST

START_TEST(golden_layernorm_affine)
{
    run_unary("layernorm", &cf_layernorm_new(NULL, "norm", 7, 1e-5f, true)->base, layernorm_fwd,
              false);
}
END_TEST

START_TEST(golden_layernorm_without_affine)
{
    run_unary("layernorm_plain", &cf_layernorm_new(NULL, "norm", 5, 1e-6f, false)->base,
              layernorm_fwd, false);
}
END_TEST

START_TEST(golden_layernorm_on_a_transposed_view)
{
    run_unary("layernorm", &cf_layernorm_new(NULL, "norm", 7, 1e-5f, true)->base, layernorm_fwd,
              true);
}
END_TEST

START_TEST(golden_ffn_relu_named_like_transformer_layer)
{
    run_unary("ffn_relu", &cf_ffn_new(NULL, "", 6, 10, 0, CF_ACT_RELU, NULL)->base, ffn_fwd, false);
}
END_TEST

START_TEST(golden_ffn_gelu)
{
    run_unary("ffn_gelu", &cf_ffn_new(NULL, "ffn", 5, 7, 0, CF_ACT_GELU, NULL)->base, ffn_fwd,
              false);
}
END_TEST

/* ---- MultiheadAttention against nn.MultiheadAttention ---- */

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
    gold g = gold_open(mc.c, &m->base);
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

START_TEST(golden_mha_self_attention_with_key_padding_mask_averaged_weights)
{
    run_mha((mha_case){"mha_self_kpm", 8, 2, true, "x", "x", "x", .kpm = "kpm", .weights = true,
                       .average = true});
}
END_TEST

START_TEST(golden_mha_cross_attention_key_is_value_per_head_weights)
{
    run_mha((mha_case){"mha_cross", 8, 2, true, "q", "kv", "kv", .kpm = "kpm", .weights = true,
                       .average = false});
}
END_TEST

START_TEST(golden_mha_self_attention_on_a_strided_view)
{
    run_mha((mha_case){"mha_self_kpm", 8, 2, true, "x", "x", "x", .kpm = "kpm", .weights = true,
                       .average = true, .views = true});
}
END_TEST

START_TEST(golden_mha_cross_attention_on_strided_views)
{
    run_mha((mha_case){"mha_cross", 8, 2, true, "q", "kv", "kv", .kpm = "kpm", .weights = true,
                       .average = false, .views = true});
}
END_TEST

START_TEST(golden_mha_separate_query_key_value)
{
    run_mha((mha_case){"mha_cross_kv", 8, 4, true, "q", "k", "v", .weights = false});
}
END_TEST

START_TEST(golden_mha_bool_attn_mask_true_is_masked)
{
    run_mha((mha_case){"mha_bool_mask", 8, 2, true, "x", "x", "x", .mask = "mask", .weights = true,
                       .average = false});
}
END_TEST

START_TEST(golden_mha_float_attn_mask_with_key_padding_mask)
{
    run_mha((mha_case){"mha_float_mask", 8, 2, true, "x", "x", "x", .kpm = "kpm", .mask = "mask",
                       .weights = true, .average = true});
}
END_TEST

START_TEST(golden_mha_causal_flag_matches_upper_triangular_minus_infinity)
{
    run_mha((mha_case){"mha_causal", 8, 2, true, "x", "x", "x", .causal = true, .weights = true,
                       .average = true});
}
END_TEST

START_TEST(golden_mha_causal_float_mask_of_minus_infinity)
{
    run_mha((mha_case){"mha_causal", 8, 2, true, "x", "x", "x", .mask = "mask", .weights = true,
                       .average = true});
}
END_TEST

START_TEST(golden_mha_per_head_float_mask)
{
    run_mha((mha_case){"mha_head_mask", 6, 3, true, "q", "kv", "kv", .mask = "mask",
                       .weights = true, .average = false});
}
END_TEST

START_TEST(golden_mha_without_bias_single_query)
{
    run_mha(
        (mha_case){"mha_nobias", 6, 3, false, "q", "kv", "kv", .weights = true, .average = true});
}
END_TEST

/* ---- Recurrent layers against nn.GRUCell and nn.GRU ---- */

static void run_gru_cell(const char *c, bool with_h)
{
    gold g = gold_open(c, &cf_gru_cell_new(NULL, "cell", 5, 7, true, NULL)->base);
    cf_tensor *ins[2] = {gold_in(&g, "x"), with_h ? gold_in(&g, "h") : NULL};
    cf_tensor *out = cf_gru_cell_forward((cf_gru_cell *)g.m, ins[0], ins[1]);
    ASSERT_NO_ERROR();
    gold_check(&g, out, "out");
    gold_backward(&g, 1, &out, (const char *[]){"out"});
    gold_finish(&g, with_h ? 2 : 1, ins, (const char *[]){"x", "h"});
}

START_TEST(golden_gru_cell) { run_gru_cell("gru_cell", true); }
END_TEST

START_TEST(golden_gru_cell_without_state_starts_from_zeros)
{
    run_gru_cell("gru_cell_no_h", false);
}
END_TEST

static void run_gru(const char *c, cf_gru *m, bool with_h0, bool views)
{
    gold g = gold_open(c, &m->base);
    cf_tensor *ins[2] = {gold_in(&g, "x"), with_h0 ? gold_in(&g, "h0") : NULL};
    cf_tensor *outs[2];
    outs[0] = cf_gru_forward(m, views ? strided(ins[0]) : ins[0],
                             views && with_h0 ? strided(ins[1]) : ins[1], &outs[1]);
    ASSERT_NO_ERROR();
    const char *names[2] = {"out", "h_n"};
    gold_check(&g, outs[0], "out");
    gold_check(&g, outs[1], "h_n");
    gold_backward(&g, 2, outs, names);
    gold_finish(&g, with_h0 ? 2 : 1, ins, (const char *[]){"x", "h0"});
}

START_TEST(golden_gru_two_layers_bidirectional_with_h0)
{
    run_gru("gru_bi2_h0", cf_gru_new(NULL, "gru", 5, 4, 2, true, 0, true, NULL), true, false);
}
END_TEST

START_TEST(golden_gru_two_layers_bidirectional_without_h0)
{
    run_gru("gru_bi2", cf_gru_new(NULL, "gru", 5, 4, 2, true, 0, true, NULL), false, false);
}
END_TEST

START_TEST(golden_gru_on_strided_input_and_state)
{
    run_gru("gru_bi2_h0", cf_gru_new(NULL, "gru", 5, 4, 2, true, 0, true, NULL), true, true);
}
END_TEST

START_TEST(golden_gru_one_layer_without_bias)
{
    run_gru("gru_nobias", cf_gru_new(NULL, "gru", 3, 5, 1, false, 0, false, NULL), false, false);
}
END_TEST

/* ---- Additive attention against the script's reference ---- */

static void run_additive(const char *c, int Q, int K, int A, bool masked)
{
    cf_additive_attention *m = cf_additive_attention_new(NULL, "attn", Q, K, A, NULL);
    gold g = gold_open(c, &m->base);
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

START_TEST(golden_additive_attention_with_padding_through_context_and_weights)
{
    run_additive("additive", 6, 5, 4, true);
}
END_TEST

START_TEST(golden_additive_attention_without_mask)
{
    run_additive("additive_nomask", 3, 2, 5, false);
}
END_TEST

/* ---- Sinusoidal encoding against the PyTorch tutorial ---- */

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

START_TEST(golden_sinusoidal_from_offset) { run_sinusoidal("small", 3, 9, 16); }
END_TEST

START_TEST(golden_sinusoidal_64_positions) { run_sinusoidal("long", 0, 64, 32); }
END_TEST

START_TEST(golden_sinusoidal_two_columns) { run_sinusoidal("two", 5, 2, 2); }
END_TEST

START_TEST(golden_sinusoidal_far_positions_odd_half_width) { run_sinusoidal("far", 900, 10, 18); }
END_TEST

START_TEST(sinusoidal_from_offset_is_a_slice_of_the_full_table)
{
    cf_tensor *all = cf_sinusoidal_encoding(0, 12, 10);
    cf_tensor *part = cf_sinusoidal_encoding(5, 4, 10);
    assert_close(part, cf_slice(all, 0, 5, 9, 1), 0, 0);
}
END_TEST

START_TEST(sinusoidal_odd_dim_ends_with_a_sine_column)
{
    cf_tensor *pe = cf_sinusoidal_encoding(0, 3, 5);
    ASSERT_NO_ERROR();
    ck_assert_int_eq(pe->shape[1], 5);
    /* column 4 is sin(pos * 10000^(-4/5)) */
    for (int64_t t = 0; t < 3; t++)
        ck_assert_float_eq_tol(cf_get(pe, CF_IDX(t, 4)), sinf((float)t * powf(1e4f, -0.8f)), 1e-6f);
}
END_TEST

/* ---- The module tree ---- */

START_TEST(module_parameter_names_are_dotted_paths_without_the_root)
{
    cf_module *net = cf_module_new("Net", NULL, "net");
    cf_module *enc = cf_module_new("Encoder", net, "encoder");
    cf_module *layers = cf_module_new("ModuleList", enc, "layers");
    cf_linear_new(layers, "0", 3, 4, true, NULL);
    cf_linear_new(net, "head", 4, 2, false, NULL);
    ASSERT_NO_ERROR();
    char buf[512];
    ck_assert_str_eq(param_names(net, buf, sizeof buf),
                     "encoder.layers.0.weight,encoder.layers.0.bias,head.weight");
    ck_assert_str_eq(param_names(enc, buf, sizeof buf), "layers.0.weight,layers.0.bias");
    cf_module_free(net);
}
END_TEST

START_TEST(module_own_parameters_come_before_children)
{
    cf_module *root = cf_module_new("Root", NULL, NULL);
    cf_linear_new(root, "fc", 2, 2, false, NULL);
    cf_module_param(root, "scale", CF_SHAPE(1));
    ASSERT_NO_ERROR();
    char buf[256];
    ck_assert_str_eq(param_names(root, buf, sizeof buf), "scale,fc.weight");
    cf_module_free(root);
}
END_TEST

START_TEST(module_child_named_empty_merges_into_parent_namespace)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    cf_module *layer = cf_module_new("TransformerEncoderLayer", net, "layer");
    cf_mha_new(layer, "self_attn", 4, 2, 0, true, NULL);
    cf_ffn_new(layer, "", 4, 8, 0, CF_ACT_RELU, NULL);
    cf_layernorm_new(layer, "norm1", 4, 1e-5f, true);
    ASSERT_NO_ERROR();
    char buf[1024];
    ck_assert_str_eq(param_names(net, buf, sizeof buf),
                     "layer.self_attn.in_proj_weight,layer.self_attn.in_proj_bias,"
                     "layer.self_attn.out_proj.weight,layer.self_attn.out_proj.bias,"
                     "layer.linear1.weight,layer.linear1.bias,layer.linear2.weight,"
                     "layer.linear2.bias,layer.norm1.weight,layer.norm1.bias");
    ck_assert_ptr_nonnull(cf_module_find(net, "layer.linear2.bias"));
    cf_module_free(net);
}
END_TEST

START_TEST(module_rejects_duplicate_child_name)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    ck_assert_ptr_nonnull(cf_linear_new(net, "fc", 2, 3, true, NULL));
    ck_assert_ptr_null(cf_linear_new(net, "fc", 2, 3, true, NULL));
    assert_error(CF_ERR_ARG, "\"fc\"", "already used", NULL);
    ck_assert_int_eq(cf_module_num_tensors(net), 2);
    cf_module_free(net);
}
END_TEST

START_TEST(module_rejects_duplicate_parameter_name)
{
    cf_module *m = cf_module_new("M", NULL, NULL);
    ck_assert_ptr_nonnull(cf_module_param(m, "w", CF_SHAPE(2)));
    ck_assert_ptr_null(cf_module_param(m, "w", CF_SHAPE(3)));
    assert_error(CF_ERR_ARG, "\"w\"", NULL);
    ck_assert_ptr_null(cf_module_new("Child", m, "w"));
    assert_error(CF_ERR_ARG, "\"w\"", "already used", NULL);
    cf_module_free(m);
}
END_TEST

START_TEST(module_rejects_name_taken_in_merged_namespace)
{
    cf_module *layer = cf_module_new("Layer", NULL, NULL);
    cf_ffn_new(layer, "", 4, 8, 0, CF_ACT_RELU, NULL);
    ASSERT_NO_ERROR();
    /* linear1 already names the merged feed-forward block's first layer. */
    ck_assert_ptr_null(cf_linear_new(layer, "linear1", 4, 4, true, NULL));
    assert_error(CF_ERR_ARG, "\"linear1\"", NULL);
    /* A parameter added to a merged child lands in the parent's namespace. */
    cf_module *merged = cf_module_new("Extra", layer, "");
    ck_assert_ptr_nonnull(cf_module_param(layer, "scale", CF_SHAPE(1)));
    ck_assert_ptr_null(cf_module_param(merged, "scale", CF_SHAPE(1)));
    assert_error(CF_ERR_ARG, "\"scale\"", NULL);
    ck_assert_ptr_null(cf_module_param(merged, "linear2", CF_SHAPE(1)));
    assert_error(CF_ERR_ARG, "\"linear2\"", NULL);
    cf_module_free(layer);
}
END_TEST

START_TEST(module_rejects_names_too_long)
{
    char name[CF_NAME_MAX + 1];
    memset(name, 'a', CF_NAME_MAX);
    name[CF_NAME_MAX] = '\0';
    ck_assert_ptr_null(cf_module_new("M", NULL, name));
    assert_error(CF_ERR_ARG, "longer than", NULL);
    cf_module *m = cf_module_new("M", NULL, NULL);
    ck_assert_ptr_null(cf_module_param(m, name, CF_SHAPE(1)));
    assert_error(CF_ERR_ARG, NULL);
    cf_module_free(m);
}
END_TEST

START_TEST(module_rejects_more_parameters_than_the_limit)
{
    cf_module *m = cf_module_new("M", NULL, NULL);
    for (int i = 0; i < CF_MODULE_MAX_PARAMS; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        ck_assert_ptr_nonnull(cf_module_param(m, name, CF_SHAPE(1)));
    }
    ck_assert_ptr_null(cf_module_param(m, "one_more", CF_SHAPE(1)));
    assert_error(CF_ERR_ARG, "one_more", NULL);
    cf_module_free(m);
}
END_TEST

START_TEST(module_parameters_are_zeroed_and_require_grad)
{
    cf_module *m = cf_module_new("M", NULL, NULL);
    cf_tensor *p = cf_module_param(m, "w", CF_SHAPE(3, 2));
    ck_assert(p->flags & CF_REQUIRES_GRAD);
    ck_assert(p->flags & CF_HEAP);
    assert_all_equal(p, 0);
    cf_module_free(m);
}
END_TEST

START_TEST(module_find_returns_parameters_by_full_name)
{
    cf_module *net = cf_module_new("Net", NULL, "net");
    cf_mha *attn = cf_mha_new(net, "attn", 4, 2, 0, true, NULL);
    ck_assert_ptr_eq(cf_module_find(net, "attn.out_proj.weight"), attn->out_proj->weight);
    ck_assert_ptr_eq(cf_module_find(net, "attn.in_proj_bias"), attn->in_proj_bias);
    ck_assert_ptr_eq(cf_module_find(&attn->base, "in_proj_weight"), attn->in_proj_weight);
    ck_assert_ptr_null(cf_module_find(net, "net.attn.in_proj_bias"));
    ck_assert_ptr_null(cf_module_find(net, "attn.out_proj"));
    ck_assert_ptr_null(cf_module_find(net, "attn.out_proj.weight.x"));
    ck_assert_ptr_null(cf_module_find(NULL, "attn"));
    cf_module_free(net);
}
END_TEST

START_TEST(module_counts_tensors_and_scalars)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    cf_mha_new(net, "attn", 8, 2, 0, true, NULL); /* 3*8*8 + 3*8 + 8*8 + 8 */
    cf_gru_new(net, "gru", 5, 4, 2, true, 0, true, NULL);
    ASSERT_NO_ERROR();
    /* GRU: per direction, layer 0: 12*5 + 12*4 + 24; layer 1: 12*8 + 12*4 + 24 */
    int64_t gru = 2 * (12 * 5 + 12 * 4 + 24) + 2 * (12 * 8 + 12 * 4 + 24);
    ck_assert_int_eq(cf_module_num_tensors(net), 4 + 16);
    ck_assert_int_eq(cf_module_num_params(net), 288 + gru);
    cf_module_free(net);
}
END_TEST

START_TEST(module_train_and_eval_reach_every_submodule)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    cf_module *layer = cf_module_new("Layer", net, "layer");
    cf_mha_new(layer, "attn", 4, 2, 0.1f, true, NULL);
    cf_ffn_new(layer, "", 4, 8, 0.1f, CF_ACT_GELU, NULL);
    cf_gru_new(net, "gru", 4, 4, 1, false, 0, true, NULL);
    ASSERT_NO_ERROR();
    cf_module *all[32];
    int n = collect(net, all, 0);
    ck_assert_int_eq(n, 9);
    for (int i = 0; i < n; i++)
        ck_assert(all[i]->training);
    cf_module_train(net, false);
    for (int i = 0; i < n; i++)
        ck_assert_msg(!all[i]->training, "%s \"%s\" still training", all[i]->type, all[i]->name);
    cf_module_train(net, true);
    for (int i = 0; i < n; i++)
        ck_assert(all[i]->training);
    cf_module_free(net);
}
END_TEST

START_TEST(module_eval_turns_off_dropout_in_submodules)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    cf_ffn *ffn = cf_ffn_new(net, "ffn", 3, 16, 1.0f, CF_ACT_RELU, NULL);
    cf_tensor *x = rand_leaf(1, -1, 1, CF_SHAPE(2, 3));
    /* Dropout of 1 in training: only linear2's bias gets through. */
    cf_tensor *y = cf_ffn_forward(ffn, x);
    ASSERT_NO_ERROR();
    assert_close(y, cf_expand(ffn->linear2->bias, CF_SHAPE(2, 3)), 0, 0);
    cf_module_train(net, false);
    y = cf_ffn_forward(ffn, x);
    cf_tensor *want = cf_linear_forward(ffn->linear2, cf_relu(cf_linear_forward(ffn->linear1, x)));
    ASSERT_NO_ERROR();
    assert_close(y, want, 0, 0);
    cf_module_free(net);
}
END_TEST

START_TEST(module_zero_grad_zeroes_every_gradient)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    cf_linear *a = cf_linear_new(net, "a", 3, 4, true, NULL);
    cf_linear *b = cf_linear_new(net, "b", 4, 2, true, NULL);
    cf_tensor *x = rand_leaf(2, -1, 1, CF_SHAPE(5, 3));
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_linear_forward(b, cf_linear_forward(a, x)))), CF_OK);
    cf_tensor *ps[4] = {a->weight, a->bias, b->weight, b->bias};
    for (int i = 0; i < 4; i++)
        ck_assert(stats_of(ps[i]->grad).max > 0 || stats_of(ps[i]->grad).min < 0);
    cf_module_zero_grad(net);
    for (int i = 0; i < 4; i++)
        assert_all_equal(ps[i]->grad, 0);
    cf_module_free(net);
}
END_TEST

START_TEST(module_free_of_a_child_detaches_it)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    cf_linear *a = cf_linear_new(net, "a", 2, 2, true, NULL);
    cf_module *mid = cf_module_new("Mid", net, "mid");
    cf_linear_new(mid, "inner", 2, 2, true, NULL);
    cf_linear *c = cf_linear_new(net, "c", 2, 2, false, NULL);
    ASSERT_NO_ERROR();
    cf_module_free(mid);
    ck_assert_ptr_eq(net->first_child, &a->base);
    ck_assert_ptr_eq(a->base.next, &c->base);
    ck_assert_ptr_eq(net->last_child, &c->base);
    char buf[256];
    ck_assert_str_eq(param_names(net, buf, sizeof buf), "a.weight,a.bias,c.weight");
    /* The last child: last_child moves back. */
    cf_module_free(&c->base);
    ck_assert_ptr_eq(net->last_child, &a->base);
    ck_assert_ptr_null(a->base.next);
    /* The name is free again. */
    ck_assert_ptr_nonnull(cf_module_new("Mid", net, "mid"));
    cf_module_free(&a->base);
    ck_assert_ptr_eq(net->first_child->next, NULL);
    ck_assert_str_eq(net->first_child->name, "mid");
    cf_module_free(net);
}
END_TEST

START_TEST(module_free_null_is_a_no_op) { cf_module_free(NULL); }
END_TEST

START_TEST(module_visit_and_queries_accept_null)
{
    ck_assert_int_eq(cf_module_num_tensors(NULL), 0);
    ck_assert_int_eq(cf_module_num_params(NULL), 0);
    cf_module_train(NULL, false);
    cf_module_zero_grad(NULL);
}
END_TEST

START_TEST(forward_of_a_null_module_is_an_argument_error)
{
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 4));
    ck_assert_ptr_null(cf_linear_forward(NULL, x));
    assert_error(CF_ERR_ARG, "Linear", "module is NULL", NULL);
    ck_assert_ptr_null(cf_layernorm_forward(NULL, x));
    assert_error(CF_ERR_ARG, "LayerNorm", "module is NULL", NULL);
    ck_assert_ptr_null(cf_dropout_forward(NULL, x));
    assert_error(CF_ERR_ARG, "Dropout", "module is NULL", NULL);
    ck_assert_ptr_null(cf_ffn_forward(NULL, x));
    assert_error(CF_ERR_ARG, "FeedForward", "module is NULL", NULL);
    cf_tensor *x3 = cf_zeros(CF_SHAPE(1, 2, 4));
    ck_assert_ptr_null(cf_mha_forward(NULL, x3, x3, x3, NULL));
    assert_error(CF_ERR_ARG, "MultiheadAttention", "module is NULL", NULL);
    ck_assert_ptr_null(cf_embedding_forward(NULL, cf_from_ints((int32_t[]){0}, CF_SHAPE(1))));
    assert_error(CF_ERR_ARG, "Embedding", "module is NULL", NULL);
    ck_assert_ptr_null(cf_gru_cell_forward(NULL, x, NULL));
    assert_error(CF_ERR_ARG, "GRUCell", "module is NULL", NULL);
    ck_assert_ptr_null(cf_gru_forward(NULL, x3, NULL, NULL));
    assert_error(CF_ERR_ARG, "GRU", "module is NULL", NULL);
    ck_assert_ptr_null(cf_pos_embedding_forward(NULL, 0, 1));
    assert_error(CF_ERR_ARG, "PositionalEmbedding", "module is NULL", NULL);
    ck_assert_ptr_null(cf_additive_attention_forward(NULL, x, x3, x3, NULL, NULL));
    assert_error(CF_ERR_ARG, "AdditiveAttention", "module is NULL", NULL);
}
END_TEST

START_TEST(a_null_module_after_a_failed_constructor_keeps_the_root_cause)
{
    cf_linear *l = cf_linear_new(NULL, "fc", -1, 2, true, NULL);
    ck_assert_ptr_null(l);
    cf_status root = cf_error();
    ck_assert_int_ne(root, CF_OK);
    ck_assert_ptr_null(cf_linear_forward(l, cf_zeros(CF_SHAPE(2, 4))));
    ck_assert_int_eq(cf_error(), root);
    cf_error_clear();
}
END_TEST

START_TEST(positions_past_int64_are_out_of_range_not_an_overflow)
{
    cf_pos_embedding *pe = cf_pos_embedding_new(NULL, "pe", 8, 4, NULL);
    ck_assert_ptr_null(cf_pos_embedding_forward(pe, 2, INT64_MAX));
    assert_error(CF_ERR_INDEX, "PositionalEmbedding", NULL);
    cf_module_free(&pe->base);
}
END_TEST

/* ---- Initialisation ---- */

START_TEST(init_linear_is_kaiming_uniform_sqrt5_that_is_one_over_sqrt_in)
{
    cf_rng g;
    cf_rng_init(&g, 11);
    cf_linear *m = cf_linear_new(NULL, "fc", 50, 400, true, &g);
    double bound = 1 / sqrt(50.0);
    stats w = stats_of(m->weight), b = stats_of(m->bias);
    ck_assert(w.min >= -bound && w.max <= bound);
    ck_assert(w.min < -0.99 * bound && w.max > 0.99 * bound);
    ck_assert(fabs(w.mean) < 0.01 * bound);
    ck_assert(fabs(w.var / (bound * bound / 3) - 1) < 0.02);
    ck_assert(b.min >= -bound && b.max <= bound);
    ck_assert(b.min < -0.9 * bound && b.max > 0.9 * bound);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(init_xavier_uniform_bound_and_variance)
{
    cf_tensor *w = cf_zeros(CF_SHAPE(300, 100));
    cf_init_xavier_uniform(w, 2.0f, NULL);
    double bound = 2 * sqrt(6.0 / 400);
    stats s = stats_of(w);
    ck_assert(s.min >= -bound && s.max <= bound && s.max > 0.99 * bound);
    ck_assert(fabs(s.var / (bound * bound / 3) - 1) < 0.02);
}
END_TEST

START_TEST(init_kaiming_uniform_counts_receptive_field_in_fan_in)
{
    cf_tensor *w = cf_zeros(CF_SHAPE(64, 4, 3, 3)); /* fan_in 36 */
    cf_init_kaiming_uniform(w, 0, NULL);
    double bound = sqrt(2.0) * sqrt(3.0 / 36);
    stats s = stats_of(w);
    ck_assert(s.min >= -bound && s.max <= bound && s.max > 0.99 * bound);
    ck_assert(fabs(s.var / (bound * bound / 3) - 1) < 0.03);
}
END_TEST

START_TEST(init_kaiming_normal_std)
{
    cf_tensor *w = cf_zeros(CF_SHAPE(400, 100));
    cf_init_kaiming_normal(w, 1.0f, NULL); /* std = sqrt(2 / 2) / sqrt(100) */
    stats s = stats_of(w);
    ck_assert(fabs(s.mean) < 0.002);
    ck_assert(fabs(sqrt(s.var) / 0.1 - 1) < 0.01);
}
END_TEST

START_TEST(init_normal_all_draws_matrices_zeroes_biases_keeps_norms)
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
    stats s = stats_of(fc->weight);
    ck_assert(fabs(s.mean) < 0.0005);
    ck_assert(fabs(sqrt(s.var) / 0.02 - 1) < 0.01);
    ck_assert(fabs(sqrt(stats_of(att->in_proj_weight).var) / 0.02 - 1) < 0.02);
    ck_assert(stats_of(fc->bias).min == 0 && stats_of(fc->bias).max == 0);
    ck_assert(stats_of(ln->bias).min == 0 && stats_of(att->in_proj_bias).max == 0);
    ck_assert(stats_of(ln->weight).min == 1 && stats_of(ln->weight).max == 1);
    cf_module_free(net);
}
END_TEST

START_TEST(parameters_are_labelled_with_their_state_dict_names)
{
    cf_module *net = cf_module_new("Net", NULL, "root");
    cf_module *enc = cf_module_new("Encoder", net, "encoder");
    cf_module *merged = cf_module_new("FFN", enc, "");
    cf_linear *fc = cf_linear_new(merged, "linear1", 3, 2, true, NULL);
    cf_tensor *w = cf_module_param(net, "scale", CF_SHAPE(1));
    ck_assert_str_eq(fc->weight->name, "encoder.linear1.weight");
    ck_assert_str_eq(fc->bias->name, "encoder.linear1.bias");
    ck_assert_str_eq(w->name, "scale");
    ck_assert_ptr_eq(cf_module_find(net, fc->weight->name), fc->weight);
    cf_tensor *y = cf_linear_forward(fc, cf_ones(CF_SHAPE(1, 3)));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(cf_graph_dot(f, cf_sum_all(y)), CF_OK);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "encoder.linear1.weight\\n[2, 3]"));
    ck_assert_ptr_nonnull(strstr(buf, "encoder.linear1.bias\\n[2]"));
    free(buf);
    cf_module_free(net);
}
END_TEST

START_TEST(init_is_reproducible_from_the_generator)
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

START_TEST(init_embedding_is_standard_normal_with_zero_padding_row)
{
    cf_embedding_mod *m = cf_embedding_new(NULL, "emb", 500, 64, 7, NULL);
    assert_all_equal(cf_slice(m->weight, 0, 7, 8, 1), 0);
    stats s = stats_of(m->weight);
    ck_assert(fabs(s.mean) < 0.01);
    ck_assert(fabs(s.var - 1) < 0.02);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(init_layernorm_weight_ones_bias_zeros)
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

START_TEST(init_mha_xavier_in_proj_and_zero_biases)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 32, 4, 0, true, NULL);
    assert_all_equal(m->in_proj_bias, 0);
    assert_all_equal(m->out_proj->bias, 0);
    double xb = sqrt(6.0 / (32 + 96)), kb = 1 / sqrt(32.0);
    stats in = stats_of(m->in_proj_weight), out = stats_of(m->out_proj->weight);
    ck_assert(in.min >= -xb && in.max <= xb && in.max > 0.98 * xb);
    ck_assert(out.min >= -kb && out.max <= kb && out.max > 0.95 * kb);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(init_gru_uniform_one_over_sqrt_hidden)
{
    cf_gru *m = cf_gru_new(NULL, "gru", 6, 25, 1, true, 0, true, NULL);
    for (int d = 0; d < 2; d++) {
        for (int i = 0; i < 4; i++) {
            stats s = stats_of(m->w[d][i]);
            ck_assert(s.min >= -0.2 && s.max <= 0.2 && s.max > 0.19);
        }
    }
    cf_module_free(&m->base);
}
END_TEST

/* ---- Dropout module ---- */

START_TEST(dropout_module_is_identity_in_eval)
{
    cf_dropout_mod *d = cf_dropout_new(NULL, "drop", 0.5f, 3);
    cf_tensor *x = rand_leaf(3, -1, 1, CF_SHAPE(4, 5));
    cf_module_train(&d->base, false);
    assert_close(cf_dropout_forward(d, x), x, 0, 0);
    cf_module_free(&d->base);
}
END_TEST

START_TEST(dropout_module_scales_kept_elements_in_training)
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

START_TEST(layers_made_from_one_generator_drop_different_elements)
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

START_TEST(dropout_streams_are_reproducible_from_the_seed)
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

/* ---- Incremental decoding ---- */

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

START_TEST(mha_cache_step_by_step_equals_causal_full_sequence)
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

START_TEST(mha_cache_prefill_of_several_positions_then_steps)
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

START_TEST(mha_cache_with_key_padding_mask_over_all_cached_positions)
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

START_TEST(mha_cache_clear_starts_a_new_sequence)
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

START_TEST(mha_cache_overflow_is_an_index_error)
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

START_TEST(mha_cache_of_another_batch_size_is_a_shape_error)
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

START_TEST(kv_cache_free_null_is_a_no_op)
{
    cf_kv_cache_free(NULL);
    cf_kv_cache_clear(NULL);
}
END_TEST

/* ---- Bad input ---- */

START_TEST(linear_rejects_wrong_input_size_naming_module_and_shape)
{
    cf_linear *m = cf_linear_new(NULL, "fc", 5, 7, true, NULL);
    ck_assert_ptr_null(cf_linear_forward(m, cf_zeros(CF_SHAPE(2, 4))));
    assert_error(CF_ERR_SHAPE, "Linear", "\"fc\"", "[2, 4]", "5", NULL);
    ck_assert_ptr_null(cf_linear_forward(m, NULL));
    assert_error(CF_ERR_ARG, NULL);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(layer_constructors_reject_bad_sizes)
{
    ck_assert_ptr_null(cf_linear_new(NULL, "fc", 0, 3, true, NULL));
    assert_error(CF_ERR_ARG, "Linear", "\"fc\"", NULL);
    ck_assert_ptr_null(cf_embedding_new(NULL, "emb", 5, 3, 5, NULL));
    assert_error(CF_ERR_ARG, "Embedding", "padding index 5", NULL);
    ck_assert_ptr_null(cf_layernorm_new(NULL, "norm", 0, 1e-5f, true));
    assert_error(CF_ERR_ARG, "LayerNorm", NULL);
    ck_assert_ptr_null(cf_dropout_new(NULL, "drop", 1.5f, 0));
    assert_error(CF_ERR_ARG, "Dropout", "1.5", NULL);
    ck_assert_ptr_null(cf_mha_new(NULL, "attn", 10, 3, 0, true, NULL));
    assert_error(CF_ERR_ARG, "MultiheadAttention", "\"attn\"", NULL);
    ck_assert_ptr_null(cf_gru_new(NULL, "gru", 3, 0, 1, false, 0, true, NULL));
    assert_error(CF_ERR_ARG, "GRU", "\"gru\"", NULL);
    ck_assert_ptr_null(cf_gru_cell_new(NULL, "cell", 3, 0, true, NULL));
    assert_error(CF_ERR_ARG, "GRUCell", "\"cell\"", NULL);
    ck_assert_ptr_null(cf_ffn_new(NULL, "ffn", 4, 0, 0, CF_ACT_RELU, NULL));
    assert_error(CF_ERR_ARG, NULL);
    ck_assert_ptr_null(cf_pos_embedding_new(NULL, "pos", 0, 4, NULL));
    assert_error(CF_ERR_ARG, "PositionalEmbedding", NULL);
    ck_assert_ptr_null(cf_additive_attention_new(NULL, "attn", 3, 0, 4, NULL));
    assert_error(CF_ERR_ARG, NULL);
}
END_TEST

START_TEST(gru_dropout_acts_between_layers_in_training_only)
{
    cf_tensor *x = rand_leaf(9, -1, 1, CF_SHAPE(2, 5, 3));
    cf_gru *one = cf_gru_new(NULL, "gru", 3, 8, 1, true, 0.5f, true, NULL);
    cf_tensor *train = cf_gru_forward(one, x, NULL, NULL);
    cf_module_train(&one->base, false);
    assert_close(cf_gru_forward(one, x, NULL, NULL), train, 0, 0);

    cf_gru *two = cf_gru_new(NULL, "gru", 3, 8, 2, true, 0.5f, true, NULL);
    train = cf_gru_forward(two, x, NULL, NULL);
    cf_module_train(&two->base, false);
    cf_tensor *eval = cf_gru_forward(two, x, NULL, NULL);
    ASSERT_NO_ERROR();
    stats d = stats_of(cf_abs(cf_sub(train, eval)));
    ck_assert_msg(d.max > 1e-3, "training output equals eval output");
    assert_close(cf_gru_forward(two, x, NULL, NULL), eval, 0, 0);
    cf_module_free(&one->base);
    cf_module_free(&two->base);
}
END_TEST

START_TEST(gru_rejects_more_parameters_than_a_module_holds)
{
    /* 9 layers x 2 directions x 4 tensors > CF_MODULE_MAX_PARAMS */
    ck_assert_ptr_null(cf_gru_new(NULL, "gru", 3, 4, 9, true, 0, true, NULL));
    assert_error(CF_ERR_ARG, "GRU", "\"gru\"", NULL);
}
END_TEST

START_TEST(embedding_rejects_float_indices_naming_module)
{
    cf_embedding_mod *m = cf_embedding_new(NULL, "emb", 5, 3, -1, NULL);
    ck_assert_ptr_null(cf_embedding_forward(m, cf_zeros(CF_SHAPE(2))));
    assert_error(CF_ERR_DTYPE, "Embedding", "\"emb\"", "float32", NULL);
    ck_assert_ptr_null(cf_embedding_forward(m, cf_from_ints((const int32_t[]){1, 5}, CF_SHAPE(2))));
    assert_error(CF_ERR_INDEX, "5", NULL);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(layernorm_rejects_wrong_last_dim_naming_module)
{
    cf_layernorm *m = cf_layernorm_new(NULL, "norm", 4, 1e-5f, false);
    ck_assert_ptr_null(cf_layernorm_forward(m, cf_zeros(CF_SHAPE(2, 3))));
    assert_error(CF_ERR_SHAPE, "LayerNorm", "\"norm\"", "[2, 3]", NULL);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(mha_dropout_acts_in_training_only)
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

START_TEST(mha_rejects_wrong_input_shapes_naming_module)
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

START_TEST(mha_rejects_key_padding_mask_of_wrong_shape)
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

START_TEST(mha_rejects_key_padding_mask_of_wrong_dtype)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 8, 2, 0, true, NULL);
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 5, 8));
    cf_mha_opts o = {.key_padding_mask = cf_zeros(CF_SHAPE(2, 5))};
    ck_assert_ptr_null(cf_mha_forward(m, x, x, x, &o));
    assert_error(CF_ERR_DTYPE, "\"attn\"", "key_padding_mask", "float32", NULL);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(mha_rejects_attn_mask_of_wrong_shape_or_dtype)
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

START_TEST(ffn_rejects_wrong_input_size_naming_module)
{
    cf_ffn *m = cf_ffn_new(NULL, "ffn", 6, 10, 0, CF_ACT_RELU, NULL);
    ck_assert_ptr_null(cf_ffn_forward(m, cf_zeros(CF_SHAPE(2, 3, 5))));
    assert_error(CF_ERR_SHAPE, "FeedForward", "\"ffn\"", "[2, 3, 5]", "6", NULL);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(gru_rejects_wrong_input_and_h0_shapes)
{
    cf_gru *m = cf_gru_new(NULL, "enc", 5, 4, 2, true, 0, true, NULL);
    ck_assert_ptr_null(cf_gru_forward(m, cf_zeros(CF_SHAPE(2, 3, 6)), NULL, NULL));
    assert_error(CF_ERR_SHAPE, "GRU", "\"enc\"", "[2, 3, 6]", NULL);
    cf_tensor *x = cf_zeros(CF_SHAPE(2, 3, 5));
    ck_assert_ptr_null(cf_gru_forward(m, x, cf_zeros(CF_SHAPE(2, 2, 4)), NULL));
    assert_error(CF_ERR_SHAPE, "GRU", "\"enc\"", "h0", "[2, 2, 4]", "[4, 2, 4]", NULL);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(gru_cell_rejects_wrong_input_and_state_shapes)
{
    cf_gru_cell *m = cf_gru_cell_new(NULL, "cell", 5, 7, true, NULL);
    ck_assert_ptr_null(cf_gru_cell_forward(m, cf_zeros(CF_SHAPE(3, 4)), NULL));
    assert_error(CF_ERR_SHAPE, "GRUCell", "\"cell\"", "[3, 4]", NULL);
    ck_assert_ptr_null(cf_gru_cell_forward(m, cf_zeros(CF_SHAPE(3, 5)), cf_zeros(CF_SHAPE(2, 7))));
    assert_error(CF_ERR_SHAPE, "GRUCell", "\"cell\"", "[2, 7]", "[3, 7]", NULL);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(additive_attention_rejects_wrong_shapes_naming_module)
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

START_TEST(pos_embedding_rejects_positions_beyond_max_len)
{
    cf_pos_embedding *m = cf_pos_embedding_new(NULL, "pos", 8, 4, NULL);
    ck_assert_ptr_nonnull(cf_pos_embedding_forward(m, 5, 3));
    ck_assert_ptr_null(cf_pos_embedding_forward(m, 6, 3));
    assert_error(CF_ERR_INDEX, "PositionalEmbedding", "\"pos\"", "8", NULL);
    cf_module_free(&m->base);
}
END_TEST

START_TEST(pos_embedding_returns_rows_of_its_table)
{
    cf_pos_embedding *m = cf_pos_embedding_new(NULL, "pos", 8, 4, NULL);
    assert_close(cf_pos_embedding_forward(m, 2, 3), cf_slice(m->weight, 0, 2, 5, 1), 0, 0);
    cf_module_free(&m->base);
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

START_TEST(residual_equals_add_of_dropout_bit_for_bit)
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

START_TEST(residual_writes_over_a_linear_output_but_not_over_a_leaf)
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

START_TEST(residual_gradient_with_dropout)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    residual_net r = {cf_dropout_new(net, "drop", 0.3f, 1),
                      cf_linear_new(net, "lin", 5, 5, true, NULL)};
    cf_tensor *in[] = {rand_leaf(15, -1, 1, CF_SHAPE(4, 5))};
    assert_gradcheck(f_residual, &r, 1, in, 1e-2f);
    cf_module_free(net);
}
END_TEST

START_TEST(residual_of_different_shapes_broadcasts_like_add)
{
    cf_tensor *x = rand_leaf(16, -1, 1, CF_SHAPE(3, 4)), *y = rand_leaf(17, -1, 1, CF_SHAPE(4));
    assert_close(cf_residual_forward(NULL, x, y), cf_add(x, y), 0, 0);
}
END_TEST

START_TEST(ffn_in_training_equals_its_composition_bit_for_bit)
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

int main(void)
{
    Suite *s = suite_create("nn");
    TCase *tc = tcase("module");
    tcase_add_test(tc, module_parameter_names_are_dotted_paths_without_the_root);
    tcase_add_test(tc, module_own_parameters_come_before_children);
    tcase_add_test(tc, module_child_named_empty_merges_into_parent_namespace);
    tcase_add_test(tc, module_rejects_duplicate_child_name);
    tcase_add_test(tc, module_rejects_duplicate_parameter_name);
    tcase_add_test(tc, module_rejects_name_taken_in_merged_namespace);
    tcase_add_test(tc, module_rejects_names_too_long);
    tcase_add_test(tc, module_rejects_more_parameters_than_the_limit);
    tcase_add_test(tc, module_parameters_are_zeroed_and_require_grad);
    tcase_add_test(tc, module_find_returns_parameters_by_full_name);
    tcase_add_test(tc, module_counts_tensors_and_scalars);
    tcase_add_test(tc, module_train_and_eval_reach_every_submodule);
    tcase_add_test(tc, module_eval_turns_off_dropout_in_submodules);
    tcase_add_test(tc, module_zero_grad_zeroes_every_gradient);
    tcase_add_test(tc, module_free_of_a_child_detaches_it);
    tcase_add_test(tc, module_free_null_is_a_no_op);
    tcase_add_test(tc, module_visit_and_queries_accept_null);
    tcase_add_test(tc, forward_of_a_null_module_is_an_argument_error);
    tcase_add_test(tc, a_null_module_after_a_failed_constructor_keeps_the_root_cause);
    tcase_add_test(tc, positions_past_int64_are_out_of_range_not_an_overflow);
    suite_add_tcase(s, tc);

    tc = tcase("init");
    tcase_add_test(tc, init_linear_is_kaiming_uniform_sqrt5_that_is_one_over_sqrt_in);
    tcase_add_test(tc, init_xavier_uniform_bound_and_variance);
    tcase_add_test(tc, init_kaiming_uniform_counts_receptive_field_in_fan_in);
    tcase_add_test(tc, init_kaiming_normal_std);
    tcase_add_test(tc, init_normal_all_draws_matrices_zeroes_biases_keeps_norms);
    tcase_add_test(tc, init_is_reproducible_from_the_generator);
    tcase_add_test(tc, parameters_are_labelled_with_their_state_dict_names);
    tcase_add_test(tc, init_embedding_is_standard_normal_with_zero_padding_row);
    tcase_add_test(tc, init_layernorm_weight_ones_bias_zeros);
    tcase_add_test(tc, init_mha_xavier_in_proj_and_zero_biases);
    tcase_add_test(tc, init_gru_uniform_one_over_sqrt_hidden);
    suite_add_tcase(s, tc);

    tc = tcase("layers");
    tcase_add_test(tc, golden_linear_on_3d_input);
    tcase_add_test(tc, golden_linear_without_bias_on_a_vector);
    tcase_add_test(tc, golden_linear_on_a_transposed_view);
    tcase_add_test(tc, golden_embedding_with_padding_idx_and_repeated_indices);
    tcase_add_test(tc, golden_layernorm_affine);
    tcase_add_test(tc, golden_layernorm_without_affine);
    tcase_add_test(tc, golden_layernorm_on_a_transposed_view);
    tcase_add_test(tc, dropout_module_is_identity_in_eval);
    tcase_add_test(tc, dropout_module_scales_kept_elements_in_training);
    tcase_add_test(tc, pos_embedding_returns_rows_of_its_table);
    tcase_add_test(tc, linear_rejects_wrong_input_size_naming_module_and_shape);
    tcase_add_test(tc, layer_constructors_reject_bad_sizes);
    tcase_add_test(tc, embedding_rejects_float_indices_naming_module);
    tcase_add_test(tc, layernorm_rejects_wrong_last_dim_naming_module);
    tcase_add_test(tc, pos_embedding_rejects_positions_beyond_max_len);
    suite_add_tcase(s, tc);

    tc = tcase("mha");
    tcase_add_test(tc, golden_mha_self_attention_with_key_padding_mask_averaged_weights);
    tcase_add_test(tc, golden_mha_cross_attention_key_is_value_per_head_weights);
    tcase_add_test(tc, golden_mha_self_attention_on_a_strided_view);
    tcase_add_test(tc, golden_mha_cross_attention_on_strided_views);
    tcase_add_test(tc, golden_mha_separate_query_key_value);
    tcase_add_test(tc, golden_mha_bool_attn_mask_true_is_masked);
    tcase_add_test(tc, golden_mha_float_attn_mask_with_key_padding_mask);
    tcase_add_test(tc, golden_mha_causal_flag_matches_upper_triangular_minus_infinity);
    tcase_add_test(tc, golden_mha_causal_float_mask_of_minus_infinity);
    tcase_add_test(tc, golden_mha_per_head_float_mask);
    tcase_add_test(tc, golden_mha_without_bias_single_query);
    tcase_add_test(tc, mha_dropout_acts_in_training_only);
    tcase_add_test(tc, mha_rejects_wrong_input_shapes_naming_module);
    tcase_add_test(tc, mha_rejects_key_padding_mask_of_wrong_shape);
    tcase_add_test(tc, mha_rejects_key_padding_mask_of_wrong_dtype);
    tcase_add_test(tc, mha_rejects_attn_mask_of_wrong_shape_or_dtype);
    suite_add_tcase(s, tc);

    tc = tcase("kv_cache");
    tcase_add_test(tc, mha_cache_step_by_step_equals_causal_full_sequence);
    tcase_add_test(tc, mha_cache_prefill_of_several_positions_then_steps);
    tcase_add_test(tc, mha_cache_with_key_padding_mask_over_all_cached_positions);
    tcase_add_test(tc, mha_cache_clear_starts_a_new_sequence);
    tcase_add_test(tc, mha_cache_overflow_is_an_index_error);
    tcase_add_test(tc, mha_cache_of_another_batch_size_is_a_shape_error);
    tcase_add_test(tc, kv_cache_free_null_is_a_no_op);
    suite_add_tcase(s, tc);

    tc = tcase("ffn");
    tcase_add_test(tc, golden_ffn_relu_named_like_transformer_layer);
    tcase_add_test(tc, golden_ffn_gelu);
    tcase_add_test(tc, layers_made_from_one_generator_drop_different_elements);
    tcase_add_test(tc, dropout_streams_are_reproducible_from_the_seed);
    tcase_add_test(tc, ffn_rejects_wrong_input_size_naming_module);
    tcase_add_test(tc, ffn_in_training_equals_its_composition_bit_for_bit);
    suite_add_tcase(s, tc);

    tc = tcase("residual");
    tcase_add_test(tc, residual_equals_add_of_dropout_bit_for_bit);
    tcase_add_test(tc, residual_writes_over_a_linear_output_but_not_over_a_leaf);
    tcase_add_test(tc, residual_gradient_with_dropout);
    tcase_add_test(tc, residual_of_different_shapes_broadcasts_like_add);
    suite_add_tcase(s, tc);

    tc = tcase("gru");
    tcase_add_test(tc, golden_gru_cell);
    tcase_add_test(tc, golden_gru_cell_without_state_starts_from_zeros);
    tcase_add_test(tc, golden_gru_two_layers_bidirectional_with_h0);
    tcase_add_test(tc, golden_gru_two_layers_bidirectional_without_h0);
    tcase_add_test(tc, golden_gru_on_strided_input_and_state);
    tcase_add_test(tc, golden_gru_one_layer_without_bias);
    tcase_add_test(tc, gru_dropout_acts_between_layers_in_training_only);
    tcase_add_test(tc, gru_rejects_more_parameters_than_a_module_holds);
    tcase_add_test(tc, gru_rejects_wrong_input_and_h0_shapes);
    tcase_add_test(tc, gru_cell_rejects_wrong_input_and_state_shapes);
    suite_add_tcase(s, tc);

    tc = tcase("additive");
    tcase_add_test(tc, golden_additive_attention_with_padding_through_context_and_weights);
    tcase_add_test(tc, golden_additive_attention_without_mask);
    tcase_add_test(tc, additive_attention_rejects_wrong_shapes_naming_module);
    suite_add_tcase(s, tc);

    tc = tcase("sinusoidal");
    tcase_add_test(tc, golden_sinusoidal_from_offset);
    tcase_add_test(tc, golden_sinusoidal_64_positions);
    tcase_add_test(tc, golden_sinusoidal_two_columns);
    tcase_add_test(tc, golden_sinusoidal_far_positions_odd_half_width);
    tcase_add_test(tc, sinusoidal_from_offset_is_a_slice_of_the_full_table);
    tcase_add_test(tc, sinusoidal_odd_dim_ends_with_a_sine_column);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
