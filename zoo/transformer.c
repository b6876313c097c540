/* The encoder-decoder Transformer of "Attention Is All You Need" (Vaswani et
 * al. 2017), with the module tree and parameter names of torch.nn.Transformer
 * between two embedding tables and a generator, written with the public API
 * only.
 *
 * B = batch, S = source length, T = target length, E = d_model, H = heads,
 * Dh = E / H, V = target vocabulary. */
#include "cformer/zoo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* torch.nn.TransformerEncoderLayer (cross_attn NULL, two norms) or
 * TransformerDecoderLayer. The feed-forward block is created with the name
 * "", so linear1, dropout and linear2 sit directly under the layer. */
typedef struct {
    cf_module base;
    cf_mha *self_attn, *cross_attn;
    cf_ffn *ffn;
    cf_module *norm[3]; /* NULL without normalisation */
    cf_dropout_mod *drop[3];
} layer;

struct cf_transformer {
    cf_module base;
    cf_transformer_config cfg;
    cf_embedding_mod *src_embed, *tgt_embed; /* one module when shared */
    cf_pos_embedding *src_pos, *tgt_pos;     /* learned positions only */
    cf_dropout_mod *dropout;                 /* after the positional encoding */
    layer **enc, **dec;
    cf_module *enc_norm, *dec_norm;
    cf_tensor *gen_weight; /* [V, E]: generator.weight or the target table */
    cf_tensor *gen_bias;   /* [V] */
};

cf_transformer_config cf_transformer_base(int src_vocab, int tgt_vocab)
{
    return (cf_transformer_config){.src_vocab = src_vocab,
                                   .tgt_vocab = tgt_vocab,
                                   .d_model = 512,
                                   .heads = 8,
                                   .enc_layers = 6,
                                   .dec_layers = 6,
                                   .ff = 2048,
                                   .dropout = 0.1f,
                                   .act = CF_ACT_RELU,
                                   .eps = 1e-5f,
                                   .max_len = 512,
                                   .pad_id = 0,
                                   .bos_id = 1,
                                   .eos_id = 2};
}

cf_transformer_config cf_transformer_small(int src_vocab, int tgt_vocab)
{
    cf_transformer_config c = cf_transformer_base(src_vocab, tgt_vocab);
    c.d_model = 128;
    c.heads = 4;
    c.enc_layers = c.dec_layers = 2;
    c.ff = 512;
    return c;
}

cf_module *cf_transformer_module(cf_transformer *m) { return m ? &m->base : NULL; }

const cf_transformer_config *cf_transformer_cfg(const cf_transformer *m)
{
    return m ? &m->cfg : NULL;
}

/* Writes why c is invalid into msg, or returns false when it is valid. */
static bool invalid(const cf_transformer_config *c, char *msg, size_t n)
{
    if (!c)
        snprintf(msg, n, "config is NULL");
    else if (c->src_vocab < 1 || c->tgt_vocab < 1)
        snprintf(msg, n, "%s %d must be positive", c->src_vocab < 1 ? "src_vocab" : "tgt_vocab",
                 c->src_vocab < 1 ? c->src_vocab : c->tgt_vocab);
    else if (c->d_model < 1 || c->heads < 1 || c->ff < 1)
        snprintf(msg, n, "%s %d must be positive",
                 c->d_model < 1 ? "d_model"
                 : c->heads < 1 ? "heads"
                                : "ff",
                 c->d_model < 1 ? c->d_model
                 : c->heads < 1 ? c->heads
                                : c->ff);
    else if (c->d_model % c->heads)
        snprintf(msg, n, "d_model %d must be a multiple of heads %d", c->d_model, c->heads);
    else if (c->enc_layers < 1 || c->dec_layers < 1)
        snprintf(msg, n, "%s %d must be positive", c->enc_layers < 1 ? "enc_layers" : "dec_layers",
                 c->enc_layers < 1 ? c->enc_layers : c->dec_layers);
    else if (c->max_len < 1)
        snprintf(msg, n, "max_len %d must be positive", c->max_len);
    else if (!(c->dropout >= 0 && c->dropout <= 1))
        snprintf(msg, n, "dropout %g must be in [0, 1]", c->dropout);
    else if (!(c->eps >= 0 && c->eps < INFINITY))
        snprintf(msg, n, "eps %g must be finite and not negative", c->eps);
    else if (c->act != CF_ACT_RELU && c->act != CF_ACT_GELU)
        snprintf(msg, n, "act %d is not an activation", (int)c->act);
    else if (c->pad_id < 0 || c->pad_id >= c->src_vocab || c->pad_id >= c->tgt_vocab)
        snprintf(msg, n, "pad_id %d must index both vocabularies (%d, %d)", c->pad_id, c->src_vocab,
                 c->tgt_vocab);
    else if (c->bos_id < 0 || c->bos_id >= c->tgt_vocab)
        snprintf(msg, n, "bos_id %d must be below tgt_vocab %d", c->bos_id, c->tgt_vocab);
    else if (c->eos_id < 0 || c->eos_id >= c->tgt_vocab)
        snprintf(msg, n, "eos_id %d must be below tgt_vocab %d", c->eos_id, c->tgt_vocab);
    else if (c->share_embeddings && c->src_vocab != c->tgt_vocab)
        snprintf(msg, n, "share_embeddings needs src_vocab %d equal to tgt_vocab %d", c->src_vocab,
                 c->tgt_vocab);
    else if ((unsigned)c->norm > CF_NORM_NONE)
        snprintf(msg, n, "norm %d is not a cf_norm_kind", (int)c->norm);
    else if ((unsigned)c->pos > CF_POS_NONE)
        snprintf(msg, n, "pos %d is not a cf_pos_kind", (int)c->pos);
    else
        return false;
    return true;
}

