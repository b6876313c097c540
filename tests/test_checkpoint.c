/* Checkpoints: module and optimizer save/load, resuming training exactly,
 * atomic writes, bad files, and interop with PyTorch 1.13
 * (tests/golden/gen_checkpoint.py). */
#include "tests/util.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- A small model: fc1 -> relu -> dropout -> fc2 ---- */

typedef struct {
    cf_module *root;
    cf_linear *fc1, *fc2;
    cf_dropout_mod *drop;
} net;

static net net_new(uint64_t seed, int hidden, bool bias2)
{
    cf_rng g;
    cf_rng_init(&g, seed);
    net n;
    n.root = cf_module_new("Net", NULL, NULL);
    n.fc1 = cf_linear_new(n.root, "fc1", 6, hidden, true, &g);
    n.drop = cf_dropout_new(n.root, "drop", 0.3f, seed + 100);
    n.fc2 = cf_linear_new(n.root, "fc2", hidden, 4, bias2, &g);
    ck_assert_msg(n.fc1 && n.drop && n.fc2, "%s", cf_error_message());
    return n;
}

static cf_tensor *net_forward(net *n, cf_tensor *x)
{
    cf_tensor *h = cf_dropout_forward(n->drop, cf_relu(cf_linear_forward(n->fc1, x)));
    return cf_linear_forward(n->fc2, h);
}

/* A copy of every parameter's values, in visit order. */
typedef struct {
    float *v;
    int64_t n;
} snapshot;

static void snap_one(const char *name, cf_tensor *t, void *ud)
{
    (void)name;
    snapshot *s = ud;
    s->v = realloc(s->v, sizeof(float) * (s->n + cf_numel(t)));
    cf_copy_to(t, s->v + s->n);
    s->n += cf_numel(t);
}

static snapshot snap(cf_module *m)
{
    snapshot s = {NULL, 0};
    cf_module_visit(m, snap_one, &s);
    return s;
}

/* Fails unless m's parameters are bit for bit those of s; frees s. */
static void expect_same(cf_module *m, snapshot s, const char *what)
{
    snapshot now = snap(m);
    ck_assert_msg(now.n == s.n && !memcmp(now.v, s.v, sizeof(float) * s.n),
                  "%s: parameters changed", what);
    free(now.v);
    free(s.v);
}

/* ---- Module round trips ---- */

SCRATCH_TEST(module_round_trip_is_bit_exact)
{
    net a = net_new(1, 16, true), b = net_new(2, 16, true);
    cf_tensor *x = cf_uniform(NULL, -1, 1, CF_SHAPE(3, 6));
    net_forward(&a, x); /* advances a's dropout generator */
    ck_assert_int_eq(cf_module_save(a.root, scratch_path("a.safetensors")), CF_OK);
    ck_assert_int_eq(cf_module_load(b.root, scratch_path("a.safetensors"), true), CF_OK);
    expect_same(b.root, snap(a.root), "loaded model");
    ck_assert_int_eq(b.drop->rng.seed, a.drop->rng.seed);
    ck_assert_int_eq(b.drop->rng.offset, a.drop->rng.offset);
    ck_assert(a.drop->rng.offset > 0);
    cf_module_free(a.root);
    cf_module_free(b.root);
}
END_TEST

SCRATCH_TEST(module_save_names_parameters_as_pytorch_does)
{
    net a = net_new(1, 16, true);
    cf_module *block = cf_module_new("Block", a.root, "layers");
    cf_layernorm_new(cf_module_new("Layer", block, "0"), "norm", 16, 1e-5f, true);
    ck_assert_int_eq(cf_module_save(a.root, scratch_path("a.safetensors")), CF_OK);
    cf_safetensors *f;
    ck_assert_int_eq(cf_safetensors_open(scratch_path("a.safetensors"), &f), CF_OK);
    static const char *const want[] = {"fc1.weight",           "fc1.bias",
                                       "fc2.weight",           "fc2.bias",
                                       "layers.0.norm.weight", "layers.0.norm.bias"};
    ck_assert_int_eq(cf_safetensors_count(f), 6);
    for (int i = 0; i < 6; i++) {
        cf_tensor *t = cf_safetensors_get(f, want[i]);
        ck_assert_msg(t != NULL, "%s: %s", want[i], cf_error_message());
        ck_assert(cf_same_shape(t, cf_module_find(a.root, want[i])));
    }
    ck_assert_str_eq(cf_safetensors_metadata(f, "format"), "cformer");
    ck_assert_str_eq(cf_safetensors_metadata(f, "drop.rng"), "101 0");
    cf_safetensors_close(f);
    cf_module_free(a.root);
}
END_TEST

