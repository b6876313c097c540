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
 * tensor in its graph that requires a gradient, accumulating into .grad.
 * Leaves made by cf_tensor_new get gradients they own; all other gradients
 * belong to the arena in use. Returns CF_OK, or CF_ERR_SHAPE when y has more
 * than one element, CF_ERR_STATE when y requires no gradient. */
CF_API cf_status cf_backward(cf_tensor *y);
/* The same with an explicit dL/dy of y's shape (copied). */
CF_API cf_status cf_backward_with(cf_tensor *y, const cf_tensor *dy);

/* Sets a tensor's gradient to zero (keeping its storage). NULL is a no-op. */
CF_API void cf_zero_grad(cf_tensor *t);

/* Turns recording on or off on this thread; returns the previous setting.
 * With recording off, ops compute values only (for evaluation and for
 * optimizer updates). */
CF_API bool cf_set_grad_enabled(bool on);
CF_API bool cf_is_grad_enabled(void);
/* A no-grad scope:  CF_NO_GRAD { ... }  (do not leave it with return/goto). */
#define CF_NO_GRAD                                                             \
    for (bool cf_ng_prev_ = cf_set_grad_enabled(false), cf_ng_once_ = true;    \
         cf_ng_once_; cf_set_grad_enabled(cf_ng_prev_), cf_ng_once_ = false)

/* A view of t's data that is not part of any graph. */
CF_API cf_tensor *cf_detach(cf_tensor *t);

/* Writes the graph that produced y in Graphviz DOT (op names and shapes)
 * to f. Returns CF_OK or CF_ERR_IO. */
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
 * Built-in ops use the same mechanism. */

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
CF_API cf_tensor *cf_op_record(cf_tensor *out, const cf_op *op, int nsrc,
                               cf_tensor *const *src);
/* During backward: returns t's gradient (allocated and zeroed on first use,
 * contiguous, t's shape) to add into, or NULL when t needs no gradient. */
CF_API cf_tensor *cf_grad_for(cf_tensor *t);

/* ---- Gradient checking ---- */

/* f maps the inputs to an output tensor of any shape. */
typedef cf_tensor *(*cf_gradcheck_fn)(cf_tensor *const *inputs, void *ud);

typedef struct {
    float max_abs[CF_MAX_SRC]; /* largest |analytic - numeric| per input */
    float max_rel[CF_MAX_SRC]; /* the same over max(|numeric|, 1) */
} cf_gradcheck_report;

/* Compares the backward of f at the inputs with central differences of
 * step eps, for the scalar sum(f(inputs) * r) with a fixed random r. Float
 * inputs that require a gradient are checked; others are held fixed. Uses
 * the arena in use. Returns CF_OK and fills rep, or the error f raised. */
CF_API cf_status cf_gradcheck(cf_gradcheck_fn f, void *ud, int n,
                              cf_tensor *const *inputs, float eps,
                              cf_gradcheck_report *rep);

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
/* The gradient at 0 is 0, as in PyTorch. */
CF_API cf_tensor *cf_relu(cf_tensor *a);

/* ---- Reductions ----
 * dims lists ndims dimensions (negative counts from the end; ndims 0 means
 * all). keepdim keeps them as size 1. CF_ERR_DIM for a dimension out of
 * range or listed twice. */

CF_API cf_tensor *cf_sum(cf_tensor *a, int ndims, const int *dims,
                         bool keepdim);
CF_API cf_tensor *cf_mean(cf_tensor *a, int ndims, const int *dims,
                          bool keepdim);
/* The sum of all elements, as a 0-dimensional tensor. */
CF_API cf_tensor *cf_sum_all(cf_tensor *a);
CF_API cf_tensor *cf_mean_all(cf_tensor *a);
/* CF_DIMS(0, 2) expands to `ndims, dims` for the reductions. */
#define CF_DIMS(...)                                                           \
    (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), (const int[]) {         \
        __VA_ARGS__                                                            \
    }

/* ---- Matrix product ----
 * torch.matmul semantics: 1-D operands are a vector, 2-D a matrix, more
 * dims a batch of matrices whose batch dims broadcast. Any strides: a
 * transposed or permuted view is passed to BLIS without a copy. CF_ERR_SHAPE
 * when the inner sizes differ. */
CF_API cf_tensor *cf_matmul(cf_tensor *a, cf_tensor *b);

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
 * clamped like Python slices (negative counts from the end); step >= 1. */
CF_API cf_tensor *cf_slice(cf_tensor *a, int dim, int64_t start, int64_t end,
                           int64_t step);
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

#ifdef __cplusplus
}
#endif
#endif
