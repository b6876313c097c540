/* The bad-input table: one row per hostile call, each with the status it
 * must report and a fragment of its message. Every row runs as its own test
 * (a Check loop test, in its own process), so a row that crashes or hangs
 * fails alone.
 *
 * A row is ROW(kind, call, status, fragment): kind says how the call shows
 * its failure, status and fragment what cf_error() and cf_error_message()
 * must say afterwards:
 *   P  returns a pointer: NULL
 *   S  returns a cf_status: that status
 *   F  returns a float: NaN
 *   I  returns an int: -1
 *   V  returns nothing
 *   A  returns a pointer, NULL with anomaly mode on (turned on first)
 *   N  returns a tensor, with status CF_OK: it holds NaN (or infinity),
 *      which propagates as in PyTorch
 *   E  returns a pointer, non-NULL with status CF_OK: an empty result is
 *      not an error */
#include "tests/util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Operands ---- */

static cf_tensor *f1(int64_t n) { return cf_arange(0, (float)n, 1); }
static cf_tensor *f2(int64_t r, int64_t c) { return cf_full(0.5f, CF_SHAPE(r, c)); }
static cf_tensor *f4(int64_t b, int64_t h, int64_t t, int64_t d)
{
    return cf_full(0.25f, CF_SHAPE(b, h, t, d));
}
static cf_tensor *ints(int64_t n, int32_t v)
{
    cf_tensor *t = cf_empty(CF_I32, CF_SHAPE(n));
    for (int64_t i = 0; t && i < n; i++)
        ((int32_t *)t->data)[i] = v;
    return t;
}
static cf_tensor *mask(int64_t r, int64_t c) { return cf_empty(CF_BOOL, CF_SHAPE(r, c)); }
/* r x c floats, element 0 replaced by v (NaN or infinity): made without an
 * op, so that anomaly mode blames the op under test. */
static cf_tensor *bad2(int64_t r, int64_t c, float v)
{
    cf_tensor *t = f2(r, c);
    cf_set(t, CF_IDX(0, 0), v);
    return t;
}
static cf_tensor *empty2(int64_t r, int64_t c) { return cf_zeros(CF_SHAPE(r, c)); }
static cf_tensor *leaf(void) { return cf_requires_grad(f2(2, 3), true); }
static cf_tensor *big(void)
{
    return cf_tensor_new(CF_F32, CF_SHAPE((int64_t)1 << 32, (int64_t)1 << 32));
}
static cf_tensor **no_out;
static const int64_t *no_shape;
static const int *no_dims;

/* ---- Calls with some state ---- */

static cf_status backward_twice(void)
{
    cf_tensor *loss = cf_sum_all(cf_exp(leaf()));
    if (cf_backward(loss) != CF_OK)
        return CF_OK; /* not the failure this row is about */
    return cf_backward(loss);
}

static cf_status backward_shared_subgraph(void)
{
    cf_tensor *h = cf_tanh(leaf());
    if (cf_backward(cf_sum_all(h)) != CF_OK)
        return CF_OK;
    return cf_backward(cf_mean_all(h));
}

static cf_status backward_with_int_grad(void)
{
    cf_tensor *y = cf_exp(cf_requires_grad(f1(3), true));
    return cf_backward_with(y, ints(3, 1));
}

static cf_status anomaly_backward(void)
{
    cf_set_anomaly(true);
    cf_tensor *x = cf_requires_grad(cf_zeros(CF_SHAPE(3)), true);
    return cf_backward(cf_sum_all(cf_sqrt(x)));
}

static cf_status anomaly_seed(void)
{
    cf_set_anomaly(true);
    cf_tensor *y = cf_exp(leaf());
    return cf_backward_with(y, bad2(2, 3, INFINITY));
}

static cf_tensor *nine_dims(void)
{
    static const int64_t ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    return cf_zeros(9, ones);
}
static cf_tensor *permute_repeated(void) { return cf_permute(f2(2, 3), (const int[]){0, 0}); }
static cf_tensor *sum_repeated(void) { return cf_sum(f2(2, 3), CF_DIMS(1, -1), false); }

static cf_tensor *cat_mismatch(void) { return cf_cat(2, (cf_tensor *[]){f2(2, 3), f2(2, 4)}, 0); }
static cf_tensor *cat_with_null(void) { return cf_cat(2, (cf_tensor *[]){f2(2, 3), NULL}, 0); }
static cf_tensor *cat_dtypes(void) { return cf_cat(2, (cf_tensor *[]){f1(3), ints(3, 0)}, 0); }
static cf_tensor *cat_dim(void) { return cf_cat(2, (cf_tensor *[]){f2(2, 3), f2(2, 3)}, 2); }
static cf_tensor *cat_none(void) { return cf_cat(0, (cf_tensor *[]){NULL}, 0); }
static cf_tensor *stack_mismatch(void)
{
    return cf_stack(2, (cf_tensor *[]){f2(2, 3), f2(3, 2)}, 0);
}
static cf_tensor *stack_dim(void) { return cf_stack(2, (cf_tensor *[]){f2(2, 3), f2(2, 3)}, 4); }
static cf_tensor *stack_none(void) { return cf_stack(0, (cf_tensor *[]){NULL}, 0); }
static int split_zero(void)
{
    cf_tensor *out[4];
    return cf_split(f2(4, 4), 0, 0, out, 4);
}
static int split_dim(void)
{
    cf_tensor *out[4];
    return cf_split(f2(4, 4), 2, 5, out, 4);
}
static int chunk_zero(void)
{
    cf_tensor *out[4];
    return cf_chunk(f2(4, 4), 0, 0, out);
}

static cf_tensor *layer_norm_weight_shape(void)
{
    return cf_layer_norm(f2(2, 3), 1, f1(4), NULL, 1e-5f);
}

static cf_tensor *attention_mask(cf_tensor *m)
{
    cf_attention_opts o = {.mask = m};
    return cf_attention(f4(1, 2, 3, 4), f4(1, 2, 5, 4), f4(1, 2, 5, 4), &o);
}
static cf_tensor *attention_dropout(float p)
{
    cf_attention_opts o = {.dropout = p};
    return cf_attention(f4(1, 1, 2, 4), f4(1, 1, 2, 4), f4(1, 1, 2, 4), &o);
}
static cf_tensor *attention_nan_q(void)
{
    cf_tensor *q = f4(1, 1, 2, 4);
    cf_set(q, CF_IDX(0, 0, 1, 0), NAN);
    return cf_attention(q, f4(1, 1, 3, 4), f4(1, 1, 3, 4), NULL);
}
static cf_tensor *attention_nan_scale(void)
{
    cf_attention_opts o = {.scale = NAN};
    return cf_attention(f4(1, 1, 2, 4), f4(1, 1, 3, 4), f4(1, 1, 3, 4), &o);
}
static cf_tensor *attention_inf_k(void)
{
    cf_tensor *k = f4(1, 1, 3, 4);
    cf_set(k, CF_IDX(0, 0, 2, 1), INFINITY);
    return cf_attention(f4(1, 1, 2, 4), k, f4(1, 1, 3, 4), NULL);
}
static cf_tensor *attention_no_keys(void)
{
    return cf_attention(f4(1, 1, 2, 4), f4(1, 1, 0, 4), f4(1, 1, 0, 3), NULL);
}

