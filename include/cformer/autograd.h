/* cformer/autograd.h: differentiable ops and reverse-mode autograd.
 *
 * Ops compose as expressions and record the graph as they run:
 *
 *     cf_tensor *h = cf_relu(cf_add(cf_matmul(x, w1), b1));
 *     cf_tensor *loss = cf_mean(cf_square(cf_sub(cf_matmul(h, w2), y)), ...);
 *     cf_backward(loss);          // w1->grad, b1->grad, ... now hold dloss/dw
 *
 * Every op returns a new tensor in the arena in use (see tensor.h), or NULL
 * with the error recorded; an op handed NULL returns NULL and keeps the first
 * error. Views (reshape, permute, transpose, slice, expand, squeeze,
 * unsqueeze) share their input's storage. Binary ops broadcast like PyTorch:
 * sizes are aligned from the right and a size of 1 stretches. A shape error
 * names the op and both shapes.
 *
 * An op records its backward only when grad mode is on and one of its inputs
 * requires a gradient. Gradients accumulate into .grad across backward calls
 * until cf_zero_grad. Tensors in a recorded graph must not be modified in
 * place.
 */
#ifndef CFORMER_AUTOGRAD_H
#define CFORMER_AUTOGRAD_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Graph and backward ---- */

/* Marks a leaf as needing a gradient (or not); returns t. CF_ERR_ARG for a
 * tensor made by a recorded op or a non-float tensor. */
CF_API cf_tensor *cf_requires_grad(cf_tensor *t, bool on);

/* Computes the gradient of the one-element tensor y with respect to every
 * leaf in its graph that requires a gradient, accumulating into .grad.
 * Leaves made by cf_tensor_new get gradients they own; all other gradients
 * belong to the arena in use. As in PyTorch, the gradients of intermediate
 * results (tensors made by ops) are dropped as soon as backward has used
 * them, and their memory is reused within the step: afterwards their .grad
 * is NULL. A graph serves one backward, as in PyTorch: a second backward
 * through any op result the first went through (the same loss twice, or
 * two losses that share a subgraph) is refused before it changes anything,
 * unless the first was asked to retain the graph (cf_backward_ex). Returns
 * CF_OK, or CF_ERR_SHAPE when y has more than one element, CF_ERR_STATE when
 * y requires no gradient or its graph was already used. */
CF_API cf_status cf_backward(cf_tensor *y);
/* The same with an explicit dL/dy of y's shape (copied). */
CF_API cf_status cf_backward_with(cf_tensor *y, const cf_tensor *dy);

typedef struct {
    const cf_tensor *grad; /* dL/dy of y's shape (copied); NULL: y has one
                              element and dL/dy = 1 */
    bool retain_graph;     /* leave the graph usable by another backward,
                              which then adds its gradients to the leaves'
                              again */
    CF_RESERVED;
} cf_backward_opts;
/* cf_backward with options; opts may be NULL (the defaults above). */
CF_API cf_status cf_backward_ex(cf_tensor *y, const cf_backward_opts *opts);

/* Called by backward once per leaf that requires a gradient, when the
 * leaf's gradient for this backward call is final (every op that uses the
 * leaf has added its contribution) and before backward goes on with the
 * ops that feed those: lets a caller start work on early gradients, such as
 * sending them to other processes, while backward still runs.
 * Leaves come in reverse topological order, so a layer's parameters arrive
 * before those of the layer that feeds it; a leaf that got no gradient is
 * not reported. A status other than CF_OK (record the error with
 * cf_error_set) stops backward, which returns it. */
typedef cf_status (*cf_grad_ready_fn)(cf_tensor *leaf, void *ud);
/* Installs fn (NULL removes it) for backward calls on this thread; ud is
 * passed to every call. One hook per thread: a new one replaces the old. */
CF_API void cf_set_grad_ready_hook(cf_grad_ready_fn fn, void *ud);