/* The knobs' names, as checkpoints record them. */
static const char *const norm_names[] = {"layer", "batch", "rms", "none"};
static const char *const pos_names[] = {"sinusoidal", "sinusoidal", "learned", "none"};

/* A norm of the configured kind over d_model features; NULL without one
 * (*ok stays true) or on error (*ok false). */
static cf_module *norm_new(cf_module *parent, const char *name, const cf_transformer_config *c,
                           bool *ok)
{
    int E = c->d_model;
    cf_module *m = NULL;
    switch (c->norm) {
    case CF_NORM_LAYER: m = (cf_module *)cf_layernorm_new(parent, name, E, c->eps, true); break;
    case CF_NORM_BATCH:
        m = (cf_module *)cf_batchnorm1d_new(parent, name, E, c->eps, 0.1f, true, true);
        break;
    case CF_NORM_RMS: m = (cf_module *)cf_rmsnorm_new(parent, name, E, c->eps, true); break;
    case CF_NORM_NONE: return NULL;
    }
    *ok = *ok && m;
    return m;
}

/* A distinct dropout stream for every Dropout module of the model. */
static uint64_t next_seed(uint64_t *s) { return (*s += 0x9E3779B97F4A7C15ull); }

static layer *layer_new(cf_module *parent, int i, bool decoder, const cf_transformer_config *c,
                        cf_rng *g, uint64_t *seed)
{
    char name[16];
    snprintf(name, sizeof name, "%d", i);
    layer *l = cf_calloc(1, sizeof *l);
    if (!l) {
        cf_error_set(CF_ERR_NOMEM, "cf_transformer_new: out of memory");
        return NULL;
    }
    if (!cf_module_init(&l->base, decoder ? "TransformerDecoderLayer" : "TransformerEncoderLayer",
                        parent, name)) {
        cf_free(l);
        return NULL;
    }
    int E = c->d_model, nsub = decoder ? 3 : 2;
    /* Creation order is torch's, so the names come out in state_dict order. */
    l->self_attn = cf_mha_new(&l->base, "self_attn", E, c->heads, c->dropout, true, g);
    if (decoder)
        l->cross_attn = cf_mha_new(&l->base, "multihead_attn", E, c->heads, c->dropout, true, g);
    l->ffn = cf_ffn_new(&l->base, "", E, c->ff, c->dropout, c->act, g);
    bool ok = true;
    for (int k = 0; k < nsub; k++) {
        snprintf(name, sizeof name, "norm%d", k + 1);
        l->norm[k] = norm_new(&l->base, name, c, &ok);
    }
    for (int k = 0; k < nsub; k++) {
        snprintf(name, sizeof name, "dropout%d", k + 1);
        l->drop[k] = cf_dropout_new(&l->base, name, c->dropout, next_seed(seed));
    }
    bool made = l->self_attn && (!decoder || l->cross_attn) && l->ffn && ok;
    for (int k = 0; k < nsub; k++)
        made = made && l->drop[k];
    if (!made)
        return NULL; /* the parent frees what was attached */
    cf_rng_init(&l->ffn->dropout->rng, next_seed(seed));
    /* torch.nn.Transformer re-initialises every matrix of its layers. */
    cf_init_xavier_uniform(l->self_attn->in_proj_weight, 1, g);
    cf_init_xavier_uniform(l->self_attn->out_proj->weight, 1, g);
    if (decoder) {
        cf_init_xavier_uniform(l->cross_attn->in_proj_weight, 1, g);
        cf_init_xavier_uniform(l->cross_attn->out_proj->weight, 1, g);
    }
    cf_init_xavier_uniform(l->ffn->linear1->weight, 1, g);
    cf_init_xavier_uniform(l->ffn->linear2->weight, 1, g);
    return l;
}

/* Embedding tables ~ N(0, 1/E), the padding row zero unless no_padding_idx:
 * scaled by sqrt(E) in the forward, rows have unit variance, and a tied
 * generator starts with logits of order one (fairseq's initialisation). */
static cf_embedding_mod *table_new(cf_module *parent, const char *name, int vocab,
                                   const cf_transformer_config *c, cf_rng *g)
{
    int padding_idx = c->no_padding_idx ? -1 : c->pad_id;
    cf_embedding_mod *e = cf_embedding_new(parent, name, vocab, c->d_model, padding_idx, g);
    if (!e)
        return NULL;
    cf_fill_normal(g, e->weight, 0, 1.0f / sqrtf((float)c->d_model));
    if (padding_idx >= 0)
        memset((float *)e->weight->data + (size_t)padding_idx * c->d_model, 0,
               sizeof(float) * c->d_model);
    return e;
}