static cf_tensor *ce(cf_tensor *logits, cf_tensor *target)
{
    return cf_cross_entropy(logits, target, NULL);
}
static cf_tensor *ce_smoothing(float s)
{
    return cf_cross_entropy(f2(2, 3), ints(2, 0), &(cf_loss_opts){.label_smoothing = s});
}
static cf_tensor *ce_reduction(int r)
{
    return cf_cross_entropy(f2(2, 3), ints(2, 0), &(cf_loss_opts){.reduction = (cf_reduction)r});
}
static cf_tensor *nll_smoothing(void)
{
    return cf_nll_loss(f2(2, 3), ints(2, 0), &(cf_loss_opts){.label_smoothing = 0.1f});
}
static cf_tensor *ce_all_ignored(void)
{
    return cf_cross_entropy(f2(2, 3), ints(2, 1),
                            &(cf_loss_opts){.ignore = true, .ignore_index = 1});
}

static float get_at(cf_tensor *t, int64_t i, int64_t j) { return cf_get(t, CF_IDX(i, j)); }
static void set_at(cf_tensor *t, int64_t i) { cf_set(t, CF_IDX(i), 1); }

/* nn and zoo. */
static cf_linear *linear(void) { return cf_linear_new(NULL, "fc", 4, 3, true, NULL); }
static cf_tensor *linear_fwd(cf_tensor *x)
{
    cf_linear *l = linear();
    cf_tensor *y = cf_linear_forward(l, x);
    cf_module_free(l ? &l->base : NULL);
    return y;
}
static cf_tensor *embedding_fwd(cf_tensor *idx)
{
    cf_embedding_mod *e = cf_embedding_new(NULL, "emb", 5, 2, -1, NULL);
    cf_tensor *y = cf_embedding_forward(e, idx);
    cf_module_free(e ? &e->base : NULL);
    return y;
}
static cf_tensor *mha_fwd(cf_tensor *x)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 4, 2, 0, true, NULL);
    cf_tensor *y = cf_mha_forward(m, x, x, x, NULL);
    cf_module_free(m ? &m->base : NULL);
    return y;
}
static cf_tensor *pos_fwd(int64_t start, int64_t T)
{
    cf_pos_embedding *p = cf_pos_embedding_new(NULL, "pos", 8, 2, NULL);
    cf_tensor *y = cf_pos_embedding_forward(p, start, T);
    cf_module_free(p ? &p->base : NULL);
    return y;
}
static cf_tensor *transformer_fwd(int32_t token)
{
    cf_transformer_config c = cf_transformer_small(10, 10);
    c.d_model = 8, c.heads = 2, c.ff = 16, c.enc_layers = c.dec_layers = 1, c.max_len = 8;
    cf_rng g;
    cf_rng_init(&g, 1);
    cf_transformer *m = cf_transformer_new(&c, &g);
    cf_tensor *src = cf_from_ints((const int32_t[]){1, 2, 3}, CF_SHAPE(1, 3));
    cf_tensor *tgt = cf_from_ints((const int32_t[]){1, token}, CF_SHAPE(1, 2));
    cf_tensor *y = cf_transformer_forward(m, src, tgt, NULL);
    cf_module_free(m ? cf_transformer_module(m) : NULL);
    return y;
}
static cf_optim *sgd(float lr, float momentum)
{
    cf_linear *l = linear();
    cf_optim *o = cf_sgd_new(l ? &l->base : NULL, &(cf_sgd_opts){.lr = lr, .momentum = momentum});
    cf_optim_free(o);
    cf_module_free(l ? &l->base : NULL);
    return o;
}
static cf_optim *adam_beta(float b1)
{
    cf_linear *l = linear();
    cf_optim *o = cf_adam_new(&l->base, &(cf_adam_opts){.lr = 1e-3f, .beta1 = b1, .beta2 = 0.999f});
    cf_optim_free(o);
    cf_module_free(&l->base);
    return o;
}

static cf_transformer *tiny_transformer(void)
{
    cf_transformer_config c = cf_transformer_small(10, 10);
    c.d_model = 8, c.heads = 2, c.ff = 16, c.enc_layers = c.dec_layers = 1, c.max_len = 8;
    cf_rng g;
    cf_rng_init(&g, 1);
    return cf_transformer_new(&c, &g);
}
static cf_status greedy(int max_len, bool with_out, int32_t token)
{
    cf_transformer *m = tiny_transformer();
    int32_t out[64];
    cf_tensor *src =
        token < 0 ? NULL : cf_from_ints((const int32_t[]){1, token, 3}, CF_SHAPE(1, 3));
    cf_status s = cf_transformer_greedy(m, src, max_len, with_out ? out : NULL);
    cf_module_free(m ? cf_transformer_module(m) : NULL);
    return s;
}
static cf_status beam(int width, float alpha)
{
    cf_transformer *m = tiny_transformer();
    int32_t out[8];
    cf_tensor *src = cf_from_ints((const int32_t[]){1, 2, 3}, CF_SHAPE(1, 3));
    cf_status s = cf_transformer_beam(m, src, width, alpha, 8, out);
    cf_module_free(m ? cf_transformer_module(m) : NULL);
    return s;
}
static cf_kv_cache *kv_cache(int64_t batch, int64_t max_len)
{
    cf_mha *m = cf_mha_new(NULL, "attn", 4, 2, 0, true, NULL);
    cf_kv_cache *c = cf_kv_cache_new(m, batch, max_len);
    cf_kv_cache_free(c);
    cf_module_free(m ? &m->base : NULL);
    return c;
}
static cf_tensor *gru_fwd(cf_tensor *x)
{
    cf_gru *m = cf_gru_new(NULL, "gru", 4, 3, 1, false, 0, true, NULL);
    cf_tensor *y = cf_gru_forward(m, x, NULL, NULL);
    cf_module_free(m ? &m->base : NULL);
    return y;
}
static float clip(float max_norm)
{
    cf_linear *l = linear();
    float n = cf_clip_grad_norm(&l->base, max_norm);
    cf_module_free(&l->base);
    return n;
}
static cf_module *module_named(const char *name)
{
    cf_module *m = cf_module_new("Net", NULL, name);
    cf_module_free(m);
    return m;
}

