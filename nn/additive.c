/* Additive (Bahdanau) attention. */
#include "nn/internal.h"

#include <math.h>

cf_additive_attention *cf_additive_attention_new(cf_module *parent, const char *name, int query_dim,
                                                 int key_dim, int attn_dim, cf_rng *g)
{
    cf_additive_attention *m = nn__new(sizeof *m, "AdditiveAttention", parent, name);
    if (!m)
        return NULL;
    m->query_proj = cf_linear_new(&m->base, "query_proj", query_dim, attn_dim, false, g);
    m->key_proj = cf_linear_new(&m->base, "key_proj", key_dim, attn_dim, true, g);
    m->v = cf_linear_new(&m->base, "v", attn_dim, 1, false, g);
    if (!m->query_proj || !m->key_proj || !m->v) {
        cf_module_free(&m->base);
        return NULL;
    }
    return m;
}

cf_tensor *cf_additive_attention_keys(cf_additive_attention *m, cf_tensor *keys)
{
    return m ? cf_linear_forward(m->key_proj, keys) : NULL;
}

cf_tensor *cf_additive_attention_forward(cf_additive_attention *m, cf_tensor *query,
                                         cf_tensor *keys, cf_tensor *proj_keys,
                                         cf_tensor *key_padding_mask, cf_tensor **weights)
{
    cf_tensor *in[3] = {query, keys, proj_keys};
    if (!m || !cf__check("AdditiveAttention", 3, in))
        return NULL;
    cf_tensor *q = cf_unsqueeze(cf_linear_forward(m->query_proj, query), 1); /* [B, 1, A] */
    cf_tensor *e = cf_squeeze(cf_linear_forward(m->v, cf_tanh(cf_add(proj_keys, q))), -1);
    if (key_padding_mask)
        e = cf_masked_fill(e, key_padding_mask, -INFINITY); /* [B, S] */
    cf_tensor *a = cf_softmax(e, -1);
    if (weights)
        *weights = a;
    return cf_squeeze(cf_matmul(cf_unsqueeze(a, 1), keys), 1); /* [B, K] */
}
