/* The zoo's research knobs (zoo.h): each switch changes the computation as
 * documented, keeps gradients right (gradcheck on a tiny model per
 * non-default setting), matches PyTorch for a few combinations
 * (tests/golden/gen_knobs_zoo.py, assert_golden's tolerance) and is
 * recorded in checkpoints, which refuse a model with other knobs naming
 * the knob. */
#include "cformer/zoo.h"
#include "tests/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PAD = 0, BOS = 1, EOS = 2 };

/* ---- Helpers ---- */

/* The largest |a - b| over two tensors of one shape. */
static float max_diff(cf_tensor *a, cf_tensor *b)
{
    ck_assert_msg(a && b, "%s", cf_error_message());
    ck_assert(cf_same_shape(a, b));
    cf_tensor *d = cf_max_all(cf_abs(cf_sub(a, b)));
    return cf_item(d);
}

typedef struct {
    cf_module *src;
    int copied;
} copying;

static void copy_one(const char *name, cf_tensor *p, void *ud)
{
    copying *c = ud;
    cf_tensor *from = cf_module_find(c->src, name);
    if (!from)
        return;
    ck_assert_msg(cf_same_shape(p, from), "%s: shapes differ", name);
    memcpy(p->data, from->data, cf_numel(p) * (p->dtype == CF_F32 ? sizeof(float) : 4));
    c->copied++;
}

/* Copies every tensor of dst that src has under the same name; returns how
 * many. */
static int copy_params(cf_module *dst, cf_module *src)
{
    copying c = {src, 0};
    cf_module_visit(dst, copy_one, &c);
    return c.copied;
}

typedef struct {
    const char *part;
    bool found;
} name_search;

static void search_one(const char *name, cf_tensor *p, void *ud)
{
    (void)p;
    name_search *s = ud;
    s->found = s->found || strstr(name, s->part);
}

static bool has_name_containing(cf_module *m, const char *part)
{
    name_search s = {part, false};
    cf_module_visit(m, search_one, &s);
    return s.found;
}

/* assert_param_grads for parameters only (buffers have no gradient). */
typedef struct {
    const cf_safetensors *f;
    const char *prefix;
} graded;

static void grad_one(const char *name, cf_tensor *p, void *ud)
{
    if (!(p->flags & CF_REQUIRES_GRAD))
        return;
    graded *g = ud;
    char key[256];
    snprintf(key, sizeof key, "%s.%s", g->prefix, name);
    assert_golden(p->grad, g->f, key);
}

/* The tensors named names[0..n) that m has, as gradcheck inputs; returns
 * how many. */
static int pick(cf_module *m, const char *const *names, int n, cf_tensor **out)
{
    int k = 0;
    for (int i = 0; i < n && k < CF_MAX_SRC; i++) {
        cf_tensor *t = cf_module_find(m, names[i]);
        if (t)
            out[k++] = t;
    }
    return k;
}

/* ---- Transformer ---- */

static cf_transformer_config tiny_transformer(void)
{
    cf_transformer_config c = cf_transformer_small(7, 7);
    c.d_model = 8;
    c.heads = 2;
    c.enc_layers = c.dec_layers = 1;
    c.ff = 16;
    c.dropout = 0;
    c.act = CF_ACT_GELU;
    c.max_len = 8;
    return c;
}

static cf_transformer *transformer(const cf_transformer_config *c, uint64_t seed)
{
    cf_rng g;
    cf_rng_init(&g, seed);
    cf_transformer *m = cf_transformer_new(c, &g);
    ck_assert_msg(m != NULL, "%s", cf_error_message());
    return m;
}

static void transformer_free(cf_transformer *m) { cf_module_free(cf_transformer_module(m)); }

/* src [2, 5] (the second row padded after 3 tokens), tgt [2, 4] (padded
 * after 2). */
static cf_tensor *tiny_src(void)
{
    return cf_from_ints((int32_t[]){3, 4, 5, 6, 3, 6, 5, 4, PAD, PAD}, CF_SHAPE(2, 5));
}

static cf_tensor *tiny_tgt(void)
{
    return cf_from_ints((int32_t[]){BOS, 3, 4, 5, BOS, 6, PAD, PAD}, CF_SHAPE(2, 4));
}

typedef struct {
    const char *what;
    void (*set)(cf_transformer_config *c);
} transformer_knob;

static void t_batch(cf_transformer_config *c) { c->norm = CF_NORM_BATCH; }
static void t_rms(cf_transformer_config *c) { c->norm = CF_NORM_RMS; }
static void t_no_norm(cf_transformer_config *c) { c->norm = CF_NORM_NONE; }
static void t_learned(cf_transformer_config *c) { c->pos = CF_POS_LEARNED; }
static void t_no_pos(cf_transformer_config *c) { c->pos = CF_POS_NONE; }
static void t_unscaled(cf_transformer_config *c) { c->unscaled = true; }
static void t_no_residual(cf_transformer_config *c) { c->no_residual = true; }
static void t_pre_norm(cf_transformer_config *c) { c->pre_norm = true; }

static const transformer_knob transformer_knobs[] = {
    {"norm batch", t_batch},          {"norm rms", t_rms},        {"norm none", t_no_norm},
    {"learned positions", t_learned}, {"no positions", t_no_pos}, {"unscaled", t_unscaled},
    {"no residual", t_no_residual},   {"pre-norm", t_pre_norm},
};
enum { N_TRANSFORMER_KNOBS = sizeof transformer_knobs / sizeof transformer_knobs[0] };

static cf_tensor *transformer_logits(cf_tensor *const *in, void *ud)
{
    (void)in;
    return cf_transformer_forward(ud, tiny_src(), tiny_tgt(), NULL);
}

