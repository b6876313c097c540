/* cformer/nn.h: modules with named parameters, optimizers, schedules and
 * checkpoints. In brief (the whole program, built and run by `make check`:
 * examples/snippets/nn.c):
 *
 *     cf_module *net = cf_module_new("Net", NULL, NULL);
 *     cf_linear *fc1 = cf_linear_new(net, "fc1", 784, 256, true, &rng);
 *     cf_linear *fc2 = cf_linear_new(net, "fc2", 256, 10, true, &rng);
 *     cf_optim *opt = cf_adamw_new(net, &(cf_adamw_opts){.lr = 1e-3f, .weight_decay = 0.01f,
 *                                                       .decays = cf_decay_matrices});
 *     for (...) {
 *         cf_tensor *h = cf_relu(cf_linear_forward(fc1, x));
 *         cf_tensor *loss = cf_cross_entropy(cf_linear_forward(fc2, h), y, NULL);
 *         cf_optim_zero_grad(opt);
 *         cf_backward(loss);
 *         cf_optim_step(opt);
 *         cf_arena_reset(step);
 *     }
 *     cf_module_save(net, "net.safetensors");
 *     cf_optim_free(opt);
 *     cf_module_free(net);            // frees fc1, fc2 and all parameters
 *
 * Ownership. A module made with a parent belongs to the parent and is freed
 * with it; a module made without one belongs to the caller
 * (cf_module_free). A module owns its parameters (heap tensors, see
 * tensor.h) and their gradients. Forward functions return arena tensors.
 *
 * Names. Parameters are named by the path of module names down to them,
 * joined with dots, exactly as PyTorch's state_dict names them
 * ("encoder.layers.0.self_attn.in_proj_weight"). A module created with the
 * name "" adds its parameters and children to its parent's namespace.
 *
 * Layout. Sequence tensors are batch-first: [B, T, E] (PyTorch's
 * batch_first=True).
 *
 * Errors follow tensor.h. A forward function handed a NULL module returns
 * NULL with CF_ERR_ARG ("Linear: module is NULL"), unless an error is
 * already recorded (such as the failed constructor's that gave the NULL).
 */
#ifndef CFORMER_NN_H
#define CFORMER_NN_H

#include "autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Modules ---- */

#define CF_NAME_MAX          64
#define CF_MODULE_MAX_PARAMS 64

typedef struct cf_module cf_module;

/* A setting of a model that its tensors do not show (which normalisation,
 * which recurrent cell): its key (letters, digits, '_'), the model's value,
 * and the value a checkpoint written before the setting existed implies. */
typedef void (*cf_setting_fn)(void *ud, const char *key, const char *value, const char *implied);

/* Fields are read-only for users; subtypes embed a cf_module first. */
struct cf_module {
    const char *type;       /* "Linear", "LayerNorm", ... */
    char name[CF_NAME_MAX]; /* within the parent; "" merges */
    cf_module *parent, *first_child, *last_child, *next;
    int nparams; /* parameters and buffers, in creation order */
    char param_names[CF_MODULE_MAX_PARAMS][CF_NAME_MAX];
    cf_tensor *params[CF_MODULE_MAX_PARAMS];
    uint64_t buffers;              /* bit i set: params[i] is a buffer (see cf_module_buffer) */
    bool training;                 /* true after creation */
    cf_rng *rng;                   /* its own generator (dropout), saved in
                                      checkpoints; NULL if none */
    void (*destroy)(cf_module *m); /* frees a subtype's own state */
    /* Calls fn once per setting of the module (NULL: it has none), for
     * cf_module_save to record and cf_module_load to check. */
    void (*settings)(const cf_module *m, cf_setting_fn fn, void *ud);
    char *paths[CF_MODULE_MAX_PARAMS]; /* private: full names, the params' labels */
    /* Private: room for later fields, so that the subtypes of other
     * libraries keep their layout (tensor.h, "Growing structs"). */
    void *reserved[4];
};

/* Returns a new empty module (a container, or the root of a model) of the
 * given type, attached to parent under name (parent NULL: owned by the
 * caller); NULL with CF_ERR_NOMEM or CF_ERR_ARG (name too long, holding a
 * '.', or already used in parent). */
CF_API cf_module *cf_module_new(const char *type, cf_module *parent, const char *name);
/* For subtypes: initialises *m (of `size` bytes, zeroed by the caller) and
 * attaches it. Returns m, or NULL as cf_module_new (m is then not
 * attached and the caller frees it). */
CF_API cf_module *cf_module_init(cf_module *m, const char *type, cf_module *parent,
                                 const char *name);
/* Frees m, its children and their parameters. NULL is a no-op. A module
 * with a parent is detached from it first. */
