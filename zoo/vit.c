/* A Vision Transformer (Dosovitskiy et al. 2021) with the layout and
 * parameter names of timm's VisionTransformer, written with the public API
 * only.
 *
 * B = batch, C = channels, S = image size, P = patch size, N = (S / P)^2
 * patches, T = N + 1 tokens (CLS first), D = width, H = heads,
 * Dh = D / H, F = MLP hidden size, K = classes.
 *
 * The config's dropout acts after the positional embedding is added, after
 * the attention projection and after fc2 (timm's drop_rate and proj_drop;
 * timm's Mlp also drops after the activation, which this model does not),
 * in training mode only. */
#include "cformer/zoo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* One pre-norm encoder block:
 *   x = x + proj_drop(proj(attn(norm1(x))))
 *   x = x + drop2(fc2(gelu(fc1(norm2(x))))) */
typedef struct {
    cf_layernorm *norm1, *norm2;
    cf_linear *qkv, *proj, *fc1, *fc2;
    cf_dropout_mod *proj_drop, *drop2;
} vit_block;

struct cf_vit {
    cf_module base;
    cf_vit_config cfg;
    int patches;                  /* N */
    cf_tensor *patch_w, *patch_b; /* [D, C, P, P], [D] */
    cf_tensor *cls_token;         /* [1, 1, D] */
    cf_tensor *pos_embed;         /* [1, T, D] */
    cf_dropout_mod *pos_drop;
    cf_layernorm *norm;
    cf_linear *head;
    vit_block blocks[]; /* depth */
};

cf_module *cf_vit_module(cf_vit *m) { return m ? &m->base : NULL; }

/* timm's trunc_normal_(std=.02) cuts at -2 and 2 in absolute terms, 100
 * standard deviations out, so what it draws is N(0, .02^2). */
static void init_normal(cf_tensor *t, cf_rng *g) { cf_fill_normal(g, t, 0, 0.02f); }

/* A Linear initialised as timm's ViT does (init_weights_vit_timm): weight
 * N(0, .02^2), bias zero. */
static cf_linear *vit_linear(cf_module *parent, const char *name, int in, int out, cf_rng *g)
{
    cf_linear *l = cf_linear_new(parent, name, in, out, true, g);
    if (l) {
        init_normal(l->weight, g);
        cf_fill(l->bias, 0);
    }
    return l;
}

/* Records CF_ERR_ARG naming the first invalid field of c; false then. */
static bool valid_config(const cf_vit_config *c)
{
    char why[128] = "";
    if (!c)
        snprintf(why, sizeof why, "config is NULL");
    else if (c->image_size < 1 || c->channels < 1 || c->patch_size < 1 || c->dim < 1 ||
             c->depth < 1 || c->heads < 1 || c->classes < 1)
        snprintf(why, sizeof why,
                 "image_size %d, channels %d, patch_size %d, dim %d, depth %d, heads %d and "
                 "classes %d must be positive",
                 c->image_size, c->channels, c->patch_size, c->dim, c->depth, c->heads, c->classes);
    else if (c->image_size % c->patch_size)
        snprintf(why, sizeof why, "image_size %d is not a multiple of patch_size %d", c->image_size,
                 c->patch_size);
    else if (c->dim % c->heads)
        snprintf(why, sizeof why, "dim %d is not a multiple of heads %d", c->dim, c->heads);
    else if (!(c->mlp_ratio > 0) || (int)((double)c->dim * c->mlp_ratio) < 1)
        snprintf(why, sizeof why, "mlp_ratio %g gives no hidden units for dim %d", c->mlp_ratio,
                 c->dim);
    else if (!(c->dropout >= 0 && c->dropout <= 1))
        snprintf(why, sizeof why, "dropout %g is outside [0, 1]", c->dropout);
    if (*why)
        cf_error_set(CF_ERR_ARG, "cf_vit_new: %s", why);
    return !*why;
}

static bool block_new(cf_module *blocks, int i, const cf_vit_config *c, int hidden, uint64_t seed,
                      vit_block *b, cf_rng *g)
{
    char name[16];
    snprintf(name, sizeof name, "%d", i);
    cf_module *blk = cf_module_new("Block", blocks, name);
    if (!blk)
        return false;
    cf_module *attn = cf_module_new("Attention", blk, "attn");
    cf_module *mlp = cf_module_new("Mlp", blk, "mlp");
    if (!attn || !mlp)
        return false;
    int D = c->dim;
    b->norm1 = cf_layernorm_new(blk, "norm1", D, 1e-6f, true);
    b->qkv = vit_linear(attn, "qkv", D, 3 * D, g);
    b->proj = vit_linear(attn, "proj", D, D, g);
    b->proj_drop = cf_dropout_new(attn, "proj_drop", c->dropout, seed);
    b->norm2 = cf_layernorm_new(blk, "norm2", D, 1e-6f, true);
    b->fc1 = vit_linear(mlp, "fc1", D, hidden, g);
    b->fc2 = vit_linear(mlp, "fc2", hidden, D, g);
    b->drop2 = cf_dropout_new(mlp, "drop2", c->dropout, seed + 1);
    return b->norm1 && b->qkv && b->proj && b->proj_drop && b->norm2 && b->fc1 && b->fc2 &&
           b->drop2;
}