TEST_WITH(transformer_knob_changes_the_logits_and_gradients_check, .loop = N_TRANSFORMER_KNOBS,
          .timeout = 120)
{
    const transformer_knob *k = &transformer_knobs[_i];
    cf_transformer_config c = tiny_transformer();
    cf_transformer *base = transformer(&c, 1);
    k->set(&c);
    cf_transformer *m = transformer(&c, 1);
    /* The same weights where the models share them: only the knob differs. */
    copy_params(cf_transformer_module(m), cf_transformer_module(base));
    cf_tensor *a = cf_transformer_forward(base, tiny_src(), tiny_tgt(), NULL);
    cf_tensor *b = cf_transformer_forward(m, tiny_src(), tiny_tgt(), NULL);
    ck_assert_msg(max_diff(a, b) > 1e-3f, "%s: logits unchanged", k->what);
    static const char *const names[] = {
        "src_embed.weight",
        "encoder.layers.0.self_attn.in_proj_weight",
        "decoder.layers.0.multihead_attn.in_proj_weight",
        "decoder.layers.0.linear1.weight",
        "encoder.layers.0.norm1.weight",
        "src_pos.weight",
    };
    cf_tensor *in[CF_MAX_SRC];
    int n = pick(cf_transformer_module(m), names, 6, in);
    assert_gradcheck(transformer_logits, m, n, in, 2e-2f);
    transformer_free(base);
    transformer_free(m);
}
END_TEST

TEST_WITH(norm_kinds_have_their_own_tensors, .timeout = 120)
{
    cf_transformer_config c = tiny_transformer();
    c.norm = CF_NORM_BATCH;
    cf_transformer *m = transformer(&c, 1);
    cf_module *mod = cf_transformer_module(m);
    ck_assert_ptr_nonnull(cf_module_find(mod, "encoder.layers.0.norm2.running_var"));
    ck_assert_ptr_nonnull(cf_module_find(mod, "decoder.norm.num_batches_tracked"));
    transformer_free(m);
    c.norm = CF_NORM_RMS;
    m = transformer(&c, 1);
    mod = cf_transformer_module(m);
    ck_assert_ptr_nonnull(cf_module_find(mod, "decoder.layers.0.norm3.weight"));
    ck_assert(!has_name_containing(mod, "norm3.bias"));
    transformer_free(m);
    c.norm = CF_NORM_NONE;
    m = transformer(&c, 1);
    ck_assert(!has_name_containing(cf_transformer_module(m), "norm"));
    transformer_free(m);
    c = tiny_transformer();
    c.pos = CF_POS_LEARNED;
    m = transformer(&c, 1);
    cf_tensor *pos = cf_module_find(cf_transformer_module(m), "tgt_pos.weight");
    ck_assert_ptr_nonnull(pos);
    ck_assert(pos->shape[0] == 8 && pos->shape[1] == 8);
    transformer_free(m);
}
END_TEST

/* Scores q . k equal the default's q . k / sqrt(d_k) once every query
 * projection (weights and bias) is multiplied by sqrt(d_k). */
TEST_WITH(unscaled_attention_is_scaled_queries_by_hand, .timeout = 120)
{
    cf_transformer_config c = tiny_transformer();
    cf_transformer *base = transformer(&c, 2);
    c.unscaled = true;
    cf_transformer *m = transformer(&c, 3);
    copy_params(cf_transformer_module(m), cf_transformer_module(base));
    cf_module *mod = cf_transformer_module(base);
    const char *attns[] = {"encoder.layers.0.self_attn", "decoder.layers.0.self_attn",
                           "decoder.layers.0.multihead_attn"};
    float root = sqrtf((float)(c.d_model / c.heads));
    for (int i = 0; i < 3; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s.in_proj_weight", attns[i]);
        float *w = cf_module_find(mod, name)->data;
        snprintf(name, sizeof name, "%s.in_proj_bias", attns[i]);
        float *b = cf_module_find(mod, name)->data;
        for (int r = 0; r < c.d_model; r++) {
            b[r] *= root;
            for (int j = 0; j < c.d_model; j++)
                w[r * c.d_model + j] *= root;
        }
    }
    cf_tensor *want = cf_transformer_forward(base, tiny_src(), tiny_tgt(), NULL);
    cf_tensor *got = cf_transformer_forward(m, tiny_src(), tiny_tgt(), NULL);
    assert_close(got, want, 1e-5f, 1e-4f);
    /* Decoding (cached cross-attention) scales the same way. */
    int32_t g1[2 * 6], g2[2 * 6];
    ck_assert_int_eq(cf_transformer_greedy(base, tiny_src(), 6, g1), CF_OK);
    ck_assert_int_eq(cf_transformer_greedy(m, tiny_src(), 6, g2), CF_OK);
    ck_assert_int_eq(memcmp(g1, g2, sizeof g1), 0);
    transformer_free(base);
    transformer_free(m);
}
END_TEST

/* Without positions the encoder sees a set: permuting the source permutes
 * its outputs. The sinusoidal encoding breaks that. */