CF_API void cf_module_free(cf_module *m);

/* Creates a parameter of m: a zeroed float tensor owned by m that requires
 * a gradient. NULL with CF_ERR_ARG (duplicate name, too many) or
 * CF_ERR_NOMEM. */
CF_API cf_tensor *cf_module_param(cf_module *m, const char *name, int ndim, const int64_t *shape);

/* Creates a buffer of m: a zeroed tensor of the given dtype owned by m,
 * without a gradient (state such as BatchNorm's running statistics). Like
 * PyTorch's registered buffers it is part of the state_dict: visited,
 * saved and loaded with the parameters, never changed by an optimizer.
 * NULL as cf_module_param. */
CF_API cf_tensor *cf_module_buffer(cf_module *m, const char *name, cf_dtype dtype, int ndim,
                                   const int64_t *shape);

/* Calls fn(full name, tensor, ud) for every parameter and buffer under m
 * (the state_dict), in creation order, depth first. The name is valid
 * during the call only. */
typedef void (*cf_param_fn)(const char *name, cf_tensor *param, void *ud);
CF_API void cf_module_visit(cf_module *m, cf_param_fn fn, void *ud);
/* Returns the parameter with the given full name, or NULL. */
CF_API cf_tensor *cf_module_find(cf_module *m, const char *name);
/* The number of tensors in m's state_dict (parameters and buffers), and
 * the number of scalar parameters under m (buffers excluded, as
 * sum(p.numel() for p in m.parameters())). */
CF_API int cf_module_num_tensors(cf_module *m);
CF_API int64_t cf_module_num_params(cf_module *m);
/* Sets training mode on m and every module under it. */
CF_API void cf_module_train(cf_module *m, bool training);
/* Zeroes the gradients of every parameter under m. */
CF_API void cf_module_zero_grad(cf_module *m);

/* ---- Initialisation (from the seeded generator; g NULL: the global one) ---- */

/* U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out)) for a
 * [fan_out, fan_in, ...] tensor (torch.nn.init.xavier_uniform_). */
CF_API void cf_init_xavier_uniform(cf_tensor *w, float gain, cf_rng *g);
/* U(-bound, bound) with bound = gain * sqrt(3 / fan_in), gain =
 * sqrt(2 / (1 + a^2)) (torch.nn.init.kaiming_uniform_, leaky_relu). */
CF_API void cf_init_kaiming_uniform(cf_tensor *w, float a, cf_rng *g);
/* N(0, std^2) with std = sqrt(2 / (1 + a^2)) / sqrt(fan_in). */
CF_API void cf_init_kaiming_normal(cf_tensor *w, float a, cf_rng *g);
/* GPT-style initialisation of every parameter under m: each matrix (ndim >=
 * 2: Linear and Embedding weights, attention projections) ~ N(0, std^2),
 * each bias (a name ending in "bias") zeroed, other vectors (norm weights)
 * left as they are. Like torch.nn.init.normal_, it overwrites an
 * embedding's padding row too. */
CF_API void cf_module_init_normal(cf_module *m, float std, cf_rng *g);

/* ---- Layers ----
 * Each NAME_new(parent, name, ...) returns a module owned by parent (or by
 * the caller when parent is NULL), initialised as PyTorch initialises it,
 * or NULL with the error recorded. Each NAME_forward returns an arena
 * tensor or NULL with the error recorded; shape errors name the module. */

/* y = x W^T + b; weight [out, in], bias [out]. x is [..., in]. */
typedef struct {
    cf_module base;
    cf_tensor *weight, *bias; /* bias NULL without one */
    int in, out;
} cf_linear;
CF_API cf_linear *cf_linear_new(cf_module *parent, const char *name, int in, int out, bool bias,
                                cf_rng *g);
CF_API cf_tensor *cf_linear_forward(cf_linear *m, cf_tensor *x);

/* weight [num, dim] ~ N(0, 1), the padding row zeroed. */
typedef struct {
    cf_module base;
    cf_tensor *weight;
    int num, dim, padding_idx; /* -1: none */
} cf_embedding_mod;
CF_API cf_embedding_mod *cf_embedding_new(cf_module *parent, const char *name, int num, int dim,
                                          int padding_idx, cf_rng *g);
/* indices: int32 of any shape; returns [..., dim]. */
CF_API cf_tensor *cf_embedding_forward(cf_embedding_mod *m, cf_tensor *indices);

/* Normalises the last dim (size dim); weight ones, bias zeros. */
typedef struct {
    cf_module base;
    cf_tensor *weight, *bias; /* NULL without elementwise_affine */
    int dim;
    float eps;
} cf_layernorm;
CF_API cf_layernorm *cf_layernorm_new(cf_module *parent, const char *name, int dim, float eps,
                                      bool affine);