/* Anomaly mode, for hunting NaN: every op checks its output and backward
 * checks every gradient it makes, so that the first op to give NaN or
 * infinity fails with CF_ERR_NUMERIC and a message naming it and the
 * shapes:
 *     anomaly: op 'log' gave infinity in its output [2, 3] (element 4) from
 *     inputs [2, 3]
 *     anomaly: the backward of op 'sqrt' (output [4]) gave input 0 [4] a
 *     gradient holding infinity (element 0)
 * An op's output is refused when it holds NaN (so NaN in the data stops the
 * first op it reaches: the message says which input holds it) or an
 * infinity the op made: one no input holds and no scalar argument asked
 * for (cf_masked_fill(x, mask, -INFINITY) is fine). Every element is
 * scanned: slow, for debugging. Off by default, when it costs one test per
 * op; on when the environment variable CF_ANOMALY is set to anything but 0
 * at startup. Process-wide: set it before starting threads. Returns the
 * previous setting. */
CF_API bool cf_set_anomaly(bool on);
CF_API bool cf_anomaly_enabled(void);

/* Sets a tensor's gradient to zero (keeping its storage). NULL is a no-op. */
CF_API void cf_zero_grad(cf_tensor *t);

/* Turns recording on or off on this thread; returns the previous setting.
 * With recording off, ops compute values only (for evaluation and for
 * optimizer updates). */
CF_API bool cf_set_grad_enabled(bool on);
CF_API bool cf_is_grad_enabled(void);
/* A no-grad scope:  CF_NO_GRAD { ... }  (do not leave it with return/goto). */
#define CF_NO_GRAD                                                                                 \
    for (bool cf_ng_prev_ = cf_set_grad_enabled(false), cf_ng_once_ = true; cf_ng_once_;           \
         cf_set_grad_enabled(cf_ng_prev_), cf_ng_once_ = false)

/* A view of t's data that is not part of any graph. */
CF_API cf_tensor *cf_detach(cf_tensor *t);

/* Writes the graph that produced y in Graphviz DOT to f: op nodes show the
 * op (and the tensor's name when set), leaves their name (a module
 * parameter's is its state_dict name), each with its shape. Returns CF_OK
 * or CF_ERR_IO. */
CF_API cf_status cf_graph_dot(FILE *f, const cf_tensor *y);

/* ---- Defining an op ----
 * A user op computes its output with ordinary code, then records itself:
 *
 *     static cf_status square_backward(cf_tensor *out) {
 *         cf_tensor *x = out->src[0];
 *         cf_tensor *gx = cf_grad_for(x);  // NULL when x needs no gradient
 *         ... add 2 * x * out->grad into gx ...
 *     }
 *     static const cf_op square_op = {"square", square_backward};
 *     ...
 *     cf_tensor *out = cf_empty(CF_F32, x->ndim, x->shape);
 *     ... fill out ...
 *     return cf_op_record(out, &square_op, 1, (cf_tensor *[]){x});
 *
 * Inputs may be strided views (transposed, sliced, broadcast with stride
 * 0): index them through x->stride, or take cf_contiguous(x) first (a copy
 * only when needed). Outputs of cf_empty and gradients from cf_grad_for are
 * contiguous. A whole program: examples/snippets/user_op.c. Built-in ops
 * use the same mechanism. */

struct cf_op {
    const char *name;
    /* Adds the gradient contributions of out->grad (contiguous, out's shape)
     * to the gradients of out->src[i], obtained with cf_grad_for. It may use
     * out->saved, out->iparam, out->fparam and out->ctx, and allocate from
     * the arena. Returns CF_OK or an error it has recorded. */
    cf_status (*backward)(cf_tensor *out);
};

/* Records that out was made by op from src[0..nsrc): when recording is on
 * and a source requires a gradient, out requires one too and backward will
 * call op->backward. Returns out; NULL (keeping the first error) when out or
 * a source is NULL, CF_ERR_ARG when nsrc > CF_MAX_SRC. */
CF_API cf_tensor *cf_op_record(cf_tensor *out, const cf_op *op, int nsrc, cf_tensor *const *src);
/* During backward: returns t's gradient (allocated and zeroed on first use,
 * contiguous, t's shape) to add into, or NULL when t needs no gradient. */
CF_API cf_tensor *cf_grad_for(cf_tensor *t);

/* ---- Gradient checking ---- */

/* f maps the inputs to an output tensor of any shape. */
typedef cf_tensor *(*cf_gradcheck_fn)(cf_tensor *const *inputs, void *ud);

typedef struct {
    float max_abs[CF_MAX_SRC]; /* largest |analytic - numeric| per input */
    float max_rel[CF_MAX_SRC]; /* the same over max(|numeric|, 1) */
    CF_RESERVED;               /* 0 */
} cf_gradcheck_report;

