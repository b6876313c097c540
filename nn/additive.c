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
    return cf__nonnull("AdditiveAttention", m, "module") ? cf_linear_forward(m->key_proj, keys)
                                                         : NULL;
}

cf_tensor *cf_additive_attention_forward(cf_additive_attention *m, cf_tensor *query,
                                         cf_tensor *keys, cf_tensor *proj_keys,
                                         cf_tensor *key_padding_mask, cf_tensor **weights)
{
    cf_tensor *in[3] = {query, keys, proj_keys};
    if (!cf__nonnull("AdditiveAttention", m, "module") || !cf__check("AdditiveAttention", 3, in))
        return NULL;
    int64_t B = query->shape[0], S = keys->ndim == 3 ? keys->shape[1] : -1;
    int A = m->key_proj->out;
    cf_tensor *kpm = key_padding_mask;
    if (query->ndim != 2 || query->shape[1] != m->query_proj->in || keys->ndim != 3 ||
        keys->shape[0] != B || keys->shape[2] != m->key_proj->in || proj_keys->ndim != 3 ||
        proj_keys->shape[0] != B || proj_keys->shape[1] != S || proj_keys->shape[2] != A ||
        (kpm &&
         (kpm->dtype != CF_BOOL || kpm->ndim != 2 || kpm->shape[0] != B || kpm->shape[1] != S))) {
        char a[CF_SHAPE_BUF], b[CF_SHAPE_BUF], c[CF_SHAPE_BUF], e[CF_SHAPE_BUF];
        char d[CF_SHAPE_BUF + 16] = "none";
        if (kpm)
            snprintf(d, sizeof d, "%s %s", cf_dtype_name(kpm->dtype),
                     cf_shape_str(kpm, e, sizeof e));
        cf__error(CF_ERR_SHAPE,
                  "AdditiveAttention \"%s\": query %s, keys %s, projected keys %s, "
                  "key_padding_mask %s; expected [B, %d], [B, S, %d], [B, S, %d], bool [B, S]",
                  m->base.name, cf_shape_str(query, a, sizeof a), cf_shape_str(keys, b, sizeof b),
                  cf_shape_str(proj_keys, c, sizeof c), d, m->query_proj->in, m->key_proj->in, A);
        return NULL;
    }
    cf_tensor *q = cf_linear_forward(m->query_proj, query); /* [B, A] */
    cf_tensor *e = cf_additive_score(proj_keys, q, cf_reshape(m->v->weight, CF_SHAPE(A)));
    if (key_padding_mask)
        e = cf_masked_fill(e, key_padding_mask, -INFINITY); /* [B, S] */
    cf_tensor *a = cf_softmax(e, -1);
    if (weights)
        *weights = a;
    return cf_squeeze(cf_matmul(cf_unsqueeze(a, 1), keys), 1); /* [B, K] */
}
