/* Optimizers: SGD, Adam, AdamW, following torch.optim's single-tensor
 * implementations step for step (PyTorch 1.13), so that runs match. */
#include "nn/internal.h"
#include "nn/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The shortest decimal that rounds to x, as a double: the value the caller
 * wrote. torch computes 1 - beta2, the bias corrections and 1 - lr * decay
 * in double from Python floats; computed from the float 0.999f instead,
 * 1 - beta2 would be off by 1.3e-5 relative, and exp_avg_sq with it. */
static double decimal(float x)
{
    char buf[32];
    for (int digits = 1; digits < 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)x);
        if (strtof(buf, NULL) == x)
            return strtod(buf, NULL);
    }
    return x;
}

typedef struct {
    cf_optim *o;
    int i;
    cf_decay_fn decays;
} collect;

bool cf_decay_matrices(const char *name, const cf_tensor *param)
{
    (void)name;
    return param && param->ndim >= 2;
}

static void count_param(const char *name, cf_tensor *t, void *ud)
{
    (void)name, (void)t;
    ((collect *)ud)->i++;
}

static void add_param(const char *name, cf_tensor *t, void *ud)
{
    collect *c = ud;
    c->o->params[c->i] = t;
    c->o->decays[c->i] = !c->decays || c->decays(name, t);
    c->o->names[c->i] = cf__strdup(name);
    c->i++;
}

static cf_optim *optim_new(const char *what, cf_optim_kind kind, cf_module *m, float lr,
                           cf_decay_fn decays)
{
    if (!m) {
        cf__error(CF_ERR_ARG, "%s: module is NULL", what);
        return NULL;
    }
    collect c = {NULL, 0, decays};
    cf_module_visit(m, count_param, &c);
    cf_optim *o = cf_calloc(1, sizeof *o);
    if (!o)
        goto nomem;
    o->kind = kind;
    cf_optim_set_lr(o, lr);
    o->n = c.i;
    o->params = cf_calloc(o->n + 1, sizeof *o->params);
    o->names = cf_calloc(o->n + 1, sizeof *o->names);
    o->m1 = cf_calloc(o->n + 1, sizeof *o->m1);
    o->m2 = cf_calloc(o->n + 1, sizeof *o->m2);
    o->steps = cf_calloc(o->n + 1, sizeof *o->steps);
    o->decays = cf_calloc(o->n + 1, sizeof *o->decays);
    if (!o->params || !o->names || !o->m1 || !o->m2 || !o->steps || !o->decays)
        goto nomem;
    c.o = o;
    c.i = 0;
    cf_module_visit(m, add_param, &c);
    for (int i = 0; i < o->n; i++)
        if (!o->names[i])
            goto nomem;
    return o;
nomem:
    cf_optim_free(o);
    cf__error(CF_ERR_NOMEM, "%s: out of memory", what);
    return NULL;
}

cf_optim *cf_sgd_new(cf_module *m, const cf_sgd_opts *opts)
{
    if (!opts) {
        cf__error(CF_ERR_ARG, "cf_sgd_new: options are NULL (the learning rate is required)");
        return NULL;
    }
    if (!cf_check_reserved("cf_sgd_new", "cf_sgd_opts", opts->reserved, CF_RESERVED_WORDS))
        return NULL;
    float lr = opts->lr, momentum = opts->momentum, dampening = opts->dampening;
    float weight_decay = opts->weight_decay;
    if (!(lr > 0 && momentum >= 0 && dampening >= 0 && weight_decay >= 0)) {
        cf__error(CF_ERR_ARG,
                  "cf_sgd_new: invalid lr %g (required, > 0), momentum %g, dampening %g or "
                  "weight_decay %g",
                  lr, momentum, dampening, weight_decay);
        return NULL;
    }
    if (opts->nesterov && (momentum <= 0 || dampening != 0)) {
        cf__error(CF_ERR_ARG, "cf_sgd_new: Nesterov momentum requires a momentum and zero "
                              "dampening");
        return NULL;
    }
    cf_optim *o = optim_new("cf_sgd_new", CF_OPTIM_SGD, m, lr, opts->decays);
    if (o) {
        o->momentum = momentum;
        o->dampening = dampening;
        o->dampening_d = decimal(dampening);
        o->weight_decay = weight_decay;
        o->nesterov = opts->nesterov;
    }
    return o;
}

static float or_default(float x, float def) { return x != 0 ? x : def; }