/* Compares the backward of f at the inputs with central differences of
 * step eps, for the scalar sum(f(inputs) * r) with a fixed random r. Float
 * inputs that require a gradient are checked; others are held fixed. Uses
 * the arena in use. Returns CF_OK and fills rep, or the error f raised. */
CF_API cf_status cf_gradcheck(cf_gradcheck_fn f, void *ud, int n, cf_tensor *const *inputs,
                              float eps, cf_gradcheck_report *rep);

/* ---- Elementwise arithmetic (broadcasting) ---- */

CF_API cf_tensor *cf_add(cf_tensor *a, cf_tensor *b);
CF_API cf_tensor *cf_sub(cf_tensor *a, cf_tensor *b);
CF_API cf_tensor *cf_mul(cf_tensor *a, cf_tensor *b);
CF_API cf_tensor *cf_div(cf_tensor *a, cf_tensor *b);
CF_API cf_tensor *cf_neg(cf_tensor *a);
/* a + s, a * s, s - a, s / a with a float scalar s. */
CF_API cf_tensor *cf_add_scalar(cf_tensor *a, float s);
CF_API cf_tensor *cf_mul_scalar(cf_tensor *a, float s);
CF_API cf_tensor *cf_rsub_scalar(cf_tensor *a, float s);
CF_API cf_tensor *cf_rdiv_scalar(cf_tensor *a, float s);
CF_API cf_tensor *cf_square(cf_tensor *a);

/* ---- Unary functions ---- */

CF_API cf_tensor *cf_exp(cf_tensor *a);
CF_API cf_tensor *cf_log(cf_tensor *a);
CF_API cf_tensor *cf_tanh(cf_tensor *a);
CF_API cf_tensor *cf_sigmoid(cf_tensor *a);
/* The gradient at 0 is 0, and NaN passes through, as in PyTorch. */
CF_API cf_tensor *cf_relu(cf_tensor *a);

/* ---- Reductions ----
 * dims lists ndims dimensions (negative counts from the end; ndims 0 means
 * all). keepdim keeps them as size 1. CF_ERR_DIM for a dimension out of
 * range or listed twice. */

CF_API cf_tensor *cf_sum(cf_tensor *a, int ndims, const int *dims, bool keepdim);
CF_API cf_tensor *cf_mean(cf_tensor *a, int ndims, const int *dims, bool keepdim);
/* The sum of all elements, as a 0-dimensional tensor. */
CF_API cf_tensor *cf_sum_all(cf_tensor *a);
CF_API cf_tensor *cf_mean_all(cf_tensor *a);
/* CF_DIMS(0, 2) expands to `ndims, dims` for the reductions. */
#define CF_DIMS(...)                                                                               \
    (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), (const int[]) { __VA_ARGS__ }

/* ---- Matrix product ----
 * torch.matmul semantics: 1-D operands are a vector, 2-D a matrix, more
 * dims a batch of matrices whose batch dims broadcast. Any strides: a
 * transposed or permuted view is passed to BLIS without a copy. CF_ERR_SHAPE
 * when the inner sizes differ. */
CF_API cf_tensor *cf_matmul(cf_tensor *a, cf_tensor *b);
/* x @ weight^T + bias, as torch.nn.functional.linear: x [..., in], weight
 * [out, in], bias [out] or NULL; returns [..., out]. One output tensor (the
 * bias seeds the product), where matmul then add make two. CF_ERR_SHAPE
 * when the sizes do not fit, CF_ERR_DTYPE for a non-float operand. */
CF_API cf_tensor *cf_affine(cf_tensor *x, cf_tensor *weight, cf_tensor *bias);

/* ---- Views (share storage) ---- */

/* A view with the given shape; one size may be -1 (inferred). When the
 * strides cannot express it, CF_ERR_SHAPE: use cf_reshape, which copies. */
CF_API cf_tensor *cf_view(cf_tensor *a, int ndim, const int64_t *shape);
/* A view when possible, else a contiguous copy. */
CF_API cf_tensor *cf_reshape(cf_tensor *a, int ndim, const int64_t *shape);
/* dims is a permutation of 0..ndim-1. */
CF_API cf_tensor *cf_permute(cf_tensor *a, const int *dims);
CF_API cf_tensor *cf_transpose(cf_tensor *a, int d0, int d1);
/* Elements start, start+step, ... below end along dim; start and end are
 * clamped like Python slices (negative counts from the end), so any int64
 * values are valid; step >= 1. */
