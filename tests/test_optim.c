/* Optimizers (nn/optim.c) against PyTorch 1.13 (tests/golden/gen_optim.py).
 * Parameters (after each of 20 steps), optimizer state and losses are held
 * to the golden tolerance 1e-5 + 1e-4*|want|. amsgrad and maximize are not
 * supported by cformer and not tested. */
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STEPS 20

/* Row k of a [K, ...] tensor. */
static cf_tensor *row(cf_tensor *t, int64_t k)
{
    return cf_squeeze(cf_slice(t, 0, k, k + 1, 1), 0);
}

/* ---- Optimizers from fixed gradients ---- */

static const char *const NAMES[] = {"w", "b", "u"};

typedef struct {
    const char *name;
    enum { SGD, ADAM, ADAMW } kind;
    float lr, momentum, dampening, weight_decay;
    bool nesterov;
    float beta1, beta2, eps;
    bool scheduled; /* lr from the fixture before each step */
} optim_case;

static cf_optim *make_optim(const optim_case *c, cf_module *m)
{
    switch (c->kind) {
    case SGD:
        return cf_sgd_new(m, &(cf_sgd_opts){.lr = c->lr,
                                            .momentum = c->momentum,
                                            .dampening = c->dampening,
                                            .weight_decay = c->weight_decay,
                                            .nesterov = c->nesterov});
    case ADAM:
        return cf_adam_new(m, &(cf_adam_opts){.lr = c->lr,
                                              .beta1 = c->beta1,
                                              .beta2 = c->beta2,
                                              .eps = c->eps,
                                              .weight_decay = c->weight_decay});
    default:
        return cf_adamw_new(m, &(cf_adamw_opts){.lr = c->lr,
                                                .beta1 = c->beta1,
                                                .beta2 = c->beta2,
                                                .eps = c->eps,
                                                .weight_decay = c->weight_decay});
    }
}

/* Compares the optimizer's state, written by cf_optim_save, with torch's. */
static void expect_state(const cf_optim *o, const optim_case *c, const cf_safetensors *f)
{
    const char *path = scratch_path("state.safetensors");
    char name[128], want[300];
    ck_assert_int_eq(cf_optim_save(o, path), CF_OK);
    cf_safetensors *s;
    ck_assert_int_eq(cf_safetensors_open(path, &s), CF_OK);
    static const char *const states[] = {"momentum_buffer", "exp_avg", "exp_avg_sq"};
    int count = 0;
    for (int i = 0; i < 3; i++) {
        for (int k = c->kind == SGD ? 0 : 1; k < (c->kind == SGD ? (c->momentum ? 1 : 0) : 3);
             k++) {
            snprintf(name, sizeof name, "%s.%s", NAMES[i], states[k]);
            snprintf(want, sizeof want, "%s.%s", c->name, name);
            assert_golden_tensor(cf_safetensors_get(s, name), fixture(f, want), want);
            count++;
        }
        if (c->kind != SGD) {
            snprintf(name, sizeof name, "%s.step", NAMES[i]);
            snprintf(want, sizeof want, "%s.%s.step", c->name, NAMES[i]);
            const char *got = cf_safetensors_metadata(s, name);
            ck_assert_msg(got, "%s: no step count", want);
            ck_assert_int_eq(atoi(got), (int)cf_item(fixture(f, want)));
        }
    }
    ck_assert_int_eq(cf_safetensors_count(s), count);
    cf_safetensors_close(s);
}

/* Runs case c for STEPS steps from the fixture's gradients (u has none at
 * the steps present.u marks false), comparing every parameter after every
 * step, then the final state. */
