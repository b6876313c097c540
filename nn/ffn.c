/* The Transformer's feed-forward block and learned positional embeddings. */
#include "nn/internal.h"
#include "autograd/internal.h"

cf_ffn *cf_ffn_new(cf_module *parent, const char *name, int dim, int hidden, float dropout,
                   cf_activation act, cf_rng *g)
{
    cf_ffn *m = nn__new(sizeof *m, "FeedForward", parent, name);
    if (!m)
        return NULL;
    m->act = act;
    m->linear1 = cf_linear_new(&m->base, "linear1", dim, hidden, true, g);
    m->dropout = cf_dropout_new(&m->base, "dropout", dropout, nn__seed(g));
    m->linear2 = cf_linear_new(&m->base, "linear2", hidden, dim, true, g);
    if (!m->linear1 || !m->dropout || !m->linear2) {
        cf_module_free(&m->base);
        return NULL;
    }
    return m;
}

cf_tensor *cf_ffn_forward(cf_ffn *m, cf_tensor *x)
{
    if (!cf__nonnull("FeedForward", m, "module") || !cf__check("FeedForward", 1, &x))
        return NULL;
    if (x->ndim < 1 || x->shape[x->ndim - 1] != m->linear1->in) {
        char b[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE, "FeedForward \"%s\": input of shape %s, expected [..., %d]",
                  m->base.name, cf_shape_str(x, b, sizeof b), m->linear1->in);
        return NULL;
    }
    /* linear1's output is read by the activation alone, and its backward
     * does not read it: relu may overwrite it, and dropout relu's output
     * (relu's backward reads the sign, which survives wherever dropout lets
     * a gradient through). */
    cf_tensor *h = cf_linear_forward(m->linear1, x);
    if (m->act == CF_ACT_GELU)
        h = cf_dropout_forward(m->dropout, cf_gelu(h, false));
    else
        h = ag__dropout_in_place(ag__relu_in_place(h), m->dropout->p, m->dropout->base.training,
                                 &m->dropout->rng);
    return cf_linear_forward(m->linear2, h);
}

cf_pos_embedding *cf_pos_embedding_new(cf_module *parent, const char *name, int max_len, int dim,
                                       cf_rng *g)
{
    if (max_len < 1 || dim < 1) {
        cf__error(CF_ERR_ARG, "PositionalEmbedding \"%s\": sizes %d x %d must be positive",
                  name ? name : "", max_len, dim);
        return NULL;
    }
    cf_pos_embedding *m = nn__new(sizeof *m, "PositionalEmbedding", parent, name);
    if (!m)
        return NULL;
    m->max_len = max_len;
    m->dim = dim;
    m->weight = cf_module_param(&m->base, "weight", CF_SHAPE(max_len, dim));
    if (!m->weight) {
        cf_module_free(&m->base);
        return NULL;
    }
    cf_fill_normal(g, m->weight, 0, 1);
    return m;
}

cf_tensor *cf_pos_embedding_forward(cf_pos_embedding *m, int64_t start, int64_t T)
{
    if (!cf__nonnull("PositionalEmbedding", m, "module"))
        return NULL;
    if (start < 0 || T < 0 || T > m->max_len - start) {
        /* Counted, not added: start + T may not fit in 64 bits. */
        cf__error(CF_ERR_INDEX,
                  "PositionalEmbedding \"%s\": %lld positions from %lld reach beyond %d",
                  m->base.name, (long long)T, (long long)start, m->max_len);
        return NULL;
    }
    return cf_slice(m->weight, 0, start, start + T, 1);
}
