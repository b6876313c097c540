/* Multi-head attention with the parameters and semantics of
 * torch.nn.MultiheadAttention (batch_first=True), and its key/value cache. */
#include "nn/internal.h"

#include <math.h>
#include <stdlib.h>

cf_mha *cf_mha_new(cf_module *parent, const char *name, int embed_dim, int num_heads, float dropout,
                   bool bias, cf_rng *g)
{
    if (embed_dim < 1 || num_heads < 1 || embed_dim % num_heads ||
        !(dropout >= 0 && dropout <= 1)) {
        cf__error(CF_ERR_ARG,
                  "MultiheadAttention \"%s\": embed_dim %d must be a positive multiple of "
                  "num_heads %d, dropout %g in [0, 1]",
                  name ? name : "", embed_dim, num_heads, dropout);
        return NULL;
    }
    cf_mha *m = nn__new(sizeof *m, "MultiheadAttention", parent, name);
    if (!m)
        return NULL;
    m->embed_dim = embed_dim;
    m->num_heads = num_heads;
    m->dropout = dropout;
    m->in_proj_weight =
        cf_module_param(&m->base, "in_proj_weight", CF_SHAPE(3 * embed_dim, embed_dim));
    m->in_proj_bias =
        bias ? cf_module_param(&m->base, "in_proj_bias", CF_SHAPE(3 * embed_dim)) : NULL;
    m->out_proj = cf_linear_new(&m->base, "out_proj", embed_dim, embed_dim, bias, g);
    if (!m->in_proj_weight || (bias && !m->in_proj_bias) || !m->out_proj) {
        cf_module_free(&m->base);
        return NULL;
    }
    cf_init_xavier_uniform(m->in_proj_weight, 1, g);
    if (bias)
        cf_fill(m->out_proj->bias, 0);
    cf_rng_init(&m->rng, nn__seed(g));
    m->base.rng = &m->rng;
    return m;
}

/* x W[rows]^T + b[rows] for the rows [r0, r1) of the packed projection. */
static cf_tensor *proj(cf_mha *m, cf_tensor *x, int64_t r0, int64_t r1)
{
    return cf_affine(x, cf_slice(m->in_proj_weight, 0, r0, r1, 1),
                     m->in_proj_bias ? cf_slice(m->in_proj_bias, 0, r0, r1, 1) : NULL);
}

/* [B, T, n*E] -> n views [B, H, T, Dh] (no copies). */
static void split_heads(cf_mha *m, cf_tensor *x, int n, cf_tensor **out)
{
    int64_t B = x ? x->shape[0] : 0, T = x ? x->shape[1] : 0, H = m->num_heads,
            Dh = m->embed_dim / m->num_heads;
    cf_tensor *v = cf_permute(cf_view(x, CF_SHAPE(B, T, n, H, Dh)), (int[]){2, 0, 3, 1, 4});
    for (int i = 0; i < n; i++)
        out[i] = cf_squeeze(cf_slice(v, 0, i, i + 1, 1), 0);
}

/* Checks the masks against query length L and key length S (cached
 * positions included), naming the module. */
static bool check_masks(const cf_mha *m, const cf_mha_opts *o, int64_t B, int64_t L, int64_t S)
{
    char b[CF_SHAPE_BUF];
    cf_tensor *kpm = o->key_padding_mask;
    if (kpm && kpm->dtype != CF_BOOL) {
        cf__error(CF_ERR_DTYPE,
                  "MultiheadAttention \"%s\": key_padding_mask %s is %s, expected bool",
                  m->base.name, cf_shape_str(kpm, b, sizeof b), cf_dtype_name(kpm->dtype));
        return false;
    }
    if (kpm && (kpm->ndim != 2 || kpm->shape[0] != B || kpm->shape[1] != S)) {
        cf__error(CF_ERR_SHAPE,
                  "MultiheadAttention \"%s\": key_padding_mask of shape %s, expected [%lld, %lld]",
                  m->base.name, cf_shape_str(kpm, b, sizeof b), (long long)B, (long long)S);
        return false;
    }
    cf_tensor *am = o->attn_mask;
    if (!am)
        return true;
    if (am->dtype != CF_BOOL && am->dtype != CF_F32) {
        cf__error(CF_ERR_DTYPE,
                  "MultiheadAttention \"%s\": attn_mask %s is %s, expected bool or float32",
                  m->base.name, cf_shape_str(am, b, sizeof b), cf_dtype_name(am->dtype));
        return false;
    }
    const int64_t full[4] = {B, m->num_heads, L, S};
    bool fits = am->ndim >= 2 && am->ndim <= 4;
    for (int i = 0; fits && i < am->ndim; i++) {
        int64_t n = am->shape[am->ndim - 1 - i], want = full[3 - i];
        fits = n == want || n == 1;
    }
    if (!fits) {
        cf__error(CF_ERR_SHAPE,
                  "MultiheadAttention \"%s\": attn_mask of shape %s, expected [%lld, %lld] or "
                  "broadcastable to [%lld, %d, %lld, %lld]",
                  m->base.name, cf_shape_str(am, b, sizeof b), (long long)L, (long long)S,
                  (long long)B, m->num_heads, (long long)L, (long long)S);
        return false;
    }
    return true;
}