CF_API cf_tensor *cf_layernorm_forward(cf_layernorm *m, cf_tensor *x);

/* torch.nn.BatchNorm1d over the channels C of x [N, C] or [N, C, L]:
 * y = (x - mean) / sqrt(var + eps) * weight + bias per channel. In
 * training mode mean and var are the batch's (over N, and L), var biased,
 * and the gradient flows through them; with running statistics each
 * training call also sets num_batches_tracked += 1 and running = (1 - f) *
 * running + f * batch with f = momentum (momentum < 0: f = 1 /
 * num_batches_tracked, PyTorch's momentum=None), running_var taking the
 * unbiased variance. In eval mode the running statistics normalise (a
 * module without them keeps using the batch's, as PyTorch). state_dict:
 * weight [C] (ones), bias [C] (zeros) when affine; buffers running_mean
 * [C] (zeros), running_var [C] (ones) and num_batches_tracked (int32 [],
 * PyTorch's is int64: cf_module_load converts) when track_running_stats.
 * PyTorch's defaults: eps 1e-5, momentum 0.1, affine, tracking. */
typedef struct {
    cf_module base;
    cf_tensor *weight, *bias;              /* NULL without affine */
    cf_tensor *running_mean, *running_var; /* buffers; NULL without tracking */
    cf_tensor *num_batches_tracked;        /* buffer, int32 []; NULL without tracking */
    int num_features;
    float eps, momentum;
} cf_batchnorm1d;
/* NULL with CF_ERR_ARG for num_features < 1, eps negative or not finite,
 * momentum above 1 or NaN. */
CF_API cf_batchnorm1d *cf_batchnorm1d_new(cf_module *parent, const char *name, int num_features,
                                          float eps, float momentum, bool affine,
                                          bool track_running_stats);
/* CF_ERR_SHAPE for an input that is not [N, C] or [N, C, L], or that has
 * a single value per channel in training mode (as PyTorch). */
CF_API cf_tensor *cf_batchnorm1d_forward(cf_batchnorm1d *m, cf_tensor *x);

/* RMSNorm over the last dim: y = x * rsqrt(mean(x^2) + eps) * weight, the
 * definition of torch.nn.RMSNorm (PyTorch 2.4, absent from 1.13; its
 * default eps is FLT_EPSILON). weight [dim] (ones) when affine. NULL with
 * CF_ERR_ARG for dim < 1 or eps negative or not finite. */
typedef struct {
    cf_module base;
    cf_tensor *weight; /* NULL without elementwise_affine */
    int dim;
    float eps;
} cf_rmsnorm;
CF_API cf_rmsnorm *cf_rmsnorm_new(cf_module *parent, const char *name, int dim, float eps,
                                  bool affine);
/* x [..., dim]; CF_ERR_SHAPE otherwise. */
CF_API cf_tensor *cf_rmsnorm_forward(cf_rmsnorm *m, cf_tensor *x);

/* Dropout with its own generator, active in training mode only. */
typedef struct {
    cf_module base;
    float p;
    cf_rng rng;
} cf_dropout_mod;
CF_API cf_dropout_mod *cf_dropout_new(cf_module *parent, const char *name, float p, uint64_t seed);
CF_API cf_tensor *cf_dropout_forward(cf_dropout_mod *m, cf_tensor *x);
/* A residual connection: x + dropout(y) with m (NULL: no dropout), the
 * values of cf_add(x, cf_dropout_forward(m, y)) as one op. When y is the
 * fresh output of a linear layer, attention or another residual (an op whose
 * backward does not read it), the sum is written over y's memory: pass a y
 * that nothing reads afterwards, as a block's sublayer output is. */
CF_API cf_tensor *cf_residual_forward(cf_dropout_mod *m, cf_tensor *x, cf_tensor *y);

/* ---- Attention and Transformer blocks ---- */

/* torch.nn.MultiheadAttention (batch_first=True): in_proj_weight [3E, E],
 * in_proj_bias [3E], out_proj.weight [E, E], out_proj.bias [E]; Xavier
 * initialisation of in_proj_weight, zero biases, as PyTorch. */
typedef struct {
    cf_module base;
    cf_tensor *in_proj_weight, *in_proj_bias; /* biases NULL without bias */
    cf_linear *out_proj;
    int embed_dim, num_heads;
    float dropout;
    cf_rng rng; /* dropout on the attention weights */
} cf_mha;

/* Cached keys and values of earlier positions, for incremental decoding:
 * each call with a cache appends the new positions' keys and values (in
 * caller-owned storage of max_len positions) and attends over all of them,
 * so one step costs O(T) instead of O(T^2). */