static void transformer_settings(const cf_module *base, cf_setting_fn fn, void *ud)
{
    const cf_transformer_config *c = &((const cf_transformer *)base)->cfg;
    fn(ud, "norm", norm_names[c->norm], "layer");
    fn(ud, "norm_position", c->pre_norm ? "pre" : "post", "post");
    fn(ud, "positions", pos_names[c->pos], "sinusoidal");
    fn(ud, "attention_scale", c->unscaled ? "1" : "1/sqrt(d_k)", "1/sqrt(d_k)");
    fn(ud, "residual", c->no_residual ? "off" : "on", "on");
}

static void transformer_destroy(cf_module *base)
{
    cf_transformer *m = (cf_transformer *)base;
    cf_free(m->enc);
    cf_free(m->dec);
}

/* The generator: a Linear, or only its bias when the target table is the
 * weight. */
static bool generator_new(cf_transformer *m, cf_rng *g)
{
    const cf_transformer_config *c = &m->cfg;
    float bound = 1.0f / sqrtf((float)c->d_model);
    if (!c->tie_output) {
        cf_linear *lin = cf_linear_new(&m->base, "generator", c->d_model, c->tgt_vocab, true, g);
        if (!lin)
            return false;
        m->gen_weight = lin->weight;
        m->gen_bias = lin->bias;
        return true;
    }
    cf_module *gen = cf_module_new("Linear", &m->base, "generator");
    m->gen_weight = m->tgt_embed->weight;
    m->gen_bias = gen ? cf_module_param(gen, "bias", CF_SHAPE(c->tgt_vocab)) : NULL;
    if (!m->gen_bias)
        return false;
    cf_fill_uniform(g, m->gen_bias, -bound, bound);
    return true;
}

cf_transformer *cf_transformer_new(const cf_transformer_config *cfg, cf_rng *g)
{
    char why[160];
    if (invalid(cfg, why, sizeof why)) {
        cf_error_set(CF_ERR_ARG, "cf_transformer_new: %s", why);
        return NULL;
    }
    const cf_transformer_config *c = cfg;
    cf_transformer *m = cf_calloc(1, sizeof *m);
    if (!m || !cf_module_init(&m->base, "Transformer", NULL, "")) {
        cf_free(m);
        cf_error_set(CF_ERR_NOMEM, "cf_transformer_new: out of memory");
        return NULL;
    }
    m->base.destroy = transformer_destroy;
    m->base.settings = transformer_settings;
    m->cfg = *c;
    m->enc = cf_calloc(c->enc_layers, sizeof *m->enc);
    m->dec = cf_calloc(c->dec_layers, sizeof *m->dec);
    uint64_t seed = g ? g->seed ^ (g->offset * 0x2545F4914F6CDD1Dull) : 0;
    bool ok = m->enc && m->dec;
    if (!ok)
        cf_error_set(CF_ERR_NOMEM, "cf_transformer_new: out of memory");
    if (ok) {
        m->src_embed = table_new(&m->base, "src_embed", c->src_vocab, c, g);
        m->tgt_embed = c->share_embeddings ? m->src_embed
                                           : table_new(&m->base, "tgt_embed", c->tgt_vocab, c, g);
        ok = m->src_embed && m->tgt_embed;
    }
    if (ok && c->pos == CF_POS_LEARNED) {
        m->src_pos = cf_pos_embedding_new(&m->base, "src_pos", c->max_len, c->d_model, g);
        m->tgt_pos = cf_pos_embedding_new(&m->base, "tgt_pos", c->max_len, c->d_model, g);
        ok = m->src_pos && m->tgt_pos;
    }
    const char *part_names[2] = {"encoder", "decoder"};
    for (int p = 0; ok && p < 2; p++) {
        bool decoder = p == 1;
        cf_module *part = cf_module_new(decoder ? "TransformerDecoder" : "TransformerEncoder",
                                        &m->base, part_names[p]);
        cf_module *layers = part ? cf_module_new("ModuleList", part, "layers") : NULL;
        int n = decoder ? c->dec_layers : c->enc_layers;
        layer **ls = decoder ? m->dec : m->enc;
        for (int i = 0; layers && i < n; i++)
            if (!(ls[i] = layer_new(layers, i, decoder, c, g, &seed)))
                layers = NULL;
        ok = layers != NULL;
        *(decoder ? &m->dec_norm : &m->enc_norm) = ok ? norm_new(part, "norm", c, &ok) : NULL;
    }
    ok = ok && generator_new(m, g);
    if (ok)
        m->dropout = cf_dropout_new(&m->base, "dropout", c->dropout, next_seed(&seed));
    if (!m->dropout) {
        cf_module_free(&m->base);
        return NULL;
    }
    return m;
}

/* ---- Forward ---- */

