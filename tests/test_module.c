/* The module tree (nn/module.c): dotted parameter names, namespaces, limits,
 * train/eval, zeroing gradients, freeing, lookups and null modules. */
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NN "nn.safetensors"

/* Every module in the tree under m, depth first, m first. */
static int collect(cf_module *m, cf_module **out, int n)
{
    out[n++] = m;
    for (cf_module *c = m->first_child; c; c = c->next)
        n = collect(c, out, n);
    return n;
}

TEST(module_parameter_names_are_dotted_paths_without_the_root)
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

TEST(module_own_parameters_come_before_children)
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

TEST(module_child_named_empty_merges_into_parent_namespace)
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

TEST(module_rejects_duplicate_child_name)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    ck_assert_ptr_nonnull(cf_linear_new(net, "fc", 2, 3, true, NULL));
    ck_assert_ptr_null(cf_linear_new(net, "fc", 2, 3, true, NULL));
    assert_error(CF_ERR_ARG, "\"fc\"", "already used", NULL);
    ck_assert_int_eq(cf_module_num_tensors(net), 2);
    cf_module_free(net);
}
END_TEST

TEST(module_rejects_duplicate_parameter_name)
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

TEST(module_rejects_name_taken_in_merged_namespace)
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

TEST(module_rejects_names_too_long)
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

TEST(module_rejects_more_parameters_than_the_limit)
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

TEST(module_parameters_are_zeroed_and_require_grad)
{
    cf_module *m = cf_module_new("M", NULL, NULL);
    cf_tensor *p = cf_module_param(m, "w", CF_SHAPE(3, 2));
    ck_assert(p->flags & CF_REQUIRES_GRAD);
    ck_assert(p->flags & CF_HEAP);
    assert_all_equal(p, 0);
    cf_module_free(m);
}
END_TEST

TEST(module_find_returns_parameters_by_full_name)
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

TEST(module_counts_tensors_and_scalars)
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

TEST(module_train_and_eval_reach_every_submodule)
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

TEST(module_eval_turns_off_dropout_in_submodules)
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

TEST(module_zero_grad_zeroes_every_gradient)
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

TEST(module_free_of_a_child_detaches_it)
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

TEST(module_free_null_is_a_no_op) { cf_module_free(NULL); }
END_TEST

TEST(module_visit_and_queries_accept_null)
{
    ck_assert_int_eq(cf_module_num_tensors(NULL), 0);
    ck_assert_int_eq(cf_module_num_params(NULL), 0);
    cf_module_train(NULL, false);
    cf_module_zero_grad(NULL);
}
END_TEST

TEST(forward_of_a_null_module_is_an_argument_error)
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

TEST(a_null_module_after_a_failed_constructor_keeps_the_root_cause)
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

TEST(parameters_are_labelled_with_their_state_dict_names)
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
    char *buf = dot_text(cf_sum_all(y));
    ck_assert_ptr_nonnull(strstr(buf, "encoder.linear1.weight\\n[2, 3]"));
    ck_assert_ptr_nonnull(strstr(buf, "encoder.linear1.bias\\n[2]"));
    free(buf);
    cf_module_free(net);
}
END_TEST
