/* Gradient clipping and learning-rate schedules. */
#include "nn/internal.h"

#include <math.h>

typedef struct {
    double sumsq;
    float scale;
} clip;

static void add_norm(const char *name, cf_tensor *t, void *ud)
{
    (void)name;
    if (!t->grad)
        return;
    const float *g = t->grad->data;
    double s = 0;
    for (int64_t i = 0, n = cf_numel(t); i < n; i++)
        s += (double)g[i] * g[i];
    ((clip *)ud)->sumsq += s;
}

static void scale_grad(const char *name, cf_tensor *t, void *ud)
{
    (void)name;
    if (!t->grad)
        return;
    float *g = t->grad->data, k = ((clip *)ud)->scale;
    for (int64_t i = 0, n = cf_numel(t); i < n; i++)
        g[i] *= k;
}

float cf_clip_grad_norm(cf_module *m, float max_norm)
{
    if (!(max_norm >= 0)) {
        cf__error(CF_ERR_ARG, "cf_clip_grad_norm: max_norm %g must be >= 0", max_norm);
        return NAN;
    }
    clip c = {0, 1};
    cf_module_visit(m, add_norm, &c);
    float norm = (float)sqrt(c.sumsq);
    /* torch multiplies by min(max_norm / (total_norm + 1e-6), 1): a NaN norm
     * makes every gradient NaN, so the failure shows everywhere at once. */
    float coef = max_norm / (norm + 1e-6f);
    if (!(coef >= 1)) {
        c.scale = coef;
        cf_module_visit(m, scale_grad, &c);
    }
    return norm;
}

float cf_lr_transformer(int64_t step, int d_model, int64_t warmup)
{
    double s = step < 1 ? 1 : (double)step;
    return (float)(pow(d_model, -0.5) * fmin(pow(s, -0.5), s * pow((double)warmup, -1.5)));
}

float cf_lr_cosine(int64_t step, int64_t warmup, int64_t total, float base, float min_lr)
{
    if (step < 0)
        step = 0;
    /* The first update already moves (at base / warmup): a warm-up from 0
     * would waste it. The peak is reached at step warmup - 1. */
    int64_t peak = warmup > 1 ? warmup - 1 : 0;
    if (step < peak)
        return (float)((double)base * (double)(step + 1) / (double)warmup);
    if (step >= total)
        return min_lr;
    double progress = (double)(step - peak) / (double)(total - peak);
    return (float)(min_lr + 0.5 * ((double)base - min_lr) * (1 + cos(M_PI * progress)));
}

float cf_lr_step(int64_t step, float base, int64_t step_size, float gamma)
{
    return (float)((double)base * pow(gamma, (double)(step / (step_size > 0 ? step_size : 1))));
}
