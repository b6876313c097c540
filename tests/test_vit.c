/* cf_vit: timm's names and layout, PyTorch golden logits, attention maps,
 * rollout and gradients (tests/golden/gen_vit.py), checkpoints, dropout
 * modes and bad configurations. */
#include "cformer/zoo.h"
#include "tests/util.h"

#include <math.h>
#include <string.h>

/* The two reference models of gen_vit.py. */
typedef struct {
    const char *name;
    cf_vit_config cfg;
    int batch;
} golden_case;

static const golden_case cases[] = {
    {"gray",
     {.image_size = 16,
      .channels = 1,
      .patch_size = 4,
      .dim = 32,
      .depth = 2,
      .heads = 4,
      .mlp_ratio = 2,
      .classes = 10},
     3},
    {"rgb",
     {.image_size = 12,
      .channels = 3,
      .patch_size = 4,
      .dim = 24,
      .depth = 1,
      .heads = 3,
      .mlp_ratio = 1.5f,
      .classes = 5},
     2},
};

static const cf_vit_config tiny = {.image_size = 8,
                                   .channels = 2,
                                   .patch_size = 4,
                                   .dim = 8,
                                   .depth = 2,
                                   .heads = 2,
                                   .mlp_ratio = 2,
                                   .classes = 3};

static cf_tensor *case_tensor(const cf_safetensors *f, const golden_case *c, const char *what)
{
    char key[96];
    snprintf(key, sizeof key, "%s.%s", c->name, what);
    return fixture(f, key);
}

static void case_golden(const cf_safetensors *f, const golden_case *c, const cf_tensor *t,
                        const char *what)
{
    char key[96];
    snprintf(key, sizeof key, "%s.%s", c->name, what);
    assert_golden(t, f, key);
}

/* A model of case c's config (with the given dropout) holding the
 * reference weights. */
static cf_vit *golden_model(const cf_safetensors *f, const golden_case *c, float dropout)
{
    cf_vit_config cfg = c->cfg;
    cfg.dropout = dropout;
    cf_vit *m = cf_vit_new(&cfg, NULL);
    ck_assert_msg(m != NULL, "cf_vit_new: %s", cf_error_message());
    load_params(cf_vit_module(m), f, c->name);
    return m;
}

/* Case c's logits from the reference model with the given dropout, in
 * training or eval mode. */
static void assert_golden_logits(const golden_case *c, float dropout, bool training)
{
    cf_safetensors *f = open_fixture("vit.safetensors");
    cf_vit *m = golden_model(f, c, dropout);
    cf_module_train(cf_vit_module(m), training);
    case_golden(f, c, cf_vit_forward(m, case_tensor(f, c, "images"), NULL), "logits");
    ASSERT_NO_ERROR();
    cf_module_free(cf_vit_module(m));
    cf_safetensors_close(f);
}

/* ---- Golden cases ---- */

TEST_WITH(golden_logits_match_the_timm_reference, .loop = COUNT(cases))
{
    assert_golden_logits(&cases[_i], 0, true);
}
END_TEST

