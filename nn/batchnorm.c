/* BatchNorm1d with the semantics, running statistics and state_dict of
 * torch.nn.BatchNorm1d, composed of differentiable ops.
 *
 * N = batch, C = channels (num_features), L = length (3-D input only). */
#include "nn/internal.h"

#include <math.h>
#include <stdlib.h>

cf_batchnorm1d *cf_batchnorm1d_new(cf_module *parent, const char *name, int num_features, float eps,
                                   float momentum, bool affine, bool track_running_stats)
{
    if (num_features < 1 || !(eps >= 0 && eps < INFINITY) || !(momentum <= 1)) {
        cf__error(CF_ERR_ARG,
                  "BatchNorm1d \"%s\": num_features %d must be positive, eps %g finite and not "
                  "negative, momentum %g at most 1",
                  name ? name : "", num_features, eps, momentum);
        return NULL;
    }
    cf_batchnorm1d *m = nn__new(sizeof *m, "BatchNorm1d", parent, name);
    if (!m)
        return NULL;
    m->num_features = num_features;
    m->eps = eps;
    m->momentum = momentum;
    cf_module *b = &m->base;
    bool ok = true;
    /* torch's state_dict order: weight, bias, then the buffers. */
    if (affine) {
        m->weight = cf_module_param(b, "weight", CF_SHAPE(num_features));
        m->bias = cf_module_param(b, "bias", CF_SHAPE(num_features));
        ok = m->weight && m->bias;
        if (ok)
            cf_fill(m->weight, 1);
    }
    if (ok && track_running_stats) {
        m->running_mean = cf_module_buffer(b, "running_mean", CF_F32, CF_SHAPE(num_features));
        m->running_var = cf_module_buffer(b, "running_var", CF_F32, CF_SHAPE(num_features));
        m->num_batches_tracked = cf_module_buffer(b, "num_batches_tracked", CF_I32, 0, NULL);
        ok = m->running_mean && m->running_var && m->num_batches_tracked;
        if (ok)
            cf_fill(m->running_var, 1);
    }
    if (!ok) {
        cf_module_free(b);
        return NULL;
    }
    return m;
}

/* running = (1 - f) running + f batch, the variance unbiased (n values per
 * channel), f the momentum or 1 / batches for the cumulative average. */
static bool update_running(cf_batchnorm1d *m, cf_tensor *mean, cf_tensor *var, int64_t n)
{
    int C = m->num_features;
    float *buf = cf__arena_alloc("BatchNorm1d", sizeof(float) * 2 * (size_t)C);
    if (!buf)
        return false;
    cf_copy_to(mean, buf);
    cf_copy_to(var, buf + C);
    int32_t *batches = m->num_batches_tracked->data;
    if (*batches < INT32_MAX)
        ++*batches;
    double f = m->momentum < 0 ? 1.0 / *batches : m->momentum;
    float *rm = m->running_mean->data, *rv = m->running_var->data;
    for (int c = 0; c < C; c++) {
        rm[c] = (float)((1 - f) * rm[c] + f * buf[c]);
        rv[c] = (float)((1 - f) * rv[c] + f * buf[C + c] * ((double)n / (double)(n - 1)));
    }
    return true;
}

cf_tensor *cf_batchnorm1d_forward(cf_batchnorm1d *m, cf_tensor *x)
{
    if (!m || !cf__check("BatchNorm1d", 1, &x))
        return NULL;
    int C = m->num_features;
    char b[CF_SHAPE_BUF];
    if ((x->ndim != 2 && x->ndim != 3) || x->shape[1] != C) {
        cf__error(CF_ERR_SHAPE,
                  "BatchNorm1d \"%s\": input of shape %s, expected [N, %d] or "
                  "[N, %d, L]",
                  m->base.name, cf_shape_str(x, b, sizeof b), C, C);
        return NULL;
    }
    bool three = x->ndim == 3;
    /* Per-channel tensors broadcast as [C] against [N, C], [C, 1] against
     * [N, C, L]. */
    int64_t shape[2] = {C, 1};
    int cdims = three ? 2 : 1;
    int64_t n = x->shape[0] * (three ? x->shape[2] : 1);
    cf_tensor *mean, *var;
    if (m->base.training || !m->running_mean) {
        if (m->base.training && n < 2) {
            cf__error(CF_ERR_SHAPE,
                      "BatchNorm1d \"%s\": input of shape %s has %lld value per channel; training "
                      "needs more than 1",
                      m->base.name, cf_shape_str(x, b, sizeof b), (long long)n);
            return NULL;
        }
        const int dims[2] = {0, 2};
        mean = cf_mean(x, cdims, dims, true); /* [1, C] or [1, C, 1] */
        var = cf_var(x, cdims, dims, false, true);
        if (m->base.training && m->running_mean && mean && var && !update_running(m, mean, var, n))
            return NULL;
    } else {
        mean = cf_view(m->running_mean, cdims, shape);
        var = cf_view(m->running_var, cdims, shape);
    }
    cf_tensor *y = cf_mul(cf_sub(x, mean), cf_rsqrt(cf_add_scalar(var, m->eps)));
    if (m->weight)
        y = cf_add(cf_mul(y, cf_view(m->weight, cdims, shape)), cf_view(m->bias, cdims, shape));
    return y;
}
