/* Multiplicative attention (Luong et al. 2015): the "dot" and "general"
 * scores, beside the additive one of nn/additive.c. */
#include "nn/internal.h"

#include <math.h>
#include <stdio.h>

cf_luong_attention *cf_luong_attention_new(cf_module *parent, const char *name,
                                           cf_luong_score score, int query_dim, int key_dim,
                                           cf_rng *g)
{
    if ((score != CF_LUONG_DOT && score != CF_LUONG_GENERAL) || query_dim < 1 || key_dim < 1 ||
        (score == CF_LUONG_DOT && query_dim != key_dim)) {
        cf__error(CF_ERR_ARG,
                  "LuongAttention \"%s\": score %d with query size %d and key size %d (dot "
                  "needs them equal)",
                  name ? name : "", (int)score, query_dim, key_dim);
        return NULL;
    }
    cf_luong_attention *m = nn__new(sizeof *m, "LuongAttention", parent, name);
    if (!m)
        return NULL;
    m->score = score;
    m->query_dim = query_dim;
    m->key_dim = key_dim;
    if (score == CF_LUONG_GENERAL &&
        !(m->key_proj = cf_linear_new(&m->base, "key_proj", key_dim, query_dim, false, g))) {
        cf_module_free(&m->base);
        return NULL;
    }
    return m;
}

cf_tensor *cf_luong_attention_keys(cf_luong_attention *m, cf_tensor *keys)
{
    if (!m || !cf__check("LuongAttention", 1, &keys))
        return NULL;
    return m->key_proj ? cf_linear_forward(m->key_proj, keys) : keys;
}

cf_tensor *cf_luong_attention_forward(cf_luong_attention *m, cf_tensor *query, cf_tensor *keys,
                                      cf_tensor *proj_keys, cf_tensor *key_padding_mask,
                                      cf_tensor **weights)
{
    cf_tensor *in[3] = {query, keys, proj_keys};
    if (!m || !cf__check("LuongAttention", 3, in))
        return NULL;
    int64_t B = query->shape[0], S = keys->ndim == 3 ? keys->shape[1] : -1;
    int Q = m->query_dim, K = m->key_dim;
    cf_tensor *kpm = key_padding_mask;
    if (query->ndim != 2 || query->shape[1] != Q || keys->ndim != 3 || keys->shape[0] != B ||
        keys->shape[2] != K || proj_keys->ndim != 3 || proj_keys->shape[0] != B ||
        proj_keys->shape[1] != S || proj_keys->shape[2] != Q ||
        (kpm &&
         (kpm->dtype != CF_BOOL || kpm->ndim != 2 || kpm->shape[0] != B || kpm->shape[1] != S))) {
        char a[CF_SHAPE_BUF], b[CF_SHAPE_BUF], c[CF_SHAPE_BUF], e[CF_SHAPE_BUF];
        char d[CF_SHAPE_BUF + 16] = "none";
        if (kpm)
            snprintf(d, sizeof d, "%s %s", cf_dtype_name(kpm->dtype),
                     cf_shape_str(kpm, e, sizeof e));
        cf__error(CF_ERR_SHAPE,
                  "LuongAttention \"%s\": query %s, keys %s, projected keys %s, "
                  "key_padding_mask %s; expected [B, %d], [B, S, %d], [B, S, %d], bool [B, S]",
                  m->base.name, cf_shape_str(query, a, sizeof a), cf_shape_str(keys, b, sizeof b),
                  cf_shape_str(proj_keys, c, sizeof c), d, Q, K, Q);
        return NULL;
    }
    /* score_j = q . proj_k_j: [B, S, Q] x [B, Q, 1] -> [B, S] */
    cf_tensor *e = cf_squeeze(cf_matmul(proj_keys, cf_unsqueeze(query, -1)), -1);
    if (kpm)
        e = cf_masked_fill(e, kpm, -INFINITY);
    cf_tensor *a = cf_softmax(e, -1);
    if (weights)
        *weights = a;
    return cf_squeeze(cf_matmul(cf_unsqueeze(a, 1), keys), 1); /* [B, K] */
}
