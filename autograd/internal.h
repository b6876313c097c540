/* Helpers shared by the op families of the autograd layer. */
#ifndef CF_AUTOGRAD_INTERNAL_H
#define CF_AUTOGRAD_INTERNAL_H

#include "cformer/autograd.h"
#include "tensor/internal.h"
#include "tensor/vexp.h"

/* ---- Anomaly mode (autograd/anomaly.c) ---- */
extern bool ag__anomaly;
/* False with CF_ERR_NUMERIC naming op and the shapes when out holds NaN, or
 * an infinity that neither an input nor a scalar parameter holds. */
bool ag__anomaly_forward(const cf_tensor *out, const cf_op *op, int nsrc, cf_tensor *const *src);
/* CF_ERR_NUMERIC naming node's op when the gradient of one of its inputs
 * holds NaN or infinity; else CF_OK. */
cf_status ag__anomaly_backward(const cf_tensor *node);
/* The same for the output gradient given to backward. */
cf_status ag__anomaly_seed(const cf_tensor *dy);

/* A view of t with the given shape and strides (no graph), in the arena. */
cf_tensor *ag__restride(const char *op, const cf_tensor *t, int ndim, const int64_t *shape,
                        const int64_t *stride);
/* Records CF_ERR_DTYPE naming op unless t is float32. */
bool ag__need_float(const char *op, const cf_tensor *t);
/* Adds contrib (any shape that t's shape broadcasts to) into t's gradient,
 * summing over broadcast dims. No-op when t needs no gradient. */
cf_status ag__acc_grad(cf_tensor *t, const cf_tensor *contrib);
/* Scratch float tensor of t's shape, zeroed, in the arena. */
cf_tensor *ag__zeros_like(const char *op, const cf_tensor *t);
/* t itself when contiguous, else a contiguous copy in the arena (no graph);
 * NULL with the error recorded, naming op, when the copy cannot be made. */
cf_tensor *ag__dense(const char *op, cf_tensor *t);

/* ---- Pointwise ops ----
 * An op is a forward expression and one backward expression per input,
 * turned into row kernels by these macros. In the expressions, x and a, b
 * are the inputs, y the output, g the output's gradient, k the op's scalar.
 * Backward kernels add into d. Each row kernel has a unit-stride path the
 * compiler can vectorise, and an AVX2 clone. */

#define AG_F(i_, j_)   (*(const float *)(p[j_] + (i_)*s[j_]))
#define AG_UNIT(nops_) ag__unit(nops_, s)
static inline bool ag__unit(int nops, const int64_t *s)
{
    for (int j = 0; j < nops; j++)
        if (s[j] != 4)
            return false;
    return true;
}

/* o = EXPR(x, k) */
#define AG_UNARY_FWD(fn_, EXPR)                                                                    \
    CF_ROW_KERNEL_GCC void fn_(int64_t n, char *const *p, const int64_t *s, const void *ud)        \
    {                                                                                              \
        const float k = ud ? *(const float *)ud : 0.0f;                                            \
        (void)k;                                                                                   \
        if (AG_UNIT(2)) {                                                                          \
            float *o_ = (float *)p[0];                                                             \
            const float *x_ = (const float *)p[1];                                                 \
            for (int64_t i = 0; i < n; i++) {                                                      \
                const float x = x_[i];                                                             \
                o_[i] = (EXPR);                                                                    \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                const float x = AG_F(i, 1);                                                        \
                *(float *)(p[0] + i * s[0]) = (EXPR);                                              \
            }                                                                                      \
        }                                                                                          \
    }

/* d += EXPR(g, x, y, k), and fn_##_set: d = EXPR(g, x, y, k), where d may be
 * the gradient g itself (in place). */