/* Checks that c fits m, batch B, and n more positions; before anything is
 * appended, so that a failing call leaves the cache as it was. */
static bool check_cache(const cf_mha *m, const cf_kv_cache *c, int64_t B, int64_t n)
{
    int64_t H = m->num_heads, Dh = m->embed_dim / m->num_heads;
    if (c->k->shape[0] != B || c->k->shape[1] != H || c->k->shape[3] != Dh) {
        char b[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE,
                  "MultiheadAttention \"%s\": key/value cache of shape %s, expected [%lld, %lld, "
                  "max_len, %lld]",
                  m->base.name, cf_shape_str(c->k, b, sizeof b), (long long)B, (long long)H,
                  (long long)Dh);
        return false;
    }
    if (c->len + n > c->max_len) {
        cf__error(CF_ERR_INDEX,
                  "MultiheadAttention \"%s\": key/value cache of %lld positions is full (%lld "
                  "cached, %lld new)",
                  m->base.name, (long long)c->max_len, (long long)c->len, (long long)n);
        return false;
    }
    return true;
}

/* The additive float mask [B or 1, 1 or H, L, S] combining the options, or
 * NULL. PyTorch's bool masks mark what may NOT be attended to, cf_attention's
 * what may: both are turned into -inf here. */
static cf_tensor *build_mask(const cf_mha_opts *o, int64_t B, int64_t L, int64_t S, int64_t offset,
                             bool cached_causal)
{
    cf_tensor *mask = NULL;
    if (o->key_padding_mask)
        mask = cf_masked_fill(cf_zeros(CF_SHAPE(B, 1, 1, S)),
                              cf_reshape(o->key_padding_mask, CF_SHAPE(B, 1, 1, S)), -INFINITY);
    if (o->attn_mask) {
        cf_tensor *am = o->attn_mask;
        if (am->dtype == CF_BOOL)
            am = cf_masked_fill(cf_zeros(am->ndim, am->shape), am, -INFINITY);
        mask = mask ? cf_add(mask, am) : am;
    }
    if (cached_causal) {
        /* Query i sits at position offset + i; it sees keys up to there. */
        cf_tensor *c = cf_zeros(CF_SHAPE(L, S));
        if (!c)
            return NULL;
        float *d = c->data;
        for (int64_t i = 0; i < L; i++)
            for (int64_t j = offset + i + 1; j < S; j++)
                d[i * S + j] = -INFINITY;
        mask = mask ? cf_add(mask, c) : c;
    }
    return mask;
}

static void append_cache(cf_kv_cache *c, cf_tensor *k, cf_tensor *v)
{
    int64_t n = k->shape[2];
    bool prev = cf_set_grad_enabled(false);
    cf__copy(cf_slice(c->k, 2, c->len, c->len + n, 1), k);
    cf__copy(cf_slice(c->v, 2, c->len, c->len + n, 1), v);
    cf_set_grad_enabled(prev);
    c->len += n;
}