typedef struct {
    cf_tensor *k, *v; /* [B, H, max_len, head_dim], owned by the cache */
    int64_t len;      /* positions filled */
    int64_t max_len;
} cf_kv_cache;

/* Returns a cache for batch B and max_len positions (heap; free with
 * cf_kv_cache_free), or NULL with CF_ERR_NOMEM. */
CF_API cf_kv_cache *cf_kv_cache_new(const cf_mha *m, int64_t batch, int64_t max_len);
CF_API void cf_kv_cache_free(cf_kv_cache *c);
/* Forgets the cached positions (keeps the memory). */
CF_API void cf_kv_cache_clear(cf_kv_cache *c);

typedef struct {
    /* bool [B, S]: true marks a padding key that is ignored (PyTorch). */
    cf_tensor *key_padding_mask;
    /* [L, S] or [B, H, L, S]-broadcastable: bool, true = not allowed
     * (PyTorch's nn.MultiheadAttention), or float, added to the scores. */
    cf_tensor *attn_mask;
    bool causal;
    /* If not NULL, receives the attention weights: [B, L, S] averaged over
     * heads when average_weights, else [B, H, L, S]. They are taken before
     * dropout (PyTorch returns them after). */
    cf_tensor **weights;
    bool average_weights;
    /* Self-attention decoding step: keys and values of the new positions
     * are appended to the cache, queries attend to all cached positions.
     * For inference: no gradient flows through the cached keys and values. */
    cf_kv_cache *cache;
    /* Multiplies the scores q . k; 0: 1 / sqrt(head_dim) (the paper's). */
    float scale;
    CF_RESERVED;
} cf_mha_opts;

CF_API cf_mha *cf_mha_new(cf_module *parent, const char *name, int embed_dim, int num_heads,
                          float dropout, bool bias, cf_rng *g);
/* query [B, L, E], key and value [B, S, E] (pass the same tensor for
 * self-attention: one projection matmul); returns [B, L, E]. opts may be
 * NULL. */
CF_API cf_tensor *cf_mha_forward(cf_mha *m, cf_tensor *query, cf_tensor *key, cf_tensor *value,
                                 const cf_mha_opts *opts);

/* Sinusoidal positional encoding of "Attention Is All You Need" for
 * positions start .. start+T-1: [T, dim], sin(pos / 10000^(2i/dim)) at
 * column 2i and cos at 2i+1, in the arena (no gradient). */
CF_API cf_tensor *cf_sinusoidal_encoding(int64_t start, int64_t T, int dim);

typedef enum { CF_ACT_RELU, CF_ACT_GELU } cf_activation;

/* The position-wise feed-forward block of a Transformer layer:
 * linear2(dropout(act(linear1(x)))). Create it with the name "" to give its
 * parameters the names torch.nn.TransformerEncoderLayer uses
 * (linear1.weight, linear2.bias, ...). */
typedef struct {
    cf_module base;
    cf_linear *linear1, *linear2;
    cf_dropout_mod *dropout;
    cf_activation act;
} cf_ffn;
CF_API cf_ffn *cf_ffn_new(cf_module *parent, const char *name, int dim, int hidden, float dropout,
                          cf_activation act, cf_rng *g);
CF_API cf_tensor *cf_ffn_forward(cf_ffn *m, cf_tensor *x);

/* A learned positional embedding: weight [max_len, dim] ~ N(0, 1). */
typedef struct {
    cf_module base;
    cf_tensor *weight;
    int max_len, dim;
} cf_pos_embedding;
CF_API cf_pos_embedding *cf_pos_embedding_new(cf_module *parent, const char *name, int max_len,
                                              int dim, cf_rng *g);
/* Rows start .. start+T-1 of the table: [T, dim]; CF_ERR_INDEX past max_len. */
CF_API cf_tensor *cf_pos_embedding_forward(cf_pos_embedding *m, int64_t start, int64_t T);

/* ---- Recurrent layers ---- */

/* torch.nn.GRUCell: weight_ih [3H, in], weight_hh [3H, H], bias_ih,
 * bias_hh [3H], gates in the order r, z, n, all ~ U(-1/sqrt(H), 1/sqrt(H)):
 *   r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
 *   z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
 *   n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
 *   h' = (1 - z) * n + z * h */
typedef struct {
    cf_module base;
    cf_tensor *weight_ih, *weight_hh, *bias_ih, *bias_hh; /* biases may be NULL */
    int input, hidden;
} cf_gru_cell;
CF_API cf_gru_cell *cf_gru_cell_new(cf_module *parent, const char *name, int input, int hidden,
                                    bool bias, cf_rng *g);