cf_vit *cf_vit_new(const cf_vit_config *cfg, cf_rng *g)
{
    if (!valid_config(cfg))
        return NULL;
    const cf_vit_config *c = cfg;
    cf_vit *m = cf_calloc(1, sizeof *m + sizeof(vit_block) * (size_t)c->depth);
    if (!m) {
        cf_error_set(CF_ERR_NOMEM, "cf_vit_new: out of memory");
        return NULL;
    }
    cf_module_init(&m->base, "VisionTransformer", NULL, ""); /* a root named "" cannot fail */
    m->cfg = *c;
    int64_t side = c->image_size / c->patch_size, D = c->dim, P = c->patch_size;
    m->patches = (int)(side * side);
    int hidden = (int)((double)c->dim * c->mlp_ratio); /* timm: int(dim * mlp_ratio) */
    /* Each Dropout gets its own stream, so equal-shaped masks differ. */
    uint64_t seed = g ? g->seed ^ (g->offset * 0x9E3779B97F4A7C15ull) : 0x766974u;

    m->cls_token = cf_module_param(&m->base, "cls_token", CF_SHAPE(1, 1, D));
    m->pos_embed = cf_module_param(&m->base, "pos_embed", CF_SHAPE(1, m->patches + 1, D));
    cf_module *pe = cf_module_new("PatchEmbed", &m->base, "patch_embed");
    cf_module *proj = pe ? cf_module_new("Conv2d", pe, "proj") : NULL;
    if (proj) {
        m->patch_w = cf_module_param(proj, "weight", CF_SHAPE(D, c->channels, P, P));
        m->patch_b = cf_module_param(proj, "bias", CF_SHAPE(D));
    }
    m->pos_drop = cf_dropout_new(&m->base, "pos_drop", c->dropout, seed);
    cf_module *blocks = cf_module_new("Sequential", &m->base, "blocks");
    bool ok = m->cls_token && m->pos_embed && m->patch_w && m->patch_b && m->pos_drop && blocks;
    for (int i = 0; ok && i < c->depth; i++)
        ok = block_new(blocks, i, c, hidden, seed + 1 + 2 * (uint64_t)i, &m->blocks[i], g);
    if (ok) {
        m->norm = cf_layernorm_new(&m->base, "norm", c->dim, 1e-6f, true);
        m->head = vit_linear(&m->base, "head", c->dim, c->classes, g);
    }
    if (!ok || !m->norm || !m->head) {
        cf_module_free(&m->base);
        return NULL;
    }
    /* The patch embedding keeps PyTorch's Conv2d initialisation, as in timm. */
    float fan_in = (float)(c->channels * P * P);
    cf_init_kaiming_uniform(m->patch_w, sqrtf(5.0f), g);
    cf_fill_uniform(g, m->patch_b, -1 / sqrtf(fan_in), 1 / sqrtf(fan_in));
    init_normal(m->pos_embed, g);
    init_normal(m->cls_token, g);
    return m;
}

/* The patch convolution (kernel and stride P) as one matrix product:
 * images [B, C, S, S] -> patches [B*N, C*P*P] in the (c, i, j) order of the
 * weight's [D, C, P, P] -> tokens [B*N, D]. */
static cf_tensor *patch_embed(cf_vit *m, cf_tensor *images)
{
    const cf_vit_config *c = &m->cfg;
    int64_t B = images->shape[0], C = c->channels, P = c->patch_size, G = c->image_size / P,
            D = c->dim;
    cf_tensor *grid = cf_view(images, CF_SHAPE(B, C, G, P, G, P));
    cf_tensor *patches =
        cf_reshape(cf_permute(grid, (int[]){0, 2, 4, 1, 3, 5}), CF_SHAPE(B * G * G, C * P * P));
    cf_tensor *w = cf_view(m->patch_w, CF_SHAPE(D, C * P * P));
    return cf_affine(patches, w, m->patch_b);
}

/* Multi-head self-attention of x [B*T, D]; *map (if not NULL) receives the
 * weights [B, H, T, T]. */
static cf_tensor *attention(cf_vit *m, vit_block *b, cf_tensor *x, int64_t B, cf_tensor **map)
{
    int64_t T = m->patches + 1, D = m->cfg.dim, H = m->cfg.heads;
    cf_tensor *qkv = cf_linear_forward(b->qkv, x); /* [B*T, 3D] */
    /* [B, T, 3, H, Dh] -> [3, B, H, T, Dh]: q, k, v are strided views. */
    cf_tensor *heads =
        cf_permute(cf_view(qkv, CF_SHAPE(B, T, 3, H, D / H)), (int[]){2, 0, 3, 1, 4});
    cf_tensor *qkv3[3];
    for (int i = 0; i < 3; i++)
        qkv3[i] = cf_squeeze(cf_slice(heads, 0, i, i + 1, 1), 0);
    cf_attention_opts o = {.weights = map};
    cf_tensor *a = cf_attention(qkv3[0], qkv3[1], qkv3[2], &o); /* [B, H, T, Dh] */
    cf_tensor *y = cf_reshape(cf_permute(a, (int[]){0, 2, 1, 3}), CF_SHAPE(B * T, D));
    return cf_linear_forward(b->proj, y);
}