cf_tensor *cf_mha_forward(cf_mha *m, cf_tensor *query, cf_tensor *key, cf_tensor *value,
                          const cf_mha_opts *opts)
{
    cf_tensor *qkv_in[3] = {query, key, value};
    if (!cf__nonnull("MultiheadAttention", m, "module") ||
        !cf__check("MultiheadAttention", 3, qkv_in))
        return NULL;
    static const cf_mha_opts none = {0};
    const cf_mha_opts *o = opts ? opts : &none;
    if (!cf_check_reserved("MultiheadAttention", "cf_mha_opts", o->reserved, CF_RESERVED_WORDS))
        return NULL;
    int64_t E = m->embed_dim;
    for (int i = 0; i < 3; i++) {
        cf_tensor *t = qkv_in[i];
        if (t->ndim != 3 || t->shape[2] != E || t->shape[0] != query->shape[0] ||
            (i == 2 && t->shape[1] != key->shape[1])) {
            char a[CF_SHAPE_BUF], b[CF_SHAPE_BUF], c[CF_SHAPE_BUF];
            cf__error(
                CF_ERR_SHAPE,
                "MultiheadAttention \"%s\": query %s, key %s, value %s; expected [B, L, %lld], "
                "[B, S, %lld], [B, S, %lld]",
                m->base.name, cf_shape_str(query, a, sizeof a), cf_shape_str(key, b, sizeof b),
                cf_shape_str(value, c, sizeof c), (long long)E, (long long)E, (long long)E);
            return NULL;
        }
    }
    int64_t B = query->shape[0], L = query->shape[1];
    int64_t offset = o->cache ? o->cache->len : 0;
    if ((o->cache && !check_cache(m, o->cache, B, key->shape[1])) ||
        !check_masks(m, o, B, L, offset + key->shape[1]))
        return NULL;
    cf_tensor *h[3];
    if (query == key && key == value) {
        split_heads(m, proj(m, query, 0, 3 * E), 3, h);
    } else {
        split_heads(m, proj(m, query, 0, E), 1, h);
        if (key == value) {
            split_heads(m, proj(m, key, E, 3 * E), 2, h + 1);
        } else {
            split_heads(m, proj(m, key, E, 2 * E), 1, h + 1);
            split_heads(m, proj(m, value, 2 * E, 3 * E), 1, h + 2);
        }
    }
    if (!h[0] || !h[1] || !h[2])
        return NULL;
    bool cached_causal = false;
    if (o->cache) {
        append_cache(o->cache, h[1], h[2]);
        h[1] = cf_slice(o->cache->k, 2, 0, o->cache->len, 1);
        h[2] = cf_slice(o->cache->v, 2, 0, o->cache->len, 1);
        cached_causal = o->causal && L > 1;
    }
    int64_t S = h[1]->shape[2];
    cf_tensor *weights = NULL;
    uint64_t seq = cf__error_seq();
    cf_attention_opts ao = {
        .mask = build_mask(o, B, L, S, offset, cached_causal),
        .causal = o->causal && !o->cache,
        .dropout = m->base.training ? m->dropout : 0,
        .rng = &m->rng,
        .scale = o->scale,
        .weights = o->weights ? &weights : NULL,
    };
    if (cf__error_seq() != seq)
        return NULL;
    cf_tensor *a = cf_attention(h[0], h[1], h[2], &ao); /* [B, H, L, Dh] */
    cf_tensor *y = cf_reshape(cf_permute(a, (int[]){0, 2, 1, 3}), CF_SHAPE(B, L, E));
    if (o->weights)
        *o->weights = o->average_weights ? cf_mean(weights, CF_DIMS(1), false) : weights;
    return cf_linear_forward(m->out_proj, y);
}

cf_kv_cache *cf_kv_cache_new(const cf_mha *m, int64_t batch, int64_t max_len)
{
    if (!m || batch < 1 || max_len < 1) {
        cf__error(CF_ERR_ARG, "cf_kv_cache_new: %s, batch %lld, max_len %lld",
                  m ? "module" : "NULL module", (long long)batch, (long long)max_len);
        return NULL;
    }
    cf_kv_cache *c = cf_calloc(1, sizeof *c);
    if (!c) {
        cf__error(CF_ERR_NOMEM, "cf_kv_cache_new: out of memory");
        return NULL;
    }
    int64_t H = m->num_heads, Dh = m->embed_dim / m->num_heads;
    c->k = cf_tensor_new(CF_F32, CF_SHAPE(batch, H, max_len, Dh));
    c->v = cf_tensor_new(CF_F32, CF_SHAPE(batch, H, max_len, Dh));
    c->max_len = max_len;
    if (!c->k || !c->v) {
        cf_kv_cache_free(c);
        return NULL;
    }
    return c;
}

void cf_kv_cache_free(cf_kv_cache *c)
{
    if (!c)
        return;
    cf_tensor_free(c->k);
    cf_tensor_free(c->v);
    cf_free(c);
}

void cf_kv_cache_clear(cf_kv_cache *c)
{
    if (c)
        c->len = 0;
}

cf_tensor *cf_sinusoidal_encoding(int64_t start, int64_t T, int dim)
{
    if (T < 0 || dim < 1) {
        cf__error(CF_ERR_ARG, "cf_sinusoidal_encoding: %lld positions of size %d", (long long)T,
                  dim);
        return NULL;
    }
    cf_tensor *pe = cf__alloc("cf_sinusoidal_encoding", CF_F32, 2, (int64_t[]){T, dim});
    if (!pe)
        return NULL;
    float *d = pe->data;
    /* As PyTorch's tutorial computes it, in float32 from a scale rounded once
     * from double: exp(2i * -ln(10000) / dim). An error of one ulp in the
     * frequency grows with the position. */
    float scale = (float)(-log(10000.0) / dim);
    for (int64_t t = 0; t < T; t++) {
        for (int i = 0; i < dim; i += 2) {
            float freq = expf((float)i * scale);
            float angle = (float)(start + t) * freq;
            d[t * dim + i] = sinf(angle);
            if (i + 1 < dim)
                d[t * dim + i + 1] = cosf(angle);
        }
    }
    return pe;
}