static void run_case(const optim_case *c)
{
    cf_safetensors *f = open_fixture("optim.safetensors");
    cf_tensor *p[3], *grad[3], *traj[3];
    cf_module *m = fixture_params(f, "init", 3, NAMES, p);
    char name[128];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "grad.%s", NAMES[i]);
        grad[i] = fixture(f, name);
        snprintf(name, sizeof name, "%s.%s", c->name, NAMES[i]);
        traj[i] = fixture(f, name);
    }
    cf_tensor *present = fixture(f, "present.u");
    snprintf(name, sizeof name, "%s.lr", c->name);
    cf_tensor *lr = fixture(f, name);
    cf_optim *o = make_optim(c, m);
    ck_assert_ptr_nonnull(o);
    for (int64_t k = 0; k < STEPS; k++) {
        if (c->scheduled)
            cf_optim_set_lr(o, cf_get(lr, CF_IDX(k)));
        ck_assert_float_eq_tol(cf_optim_lr(o), cf_get(lr, CF_IDX(k)), 1e-9f);
        for (int i = 0; i < 3; i++)
            set_grad(p[i], row(grad[i], k));
        /* cformer has no zero_grad(set_to_none): a missing gradient is
         * grad == NULL, so u's is hidden for the step. */
        cf_tensor *u_grad = p[2]->grad;
        if (!cf_get(present, CF_IDX(k)))
            p[2]->grad = NULL;
        cf_optim_step(o);
        p[2]->grad = u_grad;
        ASSERT_NO_ERROR();
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "%s: %s after step %lld", c->name, NAMES[i],
                     (long long)k + 1);
            assert_golden_tensor(p[i], row(traj[i], k), name);
        }
    }
    ck_assert_int_eq(cf_optim_steps(o), STEPS);
    expect_state(o, c, f);
    cf_optim_free(o);
    cf_module_free(m);
    cf_safetensors_close(f);
}

#define ADAM_DEFAULTS .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f

/* A row a run of tests/golden/gen_optim.py. */
static const optim_case CASES[] = {
    {"sgd.plain", SGD, .lr = 0.1f},
    {"sgd.momentum", SGD, .lr = 0.1f, .momentum = 0.9f},
    {"sgd.dampening", SGD, .lr = 0.1f, .momentum = 0.9f, .dampening = 0.1f},
    {"sgd.nesterov", SGD, .lr = 0.1f, .momentum = 0.9f, .nesterov = true},
    {"sgd.weight_decay", SGD, .lr = 0.1f, .weight_decay = 0.05f},
    {"sgd.momentum_decay", SGD, .lr = 0.05f, .momentum = 0.9f, .dampening = 0.1f,
     .weight_decay = 0.05f},
    {"adam.default", ADAM, .lr = 1e-3f, ADAM_DEFAULTS},
    {"adam.lr", ADAM, .lr = 0.05f, ADAM_DEFAULTS},
    {"adam.weight_decay", ADAM, .lr = 0.05f, .weight_decay = 0.1f, ADAM_DEFAULTS},
    {"adam.betas", ADAM, .lr = 0.05f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f},
    {"adamw.default", ADAMW, .lr = 0.05f, .weight_decay = 0.01f, ADAM_DEFAULTS},
    {"adamw.decay", ADAMW, .lr = 0.05f, .weight_decay = 0.1f, ADAM_DEFAULTS},
    {"adamw.scheduled", ADAMW, .lr = 0.05f, .weight_decay = 0.1f, ADAM_DEFAULTS, .scheduled = true},
};

TEST_WITH(optimizers_match_torch_step_by_step, .loop = COUNT(CASES), .scratch = true)
{
    run_case(&CASES[_i]);
}
END_TEST

/* ---- Optimizer behaviour ---- */

SCRATCH_TEST(adam_skips_a_parameter_without_gradient_and_keeps_its_step_count)
{
    cf_module *m = cf_module_new("Net", NULL, NULL);
    cf_tensor *a = cf_module_param(m, "a", CF_SHAPE(3));
    cf_tensor *c = cf_module_param(m, "c", CF_SHAPE(2));
    cf_fill(a, 1);
    cf_fill(c, 1);
    cf_optim *o = cf_adam_new(m, &(cf_adam_opts){.lr = 0.1f});
    set_grad(a, cf_full(0.5f, CF_SHAPE(3)));
    cf_optim_step(o);
    /* c never had a gradient: untouched, no state. */
    assert_values(c, (float[]){1, 1}, 0, 0);
    set_grad(c, cf_full(-2, CF_SHAPE(2)));
    cf_optim_step(o);
    /* c's first update is a first Adam step: lr * sign(grad). */
    assert_values(c, (float[]){1.1f, 1.1f}, 1e-6f, 0);
    ck_assert_int_eq(cf_optim_steps(o), 2);
    const char *path = scratch_path("state.safetensors");
    ck_assert_int_eq(cf_optim_save(o, path), CF_OK);
    cf_safetensors *s;
    ck_assert_int_eq(cf_safetensors_open(path, &s), CF_OK);
    ck_assert_str_eq(cf_safetensors_metadata(s, "a.step"), "2");
    ck_assert_str_eq(cf_safetensors_metadata(s, "c.step"), "1");
    cf_safetensors_close(s);
    cf_optim_free(o);
    cf_module_free(m);
}
END_TEST