TEST_WITH(without_positions_the_encoder_is_permutation_equivariant, .timeout = 120)
{
    cf_tensor *src = cf_from_ints((int32_t[]){3, 4, 5, 6, 4}, CF_SHAPE(1, 5));
    cf_tensor *perm = cf_from_ints((int32_t[]){6, 4, 3, 4, 5}, CF_SHAPE(1, 5));
    const int order[5] = {3, 1, 0, 4, 2}; /* perm[i] = src[order[i]] */
    for (int pos = 0; pos < 2; pos++) {
        cf_transformer_config c = tiny_transformer();
        c.pos = pos ? CF_POS_NONE : CF_POS_DEFAULT;
        cf_transformer *m = transformer(&c, 4);
        cf_tensor *y = cf_transformer_encode(m, src, NULL);
        cf_tensor *yp = cf_transformer_encode(m, perm, NULL);
        float worst = 0;
        for (int i = 0; i < 5; i++) {
            cf_tensor *a = cf_slice(yp, 1, i, i + 1, 1);
            cf_tensor *b = cf_slice(y, 1, order[i], order[i] + 1, 1);
            float d = max_diff(a, b);
            worst = d > worst ? d : worst;
        }
        if (pos)
            ck_assert_msg(worst < 1e-5f, "no positions: rows differ by %g", worst);
        else
            ck_assert_msg(worst > 1e-3f, "sinusoidal positions: still equivariant");
        transformer_free(m);
    }
}
END_TEST

TEST_WITH(learned_positions_of_zero_are_no_positions, .timeout = 120)
{
    cf_transformer_config c = tiny_transformer();
    c.pos = CF_POS_LEARNED;
    cf_transformer *learned = transformer(&c, 5);
    cf_module *mod = cf_transformer_module(learned);
    cf_fill(cf_module_find(mod, "src_pos.weight"), 0);
    cf_fill(cf_module_find(mod, "tgt_pos.weight"), 0);
    c.pos = CF_POS_NONE;
    cf_transformer *none = transformer(&c, 6);
    ck_assert_int_eq(copy_params(cf_transformer_module(none), mod),
                     cf_module_num_tensors(cf_transformer_module(none)));
    assert_close(cf_transformer_forward(learned, tiny_src(), tiny_tgt(), NULL),
                 cf_transformer_forward(none, tiny_src(), tiny_tgt(), NULL), 1e-6f, 0);
    transformer_free(learned);
    transformer_free(none);
}
END_TEST

/* Tokens t [B, n] (contiguous) with k more columns of padding. */
static cf_tensor *pad_more(cf_tensor *t, int k)
{
    int64_t B = t->shape[0], n = t->shape[1];
    cf_tensor *p = cf_empty(CF_I32, CF_SHAPE(B, n + k));
    const int32_t *from = t->data;
    int32_t *to = p->data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < n + k; j++)
            to[b * (n + k) + j] = j < n ? from[b * n + j] : PAD;
    return p;
}

/* In training, BatchNorm's statistics are those of the real tokens: more
 * padding changes neither the logits at real positions nor the running
 * statistics. */
TEST_WITH(batchnorm_statistics_leave_padding_out, .timeout = 120)
{
    cf_transformer_config c = tiny_transformer();
    c.norm = CF_NORM_BATCH;
    cf_transformer *a = transformer(&c, 7), *b = transformer(&c, 7);
    cf_tensor *la = cf_transformer_forward(a, tiny_src(), tiny_tgt(), NULL);
    cf_tensor *lb =
        cf_transformer_forward(b, pad_more(tiny_src(), 3), pad_more(tiny_tgt(), 2), NULL);
    ck_assert_ptr_nonnull(lb);
    assert_close(cf_slice(lb, 1, 0, 4, 1), la, 1e-5f, 1e-4f);
    const char *stats[] = {"encoder.layers.0.norm1.running_mean", "decoder.norm.running_var"};
    for (int i = 0; i < 2; i++)
        assert_close(cf_module_find(cf_transformer_module(b), stats[i]),
                     cf_module_find(cf_transformer_module(a), stats[i]), 1e-6f, 1e-5f);
    /* A forward moved the running mean away from its start. */
    ck_assert_float_ne(
        cf_item(cf_sum_all(cf_abs(cf_module_find(cf_transformer_module(a), stats[0])))), 0);
    transformer_free(a);
    transformer_free(b);
}
END_TEST

/* In eval mode BatchNorm normalises with its running statistics, so a row
 * gets the logits alone that it gets in a batch. */
TEST_WITH(batchnorm_in_eval_mode_treats_each_row_alone, .timeout = 120)
{
    cf_transformer_config c = tiny_transformer();
    c.norm = CF_NORM_BATCH;
    cf_transformer *m = transformer(&c, 8);
    ck_assert_ptr_nonnull(cf_transformer_forward(m, tiny_src(), tiny_tgt(), NULL));
    cf_module_train(cf_transformer_module(m), false);
    cf_tensor *all = cf_transformer_forward(m, tiny_src(), tiny_tgt(), NULL);
    cf_tensor *row = cf_transformer_forward(
        m, cf_contiguous(cf_slice(cf_slice(tiny_src(), 0, 1, 2, 1), 1, 0, 3, 1)),
        cf_contiguous(cf_slice(cf_slice(tiny_tgt(), 0, 1, 2, 1), 1, 0, 2, 1)), NULL);
    assert_close(row, cf_slice(cf_slice(all, 0, 1, 2, 1), 1, 0, 2, 1), 1e-5f, 1e-4f);
    transformer_free(m);
}
END_TEST

TEST_WITH(invalid_knobs_are_refused_naming_them, .timeout = 120)
{
    cf_transformer_config c = tiny_transformer();
    c.norm = (cf_norm_kind)7;
    ck_assert_ptr_null(cf_transformer_new(&c, NULL));
    assert_error(CF_ERR_ARG, "cf_transformer_new", "norm 7", NULL);
    c = tiny_transformer();
    c.pos = (cf_pos_kind)9;
    ck_assert_ptr_null(cf_transformer_new(&c, NULL));
    assert_error(CF_ERR_ARG, "pos 9", NULL);
}
END_TEST