/* Checks that t is int32 [B, n] with 1 <= n <= max_len (B = -1: any). */
static bool check_tokens(const cf_transformer *m, const char *fn, const char *what,
                         const cf_tensor *t, int64_t B)
{
    if (t && t->dtype == CF_I32 && t->ndim == 2 && t->shape[1] >= 1 &&
        t->shape[1] <= m->cfg.max_len && t->shape[0] >= 1 && (B < 0 || t->shape[0] == B))
        return true;
    char s[96] = "NULL";
    if (t)
        cf_shape_str(t, s, sizeof s);
    cf_error_set(CF_ERR_SHAPE, "%s: %s is %s %s; expected int32 [B, n] with 1 <= n <= max_len %d%s",
                 fn, what, t ? cf_dtype_name(t->dtype) : "", s, m->cfg.max_len,
                 B >= 0 ? " and B the batch of the source" : "");
    return false;
}

/* Embeddings of tokens [B, n] at positions start.. : [B, n, E]; pos is the
 * table of learned positions (NULL otherwise). */
static cf_tensor *embed(cf_transformer *m, cf_embedding_mod *table, cf_pos_embedding *pos,
                        cf_tensor *tokens, int64_t start)
{
    if (!tokens)
        return NULL;
    int E = m->cfg.d_model;
    int64_t n = tokens->shape[1];
    cf_tensor *x = cf_mul_scalar(cf_embedding_forward(table, tokens), sqrtf((float)E));
    switch (m->cfg.pos) {
    case CF_POS_DEFAULT:
    case CF_POS_SINUSOIDAL: x = cf_add(x, cf_sinusoidal_encoding(start, n, E)); break;
    case CF_POS_LEARNED: x = cf_add(x, cf_pos_embedding_forward(pos, start, n)); break;
    case CF_POS_NONE: break;
    }
    return cf_dropout_forward(m->dropout, x);
}

/* bool [B, n], true at padding. */
static cf_tensor *padding(const cf_transformer *m, cf_tensor *tokens)
{
    return cf_eq(tokens, cf_from_ints(&(int32_t){m->cfg.pad_id}, 0, NULL));
}

/* Which of the B * n token rows of a batch are real, for BatchNorm's
 * statistics in training: real (int32 [R]) lists them, back (int32
 * [B * n]) gives each row's place in that list, R for padding. Both NULL
 * when every row counts. */
typedef struct {
    cf_tensor *real, *back;
} token_rows;

/* The token rows of tokens [B, n] for the norms of m: only BatchNorm in
 * training mode with padding in the batch needs them. False on error. */
static bool rows_of(const cf_transformer *m, cf_tensor *tokens, token_rows *r)
{
    *r = (token_rows){0};
    if (m->cfg.norm != CF_NORM_BATCH || !m->base.training)
        return true;
    cf_tensor *c = cf_contiguous(tokens);
    if (!c)
        return false;
    int64_t N = cf_numel(c), R = 0;
    const int32_t *t = c->data;
    for (int64_t i = 0; i < N; i++)
        R += t[i] != m->cfg.pad_id;
    if (R == N)
        return true;
    r->real = cf_empty(CF_I32, CF_SHAPE(R));
    r->back = cf_empty(CF_I32, CF_SHAPE(N));
    if (!r->real || !r->back)
        return false;
    int32_t *real = r->real->data, *back = r->back->data, k = 0;
    for (int64_t i = 0; i < N; i++) {
        back[i] = t[i] != m->cfg.pad_id ? k : (int32_t)R;
        if (t[i] != m->cfg.pad_id)
            real[k++] = (int32_t)i;
    }
    return true;
}

/* norm (of the configured kind; NULL: none) over x [B, n, E]. BatchNorm
 * normalises the rows [B * n, E], in training over the real tokens only:
 * they are gathered, normalised, and put back, padding rows getting
 * zeros. */
static cf_tensor *norm_fwd(const cf_transformer *m, cf_module *norm, cf_tensor *x,
                           const token_rows *r)
{
    if (!x)
        return NULL;
    switch (m->cfg.norm) {
    case CF_NORM_LAYER: return cf_layernorm_forward((cf_layernorm *)norm, x);
    case CF_NORM_RMS: return cf_rmsnorm_forward((cf_rmsnorm *)norm, x);
    case CF_NORM_NONE: return x;
    case CF_NORM_BATCH: break;
    }
    cf_batchnorm1d *bn = (cf_batchnorm1d *)norm;
    cf_tensor *rows = cf_reshape(x, CF_SHAPE(-1, x->shape[2])); /* [B*n, E] */
    cf_tensor *y;
    if (r && r->real) {
        y = cf_batchnorm1d_forward(bn, cf_index_select(rows, 0, r->real)); /* [R, E] */
        cf_tensor *zero = cf_zeros(CF_SHAPE(1, x->shape[2]));
        y = cf_index_select(cf_cat(2, (cf_tensor *[]){y, zero}, 0), 0, r->back);
    } else {
        y = cf_batchnorm1d_forward(bn, rows);
    }
    return cf_reshape(y, x->ndim, x->shape);
}

/* The input of sublayer k: post-norm feeds x itself, pre-norm norm_k(x). */
static cf_tensor *sub_in(const cf_transformer *m, layer *l, int k, cf_tensor *x,
                         const token_rows *r)
{
    return m->cfg.pre_norm ? norm_fwd(m, l->norm[k], x, r) : x;
}

