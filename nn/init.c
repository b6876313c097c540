/* Parameter initialisation as torch.nn.init does it. */
#include "nn/internal.h"

#include <math.h>
#include <string.h>

/* fan_in and fan_out of a [out, in, k...] tensor. */
static void fans(const cf_tensor *w, double *fan_in, double *fan_out)
{
    double receptive = 1;
    for (int i = 2; i < w->ndim; i++)
        receptive *= (double)w->shape[i];
    if (w->ndim < 2) {
        *fan_in = *fan_out = w->ndim ? (double)w->shape[0] : 1;
        return;
    }
    *fan_in = (double)w->shape[1] * receptive;
    *fan_out = (double)w->shape[0] * receptive;
}

void cf_init_xavier_uniform(cf_tensor *w, float gain, cf_rng *g)
{
    double in, out;
    fans(w, &in, &out);
    float bound = (float)(gain * sqrt(6.0 / (in + out)));
    cf_fill_uniform(g, w, -bound, bound);
}

void cf_init_kaiming_uniform(cf_tensor *w, float a, cf_rng *g)
{
    double in, out;
    fans(w, &in, &out);
    float bound = (float)(sqrt(2.0 / (1.0 + (double)a * a)) * sqrt(3.0 / in));
    cf_fill_uniform(g, w, -bound, bound);
}

void cf_init_kaiming_normal(cf_tensor *w, float a, cf_rng *g)
{
    double in, out;
    fans(w, &in, &out);
    cf_fill_normal(g, w, 0, (float)(sqrt(2.0 / (1.0 + (double)a * a)) / sqrt(in)));
}

typedef struct {
    float std;
    cf_rng *g;
} normal_all;

static bool is_bias(const char *name)
{
    size_t n = strlen(name);
    return n >= 4 && strcmp(name + n - 4, "bias") == 0;
}

static void init_param(const char *name, cf_tensor *t, void *ud)
{
    const normal_all *o = ud;
    if (is_bias(name))
        cf_fill(t, 0);
    else if (t->ndim >= 2)
        cf_fill_normal(o->g, t, 0, o->std);
}

void cf_module_init_normal(cf_module *m, float std, cf_rng *g)
{
    normal_all o = {std, g};
    cf_module_visit(m, init_param, &o);
}
