/* Learning-rate schedules and gradient clipping (nn/schedule.c) against
 * PyTorch 1.13 (tests/golden/gen_optim.py): learning rates, which both
 * sides compute in double, to 1e-6 relative; clipped gradients to the golden
 * tolerance 1e-5 + 1e-4*|want|. */
#include "tests/util.h"

#include <math.h>

static const char *const NAMES[] = {"w", "b", "u"};

static void expect_schedule(const char *name, int64_t steps, float (*lr)(int64_t))
{
    cf_safetensors *f = open_fixture("optim.safetensors");
    cf_tensor *want = fixture(f, name);
    ck_assert_int_eq(cf_numel(want), steps);
    for (int64_t k = 0; k < steps; k++) {
        float got = lr(k), w = cf_get(want, CF_IDX(k));
        ck_assert_msg(fabsf(got - w) <= 1e-6f * fabsf(w), "%s at step %lld: %.9g, want %.9g", name,
                      (long long)k, got, w);
    }
    cf_safetensors_close(f);
}

static float transformer16(int64_t k) { return cf_lr_transformer(k, 16, 8); }

static float step7(int64_t k) { return cf_lr_step(k, 0.1f, 7, 0.5f); }

static float step3(int64_t k) { return cf_lr_step(k, 0.3f, 3, 0.9f); }

static float cosine(int64_t k) { return cf_lr_cosine(k, 5, 25, 0.1f, 0.001f); }

static void clip_case(const char *c)
{
    cf_safetensors *f = open_fixture("optim.safetensors");
    cf_tensor *p[3];
    cf_module *m = fixture_params(f, "init", 3, NAMES, p);
    char name[128];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "clip.%s.%s", c, NAMES[i]);
        cf_tensor *g = cf_safetensors_get(f, name);
        if (g)
            set_grad(p[i], g);
        else
            cf_error_clear(); /* this parameter has no gradient */
    }
    snprintf(name, sizeof name, "clip.%s.max_norm", c);
    float max_norm = cf_item(fixture(f, name));
    float norm = cf_clip_grad_norm(m, max_norm);
    snprintf(name, sizeof name, "clip.%s.norm", c);
    assert_golden_tensor(cf_full(norm, CF_SHAPE(1)), fixture(f, name), name);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "clip.%s.%s.clipped", c, NAMES[i]);
        cf_tensor *want = cf_safetensors_get(f, name);
        if (want)
            assert_golden_tensor(p[i]->grad, want, name);
        else
            ck_assert_ptr_null(p[i]->grad);
    }
    cf_error_clear();
    cf_module_free(m);
    cf_safetensors_close(f);
}

/* ---- schedule ---- */

TEST(transformer_schedule_matches_lambda_lr)
{
    expect_schedule("sched.transformer", 32, transformer16);
}
END_TEST

TEST(transformer_schedule_treats_step_zero_as_one)
{
    ck_assert_float_eq(cf_lr_transformer(0, 512, 4000), cf_lr_transformer(1, 512, 4000));
    /* The peak, at step = warmup: d^-0.5 * warmup^-0.5. */
    ck_assert_float_eq_tol(cf_lr_transformer(4000, 512, 4000), 1 / sqrtf(512.0f * 4000), 1e-10f);
}
END_TEST

TEST(step_schedule_matches_step_lr)
{
    expect_schedule("sched.step", 32, step7);
    expect_schedule("sched.step_small", 32, step3);
}
END_TEST

TEST(cosine_schedule_matches_lambda_lr) { expect_schedule("sched.cosine", 32, cosine); }
END_TEST

TEST(cosine_schedule_matches_sequential_lr_until_the_end)
{
    cf_safetensors *f = open_fixture("optim.safetensors");
    cf_tensor *want = fixture(f, "sched.cosine_seq");
    for (int64_t k = 0; k < cf_numel(want); k++) {
        float w = cf_get(want, CF_IDX(k));
        ck_assert_msg(fabsf(cosine(k) - w) <= 1e-9f + 1e-6f * w, "step %lld: %.9g, want %.9g",
                      (long long)k, cosine(k), w);
    }
    cf_safetensors_close(f);
}
END_TEST

TEST(cosine_schedule_edges)
{
    ck_assert_float_eq(cf_lr_cosine(0, 10, 100, 1, 0.1f), 0.1f);
    ck_assert_float_eq(cf_lr_cosine(-3, 10, 100, 1, 0.1f), 0.1f);
    ck_assert_float_eq(cf_lr_cosine(9, 10, 100, 1, 0.1f), 1);
    ck_assert_float_eq(cf_lr_cosine(100, 10, 100, 1, 0.1f), 0.1f);
    ck_assert_float_eq(cf_lr_cosine(1000, 10, 100, 1, 0.1f), 0.1f);
    /* No warm-up: cosine from the first step. */
    ck_assert_float_eq(cf_lr_cosine(0, 0, 100, 1, 0), 1);
    ck_assert_float_eq_tol(cf_lr_cosine(50, 0, 100, 1, 0), 0.5f, 1e-7f);
}
END_TEST

/* ---- clip ---- */

TEST(clip_scales_gradients_above_max_norm) { clip_case("above"); }
END_TEST

TEST(clip_scales_to_a_tiny_max_norm) { clip_case("tiny"); }
END_TEST

TEST(clip_skips_parameters_without_gradient) { clip_case("absent"); }
END_TEST

TEST(clip_with_an_infinite_gradient_matches_torch) { clip_case("inf"); }
END_TEST

TEST(clip_with_a_nan_gradient_matches_torch) { clip_case("nan"); }
END_TEST

TEST(clip_leaves_gradients_below_max_norm_untouched)
{
    clip_case("below");
    /* Bit for bit: nothing is scaled. */
    cf_module *m = cf_module_new("Net", NULL, NULL);
    cf_tensor *a = cf_module_param(m, "a", CF_SHAPE(3));
    float g[] = {0.1f, -0.2f, 0.3f};
    set_grad(a, cf_from_array(g, CF_SHAPE(3)));
    float norm = cf_clip_grad_norm(m, 1);
    ck_assert_float_eq_tol(norm, sqrtf(0.14f), 1e-7f);
    float got[3];
    cf_copy_to(a->grad, got);
    ck_assert(!memcmp(got, g, sizeof g));
    cf_module_free(m);
}
END_TEST

TEST(clip_of_no_gradients_returns_zero)
{
    cf_module *m = cf_module_new("Net", NULL, NULL);
    cf_module_param(m, "a", CF_SHAPE(3));
    ck_assert_float_eq(cf_clip_grad_norm(m, 1), 0);
    ck_assert_float_eq(cf_clip_grad_norm(NULL, 1), 0);
    cf_module_free(m);
}
END_TEST