SCRATCH_TEST(module_load_restores_attention_and_gru_generators)
{
    cf_module *m[2];
    cf_mha *mha[2];
    cf_gru *gru[2];
    for (int i = 0; i < 2; i++) {
        cf_rng g;
        cf_rng_init(&g, 10 + i);
        m[i] = cf_module_new("Net", NULL, NULL);
        mha[i] = cf_mha_new(m[i], "attn", 8, 2, 0.5f, true, &g);
        gru[i] = cf_gru_new(m[i], "rnn", 8, 8, 2, false, 0.5f, true, &g);
        ck_assert_msg(mha[i] && gru[i], "%s", cf_error_message());
    }
    cf_tensor *x = cf_uniform(NULL, -1, 1, CF_SHAPE(2, 3, 8));
    ck_assert_ptr_nonnull(cf_mha_forward(mha[0], x, x, x, NULL));
    ck_assert_ptr_nonnull(cf_gru_forward(gru[0], x, NULL, NULL));
    ck_assert(mha[0]->rng.offset > 0 && gru[0]->rng.offset > 0);
    ck_assert_int_eq(cf_module_save(m[0], scratch_path("a.safetensors")), CF_OK);
    ck_assert_int_eq(cf_module_load(m[1], scratch_path("a.safetensors"), true), CF_OK);
    ck_assert(!memcmp(&mha[1]->rng, &mha[0]->rng, sizeof(cf_rng)));
    ck_assert(!memcmp(&gru[1]->rng, &gru[0]->rng, sizeof(cf_rng)));
    cf_module_free(m[0]);
    cf_module_free(m[1]);
}
END_TEST

SCRATCH_TEST(module_names_with_quotes_survive_the_metadata)
{
    cf_module *m[2];
    cf_dropout_mod *d[2];
    for (int i = 0; i < 2; i++) {
        m[i] = cf_module_new("Net", NULL, NULL);
        d[i] = cf_dropout_new(m[i], "say \"hi\"\\\n", 0.5f, 1 + i);
    }
    cf_dropout_forward(d[0], cf_ones(CF_SHAPE(4)));
    ck_assert_int_eq(cf_module_save(m[0], scratch_path("a.safetensors")), CF_OK);
    ck_assert_int_eq(cf_module_load(m[1], scratch_path("a.safetensors"), true), CF_OK);
    ck_assert(!memcmp(&d[1]->rng, &d[0]->rng, sizeof(cf_rng)));
    cf_module_free(m[0]);
    cf_module_free(m[1]);
}
END_TEST

SCRATCH_TEST(non_strict_load_ignores_extra_tensors)
{
    /* The file has layers.0.norm.*, which b lacks. */
    net a = net_new(1, 16, true), b = net_new(2, 16, true);
    cf_layernorm_new(a.root, "extra", 4, 1e-5f, true);
    ck_assert_int_eq(cf_module_save(a.root, scratch_path("a.safetensors")), CF_OK);
    ck_assert_int_eq(cf_module_load(b.root, scratch_path("a.safetensors"), false), CF_OK);
    ASSERT_NO_ERROR();
    for (const char *const *p = (const char *const[]){"fc1.weight", "fc2.bias", NULL}; *p; p++) {
        float *x = cf_module_find(a.root, *p)->data, *y = cf_module_find(b.root, *p)->data;
        ck_assert(!memcmp(x, y, sizeof(float) * cf_numel(cf_module_find(a.root, *p))));
    }
    cf_module_free(a.root);
    cf_module_free(b.root);
}
END_TEST

SCRATCH_TEST(load_needs_no_arena_and_keeps_the_callers)
{
    net a = net_new(1, 16, true);
    ck_assert_int_eq(cf_module_save(a.root, scratch_path("a.safetensors")), CF_OK);
    cf_arena *mine = cf_arena_current();
    cf_arena_use(NULL);
    ck_assert_int_eq(cf_module_load(a.root, scratch_path("a.safetensors"), true), CF_OK);
    ck_assert_ptr_null(cf_arena_current());
    cf_arena_use(mine);
    cf_module_free(a.root);
}
END_TEST