SCRATCH_TEST(sgd_momentum_buffer_starts_at_the_first_gradient)
{
    cf_module *m = cf_module_new("Net", NULL, NULL);
    cf_tensor *a = cf_module_param(m, "a", CF_SHAPE(2));
    cf_optim *o = cf_sgd_new(m, &(cf_sgd_opts){.lr = 1, .momentum = 0.9f, .dampening = 0.5f});
    set_grad(a, cf_from_array((float[]){1, -2}, CF_SHAPE(2)));
    cf_optim_step(o);
    /* No dampening on the first step (torch clones the gradient). */
    assert_values(a, (float[]){-1, 2}, 0, 0);
    cf_optim_step(o);
    /* buf = 0.9 * buf + 0.5 * grad. */
    assert_values(a, (float[]){-1 - 1.4f, 2 + 2.8f}, 1e-6f, 0);
    cf_optim_free(o);
    cf_module_free(m);
}
END_TEST

TEST(optim_zero_grad_zeroes_every_gradient)
{
    cf_module *m = cf_module_new("Net", NULL, NULL);
    cf_tensor *a = cf_module_param(m, "a", CF_SHAPE(2));
    cf_tensor *c = cf_module_param(cf_module_new("Sub", m, "sub"), "c", CF_SHAPE(3));
    set_grad(a, cf_full(2, CF_SHAPE(2)));
    set_grad(c, cf_full(3, CF_SHAPE(3)));
    cf_optim *o = cf_sgd_new(m, &(cf_sgd_opts){.lr = 0.1f});
    cf_optim_zero_grad(o);
    assert_values(a->grad, (float[]){0, 0}, 0, 0);
    assert_values(c->grad, (float[]){0, 0, 0}, 0, 0);
    cf_optim_free(o);
    cf_module_free(m);
}
END_TEST

TEST(optim_lr_and_step_count_are_readable)
{
    cf_module *m = cf_module_new("Net", NULL, NULL);
    cf_module_param(m, "a", CF_SHAPE(2));
    cf_optim *o = cf_adamw_new(m, &(cf_adamw_opts){.lr = 1e-3f, .weight_decay = 0.01f});
    ck_assert_float_eq(cf_optim_lr(o), 1e-3f);
    cf_optim_set_lr(o, 0.25f);
    ck_assert_float_eq(cf_optim_lr(o), 0.25f);
    ck_assert_int_eq(cf_optim_steps(o), 0);
    cf_optim_step(o);
    ck_assert_int_eq(cf_optim_steps(o), 1);
    cf_optim_free(o);
    cf_module_free(m);
}
END_TEST

TEST(optim_null_is_harmless)
{
    cf_optim_step(NULL);
    cf_optim_zero_grad(NULL);
    cf_optim_set_lr(NULL, 1);
    ck_assert_float_eq(cf_optim_lr(NULL), 0);
    ck_assert_int_eq(cf_optim_steps(NULL), 0);
    cf_optim_free(NULL);
    ASSERT_NO_ERROR();
    ck_assert_ptr_null(cf_adam_new(NULL, &(cf_adam_opts){.lr = 1e-3f}));
    assert_error(CF_ERR_ARG, "cf_adam_new", NULL);
}
END_TEST