/* The residual around sublayer k with output y: post-norm normalises the
 * sum, pre-norm leaves it (its norm came first). Without residuals y
 * replaces x. */
static cf_tensor *sub_out(const cf_transformer *m, layer *l, int k, cf_tensor *x, cf_tensor *y,
                          const token_rows *r)
{
    cf_tensor *sum = m->cfg.no_residual ? cf_dropout_forward(l->drop[k], y)
                                        : cf_residual_forward(l->drop[k], x, y);
    return m->cfg.pre_norm ? sum : norm_fwd(m, l->norm[k], sum, r);
}

/* The scale of the attention scores (cf_mha_opts.scale). */
static float attn_scale(const cf_transformer *m) { return m->cfg.unscaled ? 1.0f : 0.0f; }

/* The feed-forward block over the rows [B * n, E] of x [B, n, E]: as 2-D
 * products, each weight gradient is one matrix product over all B * n rows
 * instead of B products over n rows accumulated one after the other. */
static cf_tensor *ffn_rows(layer *l, cf_tensor *x)
{
    if (!x)
        return NULL;
    cf_tensor *y = cf_ffn_forward(l->ffn, cf_reshape(x, CF_SHAPE(-1, x->shape[2])));
    return cf_reshape(y, x->ndim, x->shape);
}

/* False with CF_ERR_ARG "fn: model is NULL" (kept if an error is already
 * recorded, such as the failed constructor's) when m is NULL. */
static bool have_model(const char *fn, const cf_transformer *m)
{
    if (!m)
        cf_error_set(CF_ERR_ARG, "%s: model is NULL", fn);
    return m != NULL;
}

cf_tensor *cf_transformer_encode(cf_transformer *m, cf_tensor *src, cf_transformer_maps *maps)
{
    if (!have_model("cf_transformer_encode", m) ||
        !check_tokens(m, "cf_transformer_encode", "src", src, -1))
        return NULL;
    token_rows r;
    if (!rows_of(m, src, &r))
        return NULL;
    cf_tensor *pad = padding(m, src);
    cf_tensor *x = embed(m, m->src_embed, m->src_pos, src, 0);
    for (int i = 0; i < m->cfg.enc_layers; i++) {
        layer *l = m->enc[i];
        cf_mha_opts o = {
            .key_padding_mask = pad,
            .weights = maps && maps->enc_self ? &maps->enc_self[i] : NULL,
            .scale = attn_scale(m),
        };
        cf_tensor *h = sub_in(m, l, 0, x, &r);
        x = sub_out(m, l, 0, x, cf_mha_forward(l->self_attn, h, h, h, &o), &r);
        x = sub_out(m, l, 1, x, ffn_rows(l, sub_in(m, l, 1, x, &r)), &r);
    }
    return norm_fwd(m, m->enc_norm, x, &r);
}

/* Cross-attention over keys and values projected once per source, for
 * decoding: query [B, L, E], k and v [B, H, S, Dh], allow bool [B, 1, 1, S]
 * (true at real keys). The same computation as cf_mha_forward without a
 * cache. */
static cf_tensor *cross_cached(cf_mha *a, cf_tensor *query, cf_tensor *k, cf_tensor *v,
                               cf_tensor *allow, float scale)
{
    int64_t E = a->embed_dim, H = a->num_heads, B = query->shape[0], L = query->shape[1];
    cf_tensor *q = cf_affine(query, cf_slice(a->in_proj_weight, 0, 0, E, 1),
                             a->in_proj_bias ? cf_slice(a->in_proj_bias, 0, 0, E, 1) : NULL);
    q = cf_permute(cf_view(q, CF_SHAPE(B, L, H, E / H)), (int[]){0, 2, 1, 3});
    cf_tensor *o = cf_attention(q, k, v, &(cf_attention_opts){.mask = allow, .scale = scale});
    o = cf_reshape(cf_permute(o, (int[]){0, 2, 1, 3}), CF_SHAPE(B, L, E));
    return cf_linear_forward(a->out_proj, o);
}

/* What a decoder layer attends to. Teacher forcing uses memory and the
 * masks; a decoding step uses the cache and the projected memory. */
typedef struct {
    cf_tensor *memory;  /* [B, S, E] */
    cf_tensor *mem_pad; /* bool [B, S], true at padding, or NULL */
    cf_tensor *tgt_pad; /* bool [B, T] or NULL */
    cf_tensor **self_map, **cross_map;
    cf_kv_cache *cache; /* decoding: this layer's self-attention cache */
    cf_tensor *k, *v;   /* decoding: cross keys and values [B, H, S, Dh] */
    cf_tensor *allow;   /* decoding: bool [B, 1, 1, S] */
    token_rows rows;    /* of tgt, for BatchNorm */
} dec_in;