/* Files, in the scratch directory. */
static const char *scratch(const char *name) { return scratch_path(name); }
static cf_status open_path(const char *path)
{
    cf_safetensors *f = NULL;
    cf_status s = cf_safetensors_open(path, &f);
    cf_safetensors_close(f);
    return s;
}
static const char *fifo(void)
{
    const char *p = scratch("fifo");
    mkfifo(p, 0600);
    return p;
}
static const char *file_with(const char *bytes, size_t n)
{
    const char *p = scratch("f.safetensors");
    FILE *fp = fopen(p, "wb");
    if (fp) {
        fwrite(bytes, 1, n, fp);
        fclose(fp);
    }
    return p;
}
/* A raw newline inside a JSON string (which must be escaped). */
static const char *newline_in_a_name(void)
{
    static const char b[] = "\x10\0\0\0\0\0\0\0{\"a\n\":1}        ";
    return file_with(b, sizeof b - 1);
}
static cf_status save(const char *path, int n, const char *name, cf_tensor *t, const char *meta)
{
    const char *names[] = {name, name};
    cf_tensor *ts[] = {t, t};
    return cf_safetensors_save(path, n, names, ts, meta);
}
static cf_status module_load_missing(bool strict)
{
    cf_linear *l = linear();
    cf_status s = cf_module_load(&l->base, scratch("none.safetensors"), strict);
    cf_module_free(&l->base);
    return s;
}
static cf_status module_load_wrong_shape(void)
{
    const char *p = scratch("w.safetensors");
    if (save(p, 1, "weight", f2(4, 4), NULL) != CF_OK)
        return CF_OK;
    cf_linear *l = linear();
    cf_status s = cf_module_load(&l->base, p, false);
    cf_module_free(&l->base);
    return s;
}
static cf_status optim_load_module_file(void)
{
    cf_linear *l = linear();
    const char *p = scratch("m.safetensors");
    cf_status s = cf_module_save(&l->base, p);
    cf_optim *o = cf_adam_new(&l->base, NULL);
    if (s == CF_OK)
        s = cf_optim_load(o, p);
    cf_optim_free(o);
    cf_module_free(&l->base);
    return s;
}
static cf_tensor *get_missing(void)
{
    const char *p = scratch("g.safetensors");
    cf_safetensors *f = NULL;
    if (save(p, 1, "a", f1(2), NULL) != CF_OK || cf_safetensors_open(p, &f) != CF_OK)
        return f1(1);
    cf_tensor *t = cf_safetensors_get(f, "b\nc");
    cf_safetensors_close(f);
    return t;
}

#define P(e) ((e) == NULL)
#define S(e) ((e) != CF_OK)
#define F(e) isnan(e)
#define I(e) ((e) < 0)
#define V(e) ((e), true)
#define A(e) (cf_set_anomaly(true), (e) == NULL)
#define N(e) holds_non_finite(e)
#define E(e) ((e) != NULL)

static bool holds_non_finite(const cf_tensor *t)
{
    if (!t)
        return false;
    int64_t n = cf_numel(t);
    float *v = malloc(sizeof(float) * (n ? (size_t)n : 1));
    cf_copy_to(t, v);
    bool bad = false;
    for (int64_t i = 0; i < n; i++)
        bad |= !isfinite(v[i]);
    free(v);
    return bad;
}

static const int64_t huge = (int64_t)1 << 32;