/* The golden Transformers of gen_knobs_zoo.py. */
static cf_transformer *golden_transformer(const cf_safetensors *f, const char *name)
{
    cf_transformer_config c = cf_transformer_small(13, 11);
    c.d_model = 32;
    c.heads = 4;
    c.enc_layers = c.dec_layers = 2;
    c.ff = 64;
    c.dropout = 0;
    c.max_len = 16;
    if (!strcmp(name, "tb")) {
        c.norm = CF_NORM_BATCH;
        c.pos = CF_POS_NONE;
    } else {
        c.norm = CF_NORM_RMS;
        c.pos = CF_POS_LEARNED;
        c.pre_norm = c.unscaled = c.no_residual = true;
    }
    cf_transformer *m = transformer(&c, 1);
    load_params(cf_transformer_module(m), f, name);
    return m;
}

static void check_golden_transformer(const char *name)
{
    cf_safetensors *f = open_fixture("knobs_zoo.safetensors");
    cf_transformer *m = golden_transformer(f, name);
    cf_module *mod = cf_transformer_module(m);
    char key[96];
    cf_tensor *logits = cf_transformer_forward(m, fixture(f, "t.src"), fixture(f, "t.tgt"), NULL);
    snprintf(key, sizeof key, "%s.logits", name);
    assert_golden(logits, f, key);
    cf_tensor *loss = cf_cross_entropy(cf_reshape(logits, CF_SHAPE(-1, 11)),
                                       cf_reshape(fixture(f, "t.labels"), CF_SHAPE(-1)),
                                       &(cf_loss_opts){.ignore = true, .ignore_index = PAD});
    snprintf(key, sizeof key, "%s.loss", name);
    assert_golden(loss, f, key);
    ck_assert_int_eq(cf_backward(loss), CF_OK);
    snprintf(key, sizeof key, "%s.grad", name);
    cf_module_visit(mod, grad_one, &(graded){f, key});
    if (!strcmp(name, "tb")) {
        const char *stats[] = {"encoder.layers.1.norm2.running_mean",
                               "decoder.layers.0.norm3.running_var", "decoder.norm.running_mean"};
        for (int i = 0; i < 3; i++) {
            snprintf(key, sizeof key, "%s.after.%s", name, stats[i]);
            assert_golden(cf_module_find(mod, stats[i]), f, key);
        }
    }
    snprintf(key, sizeof key, "%s.greedy", name);
    const int32_t *want = fixture(f, key)->data;
    int32_t out[3 * 8];
    ck_assert_int_eq(cf_transformer_greedy(m, fixture(f, "t.src"), 8, out), CF_OK);
    for (int i = 0; i < 3 * 8; i++)
        ck_assert_msg(out[i] == want[i], "%s: row %d step %d: %d, want %d", name, i / 8, i % 8,
                      out[i], want[i]);
    transformer_free(m);
    cf_safetensors_close(f);
}

TEST_WITH(batchnorm_transformer_without_positions_matches_torch, .timeout = 120)
{
    check_golden_transformer("tb");
}
END_TEST

TEST_WITH(rms_learned_unscaled_pre_norm_residual_free_transformer_matches_torch, .timeout = 120)
{
    check_golden_transformer("tr");
}
END_TEST

/* ---- ViT ---- */

static const cf_vit_config tiny_vit = {.image_size = 8,
                                       .channels = 1,
                                       .patch_size = 4,
                                       .dim = 8,
                                       .depth = 1,
                                       .heads = 2,
                                       .mlp_ratio = 2,
                                       .classes = 3};

static cf_vit *vit(const cf_vit_config *c, uint64_t seed)
{
    cf_rng g;
    cf_rng_init(&g, seed);
    cf_vit *m = cf_vit_new(c, &g);
    ck_assert_msg(m != NULL, "%s", cf_error_message());
    return m;
}

static cf_tensor *images(uint64_t seed, int64_t B)
{
    cf_rng g;
    cf_rng_init(&g, seed);
    return cf_uniform(&g, -1, 1, CF_SHAPE(B, 1, 8, 8));
}

typedef struct {
    const char *what;
    void (*set)(cf_vit_config *c);
} vit_knob;

static void v_batch(cf_vit_config *c) { c->norm = CF_NORM_BATCH; }
static void v_rms(cf_vit_config *c) { c->norm = CF_NORM_RMS; }
static void v_no_norm(cf_vit_config *c) { c->norm = CF_NORM_NONE; }
static void v_sin(cf_vit_config *c) { c->pos = CF_POS_SINUSOIDAL; }
static void v_no_pos(cf_vit_config *c) { c->pos = CF_POS_NONE; }
static void v_post(cf_vit_config *c) { c->post_norm = true; }
static void v_unscaled(cf_vit_config *c) { c->unscaled = true; }
static void v_no_residual(cf_vit_config *c) { c->no_residual = true; }

static const vit_knob vit_knobs[] = {
    {"norm batch", v_batch},    {"norm rms", v_rms},
    {"norm none", v_no_norm},   {"sinusoidal positions", v_sin},
    {"no positions", v_no_pos}, {"post-norm", v_post},
    {"unscaled", v_unscaled},   {"no residual", v_no_residual},
};
enum { N_VIT_KNOBS = sizeof vit_knobs / sizeof vit_knobs[0] };

static cf_tensor *vit_logits(cf_tensor *const *in, void *ud)
{
    (void)in;
    return cf_vit_forward(ud, images(21, 3), NULL);
}

