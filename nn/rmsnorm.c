/* RMSNorm (Zhang & Sennrich 2019): x / sqrt(mean(x^2) + eps) * weight over
 * the last dim, as torch.nn.RMSNorm (PyTorch 2.4) defines it. */
#include "nn/internal.h"

#include <math.h>

cf_rmsnorm *cf_rmsnorm_new(cf_module *parent, const char *name, int dim, float eps, bool affine)
{
    if (dim < 1 || !(eps >= 0 && eps < INFINITY)) {
        cf__error(CF_ERR_ARG,
                  "RMSNorm \"%s\": size %d must be positive and eps %g finite and not negative",
                  name ? name : "", dim, eps);
        return NULL;
    }
    cf_rmsnorm *m = nn__new(sizeof *m, "RMSNorm", parent, name);
    if (!m)
        return NULL;
    m->dim = dim;
    m->eps = eps;
    if (affine) {
        if (!(m->weight = cf_module_param(&m->base, "weight", CF_SHAPE(dim)))) {
            cf_module_free(&m->base);
            return NULL;
        }
        cf_fill(m->weight, 1);
    }
    return m;
}

cf_tensor *cf_rmsnorm_forward(cf_rmsnorm *m, cf_tensor *x)
{
    if (!m || !cf__check("RMSNorm", 1, &x))
        return NULL;
    if (x->ndim < 1 || x->shape[x->ndim - 1] != m->dim) {
        char b[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE, "RMSNorm \"%s\": input of shape %s, expected [..., %d]",
                  m->base.name, cf_shape_str(x, b, sizeof b), m->dim);
        return NULL;
    }
    cf_tensor *ms = cf_mean(cf_square(x), CF_DIMS(-1), true); /* [..., 1] */
    cf_tensor *y = cf_mul(x, cf_rsqrt(cf_add_scalar(ms, m->eps)));
    return m->weight ? cf_mul(y, m->weight) : y;
}