CF_API cf_tensor *cf_slice(cf_tensor *a, int dim, int64_t start, int64_t end, int64_t step);
/* Size-1 dims stretched to the given sizes (-1 keeps a size); new leading
 * dims may be added. */
CF_API cf_tensor *cf_expand(cf_tensor *a, int ndim, const int64_t *shape);
/* Removes dim if its size is 1 (dim = -1 .. -ndim counts from the end). */
CF_API cf_tensor *cf_squeeze(cf_tensor *a, int dim);
CF_API cf_tensor *cf_unsqueeze(cf_tensor *a, int dim);
/* A contiguous tensor with a's values: a itself when already contiguous. */
CF_API cf_tensor *cf_contiguous(cf_tensor *a);
/* Always a contiguous copy. */
CF_API cf_tensor *cf_clone(cf_tensor *a);

/* ---- More pointwise functions (autograd/math.c) ----
 * Binary forms broadcast. Gradients follow PyTorch at kinks: abs and relu
 * have gradient 0 at 0, clamp passes the gradient where lo <= x <= hi,
 * maximum/minimum split it equally between tied inputs. */

CF_API cf_tensor *cf_pow(cf_tensor *a, cf_tensor *b);
CF_API cf_tensor *cf_pow_scalar(cf_tensor *a, float p);
CF_API cf_tensor *cf_sqrt(cf_tensor *a);
CF_API cf_tensor *cf_rsqrt(cf_tensor *a);
CF_API cf_tensor *cf_abs(cf_tensor *a);
/* Clamps to [lo, hi]; pass -INFINITY or INFINITY for a missing bound. */
CF_API cf_tensor *cf_clamp(cf_tensor *a, float lo, float hi);
CF_API cf_tensor *cf_maximum(cf_tensor *a, cf_tensor *b);
CF_API cf_tensor *cf_minimum(cf_tensor *a, cf_tensor *b);
/* cond ? a : b elementwise; cond is a bool tensor; all three broadcast. */
CF_API cf_tensor *cf_where(cf_tensor *cond, cf_tensor *a, cf_tensor *b);
/* a with value wherever the bool mask (broadcast to a's shape) is true. */
CF_API cf_tensor *cf_masked_fill(cf_tensor *a, cf_tensor *mask, float value);
/* Comparisons give bool tensors and no gradient; operands are both float32
 * or both int32, and broadcast. */
CF_API cf_tensor *cf_eq(cf_tensor *a, cf_tensor *b);
CF_API cf_tensor *cf_lt(cf_tensor *a, cf_tensor *b);
CF_API cf_tensor *cf_gt(cf_tensor *a, cf_tensor *b);
CF_API cf_tensor *cf_logical_not(cf_tensor *mask);
/* GELU: x * Phi(x) with the exact erf form, or PyTorch's tanh
 * approximation (approximate='tanh') when tanh_approx is true. */
CF_API cf_tensor *cf_gelu(cf_tensor *a, bool tanh_approx);
/* SiLU: x * sigmoid(x). */
CF_API cf_tensor *cf_silu(cf_tensor *a);

/* ---- More reductions (autograd/reduce.c) ---- */

/* The largest (smallest) values along dim; *indices (if not NULL) receives
 * their positions as an int32 tensor (PyTorch returns int64) of the same
 * shape. Ties pick the first position; the gradient goes to it. */
CF_API cf_tensor *cf_max(cf_tensor *a, int dim, bool keepdim, cf_tensor **indices);
CF_API cf_tensor *cf_min(cf_tensor *a, int dim, bool keepdim, cf_tensor **indices);
/* Positions of the largest values along dim (int32, not differentiable). */
CF_API cf_tensor *cf_argmax(cf_tensor *a, int dim, bool keepdim);
/* The largest (smallest) element of the whole tensor, a scalar (torch.max(a)),
 * and the row-major position of the largest as an int32 scalar
 * (torch.argmax(a)). A NaN is the largest (it propagates); an empty tensor
 * is a CF_ERR_SHAPE error. */
