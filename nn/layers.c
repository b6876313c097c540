/* Embedding, LayerNorm and Dropout modules: thin owners of parameters
 * around the ops of the same names. */
#include "nn/internal.h"
#include "autograd/internal.h"

#include <string.h>

cf_embedding_mod *cf_embedding_new(cf_module *parent, const char *name, int num, int dim,
                                   int padding_idx, cf_rng *g)
{
    if (num < 1 || dim < 1 || padding_idx < -1 || padding_idx >= num) {
        cf__error(CF_ERR_ARG, "Embedding \"%s\": invalid sizes %d x %d or padding index %d",
                  name ? name : "", num, dim, padding_idx);
        return NULL;
    }
    cf_embedding_mod *m = nn__new(sizeof *m, "Embedding", parent, name);
    if (!m)
        return NULL;
    m->num = num;
    m->dim = dim;
    m->padding_idx = padding_idx;
    m->weight = cf_module_param(&m->base, "weight", CF_SHAPE(num, dim));
    if (!m->weight) {
        cf_module_free(&m->base);
        return NULL;
    }
    cf_fill_normal(g, m->weight, 0, 1);
    if (padding_idx >= 0)
        memset((float *)m->weight->data + (int64_t)padding_idx * dim, 0, sizeof(float) * dim);
    return m;
}

cf_tensor *cf_embedding_forward(cf_embedding_mod *m, cf_tensor *indices)
{
    if (!cf__nonnull("Embedding", m, "module") || !cf__check("Embedding", 1, &indices))
        return NULL;
    if (indices->dtype != CF_I32) {
        cf__error(CF_ERR_DTYPE, "Embedding \"%s\": indices must be int32, got %s", m->base.name,
                  cf_dtype_name(indices->dtype));
        return NULL;
    }
    return cf_embedding(m->weight, indices, m->padding_idx);
}

cf_layernorm *cf_layernorm_new(cf_module *parent, const char *name, int dim, float eps, bool affine)
{
    if (dim < 1) {
        cf__error(CF_ERR_ARG, "LayerNorm \"%s\": size %d must be positive", name ? name : "", dim);
        return NULL;
    }
    cf_layernorm *m = nn__new(sizeof *m, "LayerNorm", parent, name);
    if (!m)
        return NULL;
    m->dim = dim;
    m->eps = eps;
    if (affine) {
        m->weight = cf_module_param(&m->base, "weight", CF_SHAPE(dim));
        m->bias = cf_module_param(&m->base, "bias", CF_SHAPE(dim));
        if (!m->weight || !m->bias) {
            cf_module_free(&m->base);
            return NULL;
        }
        cf_fill(m->weight, 1);
    }
    return m;
}

cf_tensor *cf_layernorm_forward(cf_layernorm *m, cf_tensor *x)
{
    if (!cf__nonnull("LayerNorm", m, "module") || !cf__check("LayerNorm", 1, &x))
        return NULL;
    if (x->ndim < 1 || x->shape[x->ndim - 1] != m->dim) {
        char b[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE, "LayerNorm \"%s\": input of shape %s, expected [..., %d]",
                  m->base.name, cf_shape_str(x, b, sizeof b), m->dim);
        return NULL;
    }
    return cf_layer_norm(x, 1, m->weight, m->bias, m->eps);
}

cf_dropout_mod *cf_dropout_new(cf_module *parent, const char *name, float p, uint64_t seed)
{
    if (!(p >= 0 && p <= 1)) {
        cf__error(CF_ERR_ARG, "Dropout \"%s\": probability %g outside [0, 1]", name ? name : "", p);
        return NULL;
    }
    cf_dropout_mod *m = nn__new(sizeof *m, "Dropout", parent, name);
    if (!m)
        return NULL;
    m->p = p;
    cf_rng_init(&m->rng, seed);
    m->base.rng = &m->rng;
    return m;
}

cf_tensor *cf_dropout_forward(cf_dropout_mod *m, cf_tensor *x)
{
    if (!cf__nonnull("Dropout", m, "module"))
        return NULL;
    return cf_dropout(x, m->p, m->base.training, &m->rng);
}

cf_tensor *cf_residual_forward(cf_dropout_mod *m, cf_tensor *x, cf_tensor *y)
{
    return m ? ag__residual(x, y, m->p, m->base.training, &m->rng)
             : ag__residual(x, y, 0, false, NULL);
}