TEST(optim_rejects_invalid_hyperparameters)
{
    cf_module *m = cf_module_new("Net", NULL, NULL);
    ck_assert_ptr_null(cf_sgd_new(m, &(cf_sgd_opts){.lr = 0.1f, .nesterov = true}));
    assert_error(CF_ERR_ARG, "cf_sgd_new", "Nesterov", NULL);
    ck_assert_ptr_null(cf_sgd_new(
        m, &(cf_sgd_opts){.lr = 0.1f, .momentum = 0.9f, .dampening = 0.1f, .nesterov = true}));
    assert_error(CF_ERR_ARG, "cf_sgd_new", "dampening", NULL);
    ck_assert_ptr_null(cf_sgd_new(m, &(cf_sgd_opts){.lr = -0.1f}));
    assert_error(CF_ERR_ARG, "cf_sgd_new", "-0.1", NULL);
    ck_assert_ptr_null(cf_sgd_new(m, &(cf_sgd_opts){.lr = 0.1f, .momentum = -0.5f}));
    assert_error(CF_ERR_ARG, "cf_sgd_new", "momentum", NULL);
    ck_assert_ptr_null(cf_sgd_new(m, &(cf_sgd_opts){.lr = 0.1f, .weight_decay = -1}));
    assert_error(CF_ERR_ARG, "cf_sgd_new", "weight_decay", NULL);
    ck_assert_ptr_null(cf_adam_new(m, &(cf_adam_opts){.lr = 1e-3f, .beta1 = 1.0f}));
    assert_error(CF_ERR_ARG, "cf_adam_new", "betas", NULL);
    ck_assert_ptr_null(cf_adamw_new(m, &(cf_adamw_opts){.lr = 1e-3f, .beta2 = -0.1f}));
    assert_error(CF_ERR_ARG, "cf_adamw_new", "betas", NULL);
    ck_assert_ptr_null(cf_adam_new(m, &(cf_adam_opts){.lr = 1e-3f, .eps = -1e-8f}));
    assert_error(CF_ERR_ARG, "cf_adam_new", "eps", NULL);
    ck_assert_ptr_null(cf_adam_new(m, &(cf_adam_opts){.lr = NAN}));
    assert_error(CF_ERR_ARG, "cf_adam_new", "lr", NULL);
    ck_assert_ptr_null(cf_adamw_new(m, &(cf_adamw_opts){.lr = 1e-3f, .weight_decay = -0.01f}));
    assert_error(CF_ERR_ARG, "cf_adamw_new", "weight_decay", NULL);
    cf_module_free(m);
}
END_TEST

/* Two parameters, w [4, 3] and b [3], after one update from the same
 * gradients by the optimizer o makes for their module. */
static void one_update(cf_optim *(*make)(cf_module *), float *w_out, float *b_out)
{
    cf_module *m = cf_module_new("Net", NULL, NULL);
    cf_tensor *w = cf_module_param(m, "w", CF_SHAPE(4, 3));
    cf_tensor *b = cf_module_param(m, "b", CF_SHAPE(3));
    cf_rng g;
    cf_rng_init(&g, 5);
    cf_fill_uniform(&g, w, -1, 1);
    cf_fill_uniform(&g, b, -1, 1);
    set_grad(w, cf_uniform(&g, -1, 1, CF_SHAPE(4, 3)));
    set_grad(b, cf_uniform(&g, -1, 1, CF_SHAPE(3)));
    cf_optim *o = make(m);
    ck_assert_ptr_nonnull(o);
    cf_optim_step(o);
    cf_copy_to(w, w_out);
    cf_copy_to(b, b_out);
    cf_optim_free(o);
    cf_module_free(m);
}

static cf_optim *adam_null(cf_module *m) { return cf_adam_new(m, NULL); }
static cf_optim *adam_explicit(cf_module *m)
{
    return cf_adam_new(m,
                       &(cf_adam_opts){.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f});
}
static cf_optim *adamw_grouped(cf_module *m)
{
    return cf_adamw_new(
        m, &(cf_adamw_opts){.lr = 0.1f, .weight_decay = 0.5f, .decays = cf_decay_matrices});
}
static cf_optim *adamw_all(cf_module *m)
{
    return cf_adamw_new(m, &(cf_adamw_opts){.lr = 0.1f, .weight_decay = 0.5f});
}
static cf_optim *adamw_none(cf_module *m) { return cf_adamw_new(m, &(cf_adamw_opts){.lr = 0.1f}); }

TEST(adam_options_left_zero_are_torch_defaults)
{
    float w1[12], b1[3], w2[12], b2[3];
    one_update(adam_null, w1, b1);
    one_update(adam_explicit, w2, b2);
    ck_assert_mem_eq(w1, w2, sizeof w1);
    ck_assert_mem_eq(b1, b2, sizeof b1);
}
END_TEST