CF_API cf_tensor *cf_max_all(cf_tensor *a);
CF_API cf_tensor *cf_min_all(cf_tensor *a);
CF_API cf_tensor *cf_argmax_all(cf_tensor *a);
/* Variance and standard deviation over dims (ndims 0: all), divided by
 * n - 1 when unbiased, else by n. */
CF_API cf_tensor *cf_var(cf_tensor *a, int ndims, const int *dims, bool unbiased, bool keepdim);
CF_API cf_tensor *cf_std(cf_tensor *a, int ndims, const int *dims, bool unbiased, bool keepdim);
/* log(sum(exp(a))) over dims, computed stably. */
CF_API cf_tensor *cf_logsumexp(cf_tensor *a, int ndims, const int *dims, bool keepdim);

/* ---- Normalisation (autograd/softmax.c, autograd/layer_norm.c,
 * autograd/dropout.c) ---- */

/* Softmax and log-softmax along dim, fused and stable (one pass for the
 * max, one for the sum of exponentials). */
CF_API cf_tensor *cf_softmax(cf_tensor *a, int dim);
CF_API cf_tensor *cf_log_softmax(cf_tensor *a, int dim);
/* Layer norm over the last nnorm dims of x: (x - mean) / sqrt(var + eps) *
 * weight + bias, with the biased variance. weight and bias have the shape of
 * those dims, or are NULL. One fused kernel forward, one backward. */
CF_API cf_tensor *cf_layer_norm(cf_tensor *x, int nnorm, cf_tensor *weight, cf_tensor *bias,
                                float eps);
/* Inverted dropout: in training, zeroes each element with probability p
 * (mask from g, NULL: the global generator) and scales the rest by
 * 1 / (1 - p); otherwise, or with p = 0, returns a unchanged. CF_ERR_ARG for
 * p outside [0, 1]. */
CF_API cf_tensor *cf_dropout(cf_tensor *a, float p, bool training, cf_rng *g);

/* ---- Recurrent cells (autograd/rnn.c) ---- */

/* The new state of a GRU step from its input projection gi = x W_ih^T +
 * b_ih and hidden projection gh = h W_hh^T + b_hh, both [..., 3H] with
 * the reset, update and new gates in that order, and the state h [..., H]:
 * r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z),
 * n = tanh(gi_n + r * gh_n), returns (1 - z) * n + z * h, [..., H], as
 * torch.nn.GRU computes it. One pass forward and one backward (which
 * recomputes the gates rather than keeping them); the inputs may have any
 * strides. CF_ERR_SHAPE naming all three shapes unless gi and gh have
 * h's leading dims and 3H last; CF_ERR_DTYPE unless all are float32. */
CF_API cf_tensor *cf_gru_gates(cf_tensor *gi, cf_tensor *gh, cf_tensor *h);

/* ---- Additive attention score (autograd/score.c) ---- */

/* The scores of additive (Bahdanau) attention: e[b, s] = sum over a of
 * v[a] * tanh(k[b, s, a] + q[b, a]) for projected keys k [B, S, A], a
 * projected query q [B, A] and v [A]; returns e [B, S]. One pass forward
 * and one backward (which recomputes the tanh rather than keeping
 * [B, S, A]). CF_ERR_SHAPE naming all three shapes unless they are
 * [B, S, A], [B, A] and [A]; CF_ERR_DTYPE unless all are float32. */
CF_API cf_tensor *cf_additive_score(cf_tensor *k, cf_tensor *q, cf_tensor *v);

/* ---- Indexing (autograd/index.c) ----
 * Index tensors are int32; an index out of range is CF_ERR_INDEX naming the
 * op and the value. */

/* Rows of weight [V, D] picked by indices of any shape: [..., D]. The
 * backward adds into the picked rows, except the row padding_idx (-1: none),
 * which gets no gradient. */
CF_API cf_tensor *cf_embedding(cf_tensor *weight, cf_tensor *indices, int padding_idx);
/* Entries of a along dim at the positions in the 1-D index. */
CF_API cf_tensor *cf_index_select(cf_tensor *a, int dim, cf_tensor *index);
/* out[i][j][k] = a[index[i][j][k]][j][k] for dim 0, and so on (torch.gather):
 * index has a's number of dims and sizes no larger than a's off dim. */
CF_API cf_tensor *cf_gather(cf_tensor *a, int dim, cf_tensor *index);

/* ---- Joining and splitting (autograd/join.c) ---- */