TEST_WITH(golden_logits_without_recording_match, .loop = COUNT(cases))
{
    /* No gradient and no maps: attention takes its online-softmax path. */
    const golden_case *c = &cases[_i];
    cf_safetensors *f = open_fixture("vit.safetensors");
    cf_vit *m = golden_model(f, c, 0);
    cf_tensor *logits = NULL;
    CF_NO_GRAD { logits = cf_vit_forward(m, case_tensor(f, c, "images"), NULL); }
    case_golden(f, c, logits, "logits");
    ck_assert_ptr_null(logits->op);
    cf_module_free(cf_vit_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST_WITH(golden_attention_maps_match_per_layer, .loop = COUNT(cases))
{
    const golden_case *c = &cases[_i];
    cf_safetensors *f = open_fixture("vit.safetensors");
    cf_vit *m = golden_model(f, c, 0);
    cf_tensor *maps[4] = {0};
    ck_assert_ptr_nonnull(cf_vit_forward(m, case_tensor(f, c, "images"), maps));
    for (int i = 0; i < c->cfg.depth; i++) {
        char what[16];
        snprintf(what, sizeof what, "map%d", i);
        case_golden(f, c, maps[i], what);
    }
    cf_module_free(cf_vit_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST_WITH(golden_rollout_matches_torch, .loop = COUNT(cases))
{
    const golden_case *c = &cases[_i];
    cf_safetensors *f = open_fixture("vit.safetensors");
    cf_vit *m = golden_model(f, c, 0);
    cf_tensor *maps[4] = {0};
    ck_assert_ptr_nonnull(cf_vit_forward(m, case_tensor(f, c, "images"), maps));
    case_golden(f, c, cf_vit_rollout(m, maps), "rollout");
    cf_module_free(cf_vit_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST_WITH(golden_cross_entropy_gradients_match_for_every_parameter, .loop = COUNT(cases))
{
    const golden_case *c = &cases[_i];
    cf_safetensors *f = open_fixture("vit.safetensors");
    cf_vit *m = golden_model(f, c, 0);
    cf_tensor *images = cf_requires_grad(case_tensor(f, c, "images"), true);
    cf_tensor *loss =
        cf_cross_entropy(cf_vit_forward(m, images, NULL), case_tensor(f, c, "labels"), NULL);
    case_golden(f, c, loss, "loss");
    ck_assert_int_eq(cf_backward(loss), CF_OK);
    char grads[64];
    snprintf(grads, sizeof grads, "%s.grad", c->name);
    assert_param_grads(cf_vit_module(m), f, grads);
    case_golden(f, c, images->grad, "grad_images");
    cf_module_free(cf_vit_module(m));
    cf_safetensors_close(f);
}
END_TEST

/* ---- Layout and initialisation ---- */

typedef struct {
    char names[64][64];
    int64_t numel[64];
    int n;
} listing;

static void list_param(const char *name, cf_tensor *p, void *ud)
{
    listing *l = ud;
    ck_assert_int_lt(l->n, 64);
    snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
    l->numel[l->n++] = cf_numel(p);
}

TEST(parameters_have_timm_names_and_shapes)
{
    cf_vit *m = cf_vit_new(&cases[0].cfg, NULL);
    cf_module *mod = cf_vit_module(m);
    ck_assert_ptr_eq(mod, (cf_module *)m);
    static const struct {
        const char *name;
        int ndim;
        int64_t shape[4];
    } want[] = {
        {"cls_token", 3, {1, 1, 32}},
        {"pos_embed", 3, {1, 17, 32}},
        {"patch_embed.proj.weight", 4, {32, 1, 4, 4}},
        {"patch_embed.proj.bias", 1, {32}},
        {"blocks.0.norm1.weight", 1, {32}},
        {"blocks.0.attn.qkv.weight", 2, {96, 32}},
        {"blocks.0.attn.qkv.bias", 1, {96}},
        {"blocks.0.attn.proj.weight", 2, {32, 32}},
        {"blocks.1.norm2.bias", 1, {32}},
        {"blocks.1.mlp.fc1.weight", 2, {64, 32}},
        {"blocks.1.mlp.fc2.weight", 2, {32, 64}},
        {"blocks.1.mlp.fc2.bias", 1, {32}},
        {"norm.weight", 1, {32}},
        {"head.weight", 2, {10, 32}},
        {"head.bias", 1, {10}},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        cf_tensor *p = cf_module_find(mod, want[i].name);
        ck_assert_msg(p != NULL, "no parameter %s", want[i].name);
        ck_assert_int_eq(p->ndim, want[i].ndim);
        for (int d = 0; d < p->ndim; d++)
            ck_assert_int_eq(p->shape[d], want[i].shape[d]);
    }
    /* Exactly the fixture's state_dict: 4 + 12 per block + 4 tensors. */
    ck_assert_int_eq(cf_module_num_tensors(mod), 4 + 12 * 2 + 4);
    cf_safetensors *f = open_fixture("vit.safetensors");
    listing l = {0};
    cf_module_visit(mod, list_param, &l);
    for (int i = 0; i < l.n; i++) {
        char key[96];
        snprintf(key, sizeof key, "gray.%s", l.names[i]);
        ck_assert_int_eq(cf_numel(fixture(f, key)), l.numel[i]);
    }
    cf_safetensors_close(f);
    cf_module_free(mod);
}
END_TEST

static double param_std(cf_module *m, const char *name, double *mean)
{
    cf_tensor *p = cf_module_find(m, name);
    int64_t n = cf_numel(p);
    const float *d = p->data;
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        s += d[i];
        s2 += (double)d[i] * d[i];
    }
    *mean = s / (double)n;
    return sqrt(s2 / (double)n - *mean * *mean);
}

static float param_max_abs(cf_module *m, const char *name)
{
    cf_tensor *p = cf_module_find(m, name);
    float worst = 0;
    for (int64_t i = 0; i < cf_numel(p); i++)
        worst = fmaxf(worst, fabsf(((float *)p->data)[i]));
    return worst;
}

TEST(initialisation_follows_timm)
{
    cf_rng g;
    cf_rng_init(&g, 7);
    cf_vit_config cfg = {.image_size = 32,
                         .channels = 3,
                         .patch_size = 4,
                         .dim = 64,
                         .depth = 1,
                         .heads = 4,
                         .mlp_ratio = 4,
                         .classes = 10};
    cf_vit *m = cf_vit_new(&cfg, &g);
    cf_module *mod = cf_vit_module(m);
    /* N(0, .02^2) for Linear weights, pos_embed and cls_token (thousands of
     * draws: the sample std is within a few percent). */
    const char *normal[] = {"pos_embed",
                            "blocks.0.attn.qkv.weight",
                            "blocks.0.attn.proj.weight",
                            "blocks.0.mlp.fc1.weight",
                            "blocks.0.mlp.fc2.weight",
                            "head.weight"};
    for (size_t i = 0; i < sizeof normal / sizeof normal[0]; i++) {
        double mean, sd = param_std(mod, normal[i], &mean);
        ck_assert_msg(fabs(sd - 0.02) < 0.002 && fabs(mean) < 0.002, "%s: mean %g std %g",
                      normal[i], mean, sd);
    }
    ck_assert_float_gt(param_max_abs(mod, "cls_token"), 0);
    ck_assert_float_lt(param_max_abs(mod, "cls_token"), 0.1f);
    const char *zero[] = {"blocks.0.attn.qkv.bias",
                          "blocks.0.attn.proj.bias",
                          "blocks.0.mlp.fc1.bias",
                          "blocks.0.mlp.fc2.bias",
                          "head.bias",
                          "norm.bias"};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        ck_assert_msg(param_max_abs(mod, zero[i]) == 0, "%s is not zero", zero[i]);
    double mean;
    ck_assert_double_eq(param_std(mod, "blocks.0.norm1.weight", &mean), 0);
    ck_assert_double_eq(mean, 1);
    /* The patch embedding keeps Conv2d's U(+-1/sqrt(fan_in)) (kaiming_uniform
     * with a = sqrt(5)), fan_in = 3 * 4 * 4. */
    float bound = 1 / sqrtf(48);
    ck_assert_float_le(param_max_abs(mod, "patch_embed.proj.weight"), bound);
    ck_assert_float_gt(param_max_abs(mod, "patch_embed.proj.weight"), 0.9f * bound);
    ck_assert_float_le(param_max_abs(mod, "patch_embed.proj.bias"), bound);
    cf_module_free(mod);
}
END_TEST

TEST(same_seed_gives_same_weights)
{
    cf_rng g1, g2;
    cf_rng_init(&g1, 3);
    cf_rng_init(&g2, 3);
    cf_vit *a = cf_vit_new(&tiny, &g1), *b = cf_vit_new(&tiny, &g2);
    cf_tensor *pa = cf_module_find(cf_vit_module(a), "blocks.1.mlp.fc1.weight");
    cf_tensor *pb = cf_module_find(cf_vit_module(b), "blocks.1.mlp.fc1.weight");
    ck_assert_int_eq(memcmp(pa->data, pb->data, sizeof(float) * cf_numel(pa)), 0);
    cf_module_free(cf_vit_module(a));
    cf_module_free(cf_vit_module(b));
}
END_TEST

/* ---- Checkpoints ---- */

SCRATCH_TEST(load_refuses_a_parameter_of_the_wrong_shape_naming_it)
{
    const char *path = scratch_path("vit.safetensors");
    cf_vit *m = cf_vit_new(&tiny, NULL);
    save_params(cf_vit_module(m), path, NULL, "pos_embed", cf_zeros(CF_SHAPE(1, 6, 8)));
    ck_assert_int_eq(cf_module_load(cf_vit_module(m), path, true), CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "pos_embed", "[1, 6, 8]", "[1, 5, 8]", NULL);
    cf_module_free(cf_vit_module(m));
}
END_TEST

SCRATCH_TEST(strict_load_refuses_a_missing_parameter_naming_it)
{
    const char *path = scratch_path("vit.safetensors");
    cf_vit *m = cf_vit_new(&tiny, NULL);
    save_params(cf_vit_module(m), path, "blocks.1.attn.qkv.bias", NULL, NULL);
    ck_assert_int_eq(cf_module_load(cf_vit_module(m), path, true), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "blocks.1.attn.qkv.bias", NULL);
    cf_module_free(cf_vit_module(m));
}
END_TEST

SCRATCH_TEST(save_then_load_reproduces_the_logits)
{
    const char *path = scratch_path("vit.safetensors");
    cf_rng g;
    cf_rng_init(&g, 1);
    cf_vit *a = cf_vit_new(&tiny, &g), *b = cf_vit_new(&tiny, &g);
    cf_tensor *x = cf_normal(&g, 0, 1, CF_SHAPE(2, 2, 8, 8));
    ck_assert_int_eq(cf_module_save(cf_vit_module(a), path), CF_OK);
    ck_assert_int_eq(cf_module_load(cf_vit_module(b), path, true), CF_OK);
    float ya[6], yb[6];
    cf_copy_to(cf_vit_forward(a, x, NULL), ya);
    cf_copy_to(cf_vit_forward(b, x, NULL), yb);
    ASSERT_NO_ERROR();
    ck_assert_int_eq(memcmp(ya, yb, sizeof ya), 0);
    cf_module_free(cf_vit_module(a));
    cf_module_free(cf_vit_module(b));
}
END_TEST

/* ---- Dropout ---- */

TEST(eval_mode_makes_dropout_a_no_op) { assert_golden_logits(&cases[0], 0.5f, false); }
END_TEST

TEST(training_mode_applies_dropout)
{
    const golden_case *c = &cases[0];
    cf_safetensors *f = open_fixture("vit.safetensors");
    cf_vit *m = golden_model(f, c, 0.5f);
    cf_tensor *images = case_tensor(f, c, "images");
    float y1[30], y2[30];
    cf_copy_to(cf_vit_forward(m, images, NULL), y1);
    cf_copy_to(cf_vit_forward(m, images, NULL), y2);
    ASSERT_NO_ERROR();
    cf_tensor *want = case_tensor(f, c, "logits");
    /* Each call draws new masks, and neither is the mask-free result. */
    ck_assert_int_ne(memcmp(y1, y2, sizeof y1), 0);
    ck_assert_float_gt(fabsf(y1[0] - ((float *)want->data)[0]), 1e-3f);
    cf_module_free(cf_vit_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST(dropout_modules_carry_no_parameters)
{
    cf_vit_config cfg = tiny;
    cfg.dropout = 0.1f;
    cf_vit *a = cf_vit_new(&tiny, NULL), *b = cf_vit_new(&cfg, NULL);
    ck_assert_int_eq(cf_module_num_tensors(cf_vit_module(a)),
                     cf_module_num_tensors(cf_vit_module(b)));
    ck_assert_ptr_null(cf_module_find(cf_vit_module(b), "pos_drop"));
    cf_module_free(cf_vit_module(a));
    cf_module_free(cf_vit_module(b));
}
END_TEST

/* ---- Batches ---- */

TEST_WITH(each_image_gets_the_same_logits_and_maps_alone_as_in_a_batch, .loop = 2)
{
    const golden_case *c = &cases[_i];
    cf_safetensors *f = open_fixture("vit.safetensors");
    cf_vit *m = golden_model(f, c, 0);
    cf_tensor *images = case_tensor(f, c, "images");
    cf_tensor *maps[2] = {0}, *one_maps[2] = {0};
    cf_tensor *logits = cf_vit_forward(m, images, maps);
    for (int64_t b = 0; b < c->batch; b++) {
        cf_tensor *one = cf_vit_forward(m, cf_slice(images, 0, b, b + 1, 1), one_maps);
        ck_assert_ptr_nonnull(one);
        assert_close(one, cf_slice(logits, 0, b, b + 1, 1), 1e-5f, 0);
        for (int l = 0; l < c->cfg.depth; l++)
            assert_close(one_maps[l], cf_slice(maps[l], 0, b, b + 1, 1), 1e-5f, 0);
    }
    cf_module_free(cf_vit_module(m));
    cf_safetensors_close(f);
}
END_TEST

/* ---- Threads ---- */

TEST(logits_are_identical_for_any_thread_count)
{
    cf_rng g;
    cf_rng_init(&g, 5);
    cf_vit *m = cf_vit_new(&cases[0].cfg, &g);
    cf_tensor *x = cf_normal(&g, 0, 1, CF_SHAPE(5, 1, 16, 16));
    int prev = cf_get_num_threads();
    float y[2][50];
    for (int t = 0; t < 2; t++) {
        cf_set_num_threads(t ? 3 : 1);
        cf_copy_to(cf_vit_forward(m, x, NULL), y[t]);
    }
    cf_set_num_threads(prev);
    ASSERT_NO_ERROR();
    ck_assert_int_eq(memcmp(y[0], y[1], sizeof y[0]), 0);
    cf_module_free(cf_vit_module(m));
}
END_TEST

/* ---- Bad input ---- */

static void refuse_config(cf_vit_config cfg, const char *fragment)
{
    ck_assert_ptr_null(cf_vit_new(&cfg, NULL));
    assert_error(CF_ERR_ARG, "cf_vit_new", fragment, NULL);
}

TEST(image_size_not_a_multiple_of_patch_size_is_refused)
{
    cf_vit_config c = tiny;
    c.image_size = 10;
    refuse_config(c, "image_size 10 is not a multiple of patch_size 4");
}
END_TEST

TEST(dim_not_a_multiple_of_heads_is_refused)
{
    cf_vit_config c = tiny;
    c.heads = 3;
    refuse_config(c, "dim 8 is not a multiple of heads 3");
}
END_TEST

TEST(non_positive_sizes_are_refused)
{
    cf_vit_config c = tiny;
    c.depth = 0;
    refuse_config(c, "depth 0");
    c = tiny;
    c.classes = -1;
    refuse_config(c, "classes -1");
}
END_TEST

TEST(mlp_ratio_without_hidden_units_is_refused)
{
    cf_vit_config c = tiny;
    c.mlp_ratio = 0.1f;
    refuse_config(c, "mlp_ratio");
}
END_TEST

TEST(dropout_outside_unit_interval_is_refused)
{
    cf_vit_config c = tiny;
    c.dropout = 1.5f;
    refuse_config(c, "dropout 1.5");
}
END_TEST

TEST(null_config_is_refused)
{
    ck_assert_ptr_null(cf_vit_new(NULL, NULL));
    assert_error(CF_ERR_ARG, "cf_vit_new", "config", NULL);
}
END_TEST

TEST(forward_refuses_images_of_the_wrong_shape)
{
    cf_vit *m = cf_vit_new(&tiny, NULL);
    ck_assert_ptr_null(cf_vit_forward(m, cf_zeros(CF_SHAPE(2, 3, 8, 8)), NULL));
    assert_error(CF_ERR_SHAPE, "cf_vit_forward", "[2, 3, 8, 8]", "[B, 2, 8, 8]", NULL);
    ck_assert_ptr_null(cf_vit_forward(m, cf_zeros(CF_SHAPE(2, 8, 8)), NULL));
    assert_error(CF_ERR_SHAPE, "cf_vit_forward", "[2, 8, 8]", NULL);
    ck_assert_ptr_null(cf_vit_forward(m, NULL, NULL));
    assert_error(CF_ERR_ARG, "cf_vit_forward", NULL);
    cf_module_free(cf_vit_module(m));
}
END_TEST

TEST(rollout_refuses_maps_of_the_wrong_shape)
{
    cf_vit *m = cf_vit_new(&tiny, NULL);
    cf_tensor *maps[2] = {cf_zeros(CF_SHAPE(1, 2, 5, 5)), cf_zeros(CF_SHAPE(1, 2, 4, 5))};
    ck_assert_ptr_null(cf_vit_rollout(m, maps));
    assert_error(CF_ERR_SHAPE, "cf_vit_rollout", "map 1", "[1, 2, 4, 5]", "[1, 2, 5, 5]", NULL);
    maps[1] = NULL;
    ck_assert_ptr_null(cf_vit_rollout(m, maps));
    assert_error(CF_ERR_SHAPE, "map 1", NULL);
    cf_module_free(cf_vit_module(m));
}
END_TEST