SCRATCH_TEST(module_save_and_load_reject_null)
{
    ck_assert_int_eq(cf_module_save(NULL, scratch_path("a.safetensors")), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_module_save", NULL);
    ck_assert_int_eq(cf_module_load(NULL, scratch_path("a.safetensors"), true), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_module_load", NULL);
    ck_assert_int_eq(scratch_count(""), 0);
}
END_TEST

/* ---- Atomic writes ---- */

SCRATCH_TEST(save_leaves_no_temporary_file)
{
    net a = net_new(1, 16, true);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(cf_module_save(a.root, scratch_path("a.safetensors")), CF_OK);
    ck_assert_int_eq(scratch_count(""), 1);
    cf_module_free(a.root);
}
END_TEST

SCRATCH_TEST(save_into_a_missing_directory_fails_and_leaves_nothing)
{
    net a = net_new(1, 16, true);
    ck_assert_int_eq(cf_module_save(a.root, scratch_path("nowhere/a.safetensors")), CF_ERR_IO);
    assert_error(CF_ERR_IO, "nowhere/a.safetensors", NULL);
    ck_assert_int_eq(scratch_count(""), 0);
    cf_module_free(a.root);
}
END_TEST

SCRATCH_TEST(failed_save_keeps_the_existing_checkpoint)
{
    net a = net_new(1, 16, true);
    const char *path = scratch_path("a.safetensors");
    ck_assert_int_eq(cf_module_save(a.root, path), CF_OK);
    size_t before_size;
    unsigned char *before = read_file(path, &before_size);
    /* A model too big for the file size limit: the write fails midway. */
    cf_module *big = cf_module_new("Net", NULL, NULL);
    cf_module_param(big, "w", CF_SHAPE(1 << 16));
    struct rlimit old, small;
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    cf_status st = cf_module_save(big, path);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    ck_assert_int_eq(st, CF_ERR_IO);
    assert_error(CF_ERR_IO, path, NULL);
    size_t after_size;
    unsigned char *after = read_file(path, &after_size);
    ck_assert(after_size == before_size && !memcmp(before, after, before_size));
    ck_assert_int_eq(scratch_count(""), 1);
    free(before);
    free(after);
    cf_module_free(big);
    cf_module_free(a.root);
}
END_TEST

/* ---- Bad files: an error naming the file (and the tensor), the model
 * unchanged ---- */

/* Loads path into a fresh model, expecting status and the fragments. */
static void expect_bad(const char *path, bool strict, cf_status status, const char *tensor)
{
    net b = net_new(2, 16, true);
    cf_tensor *x = cf_uniform(NULL, -1, 1, CF_SHAPE(3, 6));
    net_forward(&b, x);
    cf_rng rng = b.drop->rng;
    snapshot s = snap(b.root);
    ck_assert_int_eq(cf_module_load(b.root, path, strict), status);
    assert_error(status, path, tensor, NULL);
    expect_same(b.root, s, path);
    ck_assert(!memcmp(&rng, &b.drop->rng, sizeof rng));
    cf_module_free(b.root);
}

/* Saves the model under root to file in the scratch directory and frees
 * it; returns the path. */
static const char *saved(cf_module *root, const char *file)
{
    const char *path = scratch_path(file);
    ck_assert_int_eq(cf_module_save(root, path), CF_OK);
    cf_module_free(root);
    return path;
}

/* Saves a good checkpoint of the standard model; returns its path. */
static const char *good(void) { return saved(net_new(1, 16, true).root, "good.safetensors"); }

SCRATCH_TEST(load_of_a_missing_file_fails)
{
    expect_bad(scratch_path("none.safetensors"), true, CF_ERR_IO, NULL);
}
END_TEST

SCRATCH_TEST(load_of_a_truncated_file_fails)
{
    const char *path = good();
    size_t size;
    free(read_file(path, &size));
    ck_assert_int_eq(truncate(path, size - 100), 0);
    expect_bad(path, true, CF_ERR_FORMAT, "tensor");
    ck_assert_int_eq(truncate(path, 5), 0);
    expect_bad(path, true, CF_ERR_FORMAT, NULL);
}
END_TEST

SCRATCH_TEST(load_of_a_corrupt_header_fails)
{
    const char *path = good();
    size_t size;
    unsigned char *b = read_file(path, &size);
    b[9] = '!'; /* the first name's opening quote */
    write_file(path, b, size);
    free(b);
    expect_bad(path, true, CF_ERR_FORMAT, NULL);
}
END_TEST

SCRATCH_TEST(load_of_a_header_longer_than_the_file_fails)
{
    unsigned char b[40] = {0x00, 0x10}; /* 4096 */
    memcpy(b + 8, "{\"__metadata__\":{}}             ", 32);
    write_file(scratch_path("long.safetensors"), b, sizeof b);
    expect_bad(scratch_path("long.safetensors"), true, CF_ERR_FORMAT, NULL);
}
END_TEST

SCRATCH_TEST(strict_load_of_a_file_without_a_parameter_fails)
{
    const char *path = saved(net_new(1, 16, false).root, "a.safetensors"); /* no fc2.bias */
    expect_bad(path, true, CF_ERR_FORMAT, "fc2.bias");
}
END_TEST

SCRATCH_TEST(non_strict_load_keeps_parameters_the_file_lacks_and_reports_both_lists)
{
    net a = net_new(1, 16, false); /* no fc2.bias */
    cf_module_param(a.root, "temperature", CF_SHAPE(1));
    const char *path = saved(a.root, "a.safetensors");
    net b = net_new(2, 16, true);
    cf_tensor *bias = cf_module_find(b.root, "fc2.bias");
    float before = cf_get(bias, CF_IDX(0));
    cf_load_report r;
    ck_assert_int_eq(cf_module_load_report(b.root, path, false, &r), CF_OK);
    ck_assert_int_eq(r.nmissing, 1);
    ck_assert_str_eq(r.missing[0], "fc2.bias");
    ck_assert_int_eq(r.nunexpected, 1);
    ck_assert_str_eq(r.unexpected[0], "temperature");
    ck_assert_float_eq(cf_get(bias, CF_IDX(0)), before);
    cf_load_report_free(&r);
    ck_assert_int_eq(r.nmissing + r.nunexpected, 0);
    ck_assert_int_eq(cf_module_load(b.root, path, false), CF_OK);
    cf_module_free(b.root);
}
END_TEST

SCRATCH_TEST(strict_load_with_a_report_lists_every_mismatch_then_fails)
{
    net a = net_new(1, 16, false);
    cf_module_param(a.root, "t1", CF_SHAPE(1));
    cf_module_param(a.root, "t2", CF_SHAPE(1));
    const char *path = saved(a.root, "a.safetensors");
    net b = net_new(2, 16, true);
    cf_load_report r;
    ck_assert_int_eq(cf_module_load_report(b.root, path, true, &r), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, path, "fc2.bias", NULL);
    ck_assert_int_eq(r.nmissing, 1);
    ck_assert_int_eq(r.nunexpected, 2);
    cf_load_report_free(&r);
    cf_load_report_free(NULL);
    cf_module_free(b.root);
}
END_TEST

SCRATCH_TEST(load_of_a_wrong_shape_fails)
{
    expect_bad(saved(net_new(1, 8, true).root, "a.safetensors"), false, CF_ERR_SHAPE, "fc1.weight");
}
END_TEST

SCRATCH_TEST(load_of_a_wrong_dtype_fails)
{
    /* fc2.bias, the last parameter, as int32: the others would load. */
    net a = net_new(1, 16, true);
    save_params(a.root, scratch_path("a.safetensors"), NULL, "fc2.bias",
                cf_from_ints((int32_t[]){1, 2, 3, 4}, CF_SHAPE(4)));
    expect_bad(scratch_path("a.safetensors"), true, CF_ERR_DTYPE, "fc2.bias");
    cf_module_free(a.root);
}
END_TEST

SCRATCH_TEST(strict_load_rejects_an_extra_tensor)
{
    net a = net_new(1, 16, true);
    cf_module_param(a.root, "temperature", CF_SHAPE(1));
    expect_bad(saved(a.root, "a.safetensors"), true, CF_ERR_FORMAT, "temperature");
}
END_TEST

SCRATCH_TEST(load_of_a_bad_generator_state_fails)
{
    net a = net_new(1, 16, true);
    const char *names[] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    cf_tensor *ts[] = {a.fc1->weight, a.fc1->bias, a.fc2->weight, a.fc2->bias};
    ck_assert_int_eq(cf_safetensors_save(scratch_path("a.safetensors"), 4, names, ts,
                                         "{\"drop.rng\": \"12 x\"}"),
                     CF_OK);
    expect_bad(scratch_path("a.safetensors"), true, CF_ERR_FORMAT, "drop.rng");
    cf_module_free(a.root);
}
END_TEST

/* ---- Optimizer checkpoints ---- */

static cf_tensor *batch_x(void)
{
    cf_rng g;
    cf_rng_init(&g, 77);
    return cf_uniform(&g, -2, 2, CF_SHAPE(8, 6));
}

static cf_tensor *batch_y(void)
{
    return cf_from_ints((int32_t[]){0, 1, 2, 3, 3, 2, 1, 0}, CF_SHAPE(8));
}

/* One training step; returns the loss before it. The lr follows a
 * schedule of the optimizer's step count, which a checkpoint restores. */
static float train_step(net *n, cf_optim *o, cf_tensor *x, cf_tensor *y)
{
    cf_optim_set_lr(o, cf_lr_cosine(cf_optim_steps(o), 3, 12, 0.02f, 0.002f));
    cf_tensor *loss = cf_cross_entropy(net_forward(n, x), y, NULL);
    float l = cf_item(loss);
    cf_optim_zero_grad(o);
    ck_assert_int_eq(cf_backward(loss), CF_OK);
    cf_clip_grad_norm(n->root, 1.0f);
    cf_optim_step(o);
    return l;
}

static cf_optim *make_optim(cf_module *m, int kind)
{
    return kind == 0   ? cf_adam_new(m, &(cf_adam_opts){.lr = 0.02f, .weight_decay = 0.01f})
           : kind == 1 ? cf_adamw_new(
                             m, &(cf_adamw_opts){.lr = 0.02f, .beta2 = 0.98f, .weight_decay = 0.1f})
                       : cf_sgd_new(m, &(cf_sgd_opts){.lr = 0.02f,
                                                      .momentum = 0.9f,
                                                      .weight_decay = 0.01f,
                                                      .nesterov = true});
}

/* Trains N steps without a break, and again with a save after K steps and
 * a load into a model and optimizer built afresh (from another seed: the
 * load must restore everything); the losses and final parameters must be
 * identical bit for bit. */
static void expect_resume(int kind)
{
    enum { N = 12, K = 5 };
    cf_tensor *x = batch_x(), *y = batch_y();
    float straight[N], resumed[N];
    net a = net_new(1, 16, true);
    cf_optim *o = make_optim(a.root, kind);
    for (int k = 0; k < N; k++)
        straight[k] = train_step(&a, o, x, y);
    cf_optim_free(o);

    net b = net_new(1, 16, true);
    o = make_optim(b.root, kind);
    for (int k = 0; k < K; k++)
        resumed[k] = train_step(&b, o, x, y);
    ck_assert_int_eq(cf_module_save(b.root, scratch_path("model.safetensors")), CF_OK);
    ck_assert_int_eq(cf_optim_save(o, scratch_path("optim.safetensors")), CF_OK);
    cf_optim_free(o);
    cf_module_free(b.root);

    net c = net_new(99, 16, true);
    o = make_optim(c.root, kind);
    ck_assert_int_eq(cf_module_load(c.root, scratch_path("model.safetensors"), true), CF_OK);
    ck_assert_int_eq(cf_optim_load(o, scratch_path("optim.safetensors")), CF_OK);
    ck_assert_int_eq(cf_optim_steps(o), K);
    for (int k = K; k < N; k++)
        resumed[k] = train_step(&c, o, x, y);
    for (int k = 0; k < N; k++)
        ck_assert_msg(!memcmp(&straight[k], &resumed[k], sizeof(float)),
                      "loss %d: %.9g resumed, %.9g straight", k, resumed[k], straight[k]);
    ck_assert(straight[N - 1] < straight[0]);
    expect_same(c.root, snap(a.root), "resumed model");
    cf_optim_free(o);
    cf_module_free(a.root);
    cf_module_free(c.root);
}

SCRATCH_TEST(adam_training_resumes_bit_for_bit) { expect_resume(0); }
END_TEST

SCRATCH_TEST(adamw_training_resumes_bit_for_bit) { expect_resume(1); }
END_TEST

SCRATCH_TEST(sgd_training_resumes_bit_for_bit) { expect_resume(2); }
END_TEST

SCRATCH_TEST(optim_save_writes_state_under_parameter_names)
{
    net a = net_new(1, 16, true);
    cf_optim *o = make_optim(a.root, 0);
    train_step(&a, o, batch_x(), batch_y());
    ck_assert_int_eq(cf_optim_save(o, scratch_path("o.safetensors")), CF_OK);
    cf_safetensors *f;
    ck_assert_int_eq(cf_safetensors_open(scratch_path("o.safetensors"), &f), CF_OK);
    ck_assert_int_eq(cf_safetensors_count(f), 8);
    ck_assert_ptr_nonnull(cf_safetensors_get(f, "fc1.weight.exp_avg"));
    ck_assert_ptr_nonnull(cf_safetensors_get(f, "fc2.bias.exp_avg_sq"));
    ck_assert_str_eq(cf_safetensors_metadata(f, "fc1.bias.step"), "1");
    ck_assert_str_eq(cf_safetensors_metadata(f, "optimizer"), "adam");
    ck_assert_str_eq(cf_safetensors_metadata(f, "step"), "1");
    ck_assert_float_eq(strtof(cf_safetensors_metadata(f, "lr"), NULL), cf_optim_lr(o));
    cf_safetensors_close(f);
    cf_optim_free(o);
    cf_module_free(a.root);
}
END_TEST

/* Saves an optimizer of kind (trained 2 steps) for model n to path. */
static void save_optim(net *n, int kind, const char *path)
{
    cf_optim *o = make_optim(n->root, kind);
    for (int k = 0; k < 2; k++)
        train_step(n, o, batch_x(), batch_y());
    ck_assert_int_eq(cf_optim_save(o, path), CF_OK);
    cf_optim_free(o);
}

/* Loads path into a trained Adam optimizer of a fresh standard model,
 * expecting status and fragment; the optimizer must be unchanged. */
static void expect_bad_optim(const char *path, cf_status status, const char *fragment)
{
    net b = net_new(2, 16, true);
    save_optim(&b, 0, scratch_path("before.safetensors"));
    cf_optim *o = make_optim(b.root, 0);
    ck_assert_int_eq(cf_optim_load(o, scratch_path("before.safetensors")), CF_OK);
    ck_assert_int_eq(cf_optim_load(o, path), status);
    assert_error(status, path, fragment, NULL);
    ck_assert_int_eq(cf_optim_save(o, scratch_path("after.safetensors")), CF_OK);
    size_t n1, n2;
    unsigned char *b1 = read_file(scratch_path("before.safetensors"), &n1),
                  *b2 = read_file(scratch_path("after.safetensors"), &n2);
    ck_assert_msg(n1 == n2 && !memcmp(b1, b2, n1), "the optimizer changed");
    free(b1);
    free(b2);
    cf_optim_free(o);
    cf_module_free(b.root);
}

SCRATCH_TEST(optim_load_of_another_kind_fails)
{
    net a = net_new(1, 16, true);
    save_optim(&a, 2, scratch_path("sgd.safetensors"));
    expect_bad_optim(scratch_path("sgd.safetensors"), CF_ERR_FORMAT, "sgd");
    save_optim(&a, 1, scratch_path("adamw.safetensors"));
    expect_bad_optim(scratch_path("adamw.safetensors"), CF_ERR_FORMAT, "adamw");
    cf_module_free(a.root);
}
END_TEST

SCRATCH_TEST(optim_load_for_other_parameters_fails)
{
    /* Same kind, other names. */
    cf_module *m = cf_module_new("Other", NULL, NULL);
    cf_linear *l = cf_linear_new(m, "proj", 6, 4, true, NULL);
    cf_optim *o = cf_adam_new(m, &(cf_adam_opts){.lr = 0.1f});
    cf_backward(cf_sum_all(cf_linear_forward(l, batch_x())));
    cf_optim_step(o);
    ck_assert_int_eq(cf_optim_save(o, scratch_path("other.safetensors")), CF_OK);
    expect_bad_optim(scratch_path("other.safetensors"), CF_ERR_FORMAT, "proj.");
    cf_optim_free(o);
    cf_module_free(m);
}
END_TEST

SCRATCH_TEST(optim_load_of_other_shapes_fails)
{
    net a = net_new(1, 8, true);
    save_optim(&a, 0, scratch_path("narrow.safetensors"));
    expect_bad_optim(scratch_path("narrow.safetensors"), CF_ERR_SHAPE, "fc1.weight.exp_avg");
    cf_module_free(a.root);
}
END_TEST

SCRATCH_TEST(optim_load_of_a_module_checkpoint_fails)
{
    expect_bad_optim(good(), CF_ERR_FORMAT, "not an optimizer checkpoint");
}
END_TEST

SCRATCH_TEST(optim_load_of_incomplete_adam_state_fails)
{
    net a = net_new(1, 16, true);
    const char *names[] = {"fc1.weight.exp_avg"};
    cf_tensor *ts[] = {a.fc1->weight};
    ck_assert_int_eq(cf_safetensors_save(scratch_path("half.safetensors"), 1, names, ts,
                                         "{\"optimizer\": \"adam\", \"lr\": \"0.1\", \"step\": "
                                         "\"3\", \"fc1.weight.step\": \"3\"}"),
                     CF_OK);
    expect_bad_optim(scratch_path("half.safetensors"), CF_ERR_FORMAT, "fc1.weight");
    ck_assert_int_eq(cf_safetensors_save(scratch_path("step.safetensors"), 0, names, ts,
                                         "{\"optimizer\": \"adam\", \"lr\": \"0.1\", \"step\": "
                                         "\"-3\"}"),
                     CF_OK);
    expect_bad_optim(scratch_path("step.safetensors"), CF_ERR_FORMAT, "step");
    cf_module_free(a.root);
}
END_TEST

SCRATCH_TEST(optim_save_and_load_reject_null)
{
    ck_assert_int_eq(cf_optim_save(NULL, scratch_path("o.safetensors")), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_optim_save", NULL);
    ck_assert_int_eq(cf_optim_load(NULL, scratch_path("o.safetensors")), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_optim_load", NULL);
}
END_TEST

/* ---- PyTorch interop ---- */

typedef struct {
    cf_module *root;
    cf_linear *fc1, *fc2;
    cf_layernorm *norm;
} torch_net;

/* gen_checkpoint.py's Net: fc2(gelu(norm(fc1(x)))). */
static torch_net torch_net_new(uint64_t seed)
{
    cf_rng g;
    cf_rng_init(&g, seed);
    torch_net n;
    n.root = cf_module_new("Net", NULL, NULL);
    n.fc1 = cf_linear_new(n.root, "fc1", 4, 6, true, &g);
    n.norm = cf_layernorm_new(n.root, "norm", 6, 1e-5f, true);
    n.fc2 = cf_linear_new(n.root, "fc2", 6, 3, true, &g);
    return n;
}

static cf_tensor *torch_net_forward(torch_net *n, cf_tensor *x)
{
    cf_tensor *h = cf_gelu(cf_layernorm_forward(n->norm, cf_linear_forward(n->fc1, x)), false);
    return cf_linear_forward(n->fc2, h);
}

SCRATCH_TEST(pytorch_state_dict_loads_and_runs_as_in_torch)
{
    torch_net n = torch_net_new(3);
    ck_assert_int_eq(cf_module_load(n.root, fixture_path("torch_net.safetensors"), true), CF_OK);
    cf_safetensors *f = open_fixture("checkpoint.safetensors");
    assert_golden(torch_net_forward(&n, fixture(f, "x")), f, "y");
    cf_safetensors_close(f);
    cf_module_free(n.root);
}
END_TEST

SCRATCH_TEST(pytorch_state_dict_is_refused_by_another_model)
{
    net n = net_new(1, 16, true);
    snapshot s = snap(n.root);
    ck_assert_int_eq(cf_module_load(n.root, fixture_path("torch_net.safetensors"), false),
                     CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "torch_net.safetensors", "fc1.weight", "[6, 4]", "[16, 6]", NULL);
    expect_same(n.root, s, "model");
    cf_module_free(n.root);
}
END_TEST

/* Checks the bytes of a checkpoint of n against the safetensors layout: an
 * 8-byte little-endian header size N, N bytes of JSON padded with spaces to
 * a multiple of 8, then the data; every parameter's entry gives dtype F32,
 * its shape and a byte range holding its little-endian values. */
static void expect_safetensors_layout(const char *path, cf_module *m)
{
    size_t size;
    unsigned char *b = read_file(path, &size);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)b[i] << (8 * i);
    ck_assert(n % 8 == 0 && 8 + n <= (uint64_t)size);
    char *header = strndup((const char *)b + 8, n);
    ck_assert_int_eq(header[0], '{');
    char *end = strrchr(header, '}');
    for (char *p = end + 1; *p; p++)
        ck_assert_int_eq(*p, ' ');
    ck_assert_ptr_nonnull(strstr(header, "\"__metadata__\":{"));
    ck_assert_ptr_nonnull(strstr(header, "\"format\":\"cformer\""));
    const unsigned char *data = b + 8 + n;
    uint64_t covered = 0;
    static const char *const names[] = {"fc1.weight", "fc1.bias",   "norm.weight",
                                        "norm.bias",  "fc2.weight", "fc2.bias"};
    for (int i = 0; i < 6; i++) {
        cf_tensor *t = cf_module_find(m, names[i]);
        char entry[256], shape[64];
        cf_shape_str(t, shape, sizeof shape);
        /* "[6, 4]" -> "[6,4]" */
        char *w = shape;
        for (char *r = shape; *r; r++)
            if (*r != ' ')
                *w++ = *r;
        *w = 0;
        snprintf(entry, sizeof entry, "\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[",
                 names[i], shape);
        char *at = strstr(header, entry);
        ck_assert_msg(at != NULL, "%s: no entry %s in %s", path, entry, header);
        unsigned long long lo, hi;
        ck_assert_int_eq(sscanf(at + strlen(entry), "%llu,%llu]", &lo, &hi), 2);
        ck_assert_int_eq(hi - lo, 4 * cf_numel(t));
        ck_assert(8 + n + hi <= (uint64_t)size);
        for (int64_t j = 0; j < cf_numel(t); j++) {
            float v = ((float *)t->data)[j];
            uint32_t u;
            memcpy(&u, &v, 4);
            for (int k = 0; k < 4; k++)
                ck_assert_int_eq(data[lo + 4 * j + k], (u >> (8 * k)) & 0xff);
        }
        covered += hi - lo;
    }
    ck_assert_int_eq(8 + n + covered, size);
    free(header);
    free(b);
}

SCRATCH_TEST(saved_checkpoint_follows_the_safetensors_layout)
{
    torch_net n = torch_net_new(3);
    ck_assert_int_eq(cf_module_save(n.root, scratch_path("net.safetensors")), CF_OK);
    expect_safetensors_layout(scratch_path("net.safetensors"), n.root);
    cf_module_free(n.root);
}
END_TEST

SCRATCH_TEST(pytorch_loads_a_cformer_checkpoint)
{
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        printf("pytorch_loads_a_cformer_checkpoint: skipped, /usr/bin/python3 cannot import "
               "torch\n");
        return;
    }
    torch_net n = torch_net_new(4);
    cf_fill_uniform(NULL, n.norm->weight, 0.5f, 1.5f);
    cf_fill_uniform(NULL, n.norm->bias, -0.5f, 0.5f);
    cf_tensor *x = cf_uniform(NULL, -2, 2, CF_SHAPE(7, 4));
    cf_tensor *y = torch_net_forward(&n, x);
    ck_assert_int_eq(cf_module_save(n.root, scratch_path("net.safetensors")), CF_OK);
    const char *names[] = {"x", "y"};
    cf_tensor *ts[] = {x, y};
    ck_assert_int_eq(cf_safetensors_save(scratch_path("out.safetensors"), 2, names, ts, NULL),
                     CF_OK);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s --check %s %s",
             fixture_path("gen_checkpoint.py"), scratch_path("net.safetensors"),
             scratch_path("out.safetensors"));
    ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
    cf_module_free(n.root);
}
END_TEST