static cf_tensor *mlp(vit_block *b, cf_tensor *x)
{
    cf_tensor *h = cf_gelu(cf_linear_forward(b->fc1, x), false); /* [B*T, F] */
    return cf_linear_forward(b->fc2, h);
}

cf_tensor *cf_vit_forward(cf_vit *m, cf_tensor *images, cf_tensor **maps)
{
    if (!m || !images) {
        cf_error_set(CF_ERR_ARG, "cf_vit_forward: %s is NULL", m ? "images" : "model");
        return NULL;
    }
    const cf_vit_config *c = &m->cfg;
    if (images->dtype != CF_F32 || images->ndim != 4 || images->shape[1] != c->channels ||
        images->shape[2] != c->image_size || images->shape[3] != c->image_size ||
        images->shape[0] < 1) {
        char s[96];
        cf_error_set(CF_ERR_SHAPE,
                     "cf_vit_forward: images are %s %s, expected float32 [B, %d, %d, %d]",
                     cf_dtype_name(images->dtype), cf_shape_str(images, s, sizeof s), c->channels,
                     c->image_size, c->image_size);
        return NULL;
    }
    int64_t B = images->shape[0], N = m->patches, T = N + 1, D = c->dim;
    cf_tensor *tokens = cf_view(patch_embed(m, images), CF_SHAPE(B, N, D));
    cf_tensor *cls = cf_expand(m->cls_token, CF_SHAPE(B, 1, D));
    cf_tensor *x = cf_add(cf_cat(2, (cf_tensor *[]){cls, tokens}, 1), m->pos_embed); /* [B, T, D] */
    /* The blocks see the tokens as one [B*T, D] matrix, so each weight
     * gradient is one product over all tokens (a batched input would make
     * cf_matmul's backward add up B small products one after another). */
    x = cf_view(cf_dropout_forward(m->pos_drop, x), CF_SHAPE(B * T, D));
    for (int i = 0; i < c->depth; i++) {
        vit_block *b = &m->blocks[i];
        /* The residuals write over the sublayers' outputs (and apply
         * their dropout), which nothing else reads. */
        x = cf_residual_forward(
            b->proj_drop, x,
            attention(m, b, cf_layernorm_forward(b->norm1, x), B, maps ? &maps[i] : NULL));
        x = cf_residual_forward(b->drop2, x, mlp(b, cf_layernorm_forward(b->norm2, x)));
    }
    /* The norm acts on each token alone: normalising the CLS token only
     * gives timm's head(norm(x)[:, 0]). */
    cf_tensor *cls_out = cf_slice(cf_view(x, CF_SHAPE(B, T * D)), 1, 0, D, 1); /* [B, D] */
    return cf_linear_forward(m->head, cf_layernorm_forward(m->norm, cls_out));
}

cf_tensor *cf_vit_rollout(const cf_vit *m, cf_tensor *const *maps)
{
    if (!m || !maps) {
        cf_error_set(CF_ERR_ARG, "cf_vit_rollout: %s is NULL", m ? "maps" : "model");
        return NULL;
    }
    const cf_vit_config *c = &m->cfg;
    int64_t T = m->patches + 1, B = maps[0] ? maps[0]->shape[0] : 0;
    cf_tensor *rollout = NULL; /* [B, T, T] */
    for (int i = 0; i < c->depth; i++) {
        const cf_tensor *a = maps[i];
        if (!a || a->dtype != CF_F32 || a->ndim != 4 || a->shape[0] != B ||
            a->shape[1] != c->heads || a->shape[2] != T || a->shape[3] != T) {
            char s[96] = "NULL";
            if (a)
                cf_shape_str(a, s, sizeof s);
            cf_error_set(CF_ERR_SHAPE,
                         "cf_vit_rollout: map %d is %s, expected float32 [%lld, %d, %lld, %lld]", i,
                         s, (long long)B, c->heads, (long long)T, (long long)T);
            return NULL;
        }
        cf_tensor *eye = cf_zeros(CF_SHAPE(T, T));
        if (!eye)
            return NULL;
        for (int64_t t = 0; t < T; t++)
            ((float *)eye->data)[t * T + t] = 1;
        /* Residual connections carry each token through: average the heads,
         * add the identity and make the rows distributions again. */
        cf_tensor *r = cf_add(cf_mean(maps[i], CF_DIMS(1), false), eye); /* [B, T, T] */
        r = cf_div(r, cf_sum(r, CF_DIMS(-1), true));
        rollout = rollout ? cf_matmul(r, rollout) : r;
    }
    /* The CLS token's row, over the patches. */
    return cf_squeeze(cf_slice(cf_slice(rollout, 1, 0, 1, 1), 2, 1, T, 1), 1);
}