#define AG_UNARY_BWD(fn_, EXPR)                                                                    \
    CF_ROW_KERNEL_GCC void fn_(int64_t n, char *const *p, const int64_t *s, const void *ud)        \
    {                                                                                              \
        const float k = ud ? *(const float *)ud : 0.0f;                                            \
        (void)k;                                                                                   \
        if (AG_UNIT(4)) {                                                                          \
            float *d_ = (float *)p[0];                                                             \
            const float *g_ = (const float *)p[1], *x_ = (const float *)p[2],                      \
                        *y_ = (const float *)p[3];                                                 \
            for (int64_t i = 0; i < n; i++) {                                                      \
                const float g = g_[i], x = x_[i], y = y_[i];                                       \
                (void)x, (void)y;                                                                  \
                d_[i] += (EXPR);                                                                   \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                const float g = AG_F(i, 1), x = AG_F(i, 2), y = AG_F(i, 3);                        \
                (void)x, (void)y;                                                                  \
                *(float *)(p[0] + i * s[0]) += (EXPR);                                             \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    __attribute__((unused))                                                                        \
    CF_ROW_KERNEL_GCC void fn_##_set(int64_t n, char *const *p, const int64_t *s, const void *ud)  \
    {                                                                                              \
        const float k = ud ? *(const float *)ud : 0.0f;                                            \
        (void)k;                                                                                   \
        if (AG_UNIT(4)) {                                                                          \
            /* One pointer for d and g, so that in place stays vectorised. */                      \
            float *d_ = (float *)p[0];                                                             \
            const float *g_ = p[1] == p[0] ? d_ : (const float *)p[1];                             \
            const float *x_ = (const float *)p[2], *y_ = (const float *)p[3];                      \
            if (g_ == d_) {                                                                        \
                for (int64_t i = 0; i < n; i++) {                                                  \
                    const float g = d_[i], x = x_[i], y = y_[i];                                   \
                    (void)x, (void)y;                                                              \
                    d_[i] = (EXPR);                                                                \
                }                                                                                  \
            } else {                                                                               \
                for (int64_t i = 0; i < n; i++) {                                                  \
                    const float g = g_[i], x = x_[i], y = y_[i];                                   \
                    (void)x, (void)y;                                                              \
                    d_[i] = (EXPR);                                                                \
                }                                                                                  \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                const float g = AG_F(i, 1), x = AG_F(i, 2), y = AG_F(i, 3);                        \
                (void)x, (void)y;                                                                  \
                *(float *)(p[0] + i * s[0]) = (EXPR);                                              \
            }                                                                                      \
        }                                                                                          \
    }

/* o = EXPR(a, b) */
#define AG_BINARY_FWD(fn_, EXPR)                                                                   \
    CF_ROW_KERNEL_GCC void fn_(int64_t n, char *const *p, const int64_t *s, const void *ud)        \
    {                                                                                              \
        (void)ud;                                                                                  \
        if (AG_UNIT(3)) {                                                                          \
            float *o_ = (float *)p[0];                                                             \
            const float *a_ = (const float *)p[1], *b_ = (const float *)p[2];                      \
            for (int64_t i = 0; i < n; i++) {                                                      \
                const float a = a_[i], b = b_[i];                                                  \
                o_[i] = (EXPR);                                                                    \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                const float a = AG_F(i, 1), b = AG_F(i, 2);                                        \
                *(float *)(p[0] + i * s[0]) = (EXPR);                                              \
            }                                                                                      \
        }                                                                                          \
    }

/* d += EXPR(g, a, b, y), and fn_##_set: d = EXPR(g, a, b, y), where d may
 * be the gradient g itself (in place). */
#define AG_BINARY_BWD(fn_, EXPR)                                                                   \
    CF_ROW_KERNEL_GCC void fn_(int64_t n, char *const *p, const int64_t *s, const void *ud)        \
    {                                                                                              \
        (void)ud;                                                                                  \
        if (AG_UNIT(5)) {                                                                          \
            float *d_ = (float *)p[0];                                                             \
            const float *g_ = (const float *)p[1], *a_ = (const float *)p[2],                      \
                        *b_ = (const float *)p[3], *y_ = (const float *)p[4];                      \
            for (int64_t i = 0; i < n; i++) {                                                      \
                const float g = g_[i], a = a_[i], b = b_[i], y = y_[i];                            \
                (void)a, (void)b, (void)y;                                                         \
                d_[i] += (EXPR);                                                                   \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                const float g = AG_F(i, 1), a = AG_F(i, 2), b = AG_F(i, 3), y = AG_F(i, 4);        \
                (void)a, (void)b, (void)y;                                                         \
                *(float *)(p[0] + i * s[0]) += (EXPR);                                             \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    __attribute__((unused))                                                                        \
    CF_ROW_KERNEL_GCC void fn_##_set(int64_t n, char *const *p, const int64_t *s, const void *ud)  \
    {                                                                                              \
        (void)ud;                                                                                  \
        if (AG_UNIT(5)) {                                                                          \
            float *d_ = (float *)p[0];                                                             \
            const float *g_ = p[1] == p[0] ? d_ : (const float *)p[1];                             \
            const float *a_ = (const float *)p[2], *b_ = (const float *)p[3],                      \
                        *y_ = (const float *)p[4];                                                 \
            if (g_ == d_) {                                                                        \
                for (int64_t i = 0; i < n; i++) {                                                  \
                    const float g = d_[i], a = a_[i], b = b_[i], y = y_[i];                        \
                    (void)a, (void)b, (void)y;                                                     \
                    d_[i] = (EXPR);                                                                \
                }                                                                                  \
            } else {                                                                               \
                for (int64_t i = 0; i < n; i++) {                                                  \
                    const float g = g_[i], a = a_[i], b = b_[i], y = y_[i];                        \
                    (void)a, (void)b, (void)y;                                                     \
                    d_[i] = (EXPR);                                                                \
                }                                                                                  \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                const float g = AG_F(i, 1), a = AG_F(i, 2), b = AG_F(i, 3), y = AG_F(i, 4);        \
                (void)a, (void)b, (void)y;                                                         \
                *(float *)(p[0] + i * s[0]) = (EXPR);                                              \
            }                                                                                      \
        }                                                                                          \
    }

/* Runs a forward row kernel: out = f(in...) over out's shape (inputs
 * broadcast to it). */
void ag__pointwise(cf_tensor *out, int nin, cf_tensor *const *in, cf__row_fn fn, const void *ud);
/* Runs a backward row kernel into target's gradient: d += f(ops...) over
 * out's shape, reduced over the dims target was broadcast along. ops are
 * viewed in out's shape. No-op when target needs no gradient. */
cf_status ag__pointwise_grad(const cf_tensor *out, cf_tensor *target, int nops,
                             cf_tensor *const *ops, cf__row_fn fn, const void *ud);
/* The same with set, the kernel that writes d = f(ops...) (NULL when the
 * contribution is ops[0] itself), for a target without a gradient yet: no
 * zero-fill first. With last (no later reader of out->grad) and ops[0] ==
 * out->grad, the contribution is computed in out->grad, which then becomes
 * the target's gradient. */
cf_status ag__pointwise_grad_set(cf_tensor *out, cf_tensor *target, int nops, cf_tensor *const *ops,
                                 cf__row_fn acc, cf__row_fn set, const void *ud, bool last);

/* ---- Gradients without copies ---- */

/* The gradient of t to write into during backward, or NULL when t needs
 * none. When t had none, *fresh is set and the gradient is uninitialised
 * (zeroed for a caller-owned leaf): the caller must write all of it. */
cf_tensor *ag__grad(cf_tensor *t, bool *fresh);
/* True when out's gradient can become t's without a copy: t needs a
 * gradient and has none yet, is not caller-owned, has as many elements as
 * out, and out's gradient is a block of its own. */
bool ag__can_take(const cf_tensor *out, const cf_tensor *t);
/* Moves out's gradient to t (ag__can_take must hold), reshaped to t's shape
 * in row-major order; out->grad is NULL afterwards. */
void ag__take_grad(cf_tensor *out, cf_tensor *t);

/* relu(x) written over x's own memory, for a caller that owns x: a fresh op
 * output (a block of its own) that nothing else reads, made by an op whose
 * backward does not read its output. Falls back to cf_relu otherwise. */
cf_tensor *ag__relu_in_place(cf_tensor *x);

/* x + dropout(y, p) (dropout only when training), as a residual connection
 * adds a sublayer's output y to its input x. The result is written over y
 * when y carries CF__OUTPUT_UNREAD (its producer's backward does not read
 * it): the caller must then not read y afterwards. Same shapes and layouts
 * give one op and one tensor; anything else falls back to cf_add and
 * cf_dropout. The values are those of cf_add(x, cf_dropout(y, p, ...)). */
cf_tensor *ag__residual(cf_tensor *x, cf_tensor *y, float p, bool training, cf_rng *g);

/* cf_dropout written over x's memory (x contiguous, else a copy as
 * cf_dropout makes), for a caller that owns x and reads it no more: x must
 * be CF__OUTPUT_UNREAD, or a relu's output (the relu's backward reads only
 * the sign, kept wherever a gradient passes the dropout). */
cf_tensor *ag__dropout_in_place(cf_tensor *x, float p, bool training, cf_rng *g);

/* A pointwise op of one input and a scalar k (kept in out->fparam[0]). */
cf_tensor *ag__unary(const char *name, cf_tensor *a, float k, cf__row_fn fwd, const cf_op *op);

/* True when a gradient expression is the output's gradient itself. */
#define AG_IS_G(EXPR) (sizeof(#EXPR) == 2 && #EXPR[0] == 'g')

/* Defines the row kernels, backward and cf_op record of a unary op. */
#define AG_UNARY_OP(name_, FWD, DX)                                                                \
    AG_UNARY_FWD(name_##_fwd, FWD)                                                                 \
    AG_UNARY_BWD(name_##_dx, DX)                                                                   \
    static cf_status name_##_backward(cf_tensor *out)                                              \
    {                                                                                              \
        cf_tensor *ops[3] = {out->grad, out->src[0], out};                                         \
        return ag__pointwise_grad_set(out, out->src[0], 3, ops, name_##_dx,                        \
                                      AG_IS_G(DX) ? NULL : name_##_dx_set, &out->fparam[0], true); \
    }                                                                                              \
    static const cf_op name_##_op = {#name_, name_##_backward};

/* A broadcasting pointwise op of two float inputs. */
cf_tensor *ag__binary(const char *name, cf_tensor *a, cf_tensor *b, cf__row_fn fwd,
                      const cf_op *op);
/* Backward of a binary op: da and db add into the inputs' gradients;
 * da_set and db_set write fresh ones (NULL: the gradient is g itself). */
cf_status ag__binary_backward(cf_tensor *out, cf__row_fn da, cf__row_fn da_set, cf__row_fn db,
                              cf__row_fn db_set);

/* Defines the row kernels, backward, cf_op record and public function
 * cf_NAME(a, b) of a binary op. */
#define AG_BINARY_OP(name_, FWD, DA, DB)                                                           \
    AG_BINARY_FWD(name_##_fwd, FWD)                                                                \
    AG_BINARY_BWD(name_##_da, DA)                                                                  \
    AG_BINARY_BWD(name_##_db, DB)                                                                  \
    static cf_status name_##_backward(cf_tensor *out)                                              \
    {                                                                                              \
        return ag__binary_backward(out, name_##_da, AG_IS_G(DA) ? NULL : name_##_da_set,           \
                                   name_##_db, AG_IS_G(DB) ? NULL : name_##_db_set);               \
    }                                                                                              \
    static const cf_op name_##_op = {#name_, name_##_backward};                                    \
    cf_tensor *cf_##name_(cf_tensor *a, cf_tensor *b)                                              \
    {                                                                                              \
        return ag__binary("cf_" #name_, a, b, name_##_fwd, &name_##_op);                           \
    }

#endif