/* x [B, in], h [B, H] (NULL: zeros); returns h' [B, H]. */
CF_API cf_tensor *cf_gru_cell_forward(cf_gru_cell *m, cf_tensor *x, cf_tensor *h);

/* torch.nn.GRU (batch_first=True): per layer k the parameters
 * weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} and, when
 * bidirectional, the same with the suffix _reverse. Dropout (training only)
 * applies to the outputs of every layer but the last. */
typedef struct {
    cf_module base;
    int input, hidden, layers;
    bool bidirectional;
    float dropout;
    cf_rng rng;
    cf_tensor *w[CF_MODULE_MAX_PARAMS / 2][4]; /* [layer * dirs + dir][ih, hh, b_ih, b_hh] */
} cf_gru;
CF_API cf_gru *cf_gru_new(cf_module *parent, const char *name, int input, int hidden, int layers,
                          bool bidirectional, float dropout, bool bias, cf_rng *g);
/* x [B, T, in], h0 [layers * dirs, B, H] (NULL: zeros); returns the last
 * layer's outputs [B, T, dirs * H] and stores the final states
 * [layers * dirs, B, H] in *h_n when h_n is not NULL. */
CF_API cf_tensor *cf_gru_forward(cf_gru *m, cf_tensor *x, cf_tensor *h0, cf_tensor **h_n);
/* cf_gru_forward over a batch of sequences of different lengths, each
 * padded at its end, as torch.nn.GRU runs over
 * pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
 * and pad_packed_sequence(..., total_length=T) pads the result: lengths is
 * int32 [B] in [0, T]; every layer's forward direction stops at row b's
 * last real step (its state frozen after it) and the reverse direction
 * starts there from h0; outputs at t >= lengths[b] are zeros; h_n holds
 * each row's state after its last real step (forward) and after step 0
 * (reverse), h0 for a length 0. The output at a real step is that of the
 * row run alone at its own length. Errors as cf_gru_forward, and
 * CF_ERR_DTYPE / CF_ERR_SHAPE for lengths that are not int32 [B],
 * CF_ERR_INDEX for a length outside [0, T]. */
CF_API cf_tensor *cf_gru_forward_packed(cf_gru *m, cf_tensor *x, cf_tensor *lengths, cf_tensor *h0,
                                        cf_tensor **h_n);

/* torch.nn.LSTMCell: weight_ih [4H, in], weight_hh [4H, H], bias_ih,
 * bias_hh [4H], gates in the order i, f, g, o, all ~ U(-1/sqrt(H),
 * 1/sqrt(H)):
 *   i = sigmoid(x W_ii^T + b_ii + h W_hi^T + b_hi)   (f and o alike)
 *   g = tanh(x W_ig^T + b_ig + h W_hg^T + b_hg)
 *   c' = f * c + i * g,  h' = o * tanh(c') */
typedef struct {
    cf_module base;
    cf_tensor *weight_ih, *weight_hh, *bias_ih, *bias_hh; /* biases may be NULL */
    int input, hidden;
} cf_lstm_cell;
CF_API cf_lstm_cell *cf_lstm_cell_new(cf_module *parent, const char *name, int input, int hidden,
                                      bool bias, cf_rng *g);
/* x [B, in], h and c [B, H] (NULL: zeros); returns h' [B, H] and stores c'
 * in *c_new when c_new is not NULL. */
CF_API cf_tensor *cf_lstm_cell_forward(cf_lstm_cell *m, cf_tensor *x, cf_tensor *h, cf_tensor *c,
                                       cf_tensor **c_new);

/* torch.nn.LSTM: per layer k the parameters weight_ih_l{k}, weight_hh_l{k},
 * bias_ih_l{k}, bias_hh_l{k} and, when bidirectional, the same with the
 * suffix _reverse; the cell of cf_lstm_cell. Dropout (training only)
 * applies to the outputs of every layer but the last. No proj_size. */
typedef struct {
    cf_module base;
    int input, hidden, layers;
    bool bidirectional, batch_first;
    float dropout;
    cf_rng rng;
    cf_tensor *w[CF_MODULE_MAX_PARAMS / 2][4]; /* [layer * dirs + dir][ih, hh, b_ih, b_hh] */
} cf_lstm;
CF_API cf_lstm *cf_lstm_new(cf_module *parent, const char *name, int input, int hidden, int layers,
                            bool bidirectional, bool batch_first, float dropout, bool bias,
                            cf_rng *g);
/* x [B, T, in] when batch_first, else [T, B, in]; h0 and c0 [layers * dirs,
 * B, H] (NULL: zeros). Returns the last layer's outputs [B, T, dirs * H]
 * ([T, B, dirs * H] when not batch_first) and stores the final states
 * [layers * dirs, B, H] in *h_n and *c_n when not NULL (PyTorch's
 * output, (h_n, c_n)). */