TEST_WITH(vit_knob_changes_the_logits_and_gradients_check, .loop = N_VIT_KNOBS, .timeout = 120)
{
    const vit_knob *k = &vit_knobs[_i];
    cf_vit_config c = tiny_vit;
    cf_vit *base = vit(&c, 1);
    /* timm's N(0, .02^2) weights barely move a tiny model's logits: larger
     * ones make every knob show. */
    cf_module_init_normal(cf_vit_module(base), 0.3f, &(cf_rng){31, 0});
    k->set(&c);
    cf_vit *m = vit(&c, 1);
    copy_params(cf_vit_module(m), cf_vit_module(base));
    cf_tensor *a = cf_vit_forward(base, images(21, 3), NULL);
    cf_tensor *b = cf_vit_forward(m, images(21, 3), NULL);
    ck_assert_msg(max_diff(a, b) > 1e-3f, "%s: logits unchanged", k->what);
    static const char *const names[] = {"patch_embed.proj.weight",  "cls_token",
                                        "blocks.0.attn.qkv.weight", "blocks.0.norm1.weight",
                                        "blocks.0.mlp.fc1.weight",  "head.weight"};
    cf_tensor *in[CF_MAX_SRC];
    int n = pick(cf_vit_module(m), names, 6, in);
    assert_gradcheck(vit_logits, m, n, in, 2e-2f);
    cf_module_free(cf_vit_module(base));
    cf_module_free(cf_vit_module(m));
}
END_TEST

/* Swaps the 4x4 patches (0, 0) and (1, 1) of images [B, 1, 8, 8]. */
static cf_tensor *swap_patches(cf_tensor *x)
{
    cf_tensor *y = cf_clone(x);
    float *d = y->data;
    for (int64_t b = 0; b < y->shape[0]; b++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                float *p = d + b * 64 + i * 8 + j, *q = d + b * 64 + (i + 4) * 8 + j + 4;
                float t = *p;
                *p = *q, *q = t;
            }
    return y;
}

TEST_WITH(vit_without_positions_ignores_where_patches_are, .timeout = 120)
{
    for (int pos = 0; pos < 2; pos++) {
        cf_vit_config c = tiny_vit;
        c.pos = pos ? CF_POS_NONE : CF_POS_DEFAULT;
        cf_vit *m = vit(&c, 2);
        cf_module_init_normal(cf_vit_module(m), 0.3f, &(cf_rng){32, 0});
        cf_tensor *x = images(22, 2);
        float d = max_diff(cf_vit_forward(m, x, NULL), cf_vit_forward(m, swap_patches(x), NULL));
        if (pos)
            ck_assert_msg(d < 1e-5f, "no positions: swapping patches moved the logits by %g", d);
        else
            ck_assert_msg(d > 1e-3f, "learned positions: swapping patches changed nothing");
        cf_module_free(cf_vit_module(m));
    }
}
END_TEST

/* The 2-D sinusoidal encoding is a learned model whose pos_embed holds, by
 * hand, zeros for CLS and [enc(row) ; enc(column)] for each patch. */
TEST_WITH(vit_sinusoidal_positions_are_the_2d_table, .timeout = 120)
{
    cf_vit_config c = tiny_vit;
    c.image_size = 12; /* a 3 x 3 grid */
    cf_vit *learned = vit(&c, 3);
    c.pos = CF_POS_SINUSOIDAL;
    cf_vit *sin2d = vit(&c, 4);
    ck_assert_ptr_null(cf_module_find(cf_vit_module(sin2d), "pos_embed"));
    copy_params(cf_vit_module(sin2d), cf_vit_module(learned));
    float *pe = cf_module_find(cf_vit_module(learned), "pos_embed")->data; /* [1, 10, 8] */
    cf_tensor *axis = cf_sinusoidal_encoding(0, 3, 4);
    const float *e = axis->data;
    memset(pe, 0, sizeof(float) * 8);
    for (int r = 0; r < 3; r++)
        for (int col = 0; col < 3; col++)
            for (int j = 0; j < 4; j++) {
                pe[(1 + r * 3 + col) * 8 + j] = e[r * 4 + j];
                pe[(1 + r * 3 + col) * 8 + 4 + j] = e[col * 4 + j];
            }
    cf_rng g;
    cf_rng_init(&g, 23);
    cf_tensor *x = cf_uniform(&g, -1, 1, CF_SHAPE(2, 1, 12, 12));
    assert_close(cf_vit_forward(sin2d, x, NULL), cf_vit_forward(learned, x, NULL), 1e-5f, 1e-4f);
    cf_module_free(cf_vit_module(learned));
    cf_module_free(cf_vit_module(sin2d));
}
END_TEST

TEST_WITH(vit_batchnorm_uses_batch_statistics_in_training_only, .timeout = 120)
{
    cf_vit_config c = tiny_vit;
    c.norm = CF_NORM_BATCH;
    cf_vit *m = vit(&c, 5);
    cf_tensor *x = images(24, 3);
    cf_tensor *first = cf_contiguous(cf_slice(x, 0, 0, 2, 1));
    cf_tensor *all = cf_vit_forward(m, x, NULL), *two = cf_vit_forward(m, first, NULL);
    ck_assert_msg(max_diff(cf_slice(all, 0, 0, 2, 1), two) > 1e-4f,
                  "training: the batch did not matter");
    cf_module_train(cf_vit_module(m), false);
    all = cf_vit_forward(m, x, NULL);
    two = cf_vit_forward(m, first, NULL);
    assert_close(two, cf_slice(all, 0, 0, 2, 1), 1e-5f, 1e-4f);
    cf_module_free(cf_vit_module(m));
}
END_TEST

TEST_WITH(vit_sinusoidal_positions_need_an_even_dim, .timeout = 120)
{
    cf_vit_config c = tiny_vit;
    c.dim = 9;
    c.heads = 3;
    c.pos = CF_POS_SINUSOIDAL;
    ck_assert_ptr_null(cf_vit_new(&c, NULL));
    assert_error(CF_ERR_ARG, "dim 9", "sinusoidal", NULL);
}
END_TEST