static cf_tensor *dec_layer(const cf_transformer *m, layer *l, cf_tensor *x, const dec_in *d)
{
    const token_rows *r = &d->rows;
    cf_mha_opts so = {.key_padding_mask = d->tgt_pad,
                      .causal = true,
                      .cache = d->cache,
                      .weights = d->self_map,
                      .scale = attn_scale(m)};
    cf_tensor *h = sub_in(m, l, 0, x, r);
    x = sub_out(m, l, 0, x, cf_mha_forward(l->self_attn, h, h, h, &so), r);
    h = sub_in(m, l, 1, x, r);
    cf_tensor *c;
    if (d->k) {
        c = cross_cached(l->cross_attn, h, d->k, d->v, d->allow, attn_scale(m));
    } else {
        cf_mha_opts co = {
            .key_padding_mask = d->mem_pad, .weights = d->cross_map, .scale = attn_scale(m)};
        c = cf_mha_forward(l->cross_attn, h, d->memory, d->memory, &co);
    }
    x = sub_out(m, l, 1, x, c, r);
    return sub_out(m, l, 2, x, ffn_rows(l, sub_in(m, l, 2, x, r)), r);
}

cf_tensor *cf_transformer_decode(cf_transformer *m, cf_tensor *tgt, cf_tensor *memory,
                                 cf_tensor *src, cf_transformer_maps *maps)
{
    static const char *fn = "cf_transformer_decode";
    if (!have_model(fn, m))
        return NULL;
    int E = m->cfg.d_model;
    if (!memory || memory->ndim != 3 || memory->shape[2] != E || memory->shape[1] < 1 ||
        (src && (src->ndim != 2 || src->shape[0] != memory->shape[0] ||
                 src->shape[1] != memory->shape[1]))) {
        char a[96] = "NULL", b[96] = "NULL";
        if (memory)
            cf_shape_str(memory, a, sizeof a);
        if (src)
            cf_shape_str(src, b, sizeof b);
        cf_error_set(CF_ERR_SHAPE, "%s: memory %s and src %s; expected [B, S, %d] and [B, S]", fn,
                     a, b, E);
        return NULL;
    }
    if (!check_tokens(m, fn, "tgt", tgt, memory->shape[0]) ||
        (src && !check_tokens(m, fn, "src", src, -1)))
        return NULL;
    dec_in d = {
        .memory = memory, .mem_pad = src ? padding(m, src) : NULL, .tgt_pad = padding(m, tgt)};
    if (!rows_of(m, tgt, &d.rows))
        return NULL;
    cf_tensor *x = embed(m, m->tgt_embed, m->tgt_pos, tgt, 0);
    for (int i = 0; i < m->cfg.dec_layers; i++) {
        d.self_map = maps && maps->dec_self ? &maps->dec_self[i] : NULL;
        d.cross_map = maps && maps->cross ? &maps->cross[i] : NULL;
        x = dec_layer(m, m->dec[i], x, &d);
    }
    return norm_fwd(m, m->dec_norm, x, &d.rows);
}

/* Logits [B, T, V] of y [B, T, E], over rows as ffn_rows does. */
static cf_tensor *generate(cf_transformer *m, cf_tensor *y)
{
    if (!y)
        return NULL;
    cf_tensor *rows = cf_reshape(y, CF_SHAPE(-1, y->shape[2]));
    cf_tensor *logits = cf_affine(rows, m->gen_weight, m->gen_bias);
    return cf_reshape(logits, CF_SHAPE(y->shape[0], y->shape[1], m->cfg.tgt_vocab));
}

cf_tensor *cf_transformer_forward(cf_transformer *m, cf_tensor *src, cf_tensor *tgt,
                                  cf_transformer_maps *maps)
{
    if (!have_model("cf_transformer_forward", m))
        return NULL;
    cf_tensor *memory = cf_transformer_encode(m, src, maps);
    if (!memory)
        return NULL;
    return generate(m, cf_transformer_decode(m, tgt, memory, src, maps));
}

/* ---- Generation ----
 * One position per step: the self-attention keys and values of earlier
 * positions come from per-layer caches, the cross-attention ones are
 * projected once per source. Everything runs without a graph, in eval mode,
 * in two private arenas: `keep` for what lasts a source, `step` for the
 * temporaries of one step. */

typedef struct {
    cf_transformer *m;
    cf_arena *keep, *step, *prev;
    bool was_training, grad;
    int64_t rows;        /* hypotheses decoded side by side */
    int pos;             /* position of the next input token */
    cf_kv_cache **cache; /* [dec_layers] */
    cf_tensor **k, **v;  /* [dec_layers], [rows, H, S, Dh] */
    cf_tensor *allow;    /* [rows, 1, 1, S] */
    int32_t *tokens;     /* [rows] */
} gen;

static bool gen_begin(gen *g, cf_transformer *m, int64_t rows, int max_len)
{
    *g = (gen){.m = m, .rows = rows, .was_training = m->base.training};
    g->grad = cf_set_grad_enabled(false);
    cf_module_train(&m->base, false);
    g->keep = cf_arena_new(0);
    g->step = cf_arena_new(0);
    g->prev = cf_arena_use(g->keep);
    int n = m->cfg.dec_layers;
    g->cache = cf_calloc(n, sizeof *g->cache);
    g->k = cf_calloc(n, sizeof *g->k);
    g->v = cf_calloc(n, sizeof *g->v);
    g->tokens = cf_calloc(rows, sizeof *g->tokens);
    if (!g->keep || !g->step || !g->cache || !g->k || !g->v || !g->tokens) {
        cf_error_set(CF_ERR_NOMEM, "cf_transformer: out of memory for decoding");
        return false;
    }
    for (int i = 0; i < n; i++)
        if (!(g->cache[i] = cf_kv_cache_new(m->dec[i]->self_attn, rows, max_len)))
            return false;
    return true;
}

