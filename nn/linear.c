/* Linear: y = x W^T + b. */
#include "nn/internal.h"

#include <math.h>

cf_linear *cf_linear_new(cf_module *parent, const char *name, int in, int out, bool bias, cf_rng *g)
{
    if (in < 1 || out < 1) {
        cf__error(CF_ERR_ARG, "Linear \"%s\": sizes %d -> %d must be positive", name ? name : "",
                  in, out);
        return NULL;
    }
    cf_linear *m = nn__new(sizeof *m, "Linear", parent, name);
    if (!m)
        return NULL;
    m->in = in;
    m->out = out;
    m->weight = cf_module_param(&m->base, "weight", CF_SHAPE(out, in));
    m->bias = bias ? cf_module_param(&m->base, "bias", CF_SHAPE(out)) : NULL;
    if (!m->weight || (bias && !m->bias)) {
        cf_module_free(&m->base);
        return NULL;
    }
    /* PyTorch: kaiming_uniform(a = sqrt(5)) for the weight, U(+-1/sqrt(in)) bias. */
    cf_init_kaiming_uniform(m->weight, sqrtf(5.0f), g);
    if (bias)
        cf_fill_uniform(g, m->bias, -1.0f / sqrtf((float)in), 1.0f / sqrtf((float)in));
    return m;
}

cf_tensor *cf_linear_forward(cf_linear *m, cf_tensor *x)
{
    if (!cf__nonnull("Linear", m, "module") || !cf__check("Linear", 1, &x))
        return NULL;
    if (x->ndim < 1 || x->shape[x->ndim - 1] != m->in) {
        char b[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE, "Linear \"%s\": input of shape %s, expected [..., %d]",
                  m->base.name, cf_shape_str(x, b, sizeof b), m->in);
        return NULL;
    }
    return cf_affine(x, m->weight, m->bias);
}