/* ---- Seq2seq ---- */

static const cf_seq2seq_config golden_s2s = {.src_vocab = 11,
                                             .tgt_vocab = 13,
                                             .emb = 8,
                                             .hidden = 12,
                                             .attn = 10,
                                             .enc_layers = 2,
                                             .pad_id = PAD,
                                             .bos_id = BOS,
                                             .eos_id = EOS};

static const cf_seq2seq_config tiny_s2s = {.src_vocab = 6,
                                           .tgt_vocab = 7,
                                           .emb = 3,
                                           .hidden = 4,
                                           .attn = 3,
                                           .enc_layers = 1,
                                           .pad_id = PAD,
                                           .bos_id = BOS,
                                           .eos_id = EOS};

typedef struct {
    const char *name;
    cf_rnn_cell cell;
    cf_attn_score score;
} s2s_case;

static const s2s_case s2s_cases[] = {
    {"lstm", CF_CELL_LSTM, CF_SCORE_ADDITIVE},
    {"dot", CF_CELL_GRU, CF_SCORE_DOT},
    {"general", CF_CELL_LSTM, CF_SCORE_GENERAL},
};

static cf_seq2seq *seq2seq(cf_seq2seq_config c, const s2s_case *k, uint64_t seed)
{
    c.cell = k->cell;
    c.score = k->score;
    cf_rng g;
    cf_rng_init(&g, seed);
    cf_seq2seq *m = cf_seq2seq_new(&c, &g);
    ck_assert_msg(m != NULL, "%s", cf_error_message());
    return m;
}

static cf_tensor *s2s_src(void)
{
    return cf_from_ints((int32_t[]){3, 4, 5, 2, 4, 5, PAD, PAD}, CF_SHAPE(2, 4));
}

static cf_tensor *s2s_tgt(void)
{
    return cf_from_ints((int32_t[]){BOS, 3, 6, EOS, BOS, 4, EOS, PAD}, CF_SHAPE(2, 4));
}

static cf_tensor *s2s_logits(cf_tensor *const *in, void *ud)
{
    (void)in;
    return cf_seq2seq_forward(ud, s2s_src(), s2s_tgt(), 1, NULL, NULL);
}