/* The table. */
#define ROWS(ROW)                                                                                  \
    /* NULL operands of ops */                                                                     \
    ROW(P, cf_add(NULL, f1(2)), CF_ERR_ARG, "cf_add: operand 0 is NULL")                           \
    ROW(P, cf_sub(f1(2), NULL), CF_ERR_ARG, "cf_sub: operand 1 is NULL")                           \
    ROW(P, cf_mul(NULL, NULL), CF_ERR_ARG, "cf_mul: operand 0 is NULL")                            \
    ROW(P, cf_div(f1(2), NULL), CF_ERR_ARG, "cf_div")                                              \
    ROW(P, cf_neg(NULL), CF_ERR_ARG, "NULL")                                                       \
    ROW(P, cf_add_scalar(NULL, 1), CF_ERR_ARG, "NULL")                                             \
    ROW(P, cf_exp(NULL), CF_ERR_ARG, "cf_exp")                                                     \
    ROW(P, cf_log(NULL), CF_ERR_ARG, "cf_log")                                                     \
    ROW(P, cf_tanh(NULL), CF_ERR_ARG, "cf_tanh")                                                   \
    ROW(P, cf_sigmoid(NULL), CF_ERR_ARG, "cf_sigmoid")                                             \
    ROW(P, cf_relu(NULL), CF_ERR_ARG, "cf_relu")                                                   \
    ROW(P, cf_gelu(NULL, false), CF_ERR_ARG, "NULL")                                               \
    ROW(P, cf_sqrt(NULL), CF_ERR_ARG, "NULL")                                                      \
    ROW(P, cf_pow(f1(2), NULL), CF_ERR_ARG, "NULL")                                                \
    ROW(P, cf_clamp(NULL, 0, 1), CF_ERR_ARG, "NULL")                                               \
    ROW(P, cf_where(NULL, f1(2), f1(2)), CF_ERR_ARG, "NULL")                                       \
    ROW(P, cf_masked_fill(f2(2, 2), NULL, 0), CF_ERR_ARG, "NULL")                                  \
    ROW(P, cf_eq(NULL, f1(2)), CF_ERR_ARG, "NULL")                                                 \
    ROW(P, cf_sum(NULL, 0, NULL, false), CF_ERR_ARG, "NULL")                                       \
    ROW(P, cf_sum_all(NULL), CF_ERR_ARG, "NULL")                                                   \
    ROW(P, cf_mean_all(NULL), CF_ERR_ARG, "NULL")                                                  \
    ROW(P, cf_max(NULL, 0, false, NULL), CF_ERR_ARG, "NULL")                                       \
    ROW(P, cf_argmax(NULL, 0, false), CF_ERR_ARG, "NULL")                                          \
    ROW(P, cf_logsumexp(NULL, 0, NULL, false), CF_ERR_ARG, "NULL")                                 \
    ROW(P, cf_matmul(NULL, f2(2, 2)), CF_ERR_ARG, "cf_matmul")                                     \
    ROW(P, cf_matmul(f2(2, 2), NULL), CF_ERR_ARG, "cf_matmul")                                     \
    ROW(P, cf_view(NULL, CF_SHAPE(2)), CF_ERR_ARG, "NULL")                                         \
    ROW(P, cf_reshape(NULL, CF_SHAPE(2)), CF_ERR_ARG, "NULL")                                      \
    ROW(P, cf_permute(NULL, NULL), CF_ERR_ARG, "NULL")                                             \
    ROW(P, cf_transpose(NULL, 0, 1), CF_ERR_ARG, "NULL")                                           \
    ROW(P, cf_slice(NULL, 0, 0, 1, 1), CF_ERR_ARG, "cf_slice")                                     \
    ROW(P, cf_expand(NULL, CF_SHAPE(2)), CF_ERR_ARG, "cf_expand")                                  \
    ROW(P, cf_squeeze(NULL, 0), CF_ERR_ARG, "NULL")                                                \
    ROW(P, cf_unsqueeze(NULL, 0), CF_ERR_ARG, "NULL")                                              \
    ROW(P, cf_contiguous(NULL), CF_ERR_ARG, "NULL")                                                \
    ROW(P, cf_clone(NULL), CF_ERR_ARG, "NULL")                                                     \
    ROW(P, cf_softmax(NULL, 0), CF_ERR_ARG, "NULL")                                                \
    ROW(P, cf_log_softmax(NULL, 0), CF_ERR_ARG, "NULL")                                            \
    ROW(P, cf_layer_norm(NULL, 1, NULL, NULL, 1e-5f), CF_ERR_ARG, "NULL")                          \
    ROW(P, cf_dropout(NULL, 0.5f, true, NULL), CF_ERR_ARG, "cf_dropout")                           \
    ROW(P, cf_embedding(NULL, ints(2, 0), -1), CF_ERR_ARG, "NULL")                                 \
    ROW(P, cf_embedding(f2(3, 2), NULL, -1), CF_ERR_ARG, "NULL")                                   \
    ROW(P, cf_index_select(f2(3, 2), 0, NULL), CF_ERR_ARG, "NULL")                                 \
    ROW(P, cf_gather(NULL, 0, ints(2, 0)), CF_ERR_ARG, "NULL")                                     \
    ROW(P, cat_with_null(), CF_ERR_ARG, "NULL")                                                    \
    ROW(P, cf_cat(2, NULL, 0), CF_ERR_ARG, "cf_cat")                                               \
    ROW(P, cf_stack(2, NULL, 0), CF_ERR_ARG, "cf_stack")                                           \
    ROW(I, cf_split(NULL, 1, 0, no_out, 0), CF_ERR_ARG, "NULL")                                    \
    ROW(I, cf_split(f2(2, 2), 1, 0, NULL, 2), CF_ERR_ARG, "cf_split")                              \
    ROW(I, cf_chunk(f2(2, 2), 2, 0, NULL), CF_ERR_ARG, "cf_chunk")                                 \
    ROW(P, ce(NULL, ints(2, 0)), CF_ERR_ARG, "NULL")                                               \
    ROW(P, ce(f2(2, 3), NULL), CF_ERR_ARG, "NULL")                                                 \
    ROW(P, cf_nll_loss(NULL, ints(2, 0), NULL), CF_ERR_ARG, "NULL")                                \
    ROW(P, cf_mse_loss(f1(2), NULL, NULL), CF_ERR_ARG, "NULL")                                     \
    ROW(P, cf_attention(NULL, f4(1, 1, 2, 2), f4(1, 1, 2, 2), NULL), CF_ERR_ARG, "cf_attention")   \
    ROW(P, cf_detach(NULL), CF_ERR_ARG, "cf_detach")                                               \
    ROW(P, cf_requires_grad(NULL, true), CF_ERR_ARG, "cf_requires_grad")                           \
    ROW(P, cf_op_record(f1(2), NULL, 1, NULL), CF_ERR_ARG, "NULL")                                 \
    /* NULL arguments of tensor functions */                                                       \
    ROW(P, cf_zeros(2, NULL), CF_ERR_ARG, "cf_zeros: shape is NULL")                               \
    ROW(P, cf_empty(CF_F32, 1, no_shape), CF_ERR_ARG, "shape is NULL")                             \
    ROW(P, cf_tensor_new(CF_F32, 3, NULL), CF_ERR_ARG, "cf_tensor_new: shape is NULL")             \
    ROW(P, cf_from_array(NULL, CF_SHAPE(2)), CF_ERR_ARG, "cf_from_array: data is NULL")            \
    ROW(P, cf_from_ints(NULL, CF_SHAPE(2, 2)), CF_ERR_ARG, "cf_from_ints: data is NULL")           \
    ROW(P, cf_uniform(NULL, 0, 1, 2, NULL), CF_ERR_ARG, "shape is NULL")                           \
    ROW(F, cf_item(NULL), CF_ERR_ARG, "cf_item: tensor is NULL")                                   \
    ROW(F, cf_get(NULL, CF_IDX(0)), CF_ERR_ARG, "cf_get: tensor is NULL")                          \
    ROW(F, cf_get(f1(2), NULL), CF_ERR_ARG, "cf_get: idx is NULL")                                 \
    ROW(V, cf_set(NULL, CF_IDX(0), 1), CF_ERR_ARG, "cf_set")                                       \
    ROW(V, cf_fill(NULL, 1), CF_ERR_ARG, "cf_fill: tensor is NULL")                                \
    ROW(V, cf_copy_to(NULL, NULL), CF_ERR_ARG, "cf_copy_to")                                       \
    ROW(V, cf_copy_to(f1(2), NULL), CF_ERR_ARG, "cf_copy_to")                                      \
    ROW(V, cf_copy_from(f1(2), NULL), CF_ERR_ARG, "cf_copy_from")                                  \
    ROW(V, cf_fill_uniform(NULL, NULL, 0, 1), CF_ERR_ARG, "NULL")                                  \
    ROW(V, cf_fill_normal(NULL, NULL, 0, 1), CF_ERR_ARG, "NULL")                                   \
    ROW(V, cf_fill_uniform(NULL, mask(2, 2), 0, 1), CF_ERR_DTYPE, "cf_fill_uniform: expected")     \
    ROW(V, cf_fill_normal(NULL, ints(3, 0), 0, 1), CF_ERR_DTYPE, "int32")                          \
    ROW(P, cf_op_record(f1(2), NULL, 0, NULL), CF_ERR_ARG, "op is NULL")                           \
    ROW(P, cf_sum(f2(2, 3), -1, NULL, false), CF_ERR_ARG, "negative number of dims")               \
    /* wrong dtypes */                                                                             \
    ROW(P, cf_empty((cf_dtype)7, CF_SHAPE(2)), CF_ERR_DTYPE, "cf_empty: invalid dtype 7")          \
    ROW(P, cf_tensor_new((cf_dtype)-1, CF_SHAPE(2)), CF_ERR_DTYPE, "invalid dtype -1")             \
    ROW(P, cf_exp(ints(2, 1)), CF_ERR_DTYPE, "int32")                                              \
    ROW(P, cf_add(f1(2), ints(2, 1)), CF_ERR_DTYPE, "cf_add")                                      \
    ROW(P, cf_matmul(ints(2, 1), f1(2)), CF_ERR_DTYPE, "cf_matmul")                                \
    ROW(P, cf_sum_all(mask(2, 2)), CF_ERR_DTYPE, "bool")                                           \
    ROW(P, cf_softmax(ints(3, 0), 0), CF_ERR_DTYPE, "int32")                                       \
    ROW(P, cf_layer_norm(ints(3, 0), 1, NULL, NULL, 1e-5f), CF_ERR_DTYPE, "int32")                 \
    ROW(P, cf_embedding(f2(3, 2), f1(2), -1), CF_ERR_DTYPE, "float32")                             \
    ROW(P, cf_index_select(f2(3, 2), 0, f1(2)), CF_ERR_DTYPE, "float32")                           \
    ROW(P, cf_gather(f2(3, 2), 0, f2(1, 2)), CF_ERR_DTYPE, "float32")                              \
    ROW(P, ce(f2(2, 3), f1(2)), CF_ERR_DTYPE, "float32")                                           \
    ROW(P, ce(ints(2, 0), ints(2, 0)), CF_ERR_DTYPE, "int32")                                      \
    ROW(P, cf_where(f2(2, 2), f2(2, 2), f2(2, 2)), CF_ERR_DTYPE, "cf_where")                       \
    ROW(P, cf_masked_fill(f2(2, 2), f2(2, 2), 0), CF_ERR_DTYPE, "cf_masked_fill")                  \
    ROW(P, cf_eq(f1(2), ints(2, 0)), CF_ERR_DTYPE, "cf_eq")                                        \
    ROW(P, cf_logical_not(f1(2)), CF_ERR_DTYPE, "cf_logical_not")                                  \
    ROW(P, attention_mask(ints(5, 1)), CF_ERR_DTYPE, "cf_attention: mask")                         \
    ROW(P, cf_requires_grad(ints(2, 0), true), CF_ERR_DTYPE, "int32")                              \
    ROW(S, backward_with_int_grad(), CF_ERR_SHAPE, "int32")                                        \
    /* overflowing, negative and mismatched shapes */                                              \
    ROW(P, big(), CF_ERR_DIM, "too large")                                                         \
    ROW(P, cf_zeros(CF_SHAPE(INT64_MAX, 2)), CF_ERR_DIM, "too large")                              \
    ROW(P, cf_ones(CF_SHAPE(huge, huge, 0)), CF_ERR_DIM, "too large")                              \
    ROW(P, cf_full(1, CF_SHAPE(INT64_MAX)), CF_ERR_DIM, "too large")                               \
    ROW(P, cf_uniform(NULL, 0, 1, CF_SHAPE(huge, huge)), CF_ERR_DIM, "too large")                  \
    ROW(P, cf_zeros(CF_SHAPE(2, -1)), CF_ERR_DIM, "negative size")                                 \
    ROW(P, cf_tensor_new(CF_F32, CF_SHAPE(INT64_MIN)), CF_ERR_DIM, "negative size")                \
    ROW(P, nine_dims(), CF_ERR_DIM, "9 dims")                                                      \
    ROW(P, cf_zeros(-1, NULL), CF_ERR_DIM, "-1 dims")                                              \
    ROW(P, cf_arange(0, 1e30f, 1), CF_ERR_ARG, "too large")                                        \
    ROW(P, cf_arange(0, 1, 0), CF_ERR_ARG, "cf_arange")                                            \
    ROW(P, cf_arange(0, NAN, 1), CF_ERR_ARG, "cf_arange")                                          \
    ROW(P, cf_view(f1(6), CF_SHAPE(4, 2)), CF_ERR_SHAPE, "cf_view")                                \
    ROW(P, cf_view(f1(6), CF_SHAPE(-1, -1)), CF_ERR_SHAPE, "cf_view")                              \
    ROW(P, cf_view(f1(6), CF_SHAPE(0, -1)), CF_ERR_SHAPE, "cf_view")                               \
    ROW(P, cf_view(f1(0), CF_SHAPE(0, INT64_MAX, INT64_MAX)), CF_ERR_SHAPE, "cf_view")             \
    ROW(P, cf_view(f1(2), 1, no_shape), CF_ERR_ARG, "shape is NULL")                               \
    ROW(P, cf_reshape(f1(6), CF_SHAPE(-3, 2)), CF_ERR_SHAPE, "cf_reshape")                         \
    ROW(P, cf_expand(f2(1, 1), CF_SHAPE(huge, huge)), CF_ERR_DIM, "too large")                     \
    ROW(P, cf_expand(f2(2, 3), CF_SHAPE(4, 3)), CF_ERR_SHAPE, "cf_expand")                         \
    ROW(P, cf_expand(f2(2, 3), CF_SHAPE(3)), CF_ERR_SHAPE, "cf_expand")                            \
    ROW(P, cf_expand(f1(1), 2, no_shape), CF_ERR_ARG, "shape is NULL")                             \
    ROW(P, cf_add(f2(2, 3), f1(4)), CF_ERR_SHAPE, "[2, 3] and [4]")                                \
    ROW(P, cf_where(mask(2, 2), f1(3), f1(2)), CF_ERR_SHAPE, "cf_where")                           \
    ROW(P, cf_matmul(f2(2, 3), f2(4, 5)), CF_ERR_SHAPE, "[2, 3]")                                  \
    ROW(P, cf_matmul(cf_scalar(1), f1(2)), CF_ERR_SHAPE, "cf_matmul")                              \
    ROW(P, cat_mismatch(), CF_ERR_SHAPE, "cf_cat")                                                 \
    ROW(P, cat_dtypes(), CF_ERR_DTYPE, "cf_cat")                                                   \
    ROW(P, cat_none(), CF_ERR_ARG, "cf_cat")                                                       \
    ROW(P, stack_mismatch(), CF_ERR_SHAPE, "cf_stack")                                             \
    ROW(P, stack_none(), CF_ERR_ARG, "cf_stack")                                                   \
    ROW(P, cf_layer_norm(f2(2, 3), 3, NULL, NULL, 1e-5f), CF_ERR_DIM, "cf_layer_norm")             \
    ROW(P, layer_norm_weight_shape(), CF_ERR_SHAPE, "cf_layer_norm")                               \
    ROW(P, cf_attention(f2(2, 2), f2(2, 2), f2(2, 2), NULL), CF_ERR_SHAPE, "4-D")                  \
    ROW(P, cf_attention(f4(1, 1, 2, 3), f4(1, 1, 2, 4), f4(1, 1, 2, 4), NULL), CF_ERR_SHAPE, "D")  \
    ROW(P, attention_mask(mask(2, 5)), CF_ERR_SHAPE, "does not broadcast")                         \
    ROW(P, ce(f2(2, 3), ints(3, 0)), CF_ERR_SHAPE, "cf_cross_entropy")                             \
    ROW(P, ce(f1(3), ints(1, 0)), CF_ERR_SHAPE, "cf_cross_entropy")                                \
    ROW(P, cf_mse_loss(f2(2, 3), f2(3, 2), NULL), CF_ERR_SHAPE, "cf_mse_loss")                     \
    ROW(P, cf_embedding(f1(3), ints(2, 0), -1), CF_ERR_SHAPE, "cf_embedding")                      \
    /* dims out of range */                                                                        \
    ROW(P, cf_sum(f2(2, 3), CF_DIMS(2), false), CF_ERR_DIM, "dim 2")                               \
    ROW(P, sum_repeated(), CF_ERR_DIM, "cf_sum")                                                   \
    ROW(P, cf_sum(f2(2, 3), 1, no_dims, false), CF_ERR_ARG, "NULL")                                \
    ROW(P, cf_mean(f2(2, 3), CF_DIMS(-3), false), CF_ERR_DIM, "dim -3")                            \
    ROW(P, cf_softmax(f2(2, 3), 5), CF_ERR_DIM, "cf_softmax")                                      \
    ROW(P, cf_log_softmax(f2(2, 3), -3), CF_ERR_DIM, "cf_log_softmax")                             \
    ROW(P, cf_transpose(f2(2, 3), 0, 2), CF_ERR_DIM, "cf_transpose")                               \
    ROW(P, permute_repeated(), CF_ERR_DIM, "listed twice")                                         \
    ROW(P, cf_permute(f2(2, 3), NULL), CF_ERR_ARG, "cf_permute")                                   \
    ROW(P, cf_squeeze(f2(2, 3), 2), CF_ERR_DIM, "cf_squeeze")                                      \
    ROW(P, cf_unsqueeze(f2(2, 3), 4), CF_ERR_DIM, "cf_unsqueeze")                                  \
    ROW(P, cf_slice(f2(2, 3), 2, 0, 1, 1), CF_ERR_DIM, "cf_slice")                                 \
    ROW(P, cf_slice(f1(4), 0, 0, 4, 0), CF_ERR_ARG, "step 0")                                      \
    ROW(P, cf_slice(f1(4), 0, 0, 4, INT64_MIN), CF_ERR_ARG, "cf_slice: step")                      \
    ROW(P, cat_dim(), CF_ERR_DIM, "cf_cat")                                                        \
    ROW(P, stack_dim(), CF_ERR_DIM, "cf_stack")                                                    \
    ROW(I, split_zero(), CF_ERR_ARG, "cf_split")                                                   \
    ROW(I, split_dim(), CF_ERR_DIM, "cf_split")                                                    \
    ROW(I, chunk_zero(), CF_ERR_ARG, "cf_chunk")                                                   \
    ROW(P, cf_max(f2(2, 3), 2, false, NULL), CF_ERR_DIM, "cf_max")                                 \
    ROW(P, cf_argmax(f2(2, 3), -3, false), CF_ERR_DIM, "cf_argmax")                                \
    ROW(P, cf_index_select(f2(2, 3), 2, ints(1, 0)), CF_ERR_DIM, "cf_index_select")                \
    ROW(P, cf_gather(f2(2, 3), 3, cf_zeros(CF_SHAPE(1, 1))), CF_ERR_DIM, "cf_gather")              \
    ROW(P, cf_var(f2(2, 3), CF_DIMS(7), true, false), CF_ERR_DIM, "cf_var")                        \
    /* indices and token ids out of range */                                                       \
    ROW(F, cf_get(f1(4), CF_IDX(4)), CF_ERR_INDEX, "cf_get: index [4] out of range for shape [4]") \
    ROW(F, cf_get(f1(4), CF_IDX(-1)), CF_ERR_INDEX, "[-1]")                                        \
    ROW(F, get_at(f2(2, 3), 1, INT64_MAX), CF_ERR_INDEX, "out of range")                           \
    ROW(V, set_at(f1(4), INT64_MIN), CF_ERR_INDEX, "cf_set")                                       \
    ROW(P, cf_embedding(f2(5, 2), ints(3, 5), -1), CF_ERR_INDEX, "5")                              \
    ROW(P, cf_embedding(f2(5, 2), ints(3, -1), -1), CF_ERR_INDEX, "-1")                            \
    ROW(P, cf_embedding(f2(5, 2), ints(3, INT32_MAX), -1), CF_ERR_INDEX, "2147483647")             \
    ROW(P, cf_index_select(f2(2, 3), 1, ints(2, 3)), CF_ERR_INDEX, "3")                            \
    ROW(P, cf_index_select(f2(2, 3), 0, ints(2, INT32_MIN)), CF_ERR_INDEX, "-2147483648")          \
    ROW(P, cf_gather(f2(2, 3), 0, cf_view(ints(3, 2), CF_SHAPE(1, 3))), CF_ERR_INDEX, "2")         \
    ROW(P, ce(f2(2, 3), ints(2, 3)), CF_ERR_INDEX, "3")                                            \
    ROW(P, ce(f2(2, 3), ints(2, -100)), CF_ERR_INDEX, "-100")                                      \
    ROW(P, cf_nll_loss(f2(2, 3), ints(2, 7), NULL), CF_ERR_INDEX, "7")                             \
    ROW(P, embedding_fwd(ints(2, 9)), CF_ERR_INDEX, "9")                                           \
    ROW(P, embedding_fwd(f1(2)), CF_ERR_DTYPE, "Embedding")                                        \
    ROW(P, transformer_fwd(10), CF_ERR_INDEX, "10")                                                \
    ROW(P, transformer_fwd(-5), CF_ERR_INDEX, "-5")                                                \
    ROW(P, pos_fwd(0, 9), CF_ERR_INDEX, "PositionalEmbedding")                                     \
    ROW(P, pos_fwd(2, INT64_MAX), CF_ERR_INDEX, "PositionalEmbedding")                             \
    ROW(P, pos_fwd(-1, 2), CF_ERR_INDEX, "PositionalEmbedding")                                    \
    /* other invalid arguments */                                                                  \
    ROW(P, cf_dropout(f1(4), 1.5f, true, NULL), CF_ERR_ARG, "cf_dropout")                          \
    ROW(P, cf_dropout(f1(4), NAN, true, NULL), CF_ERR_ARG, "cf_dropout")                           \
    ROW(P, attention_dropout(-0.1f), CF_ERR_ARG, "dropout")                                        \
    ROW(P, ce_smoothing(1.5f), CF_ERR_ARG, "label_smoothing")                                      \
    ROW(P, ce_smoothing(NAN), CF_ERR_ARG, "label_smoothing")                                       \
    ROW(P, ce_reduction(9), CF_ERR_ARG, "reduction")                                               \
    ROW(P, nll_smoothing(), CF_ERR_ARG, "cf_nll_loss")                                             \
    ROW(P, cf_requires_grad(cf_exp(leaf()), true), CF_ERR_ARG, "not a leaf")                       \
    /* NaN and infinity into losses, softmax and attention: they propagate */                      \
    ROW(N, cf_softmax(bad2(2, 3, NAN), 1), CF_OK, NULL)                                            \
    ROW(N, cf_log_softmax(bad2(2, 3, INFINITY), 1), CF_OK, NULL)                                   \
    ROW(N, cf_softmax(bad2(1, 1, -INFINITY), 1), CF_OK, NULL)                                      \
    ROW(N, ce(bad2(2, 3, NAN), ints(2, 1)), CF_OK, NULL)                                           \
    ROW(N, ce(bad2(2, 3, INFINITY), ints(2, 1)), CF_OK, NULL)                                      \
    ROW(N, cf_nll_loss(bad2(2, 3, -INFINITY), ints(2, 0), NULL), CF_OK, NULL)                      \
    ROW(N, cf_mse_loss(bad2(2, 3, INFINITY), f2(2, 3), NULL), CF_OK, NULL)                         \
    ROW(N, attention_nan_q(), CF_OK, NULL)                                                         \
    ROW(N, attention_nan_scale(), CF_OK, NULL)                                                     \
    ROW(N, attention_inf_k(), CF_OK, NULL)                                                         \
    ROW(N, ce_all_ignored(), CF_OK, NULL)                                                          \
    /* ... and anomaly mode names the op */                                                        \
    ROW(A, cf_softmax(bad2(2, 3, NAN), 1), CF_ERR_NUMERIC, "op 'softmax'")                         \
    ROW(A, ce(bad2(2, 3, NAN), ints(2, 1)), CF_ERR_NUMERIC, "op 'cross_entropy'")                  \
    ROW(A, cf_mse_loss(bad2(2, 3, NAN), f2(2, 3), NULL), CF_ERR_NUMERIC, "NaN")                    \
    ROW(A, attention_nan_q(), CF_ERR_NUMERIC, "op 'attention'")                                    \
    ROW(A, attention_inf_k(), CF_ERR_NUMERIC, "op 'attention'")                                    \
    ROW(A, cf_log(cf_zeros(CF_SHAPE(2))), CF_ERR_NUMERIC, "op 'log' gave infinity")                \
    ROW(A, cf_exp(cf_full(1000, CF_SHAPE(3))), CF_ERR_NUMERIC, "op 'exp'")                         \
    ROW(S, anomaly_backward(), CF_ERR_NUMERIC, "backward of op 'sqrt'")                            \
    ROW(S, anomaly_seed(), CF_ERR_NUMERIC, "output gradient holds infinity")                       \
    /* empty tensors */                                                                            \
    ROW(F, cf_item(empty2(0, 3)), CF_ERR_SHAPE, "[0, 3]")                                          \
    ROW(P, cf_max(empty2(0, 3), 0, false, NULL), CF_ERR_SHAPE, "cf_max")                           \
    ROW(P, cf_argmax(empty2(2, 0), 1, false), CF_ERR_SHAPE, "cf_argmax")                           \
    ROW(E, cf_sum_all(empty2(0, 3)), CF_OK, NULL)                                                  \
    ROW(N, cf_mean_all(empty2(0, 3)), CF_OK, NULL)                                                 \
    ROW(E, cf_softmax(empty2(0, 3), 1), CF_OK, NULL)                                               \
    ROW(E, cf_matmul(empty2(2, 0), empty2(0, 3)), CF_OK, NULL)                                     \
    ROW(E, cf_layer_norm(empty2(0, 3), 1, NULL, NULL, 1e-5f), CF_OK, NULL)                         \
    ROW(N, ce(empty2(0, 3), ints(0, 0)), CF_OK, NULL)                                              \
    ROW(E, cf_embedding(f2(5, 2), ints(0, 0), -1), CF_OK, NULL)                                    \
    ROW(E, attention_no_keys(), CF_OK, NULL)                                                       \
    ROW(E, cf_slice(f1(4), 0, 3, 1, 1), CF_OK, NULL)                                               \
    /* backward */                                                                                 \
    ROW(S, backward_twice(), CF_ERR_STATE, "already went through")                                 \
    ROW(S, backward_shared_subgraph(), CF_ERR_STATE, "op 'tanh'")                                  \
    ROW(S, cf_backward(cf_exp(leaf())), CF_ERR_SHAPE, "not a scalar")                              \
    ROW(S, cf_backward(cf_sum_all(f2(2, 2))), CF_ERR_STATE, "does not require a gradient")         \
    ROW(S, cf_backward(NULL), CF_ERR_ARG, "cf_backward: y is NULL")                                \
    ROW(S, cf_backward(cf_sum_all(cf_add(leaf(), f1(4)))), CF_ERR_SHAPE, "cf_add")                 \
    ROW(S, cf_backward_with(cf_exp(leaf()), NULL), CF_ERR_ARG, "dy is NULL")                       \
    ROW(S, cf_backward_with(cf_exp(leaf()), f1(6)), CF_ERR_SHAPE, "[6]")                           \
    ROW(S, cf_graph_dot(NULL, leaf()), CF_ERR_ARG, "file is NULL")                                 \
    ROW(S, cf_gradcheck(NULL, NULL, 0, NULL, 1e-3f, NULL), CF_ERR_ARG, "cf_gradcheck")             \
    /* modules and models */                                                                       \
    ROW(P, cf_linear_forward(NULL, f2(2, 4)), CF_ERR_ARG, "Linear: module is NULL")                \
    ROW(P, cf_layernorm_forward(NULL, f2(2, 4)), CF_ERR_ARG, "LayerNorm: module is NULL")          \
    ROW(P, cf_embedding_forward(NULL, ints(2, 0)), CF_ERR_ARG, "Embedding: module is NULL")        \
    ROW(P, cf_dropout_forward(NULL, f2(2, 4)), CF_ERR_ARG, "Dropout: module is NULL")              \
    ROW(P, cf_ffn_forward(NULL, f2(2, 4)), CF_ERR_ARG, "FeedForward: module is NULL")              \
    ROW(P, cf_mha_forward(NULL, NULL, NULL, NULL, NULL), CF_ERR_ARG, "module is NULL")             \
    ROW(P, cf_gru_cell_forward(NULL, f2(2, 4), NULL), CF_ERR_ARG, "GRUCell: module is NULL")       \
    ROW(P, cf_gru_forward(NULL, f2(2, 4), NULL, NULL), CF_ERR_ARG, "GRU: module is NULL")          \
    ROW(P, cf_lstm_cell_forward(NULL, f2(2, 4), NULL, NULL, NULL), CF_ERR_ARG, "LSTMCell: module") \
    ROW(P, cf_lstm_forward(NULL, f2(2, 4), NULL, NULL, NULL, NULL), CF_ERR_ARG, "LSTM: module")    \
    ROW(P, cf_batchnorm1d_forward(NULL, f2(2, 4)), CF_ERR_ARG, "BatchNorm1d: module is NULL")      \
    ROW(P, cf_rmsnorm_forward(NULL, f2(2, 4)), CF_ERR_ARG, "RMSNorm: module is NULL")              \
    ROW(P, cf_pos_embedding_forward(NULL, 0, 1), CF_ERR_ARG, "PositionalEmbedding: module")        \
    ROW(P, cf_additive_attention_keys(NULL, f2(2, 4)), CF_ERR_ARG, "AdditiveAttention: module")    \
    ROW(P, cf_luong_attention_keys(NULL, f2(2, 4)), CF_ERR_ARG, "LuongAttention: module")          \
    ROW(P, cf_luong_attention_forward(NULL, NULL, NULL, NULL, NULL, NULL), CF_ERR_ARG, "module")   \
    ROW(P, cf_transformer_forward(NULL, NULL, NULL, NULL), CF_ERR_ARG, "model is NULL")            \
    ROW(P, cf_vit_forward(NULL, NULL, NULL), CF_ERR_ARG, "cf_vit_forward: model is NULL")          \
    ROW(P, cf_seq2seq_forward(NULL, NULL, NULL, 0, NULL, NULL), CF_ERR_ARG, "model is NULL")       \
    ROW(P, linear_fwd(f2(2, 5)), CF_ERR_SHAPE, "expected [..., 4]")                                \
    ROW(P, linear_fwd(cf_scalar(1)), CF_ERR_SHAPE, "Linear")                                       \
    ROW(P, mha_fwd(f2(2, 4)), CF_ERR_SHAPE, "MultiheadAttention")                                  \
    ROW(P, cf_linear_new(NULL, "fc", -1, 3, true, NULL), CF_ERR_ARG, "must be positive")           \
    ROW(P, cf_mha_new(NULL, "attn", 6, 4, 0, true, NULL), CF_ERR_ARG, "MultiheadAttention")        \
    ROW(P, sgd(-1, 0), CF_ERR_ARG, "lr")                                                           \
    ROW(P, sgd(NAN, 0), CF_ERR_ARG, "lr")                                                          \
    ROW(P, adam_beta(1), CF_ERR_ARG, "beta")                                                       \
    ROW(P, cf_adam_new(NULL, NULL), CF_ERR_ARG, "NULL")                                            \
    ROW(S, greedy(0, true, 2), CF_ERR_ARG, "cf_transformer_greedy")                                \
    ROW(S, greedy(-3, true, 2), CF_ERR_ARG, "cf_transformer_greedy")                               \
    ROW(S, greedy(64, true, 2), CF_ERR_ARG, "cf_transformer_greedy")                               \
    ROW(S, greedy(4, false, 2), CF_ERR_ARG, "NULL")                                                \
    ROW(S, greedy(4, true, 77), CF_ERR_INDEX, "77")                                                \
    ROW(S, cf_transformer_greedy(NULL, f2(1, 2), 4, NULL), CF_ERR_ARG, "NULL")                     \
    ROW(S, greedy(4, false, -1), CF_ERR_ARG, "src is NULL")                                        \
    ROW(S, beam(0, 0.6f), CF_ERR_ARG, "beam 0")                                                    \
    ROW(S, beam(2, NAN), CF_ERR_ARG, "alpha")                                                      \
    ROW(S, cf_seq2seq_greedy(NULL, ints(2, 1), 4, NULL, NULL), CF_ERR_ARG, "NULL")                 \
    ROW(P, kv_cache(0, 4), CF_ERR_ARG, "cf_kv_cache_new")                                          \
    ROW(P, kv_cache(1, INT64_MAX), CF_ERR_DIM, "too large")                                        \
    ROW(P, cf_kv_cache_new(NULL, 1, 4), CF_ERR_ARG, "cf_kv_cache_new")                             \
    ROW(P, cf_vit_rollout(NULL, NULL), CF_ERR_ARG, "cf_vit_rollout")                               \
    ROW(P, gru_fwd(f2(2, 4)), CF_ERR_SHAPE, "GRU")                                                 \
    ROW(P, cf_gru_new(NULL, "gru", 4, 3, 0, false, 0, true, NULL), CF_ERR_ARG, "GRU")              \
    ROW(F, clip(-1), CF_ERR_ARG, "max_norm -1 must be >= 0")                                       \
    ROW(F, clip(NAN), CF_ERR_ARG, "cf_clip_grad_norm")                                             \
    ROW(P, cf_sinusoidal_encoding(0, -1, 4), CF_ERR_ARG, "-1 positions")                           \
    ROW(P, cf_sinusoidal_encoding(0, 4, 0), CF_ERR_ARG, "cf_sinusoidal_encoding")                  \
    ROW(P, cf_sinusoidal_encoding(0, INT64_MAX, 4), CF_ERR_DIM, "too large")                       \
    ROW(P, module_named("a.b"), CF_ERR_ARG, "holds a '.'")                                         \
    ROW(P, cf_module_param(NULL, "w", CF_SHAPE(2)), CF_ERR_ARG, "cannot add parameter")            \
    /* files */                                                                                    \
    ROW(S, open_path(NULL), CF_ERR_ARG, "path is NULL")                                            \
    ROW(S, cf_safetensors_open(scratch("x"), NULL), CF_ERR_ARG, "out is NULL")                     \
    ROW(S, open_path(scratch("absent")), CF_ERR_IO, "No such file")                                \
    ROW(S, open_path(scratch(NULL)), CF_ERR_IO, "Is a directory")                                  \
    ROW(S, open_path(fifo()), CF_ERR_IO, "not a regular file")                                     \
    ROW(S, open_path(file_with("short", 5)), CF_ERR_FORMAT, "too short")                           \
    ROW(S, open_path(newline_in_a_name()), CF_ERR_FORMAT, "control character 0x0a")                \
    ROW(S, save(NULL, 1, "a", f1(2), NULL), CF_ERR_ARG, "path is NULL")                            \
    ROW(S, save(scratch("s"), -1, "a", f1(2), NULL), CF_ERR_ARG, "negative tensor count")          \
    ROW(S, save(scratch("s"), 2, "a", f1(2), NULL), CF_ERR_ARG, "duplicate tensor name a")         \
    ROW(S, save(scratch("s"), 1, NULL, f1(2), NULL), CF_ERR_ARG, "name 0 is NULL")                 \
    ROW(S, save(scratch("s"), 1, "__metadata__", f1(2), NULL), CF_ERR_ARG, "invalid tensor name")  \
    ROW(S, save(scratch("s"), 1, "\xff", f1(2), NULL), CF_ERR_ARG, "invalid tensor name")          \
    ROW(S, save(scratch("s"), 1, "a", NULL, NULL), CF_ERR_ARG, "tensor a is NULL")                 \
    ROW(S, save(scratch("s"), 1, "a", f1(2), "{\"k\": 1}"), CF_ERR_ARG, "metadata_json")           \
    ROW(S, save(scratch("no/dir/s"), 1, "a", f1(2), NULL), CF_ERR_IO, "No such file")              \
    ROW(S, save(scratch(NULL), 1, "a", f1(2), NULL), CF_ERR_IO, "not a regular file")              \
    ROW(P, get_missing(), CF_ERR_FORMAT, "no tensor named b\\nc")                                  \
    ROW(S, module_load_missing(true), CF_ERR_IO, "none.safetensors")                               \
    ROW(S, module_load_wrong_shape(), CF_ERR_SHAPE, "weight")                                      \
    ROW(S, cf_module_save(NULL, scratch("m")), CF_ERR_ARG, "cf_module_save")                       \
    ROW(S, cf_module_load(NULL, scratch("m"), true), CF_ERR_ARG, "cf_module_load")                 \
    ROW(S, cf_optim_save(NULL, scratch("o")), CF_ERR_ARG, "cf_optim_save")                         \
    ROW(S, optim_load_module_file(), CF_ERR_FORMAT, "not an optimizer checkpoint")