static void gen_end(gen *g)
{
    for (int i = 0; g->cache && i < g->m->cfg.dec_layers; i++)
        cf_kv_cache_free(g->cache[i]);
    cf_free(g->cache), cf_free(g->k), cf_free(g->v), cf_free(g->tokens);
    cf_arena_use(g->prev);
    cf_arena_free(g->keep);
    cf_arena_free(g->step);
    cf_module_train(&g->m->base, g->was_training);
    cf_set_grad_enabled(g->grad);
}

/* Starts decoding all of src [B, S] (row < 0; B = rows) or its row `row`,
 * shared by all rows: encodes it into the keep arena and projects the cross
 * keys and values. */
static bool gen_source(gen *g, cf_tensor *src, int64_t row)
{
    cf_transformer *m = g->m;
    cf_arena_reset(g->keep);
    cf_arena_use(g->keep);
    for (int i = 0; i < m->cfg.dec_layers; i++)
        cf_kv_cache_clear(g->cache[i]);
    g->pos = 0;
    if (row >= 0)
        src = cf_slice(src, 0, row, row + 1, 1);
    cf_tensor *memory = cf_transformer_encode(m, src, NULL);
    if (!memory)
        return false;
    int64_t b = src->shape[0], S = src->shape[1], E = m->cfg.d_model, H = m->cfg.heads;
    g->allow = cf_expand(cf_view(cf_logical_not(padding(m, src)), CF_SHAPE(b, 1, 1, S)),
                         CF_SHAPE(g->rows, 1, 1, S));
    for (int i = 0; i < m->cfg.dec_layers; i++) {
        cf_mha *a = m->dec[i]->cross_attn;
        cf_tensor *kv =
            cf_affine(memory, cf_slice(a->in_proj_weight, 0, E, 3 * E, 1),
                      a->in_proj_bias ? cf_slice(a->in_proj_bias, 0, E, 3 * E, 1) : NULL);
        /* [b, S, 2, H, Dh] -> [2, b, H, S, Dh], made contiguous once. */
        kv = cf_contiguous(
            cf_permute(cf_view(kv, CF_SHAPE(b, S, 2, H, E / H)), (int[]){2, 0, 3, 1, 4}));
        g->k[i] =
            cf_expand(cf_squeeze(cf_slice(kv, 0, 0, 1, 1), 0), CF_SHAPE(g->rows, H, S, E / H));
        g->v[i] =
            cf_expand(cf_squeeze(cf_slice(kv, 0, 1, 2, 1), 0), CF_SHAPE(g->rows, H, S, E / H));
        if (!g->k[i] || !g->v[i])
            return false;
    }
    return g->allow != NULL;
}

/* Feeds g->tokens at the next position; returns the logits [rows, V] in the
 * step arena (valid until the next step). */
static cf_tensor *gen_step(gen *g)
{
    cf_transformer *m = g->m;
    cf_arena_reset(g->step);
    cf_arena_use(g->step);
    cf_tensor *x =
        embed(m, m->tgt_embed, m->tgt_pos, cf_from_ints(g->tokens, CF_SHAPE(g->rows, 1)), g->pos);
    for (int i = 0; x && i < m->cfg.dec_layers; i++) {
        dec_in d = {.cache = g->cache[i], .k = g->k[i], .v = g->v[i], .allow = g->allow};
        x = dec_layer(m, m->dec[i], x, &d);
    }
    g->pos++;
    cf_tensor *logits = generate(m, norm_fwd(m, m->dec_norm, x, NULL));
    return cf_reshape(logits, CF_SHAPE(g->rows, m->cfg.tgt_vocab));
}

static bool check_generate(cf_transformer *m, const char *fn, cf_tensor *src, int max_len,
                           const void *out)
{
    if (!m || !out) {
        cf_error_set(CF_ERR_ARG, "%s: model or output is NULL", fn);
        return false;
    }
    if (max_len < 1 || max_len > m->cfg.max_len) {
        cf_error_set(CF_ERR_ARG, "%s: max_len %d must be in [1, %d] (the model's max_len)", fn,
                     max_len, m->cfg.max_len);
        return false;
    }
    return check_tokens(m, fn, "src", src, -1);
}