/* Concatenates n tensors along dim; their other sizes must match. */
CF_API cf_tensor *cf_cat(int n, cf_tensor *const *ts, int dim);
/* Stacks n tensors of one shape along a new dim. */
CF_API cf_tensor *cf_stack(int n, cf_tensor *const *ts, int dim);
/* Splits a into views of `size` along dim (the last may be smaller); writes
 * at most max_out of them to out and returns how many there are, or -1. */
CF_API int cf_split(cf_tensor *a, int64_t size, int dim, cf_tensor **out, int max_out);
/* Splits a into `chunks` views along dim as torch.chunk does (ceil-sized;
 * fewer when the size runs out); returns how many, or -1. */
CF_API int cf_chunk(cf_tensor *a, int chunks, int dim, cf_tensor **out);

/* ---- Losses (autograd/loss.c) ---- */

typedef enum { CF_REDUCE_MEAN, CF_REDUCE_SUM, CF_REDUCE_NONE } cf_reduction;

/* Loss options; zero-initialised (or a NULL pointer) means PyTorch's
 * defaults: the mean over counted targets, no label smoothing, no ignored
 * class. */
typedef struct {
    cf_reduction reduction; /* CF_REDUCE_MEAN (0), _SUM or _NONE */
    float label_smoothing;  /* cross entropy only: in [0, 1] */
    bool ignore;            /* class losses: skip targets equal to ignore_index */
    int ignore_index;       /* e.g. the padding id */
    CF_RESERVED;
} cf_loss_opts;

/* Cross entropy of logits [N, C] (or [N, C, d1, ...], classes in dim 1, as
 * in PyTorch) against int32 targets [N] ([N, d1, ...]), fused with
 * log_softmax. With o->ignore, targets equal to ignore_index add nothing
 * and are not counted by the mean; label_smoothing mixes in the uniform
 * distribution as PyTorch does. A target outside [0, C) that is not
 * ignored is CF_ERR_INDEX naming the value; a label_smoothing outside
 * [0, 1] or an unknown reduction is CF_ERR_ARG. opts may be NULL. */
CF_API cf_tensor *cf_cross_entropy(cf_tensor *logits, cf_tensor *target, const cf_loss_opts *opts);
/* Negative log likelihood of log-probabilities [N, C] (or [N, C, d...]);
 * opts as above (label_smoothing must be 0). */
CF_API cf_tensor *cf_nll_loss(cf_tensor *logp, cf_tensor *target, const cf_loss_opts *opts);
/* Mean (or summed, or elementwise) squared error between a and b
 * (broadcasting); only opts->reduction applies. */
CF_API cf_tensor *cf_mse_loss(cf_tensor *a, cf_tensor *b, const cf_loss_opts *opts);

/* ---- Attention (autograd/attention.c) ---- */

typedef struct {
    /* Optional mask broadcastable to [B, H, Tq, Tk]: bool, where true means
     * the query may attend to the key (torch SDPA semantics), or float,
     * added to the scores. NULL: none. */
    cf_tensor *mask;
    bool causal;         /* query i attends to keys j <= i only */
    float dropout;       /* dropout probability on the weights (training) */
    cf_rng *rng;         /* for dropout; NULL: the global generator */
    float scale;         /* 0: 1 / sqrt(D) */
    cf_tensor **weights; /* if not NULL, receives the weights [B, H, Tq, Tk]
                            (before dropout), for pictures */
    CF_RESERVED;
} cf_attention_opts;

/* softmax(Q K^T * scale + mask) V for Q [B, H, Tq, D], K [B, H, Tk, D],
 * V [B, H, Tk, Dv] of any strides; returns [B, H, Tq, Dv], stored as
 * [B, Tq, H, Dv] (a permuted view) so that merging the heads back into
 * [B, Tq, H * Dv] is a view, not a copy. Rows whose keys are all masked
 * give zeros (PyTorch gives NaN); NaN in the inputs or the scale propagates
 * as in PyTorch. Without gradients, dropout
 * or requested weights, the forward runs over blocks of keys with an online
 * softmax, so memory stays linear in the sequence length. The backward is
 * exact. opts may be NULL. */
CF_API cf_tensor *cf_attention(cf_tensor *q, cf_tensor *k, cf_tensor *v,
                               const cf_attention_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