TEST(decay_matrices_exempts_biases_and_norm_weights)
{
    float wg[12], bg[3], wa[12], ba[3], wn[12], bn[3];
    one_update(adamw_grouped, wg, bg);
    one_update(adamw_all, wa, ba);
    one_update(adamw_none, wn, bn);
    ck_assert_mem_eq(wg, wa, sizeof wg); /* the matrix decays */
    ck_assert_mem_eq(bg, bn, sizeof bg); /* the vector does not */
    ck_assert(memcmp(ba, bn, sizeof ba) != 0);
}
END_TEST

TEST(sgd_needs_options_with_a_learning_rate)
{
    cf_module *m = cf_module_new("Net", NULL, NULL);
    ck_assert_ptr_null(cf_sgd_new(m, NULL));
    assert_error(CF_ERR_ARG, "cf_sgd_new", "learning rate", NULL);
    ck_assert_ptr_null(cf_sgd_new(m, &(cf_sgd_opts){.momentum = 0.9f}));
    assert_error(CF_ERR_ARG, "cf_sgd_new", "lr", NULL);
    cf_module_free(m);
}
END_TEST

/* Runs three updates of a parameter large enough to be split over threads. */
static void three_steps(int threads, bool adam, float *out, int64_t n)
{
    cf_set_num_threads(threads);
    cf_module *m = cf_module_new("Net", NULL, NULL);
    cf_tensor *a = cf_module_param(m, "a", CF_SHAPE(n));
    cf_rng g;
    cf_rng_init(&g, 7);
    cf_fill_uniform(&g, a, -1, 1);
    cf_optim *o = adam ? cf_adamw_new(m, &(cf_adamw_opts){.lr = 0.01f, .weight_decay = 0.1f})
                       : cf_sgd_new(m, &(cf_sgd_opts){.lr = 0.01f,
                                                      .momentum = 0.9f,
                                                      .dampening = 0.1f,
                                                      .weight_decay = 0.01f});
    for (int k = 0; k < 3; k++) {
        set_grad(a, cf_uniform(&g, -1, 1, CF_SHAPE(n)));
        cf_optim_step(o);
    }
    cf_copy_to(a, out);
    cf_optim_free(o);
    cf_module_free(m);
}

TEST(updates_are_the_same_for_any_thread_count)
{
    int64_t n = 300007;
    float *one = malloc(sizeof(float) * n), *many = malloc(sizeof(float) * n);
    int saved = cf_get_num_threads();
    for (int adam = 0; adam < 2; adam++) {
        three_steps(1, adam, one, n);
        three_steps(4, adam, many, n);
        ck_assert_msg(!memcmp(one, many, sizeof(float) * n), "%s differs with 4 threads",
                      adam ? "AdamW" : "SGD");
    }
    cf_set_num_threads(saved);
    free(one);
    free(many);
}
END_TEST

/* ---- A model trained end to end ---- */

TEST(mlp_trained_with_adam_matches_torch)
{
    cf_safetensors *f = open_fixture("optim.safetensors");
    cf_module *net = cf_module_new("Net", NULL, NULL);
    cf_linear *fc1 = cf_linear_new(net, "fc1", 5, 7, true, NULL);
    cf_linear *fc2 = cf_linear_new(net, "fc2", 7, 3, true, NULL);
    load_params(net, f, "train.init");
    cf_tensor *x = fixture(f, "train.x"), *y = fixture(f, "train.y");
    cf_tensor *want = fixture(f, "train.loss");
    cf_optim *o = cf_adam_new(net, &(cf_adam_opts){.lr = 0.02f});
    for (int64_t k = 0; k < STEPS; k++) {
        cf_tensor *out = cf_linear_forward(fc2, cf_tanh(cf_linear_forward(fc1, x)));
        cf_tensor *loss = cf_mse_loss(out, y, NULL);
        float l = cf_item(loss), w = cf_get(want, CF_IDX(k));
        ck_assert_msg(fabsf(l - w) <= 1e-5f + 1e-4f * fabsf(w),
                      "loss before step %lld: %.9g, want %.9g", (long long)k + 1, l, w);
        cf_optim_zero_grad(o);
        ck_assert_int_eq(cf_backward(loss), CF_OK);
        cf_optim_step(o);
    }
    static const char *const params[] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    char name[64];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "train.final.%s", params[i]);
        assert_golden_tensor(cf_module_find(net, params[i]), fixture(f, name), name);
    }
    cf_optim_free(o);
    cf_module_free(net);
    cf_safetensors_close(f);
}
END_TEST