static cf_optim *adam_new(const char *what, cf_optim_kind kind, cf_module *m,
                          const cf_adam_opts *opts)
{
    static const cf_adam_opts none;
    const cf_adam_opts *p = opts ? opts : &none;
    if (!cf_check_reserved(what, "cf_adam_opts", p->reserved, CF_RESERVED_WORDS))
        return NULL;
    float lr = or_default(p->lr, 1e-3f), beta1 = or_default(p->beta1, 0.9f);
    float beta2 = or_default(p->beta2, 0.999f), eps = or_default(p->eps, 1e-8f);
    float weight_decay = p->weight_decay;
    if (!(lr > 0 && beta1 > 0 && beta1 < 1 && beta2 > 0 && beta2 < 1 && eps > 0 &&
          weight_decay >= 0)) {
        cf__error(CF_ERR_ARG, "%s: invalid lr %g, betas (%g, %g), eps %g or weight_decay %g", what,
                  lr, beta1, beta2, eps, weight_decay);
        return NULL;
    }
    cf_optim *o = optim_new(what, kind, m, lr, p->decays);
    if (o) {
        o->beta1 = beta1;
        o->beta2 = beta2;
        o->beta1_d = decimal(beta1);
        o->beta2_d = decimal(beta2);
        o->eps = eps;
        o->weight_decay = weight_decay;
        o->weight_decay_d = decimal(weight_decay);
    }
    return o;
}

cf_optim *cf_adam_new(cf_module *m, const cf_adam_opts *opts)
{
    return adam_new("cf_adam_new", CF_OPTIM_ADAM, m, opts);
}

cf_optim *cf_adamw_new(cf_module *m, const cf_adamw_opts *opts)
{
    return adam_new("cf_adamw_new", CF_OPTIM_ADAMW, m, opts);
}

/* The state tensor *slot for parameter p, zeroed on first use. */
static float *state(cf_tensor **slot, const cf_tensor *p)
{
    if (!*slot)
        *slot = cf_tensor_new(CF_F32, p->ndim, p->shape);
    return *slot ? (*slot)->data : NULL;
}

static void sgd_update(cf_optim *o, int i)
{
    cf_tensor *p = o->params[i];
    float *w = p->data;
    const float *g = p->grad->data;
    int64_t n = cf_numel(p);
    float wd = o->decays[i] ? o->weight_decay : 0, mom = o->momentum, lr = o->lr;
    float keep = (float)(1 - o->dampening_d);
    bool first = o->m1[i] == NULL;
    float *buf = mom != 0 ? state(&o->m1[i], p) : NULL;
    if (mom != 0 && !buf)
        return;
#pragma omp parallel for num_threads(cf__threads_for(n)) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        float d = wd != 0 ? g[j] + wd * w[j] : g[j];
        if (buf) {
            buf[j] = first ? d : buf[j] * mom + keep * d;
            d = o->nesterov ? d + mom * buf[j] : buf[j];
        }
        w[j] = w[j] + -lr * d;
    }
}

static void adam_update(cf_optim *o, int i)
{
    cf_tensor *p = o->params[i];
    float *w = p->data;
    const float *g = p->grad->data;
    float *m = state(&o->m1[i], p), *v = state(&o->m2[i], p);
    if (!m || !v)
        return;
    int64_t n = cf_numel(p), t = ++o->steps[i];
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    bool decays = o->decays[i];
    float wd = o->kind == CF_OPTIM_ADAM && decays ? o->weight_decay : 0;
    /* Python computes these in double, then the kernels use them as float. */
    float decay =
        o->kind == CF_OPTIM_ADAMW && decays ? (float)(1 - o->lr_d * o->weight_decay_d) : 1;
    float keep1 = (float)(1 - o->beta1_d), keep2 = (float)(1 - o->beta2_d);
    double bc1 = 1 - pow(o->beta1_d, (double)t), bc2 = 1 - pow(o->beta2_d, (double)t);
    float step_size = (float)(o->lr_d / bc1), bc2_sqrt = (float)sqrt(bc2);
#pragma omp parallel for num_threads(cf__threads_for(n)) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        float x = w[j] * decay;
        float d = wd != 0 ? g[j] + wd * x : g[j];
        m[j] = m[j] * b1 + keep1 * d;
        v[j] = v[j] * b2 + keep2 * d * d;
        float denom = sqrtf(v[j]) / bc2_sqrt + eps;
        w[j] = x + -step_size * m[j] / denom;
    }
}

void cf_optim_step(cf_optim *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n; i++) {
        if (!o->params[i]->grad)
            continue;
        if (o->kind == CF_OPTIM_SGD)
            sgd_update(o, i);
        else
            adam_update(o, i);
    }
    o->step++;
}

void cf_optim_zero_grad(cf_optim *o)
{
    for (int i = 0; o && i < o->n; i++)
        cf_zero_grad(o->params[i]);
}

void cf_optim_set_lr(cf_optim *o, float lr)
{
    if (o) {
        o->lr = lr;
        o->lr_d = decimal(lr);
    }
}

float cf_optim_lr(const cf_optim *o) { return o ? o->lr : 0; }

int64_t cf_optim_steps(const cf_optim *o) { return o ? o->step : 0; }

void cf_optim_free(cf_optim *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n; i++) {
        if (o->names)
            cf_free(o->names[i]);
        if (o->m1)
            cf_tensor_free(o->m1[i]);
        if (o->m2)
            cf_tensor_free(o->m2[i]);
    }
    cf_free(o->params);
    cf_free(o->names);
    cf_free(o->m1);
    cf_free(o->m2);
    cf_free(o->steps);
    cf_free(o->decays);
    cf_free(o);
}