CF_API cf_tensor *cf_lstm_forward(cf_lstm *m, cf_tensor *x, cf_tensor *h0, cf_tensor *c0,
                                  cf_tensor **h_n, cf_tensor **c_n);
/* cf_lstm_forward over sequences of the given lengths (int32 [B] in
 * [0, T]), as over pack_padded_sequence(x, lengths, enforce_sorted=False):
 * as cf_gru_forward_packed, with c_n frozen like h_n. */
CF_API cf_tensor *cf_lstm_forward_packed(cf_lstm *m, cf_tensor *x, cf_tensor *lengths,
                                         cf_tensor *h0, cf_tensor *c0, cf_tensor **h_n,
                                         cf_tensor **c_n);

/* Additive attention (Bahdanau et al. 2015): score_j = v^T tanh(W_q q +
 * W_k k_j), parameters query_proj.weight [A, Q], key_proj.weight [A, K],
 * key_proj.bias [A], v.weight [1, A]. */
typedef struct {
    cf_module base;
    cf_linear *query_proj, *key_proj, *v;
} cf_additive_attention;
CF_API cf_additive_attention *cf_additive_attention_new(cf_module *parent, const char *name,
                                                        int query_dim, int key_dim, int attn_dim,
                                                        cf_rng *g);
/* The key projection [B, S, A] of keys [B, S, K]; compute it once per
 * source sequence and pass it to every decoding step. */
CF_API cf_tensor *cf_additive_attention_keys(cf_additive_attention *m, cf_tensor *keys);
/* query [B, Q], keys [B, S, K], their projection from
 * cf_additive_attention_keys, key_padding_mask bool [B, S] (true: ignored)
 * or NULL. Returns the context [B, K]; *weights (if not NULL) receives the
 * attention weights [B, S]. */
CF_API cf_tensor *cf_additive_attention_forward(cf_additive_attention *m, cf_tensor *query,
                                                cf_tensor *keys, cf_tensor *proj_keys,
                                                cf_tensor *key_padding_mask, cf_tensor **weights);

/* Multiplicative attention (Luong et al. 2015), used as
 * cf_additive_attention: score_j = q . k_j ("dot", query and key sizes
 * equal, no parameters) or q^T W_a k_j ("general", W_a = key_proj.weight
 * [Q, K], no bias, initialised as nn.Linear), then softmax over the keys
 * and the context sum_j a_j k_j. Unscaled, as in the paper; its attentional
 * layer tanh(W_c [ctx ; h]) belongs to the caller. */
typedef enum { CF_LUONG_DOT, CF_LUONG_GENERAL } cf_luong_score;
typedef struct {
    cf_module base;
    cf_luong_score score;
    cf_linear *key_proj; /* "general" only; NULL for "dot" */
    int query_dim, key_dim;
} cf_luong_attention;
/* NULL with CF_ERR_ARG for an unknown score, sizes below 1, or "dot" with
 * differing sizes. */
CF_API cf_luong_attention *cf_luong_attention_new(cf_module *parent, const char *name,
                                                  cf_luong_score score, int query_dim, int key_dim,
                                                  cf_rng *g);
/* keys [B, S, K] as the scores read them, [B, S, Q]: keys W_a^T
 * ("general"), keys themselves ("dot"); once per source sequence. */
CF_API cf_tensor *cf_luong_attention_keys(cf_luong_attention *m, cf_tensor *keys);
/* query [B, Q], keys [B, S, K], their cf_luong_attention_keys,
 * key_padding_mask bool [B, S] (true: ignored) or NULL. Returns the context
 * [B, K]; *weights (if not NULL) receives the attention weights [B, S].
 * CF_ERR_SHAPE naming every shape when they do not fit. */
CF_API cf_tensor *cf_luong_attention_forward(cf_luong_attention *m, cf_tensor *query,
                                             cf_tensor *keys, cf_tensor *proj_keys,
                                             cf_tensor *key_padding_mask, cf_tensor **weights);

/* ---- Optimizers (PyTorch semantics and update order) ----
 * An optimizer updates every parameter under the module it was made for
 * (parameters without a gradient are skipped, as in PyTorch). It owns its
 * state; free it with cf_optim_free. */

typedef struct cf_optim cf_optim;

/* Which parameters weight decay applies to (see the opts below): true to
 * decay. */
typedef bool (*cf_decay_fn)(const char *name, const cf_tensor *param);
/* The usual Transformer recipe: decay matrices (ndim >= 2: Linear and
 * Embedding weights), not biases, norm weights or other vectors. */
CF_API bool cf_decay_matrices(const char *name, const cf_tensor *param);