static cf_status transformer_greedy(cf_transformer *m, cf_tensor *src, int max_len, int32_t *out)
{
    if (!check_generate(m, "cf_transformer_greedy", src, max_len, out))
        return cf_error();
    const cf_transformer_config *c = &m->cfg;
    int64_t B = src->shape[0];
    int V = c->tgt_vocab;
    for (int64_t i = 0; i < B * max_len; i++)
        out[i] = c->pad_id;
    gen g;
    bool *done = cf_calloc(B, sizeof *done);
    float *scores = cf_malloc(sizeof *scores * (size_t)(B * V));
    if (gen_begin(&g, m, B, max_len) && done && scores && gen_source(&g, src, -1)) {
        for (int64_t b = 0; b < B; b++)
            g.tokens[b] = c->bos_id;
        int64_t live = B;
        for (int t = 0; t < max_len && live > 0; t++) {
            cf_tensor *logits = gen_step(&g);
            if (!logits)
                break;
            cf_copy_to(logits, scores);
            for (int64_t b = 0; b < B; b++) {
                const float *row = scores + b * V;
                if (done[b]) {
                    g.tokens[b] = c->pad_id;
                    continue;
                }
                /* Padding is never generated: it only fills after eos. */
                int best = -1;
                for (int v = 0; v < V; v++)
                    if (v != c->pad_id && (best < 0 || row[v] > row[best]))
                        best = v;
                out[b * max_len + t] = g.tokens[b] = best;
                if (best == c->eos_id) {
                    done[b] = true;
                    live--;
                }
            }
        }
    } else if (!done || !scores) {
        cf_error_set(CF_ERR_NOMEM, "cf_transformer_greedy: out of memory");
    }
    gen_end(&g);
    cf_free(done);
    cf_free(scores);
    return cf_error();
}

/* cf_decoder callbacks: the live hypotheses occupy the first rows of a
 * batch of `beam` rows; the others repeat the first and are ignored, so the
 * caches keep one shape throughout. */
static cf_status beam_step(void *ud, const int32_t *tokens, int n, float *logp)
{
    gen *g = ud;
    for (int64_t i = 0; i < g->rows; i++)
        g->tokens[i] = tokens[i < n ? i : 0];
    cf_tensor *lp = cf_log_softmax(gen_step(g), -1);
    if (!lp)
        return cf_error();
    int V = g->m->cfg.tgt_vocab;
    cf_copy_to(cf_slice(lp, 0, 0, n, 1), logp);
    for (int i = 0; i < n; i++)
        logp[(size_t)i * V + g->m->cfg.pad_id] = -INFINITY;
    return CF_OK;
}

static cf_status beam_reorder(void *ud, const int *from, int n)
{
    gen *g = ud;
    /* Rows hold H blocks of max_len positions; only the first len count. */
    for (int i = 0; i < g->m->cfg.dec_layers; i++) {
        cf_kv_cache *c = g->cache[i];
        int64_t H = c->k->shape[1], Dh = c->k->shape[3], len = c->len;
        size_t block = sizeof(float) * (size_t)(len * Dh);
        float *tmp = cf_arena_alloc(block * (size_t)(g->rows * H));
        if (!tmp)
            return cf_error();
        cf_tensor *kv[2] = {c->k, c->v};
        for (int w = 0; w < 2; w++) {
            float *d = kv[w]->data;
            for (int64_t r = 0; r < g->rows; r++)
                for (int64_t h = 0; h < H; h++)
                    memcpy(tmp + (r * H + h) * len * Dh,
                           d + ((int64_t)from[r < n ? r : 0] * H + h) * c->max_len * Dh, block);
            for (int64_t r = 0; r < g->rows; r++)
                for (int64_t h = 0; h < H; h++)
                    memcpy(d + (r * H + h) * c->max_len * Dh, tmp + (r * H + h) * len * Dh, block);
        }
    }
    return CF_OK;
}

static cf_status transformer_beam(cf_transformer *m, cf_tensor *src, int beam, float alpha,
                                  int max_len, int32_t *out)
{
    if (!check_generate(m, "cf_transformer_beam", src, max_len, out))
        return cf_error();
    if (beam < 1) {
        cf_error_set(CF_ERR_ARG, "cf_transformer_beam: beam %d must be positive", beam);
        return cf_error();
    }
    const cf_transformer_config *c = &m->cfg;
    gen g;
    if (gen_begin(&g, m, beam, max_len)) {
        cf_decoder d = {.step = beam_step,
                        .reorder = beam_reorder,
                        .ud = &g,
                        .vocab = c->tgt_vocab,
                        .bos = c->bos_id,
                        .eos = c->eos_id,
                        .pad = c->pad_id};
        for (int64_t b = 0; b < src->shape[0]; b++) {
            if (!gen_source(&g, src, b) ||
                cf_beam_search(&d, beam, alpha, max_len, out + b * max_len) != CF_OK)
                break;
        }
    }
    gen_end(&g);
    return cf_error();
}

cf_status cf_transformer_greedy(cf_transformer *m, cf_tensor *src, int max_len, int32_t *out)
{
    if (!src) {
        cf_error_set(CF_ERR_ARG,
                     "cf_transformer_greedy: src is NULL"); /* or the error that made it NULL */
        return cf_error();
    }
    cf_error_frame saved;
    cf_error_enter(&saved);
    return cf_error_leave(&saved, transformer_greedy(m, src, max_len, out));
}

cf_status cf_transformer_beam(cf_transformer *m, cf_tensor *src, int beam, float alpha, int max_len,
                              int32_t *out)
{
    if (!src) {
        cf_error_set(CF_ERR_ARG,
                     "cf_transformer_beam: src is NULL"); /* or the error that made it NULL */
        return cf_error();
    }
    cf_error_frame saved;
    cf_error_enter(&saved);
    return cf_error_leave(&saved, transformer_beam(m, src, beam, alpha, max_len, out));
}