static const struct {
    const char *call;
    cf_status status;
    const char *fragment;
} rows[] = {
#define TABLE_ROW(kind, call, status, fragment) {#call, status, fragment},
    ROWS(TABLE_ROW)
#undef TABLE_ROW
};
#define NROWS COUNT(rows)

static void anomaly_off(void) { cf_set_anomaly(false); }

/* Runs row i's call; true when it showed its failure (or, for rows that
 * expect CF_OK, its result) the way its kind says. */
static bool run_row(int i)
{
    int k = 0;
#define RUN_ROW(kind, call, status, fragment)                                                      \
    if (i == k++)                                                                                  \
        return kind(call);
    ROWS(RUN_ROW)
#undef RUN_ROW
    return false;
}

TEST_WITH(hostile_call, .loop = NROWS, .scratch = true, .setup = anomaly_off,
          .teardown = anomaly_off)
{
    bool shown = run_row(_i);
    cf_set_anomaly(false);
    cf_status want = rows[_i].status;
    ck_assert_msg(shown, "row %d, %s: wrong return value (status %s: %s)", _i, rows[_i].call,
                  cf_status_str(cf_error()), cf_error_message());
    ck_assert_msg(cf_error() == want, "row %d, %s: status %s (%s), want %s", _i, rows[_i].call,
                  cf_status_str(cf_error()), cf_error_message(), cf_status_str(want));
    const char *frag = rows[_i].fragment;
    ck_assert_msg(!frag || strstr(cf_error_message(), frag),
                  "row %d, %s: message \"%s\" lacks \"%s\"", _i, rows[_i].call, cf_error_message(),
                  frag);
    ck_assert_msg(!strchr(cf_error_message(), '\n'), "row %d: a newline in \"%s\"", _i,
                  cf_error_message());
    cf_error_clear();
}
END_TEST

TEST_WITH(the_table_has_at_least_150_rows, .scratch = true, .setup = anomaly_off,
          .teardown = anomaly_off)
{
    ck_assert_int_ge(NROWS, 150);
}
END_TEST