/* SGD options; zero-initialised means plain SGD (lr must be set). */
typedef struct {
    float lr;       /* required, > 0 */
    float momentum; /* 0: none */
    float dampening;
    float weight_decay; /* L2, added to the gradient */
    bool nesterov;
    cf_decay_fn decays; /* NULL: every parameter */
    CF_RESERVED;
} cf_sgd_opts;

/* Adam and AdamW options; zero-initialised fields take the defaults shown.
 * Note that weight_decay 0 means none for AdamW too (torch's AdamW
 * defaults to 0.01: write it). */
typedef struct {
    float lr;           /* 0: 1e-3 */
    float beta1, beta2; /* 0: 0.9, 0.999 */
    float eps;          /* 0: 1e-8 */
    float weight_decay; /* Adam: L2 added to the gradient; AdamW: decoupled */
    cf_decay_fn decays; /* NULL: every parameter; cf_decay_matrices: the
                           no-decay group of biases and norm weights */
    CF_RESERVED;
} cf_adam_opts;
typedef cf_adam_opts cf_adamw_opts;

/* SGD with momentum (buffer initialised to the first gradient), dampening,
 * Nesterov and L2 weight decay (torch.optim.SGD). opts must not be NULL. */
CF_API cf_optim *cf_sgd_new(cf_module *m, const cf_sgd_opts *opts);
/* Adam with L2 weight decay added to the gradient (torch.optim.Adam).
 * opts NULL: the defaults. */
CF_API cf_optim *cf_adam_new(cf_module *m, const cf_adam_opts *opts);
/* AdamW: decoupled weight decay (torch.optim.AdamW). opts NULL: the
 * defaults (no weight decay). */
CF_API cf_optim *cf_adamw_new(cf_module *m, const cf_adamw_opts *opts);
/* Each returns an optimizer owned by the caller (cf_optim_free), or NULL
 * with CF_ERR_ARG (NULL module, a negative or NaN setting, betas outside
 * [0, 1), Nesterov without momentum or with dampening) or CF_ERR_NOMEM. */
/* One update of every parameter from its gradient. Runs without
 * recording a graph. */
CF_API void cf_optim_step(cf_optim *o);
/* Zeroes the gradients of the optimizer's parameters. */
CF_API void cf_optim_zero_grad(cf_optim *o);
CF_API void cf_optim_set_lr(cf_optim *o, float lr);
CF_API float cf_optim_lr(const cf_optim *o);
/* Updates taken so far. */
CF_API int64_t cf_optim_steps(const cf_optim *o);
/* Frees the optimizer and its state (not the parameters). NULL: no-op. */
CF_API void cf_optim_free(cf_optim *o);

/* ---- Gradient clipping and schedules ---- */

/* Scales the gradients under m so that their global L2 norm is at most
 * max_norm (torch.nn.utils.clip_grad_norm_); returns the norm before
 * clipping (0 for a NULL module: no gradients), or NAN with CF_ERR_ARG for
 * a max_norm that is negative or NaN. */
CF_API float cf_clip_grad_norm(cf_module *m, float max_norm);

/* "Attention Is All You Need": d_model^-0.5 * min(step^-0.5, step *
 * warmup^-1.5), for step >= 1 (step 0 is treated as 1). */
CF_API float cf_lr_transformer(int64_t step, int d_model, int64_t warmup);
/* Linear warm-up base * (step + 1) / warmup for the first `warmup` steps
 * (so step 0 already learns, and step warmup - 1 is at base), then cosine
 * decay to min_lr at step `total` (and min_lr after); warmup 0 or 1 starts
 * the cosine at base. Equal to PyTorch's SequentialLR(LinearLR(start_factor
 * 1 / warmup, total_iters warmup - 1), CosineAnnealingLR(T_max total -
 * warmup + 1, eta_min min_lr), milestones [warmup - 1]) up to step total. */
CF_API float cf_lr_cosine(int64_t step, int64_t warmup, int64_t total, float base, float min_lr);
/* base * gamma^floor(step / step_size) (torch.optim.lr_scheduler.StepLR). */
CF_API float cf_lr_step(int64_t step, float base, int64_t step_size, float gamma);

/* ---- Decoding (nn/decode.c) ----
 * Greedy and beam search over any autoregressive model, through a step
 * function the caller writes: the zoo's models decode with these, and so
 * can a user's decoder-only model. */