TEST_WITH(seq2seq_knob_gradients_check, .loop = 3, .timeout = 120)
{
    const s2s_case *k = &s2s_cases[_i];
    cf_seq2seq *m = seq2seq(tiny_s2s, k, 1);
    static const char *const names[] = {
        "encoder.embedding.weight",          "encoder.rnn.weight_hh_l0",
        "encoder.rnn.weight_ih_l0_reverse",  "bridge.weight",
        "decoder.attention.key_proj.weight", "decoder.rnn.weight_ih"};
    cf_tensor *in[CF_MAX_SRC];
    int n = pick(cf_seq2seq_module(m), names, 6, in);
    assert_gradcheck(s2s_logits, m, n, in, 2e-2f);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

TEST_WITH(seq2seq_knobs_size_the_model, .timeout = 120)
{
    cf_module *m = cf_seq2seq_module(seq2seq(tiny_s2s, &s2s_cases[1], 1)); /* GRU, dot */
    ck_assert_int_eq(cf_module_find(m, "bridge.weight")->shape[0], 8);
    ck_assert_int_eq(cf_module_find(m, "decoder.rnn.weight_hh")->shape[0], 3 * 8);
    ck_assert_int_eq(cf_module_find(m, "decoder.out.weight")->shape[1], 8 + 8 + 3);
    ck_assert(!has_name_containing(m, "attention"));
    cf_module_free(m);
    m = cf_seq2seq_module(seq2seq(tiny_s2s, &s2s_cases[2], 1)); /* LSTM, general */
    cf_tensor *wa = cf_module_find(m, "decoder.attention.key_proj.weight");
    ck_assert(wa && wa->shape[0] == 4 && wa->shape[1] == 8);
    ck_assert_int_eq(cf_module_find(m, "encoder.rnn.weight_ih_l0")->shape[0], 4 * 4);
    ck_assert_int_eq(cf_module_find(m, "decoder.rnn.weight_hh")->shape[0], 4 * 4);
    cf_module_free(m);
}
END_TEST

/* The packed LSTM encoder skips padding: a row alone gets the logits it
 * gets in a padded batch. */
TEST_WITH(lstm_seq2seq_rows_do_not_depend_on_padding, .timeout = 120)
{
    cf_seq2seq *m = seq2seq(tiny_s2s, &s2s_cases[0], 2);
    cf_tensor *all = cf_seq2seq_forward(m, s2s_src(), s2s_tgt(), 1, NULL, NULL);
    cf_tensor *src = cf_contiguous(cf_slice(cf_slice(s2s_src(), 0, 1, 2, 1), 1, 0, 2, 1));
    cf_tensor *tgt = cf_contiguous(cf_slice(cf_slice(s2s_tgt(), 0, 1, 2, 1), 1, 0, 3, 1));
    cf_tensor *alone = cf_seq2seq_forward(m, src, tgt, 1, NULL, NULL);
    assert_close(alone, cf_slice(cf_slice(all, 0, 1, 2, 1), 1, 0, 2, 1), 1e-5f, 1e-4f);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

TEST_WITH(seq2seq_beam_of_width_one_is_greedy_for_every_knob, .loop = 3, .timeout = 120)
{
    const s2s_case *k = &s2s_cases[_i];
    cf_seq2seq *m = seq2seq(tiny_s2s, k, 3);
    int32_t g[2 * 6], b[2 * 6];
    ck_assert_int_eq(cf_seq2seq_greedy(m, s2s_src(), 6, g, NULL), CF_OK);
    ck_assert_int_eq(cf_seq2seq_beam(m, s2s_src(), 1, 0, 6, b), CF_OK);
    ck_assert_int_eq(memcmp(g, b, sizeof g), 0);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

TEST_WITH(seq2seq_knobs_match_torch, .loop = 3, .timeout = 120)
{
    const s2s_case *k = &s2s_cases[_i];
    cf_safetensors *f = open_fixture("knobs_zoo.safetensors");
    cf_seq2seq *m = seq2seq(golden_s2s, k, 1);
    load_params(cf_seq2seq_module(m), f, k->name);
    char key[96];
    cf_tensor *w = NULL, *src = fixture(f, "s.src"), *tgt = fixture(f, "s.tgt");
    cf_tensor *logits = cf_seq2seq_forward(m, src, tgt, 1, NULL, &w);
    snprintf(key, sizeof key, "%s.logits", k->name);
    assert_golden(logits, f, key);
    snprintf(key, sizeof key, "%s.weights", k->name);
    assert_golden(w, f, key);
    cf_tensor *labels = cf_contiguous(cf_slice(tgt, 1, 1, tgt->shape[1], 1));
    cf_tensor *loss =
        cf_cross_entropy(cf_reshape(logits, CF_SHAPE(-1, 13)), cf_reshape(labels, CF_SHAPE(-1)),
                         &(cf_loss_opts){.ignore = true, .ignore_index = PAD});
    snprintf(key, sizeof key, "%s.loss", k->name);
    assert_golden(loss, f, key);
    ck_assert_int_eq(cf_backward(loss), CF_OK);
    snprintf(key, sizeof key, "%s.grad", k->name);
    cf_module_visit(cf_seq2seq_module(m), grad_one, &(graded){f, key});
    int32_t out[3 * 8];
    cf_tensor *gw = NULL;
    ck_assert_int_eq(cf_seq2seq_greedy(m, src, 8, out, &gw), CF_OK);
    snprintf(key, sizeof key, "%s.greedy", k->name);
    const int32_t *want = fixture(f, key)->data;
    for (int i = 0; i < 3 * 8; i++)
        ck_assert_msg(out[i] == want[i], "%s: row %d step %d: %d, want %d", k->name, i / 8, i % 8,
                      out[i], want[i]);
    snprintf(key, sizeof key, "%s.greedy_weights", k->name);
    assert_golden(gw, f, key);
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST_WITH(seq2seq_invalid_knobs_are_refused, .timeout = 120)
{
    cf_seq2seq_config c = tiny_s2s;
    c.cell = (cf_rnn_cell)5;
    ck_assert_ptr_null(cf_seq2seq_new(&c, NULL));
    assert_error(CF_ERR_ARG, "cell 5", NULL);
    c = tiny_s2s;
    c.score = (cf_attn_score)4;
    ck_assert_ptr_null(cf_seq2seq_new(&c, NULL));
    assert_error(CF_ERR_ARG, "score 4", NULL);
}
END_TEST

/* ---- Checkpoints ---- */

SCRATCH_TEST(checkpoints_record_every_knob)
{
    cf_transformer_config c = tiny_transformer();
    c.norm = CF_NORM_RMS;
    c.pos = CF_POS_NONE;
    c.unscaled = c.no_residual = c.pre_norm = true;
    cf_transformer *m = transformer(&c, 1);
    const char *path = scratch_path("t.safetensors");
    ck_assert_int_eq(cf_module_save(cf_transformer_module(m), path), CF_OK);
    cf_safetensors *f = NULL;
    ck_assert_int_eq(cf_safetensors_open(path, &f), CF_OK);
    ck_assert_str_eq(cf_safetensors_metadata(f, "config.norm"), "rms");
    ck_assert_str_eq(cf_safetensors_metadata(f, "config.positions"), "none");
    ck_assert_str_eq(cf_safetensors_metadata(f, "config.norm_position"), "pre");
    ck_assert_str_eq(cf_safetensors_metadata(f, "config.attention_scale"), "1");
    ck_assert_str_eq(cf_safetensors_metadata(f, "config.residual"), "off");
    cf_safetensors_close(f);
    transformer_free(m);

    cf_seq2seq *s = seq2seq(tiny_s2s, &s2s_cases[2], 1);
    ck_assert_int_eq(cf_module_save(cf_seq2seq_module(s), path), CF_OK);
    ck_assert_int_eq(cf_safetensors_open(path, &f), CF_OK);
    ck_assert_str_eq(cf_safetensors_metadata(f, "config.cell"), "lstm");
    ck_assert_str_eq(cf_safetensors_metadata(f, "config.attention"), "general");
    cf_safetensors_close(f);
    cf_module_free(cf_seq2seq_module(s));

    cf_vit_config vc = tiny_vit;
    cf_vit *v = vit(&vc, 1);
    ck_assert_int_eq(cf_module_save(cf_vit_module(v), path), CF_OK);
    ck_assert_int_eq(cf_safetensors_open(path, &f), CF_OK);
    ck_assert_str_eq(cf_safetensors_metadata(f, "config.positions"), "learned");
    ck_assert_str_eq(cf_safetensors_metadata(f, "config.norm_position"), "pre");
    cf_safetensors_close(f);
    cf_module_free(cf_vit_module(v));
}
END_TEST

SCRATCH_TEST(a_checkpoint_reloads_into_the_model_it_came_from)
{
    cf_transformer_config c = tiny_transformer();
    c.norm = CF_NORM_BATCH;
    c.pos = CF_POS_LEARNED;
    cf_transformer *a = transformer(&c, 1), *b = transformer(&c, 2);
    /* Running statistics and num_batches_tracked move with the weights. */
    ck_assert_ptr_nonnull(cf_transformer_forward(a, tiny_src(), tiny_tgt(), NULL));
    const char *path = scratch_path("t.safetensors");
    ck_assert_int_eq(cf_module_save(cf_transformer_module(a), path), CF_OK);
    ck_assert_int_eq(cf_module_load(cf_transformer_module(b), path, true), CF_OK);
    cf_module_train(cf_transformer_module(a), false);
    cf_module_train(cf_transformer_module(b), false);
    assert_close(cf_transformer_forward(b, tiny_src(), tiny_tgt(), NULL),
                 cf_transformer_forward(a, tiny_src(), tiny_tgt(), NULL), 0, 0);
    transformer_free(a);
    transformer_free(b);
}
END_TEST

/* Saves a model made with `saved`, loads it into one made with `loaded`
 * (strict and not), expecting CF_ERR_FORMAT naming the knob and values. */
static void refuse_transformer(cf_transformer_config saved, cf_transformer_config loaded,
                               const char *knob, const char *was, const char *is)
{
    cf_transformer *a = transformer(&saved, 1), *b = transformer(&loaded, 1);
    const char *path = scratch_path("k.safetensors");
    ck_assert_int_eq(cf_module_save(cf_transformer_module(a), path), CF_OK);
    for (int strict = 0; strict < 2; strict++) {
        ck_assert_int_eq(cf_module_load(cf_transformer_module(b), path, strict), CF_ERR_FORMAT);
        assert_error(CF_ERR_FORMAT, path, knob, was, is, NULL);
    }
    transformer_free(a);
    transformer_free(b);
}

SCRATCH_TEST(a_checkpoint_with_other_knobs_is_refused_naming_the_knob)
{
    cf_transformer_config c = tiny_transformer(), d = c;
    d.norm = CF_NORM_RMS;
    refuse_transformer(d, c, "norm", "\"rms\"", "\"layer\"");
    d = c, d.unscaled = true; /* the same tensors */
    refuse_transformer(c, d, "attention_scale", "\"1/sqrt(d_k)\"", "\"1\"");
    d = c, d.no_residual = true;
    refuse_transformer(d, c, "residual", "\"off\"", "\"on\"");
    d = c, d.pre_norm = true;
    refuse_transformer(c, d, "norm_position", "\"post\"", "\"pre\"");
    d = c, d.pos = CF_POS_NONE;
    refuse_transformer(c, d, "positions", "\"sinusoidal\"", "\"none\"");

    const char *path = scratch_path("s.safetensors");
    cf_seq2seq *s = seq2seq(tiny_s2s, &(s2s_case){"", CF_CELL_GRU, CF_SCORE_GENERAL}, 1);
    cf_seq2seq *l = seq2seq(tiny_s2s, &s2s_cases[2], 1);
    ck_assert_int_eq(cf_module_save(cf_seq2seq_module(s), path), CF_OK);
    ck_assert_int_eq(cf_module_load(cf_seq2seq_module(l), path, false), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "cell", "\"gru\"", "\"lstm\"", NULL);
    cf_module_free(cf_seq2seq_module(s));
    cf_module_free(cf_seq2seq_module(l));

    cf_vit_config vc = tiny_vit, vd = tiny_vit;
    vd.post_norm = true;
    cf_vit *va = vit(&vc, 1), *vb = vit(&vd, 1);
    ck_assert_int_eq(cf_module_save(cf_vit_module(va), path), CF_OK);
    ck_assert_int_eq(cf_module_load(cf_vit_module(vb), path, true), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "norm_position", "\"pre\"", "\"post\"", NULL);
    cf_module_free(cf_vit_module(va));
    cf_module_free(cf_vit_module(vb));
}
END_TEST

/* A cformer checkpoint from before the knobs (no config keys) stands for
 * the defaults; a file from elsewhere (PyTorch: no "format") is not
 * checked. */
SCRATCH_TEST(a_checkpoint_without_knobs_implies_the_defaults)
{
    cf_transformer_config c = tiny_transformer(), u = c;
    u.unscaled = true;
    cf_transformer *plain = transformer(&c, 1), *unscaled = transformer(&u, 1);
    const char *old = scratch_path("old.safetensors"), *torch = scratch_path("torch.safetensors");
    save_params(cf_transformer_module(plain), torch, NULL, NULL, NULL);
    cf_safetensors *f = NULL;
    ck_assert_int_eq(cf_safetensors_open(torch, &f), CF_OK);
    int n = cf_safetensors_count(f);
    const char **names = malloc(sizeof *names * n);
    cf_tensor **ts = malloc(sizeof *ts * n);
    for (int i = 0; i < n; i++) {
        names[i] = cf_safetensors_name(f, i);
        ts[i] = cf_safetensors_get(f, names[i]);
    }
    ck_assert_int_eq(
        cf_safetensors_save(old, n, (const char *const *)names, ts, "{\"format\": \"cformer\"}"),
        CF_OK);
    free(names);
    free(ts);
    cf_safetensors_close(f);
    ck_assert_int_eq(cf_module_load(cf_transformer_module(plain), old, true), CF_OK);
    ck_assert_int_eq(cf_module_load(cf_transformer_module(unscaled), old, true), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "attention_scale", NULL);
    ck_assert_int_eq(cf_module_load(cf_transformer_module(unscaled), torch, true), CF_OK);
    transformer_free(plain);
    transformer_free(unscaled);
}
END_TEST