typedef struct {
    /* Writes the log-probabilities [n, vocab] of the next token for the n
     * live hypotheses, whose last tokens are tokens[0..n) (bos first).
     * Returns CF_OK, or an error status that ends the search. */
    cf_status (*step)(void *ud, const int32_t *tokens, int n, float *logp);
    /* Beam search only: reorders the model's state so that hypothesis i
     * continues old hypothesis from[i], for i < n. */
    cf_status (*reorder)(void *ud, const int *from, int n);
    void *ud;
    int vocab, bos, eos, pad;
    CF_RESERVED;
} cf_decoder;

/* Greedy decoding of one sequence from bos: writes max_len tokens to out
 * (the tokens after bos, eos included, then pad). Returns CF_OK, CF_ERR_ARG
 * (no step function, vocab or max_len < 1, out NULL), CF_ERR_NOMEM, or the
 * status of a failing step. */
CF_API cf_status cf_greedy_search(const cf_decoder *d, int max_len, int32_t *out);
/* Beam search of width beam from bos, ranking finished hypotheses by
 * log-probability / ((5 + len) / 6)^alpha (GNMT); a hypothesis also ends at
 * max_len. Writes the best to out as cf_greedy_search does. Needs reorder;
 * CF_ERR_ARG for beam < 1 or a non-finite alpha. Width 1 is greedy. */
CF_API cf_status cf_beam_search(const cf_decoder *d, int beam, float alpha, int max_len,
                                int32_t *out);

/* Sampling options; zero-initialised means plain sampling at temperature 1. */
typedef struct {
    float temperature; /* divides the logits; 0: 1 */
    int top_k;         /* keep the k most likely tokens; 0: all */
    float top_p;       /* keep the smallest set of most likely tokens whose
                          probability reaches top_p (nucleus); 0 or 1: all */
    CF_RESERVED;
} cf_sample_opts;

/* Draws one token per row of logits [B, V] (or [V]) from softmax(logits /
 * temperature), restricted by top_k and then top_p, with the generator g
 * (NULL: the global one). Returns int32 [B] (or a scalar) in the arena, or
 * NULL with CF_ERR_SHAPE when logits are not float [V] or [B, V], CF_ERR_ARG
 * for a negative temperature or top_k, top_p outside [0, 1], or a row that
 * is not finite. Greedy decoding is cf_argmax. */
CF_API cf_tensor *cf_sample(cf_tensor *logits, const cf_sample_opts *opts, cf_rng *g);

/* ---- Checkpoints (safetensors, readable by PyTorch) ----
 * Writes are atomic: a temporary file, fsync, rename. Errors name the file
 * and the tensor: CF_ERR_IO, CF_ERR_FORMAT (corrupt file, missing name),
 * CF_ERR_SHAPE, CF_ERR_DTYPE. */

/* Saves every parameter under m by its full name, and in the metadata the
 * state of every Dropout generator (so training can resume exactly) and
 * every module's settings ("<path>.config.<key>", "config.<key>" for the
 * root; see cf_module.settings). */
CF_API cf_status cf_module_save(cf_module *m, const char *path);
/* Loads the parameters under m by name, as PyTorch's load_state_dict.
 * strict: every parameter must be in the file and every tensor of the file
 * must be a parameter (CF_ERR_FORMAT naming the first that is not); not
 * strict: parameters the file lacks keep their values and extra tensors are
 * ignored. Shapes and dtypes must match either way. Settings must match
 * too, strict or not: a setting recorded in the file with another value
 * than the model's is CF_ERR_FORMAT naming the setting and both values
 * (checked before any tensor); in a file of cf_module_save's a missing
 * setting stands for the value it implies, in other files (PyTorch's) it
 * is not checked. Nothing is changed on error. */
CF_API cf_status cf_module_load(cf_module *m, const char *path, bool strict);

/* The names that did not match in a load (PyTorch's missing_keys and
 * unexpected_keys). Owned by the report: free with cf_load_report_free. */
typedef struct {
    int nmissing, nunexpected;
    char **missing;    /* parameters of the model the file lacks */
    char **unexpected; /* tensors of the file that are not parameters */
    CF_RESERVED;       /* 0 */
} cf_load_report;
/* cf_module_load that also fills *report (always, even on error; zeroed
 * first). In strict mode the status is CF_ERR_FORMAT when either list is
 * non-empty, after both are complete. */
CF_API cf_status cf_module_load_report(cf_module *m, const char *path, bool strict,
                                       cf_load_report *report);
/* Frees the lists of a report and zeroes it. NULL: no-op. */
CF_API void cf_load_report_free(cf_load_report *report);
/* Saves / restores an optimizer's state, step count and learning rate; the
 * optimizer must have been made for the same parameters. Nothing is changed
 * on error. */
CF_API cf_status cf_optim_save(const cf_optim *o, const char *path);
CF_API cf_status cf_optim_load(cf_optim *o, const char *path);

#ifdef __cplusplus
}
#endif
#endif
