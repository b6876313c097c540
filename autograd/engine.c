/* The autograd engine: recording, topological order, backward. */
#include "autograd/internal.h"

#include <stdatomic.h>
#include <string.h>

static _Thread_local bool grad_disabled;
static atomic_uint visit_stamp;
static _Thread_local cf_grad_ready_fn ready_fn;
static _Thread_local void *ready_ud;

void cf_set_grad_ready_hook(cf_grad_ready_fn fn, void *ud)
{
    ready_fn = fn;
    ready_ud = fn ? ud : NULL;
}

bool cf_set_grad_enabled(bool on)
{
    bool prev = !grad_disabled;
    grad_disabled = !on;
    return prev;
}

bool cf_is_grad_enabled(void) { return !grad_disabled; }

bool ag__need_float(const char *op, const cf_tensor *t)
{
    if (t->dtype == CF_F32)
        return true;
    cf__error(CF_ERR_DTYPE, "%s: expected float32, got %s", op, cf_dtype_name(t->dtype));
    return false;
}

cf_tensor *cf_requires_grad(cf_tensor *t, bool on)
{
    if (!cf__check("cf_requires_grad", 1, &t))
        return NULL;
    if (t->op) {
        cf__error(CF_ERR_ARG, "cf_requires_grad: tensor made by op '%s' is not a leaf",
                  t->op->name);
        return NULL;
    }
    if (!ag__need_float("cf_requires_grad", t))
        return NULL;
    t->flags = on ? t->flags | CF_REQUIRES_GRAD : t->flags & ~CF_REQUIRES_GRAD;
    return t;
}

cf_tensor *cf_op_record(cf_tensor *out, const cf_op *op, int nsrc, cf_tensor *const *src)
{
    const char *name = op ? op->name : "cf_op_record";
    if (cf__profiling)
        cf__prof_forward(name);
    if (!out || !cf__nonnull(name, op, "op") ||
        !cf__nonnull(name, nsrc > 0 ? (const void *)src : "", "src"))
        return NULL;
    if (nsrc < 0 || nsrc > CF_MAX_SRC) {
        cf__error(CF_ERR_ARG, "%s: %d inputs (at most %d)", name, nsrc, CF_MAX_SRC);
        return NULL;
    }
    if (!cf__check(name, nsrc, src))
        return NULL;
    if (ag__anomaly && op && !ag__anomaly_forward(out, op, nsrc, src))
        return NULL;
    if (grad_disabled)
        return out;
    bool any = false;
    for (int i = 0; i < nsrc; i++)
        any |= (src[i]->flags & CF_REQUIRES_GRAD) != 0;
    if (!any)
        return out;
    out->flags |= CF_REQUIRES_GRAD;
    out->op = op;
    out->nsrc = nsrc;
    for (int i = 0; i < nsrc; i++)
        out->src[i] = src[i];
    return out;
}

cf_tensor *ag__zeros_like(const char *op, const cf_tensor *t)
{
    cf_tensor *z = cf__alloc(op, CF_F32, t->ndim, t->shape);
    if (z)
        memset(z->data, 0, sizeof(float) * cf_numel(z));
    return z;
}

cf_tensor *ag__dense(const char *op, cf_tensor *t)
{
    if (cf_is_contiguous(t))
        return t;
    cf_tensor *c = cf__alloc(op, t->dtype, t->ndim, t->shape);
    if (c)
        cf__copy(c, t);
    return c;
}

cf_tensor *cf_grad_for(cf_tensor *t)
{
    if (!t || !(t->flags & CF_REQUIRES_GRAD))
        return NULL;
    if (!t->grad) {
        /* A caller-owned leaf keeps its gradient across arena resets. */
        t->grad = (t->flags & CF_HEAP) ? cf_tensor_new(CF_F32, t->ndim, t->shape)
                                       : ag__zeros_like("backward", t);
    }
    return t->grad;
}

cf_tensor *ag__grad(cf_tensor *t, bool *fresh)
{
    *fresh = false;
    if (!t || !(t->flags & CF_REQUIRES_GRAD))
        return NULL;
    if (!t->grad) {
        t->grad = (t->flags & CF_HEAP) ? cf_tensor_new(CF_F32, t->ndim, t->shape)
                                       : cf__alloc("backward", CF_F32, t->ndim, t->shape);
        *fresh = t->grad != NULL;
    }
    return t->grad;
}

bool ag__can_take(const cf_tensor *out, const cf_tensor *t)
{
    return out->grad && (out->grad->flags & CF__OWN_BLOCK) && (t->flags & CF_REQUIRES_GRAD) &&
           !t->grad && !(t->flags & CF_HEAP) && cf_numel(t) == cf_numel(out->grad);
}

void ag__take_grad(cf_tensor *out, cf_tensor *t)
{
    cf_tensor *g = out->grad;
    out->grad = NULL;
    g->ndim = t->ndim;
    for (int i = 0; i < CF_MAX_DIMS; i++)
        g->shape[i] = t->shape[i];
    cf__contiguous_strides(t->ndim, t->shape, g->stride);
    t->grad = g;
}

cf_status ag__acc_grad(cf_tensor *t, const cf_tensor *contrib)
{
    cf_tensor *g = cf_grad_for(t);
    if (!g)
        return cf_error();
    if (cf_same_shape(g, contrib))
        cf__acc(g, contrib);
    else
        cf__sum_to(g, contrib, 1.0, true);
    return cf_error();
}

void cf_zero_grad(cf_tensor *t)
{
    if (t && t->grad)
        memset(t->grad->data, 0, sizeof(float) * cf_numel(t->grad));
}

cf_tensor *cf_detach(cf_tensor *t)
{
    if (!cf__check("cf_detach", 1, &t))
        return NULL;
    return cf__view_of("cf_detach", t);
}

/* Post-order of the nodes that require a gradient, reachable from y: every
 * node comes after all of its sources. Returns the count, or -1. */
static int64_t topo_order(cf_tensor *y, cf_tensor ***out)
{
    uint32_t stamp = atomic_fetch_add(&visit_stamp, 1) + 1;
    int64_t cap = 256, n = 0, depth = 0;
    cf_tensor **order = cf__arena_alloc("backward", sizeof(cf_tensor *) * cap);
    cf_tensor **stack = cf__arena_alloc("backward", sizeof(cf_tensor *) * cap);
    int *next = cf__arena_alloc("backward", sizeof(int) * cap);
    if (!order || !stack || !next)
        return -1;
    y->visit = stamp;
    stack[depth] = y;
    next[depth++] = 0;
    while (depth > 0) {
        cf_tensor *t = stack[depth - 1];
        if (next[depth - 1] < t->nsrc) {
            cf_tensor *s = t->src[next[depth - 1]++];
            if (!(s->flags & CF_REQUIRES_GRAD) || s->visit == stamp)
                continue;
            s->visit = stamp;
            if (depth == cap || n + depth >= cap) {
                /* Grow all three arrays; the old ones stay in the arena. */
                int64_t ncap = cap * 2;
                cf_tensor **o2 = cf__arena_alloc("backward", sizeof(cf_tensor *) * ncap);
                cf_tensor **s2 = cf__arena_alloc("backward", sizeof(cf_tensor *) * ncap);
                int *n2 = cf__arena_alloc("backward", sizeof(int) * ncap);
                if (!o2 || !s2 || !n2)
                    return -1;
                memcpy(o2, order, sizeof(cf_tensor *) * n);
                memcpy(s2, stack, sizeof(cf_tensor *) * depth);
                memcpy(n2, next, sizeof(int) * depth);
                order = o2, stack = s2, next = n2, cap = ncap;
            }
            stack[depth] = s;
            next[depth++] = 0;
        } else {
            order[n++] = t;
            depth--;
        }
    }
    *out = order;
    return n;
}

/* Refuses a graph that a backward has gone through; otherwise marks it as
 * used, unless retain. */
static bool claim_graph(cf_tensor *const *order, int64_t n, bool retain)
{
    for (int64_t i = 0; i < n; i++) {
        const cf_tensor *t = order[i];
        if (t->flags & CF__GRAPH_USED) {
            char b[CF_SHAPE_BUF];
            cf__error(CF_ERR_STATE,
                      "cf_backward: a backward already went through op '%s' (output %s); "
                      "build the graph again, or retain it in the first backward "
                      "(cf_backward_ex)",
                      t->op->name, cf_shape_str(t, b, sizeof b));
            return false;
        }
    }
    for (int64_t i = 0; !retain && i < n; i++)
        if (order[i]->op)
            order[i]->flags |= CF__GRAPH_USED;
    return true;
}

static cf_status run_backward(cf_tensor *y, const cf_tensor *dy, bool retain)
{
    if (!(y->flags & CF_REQUIRES_GRAD)) {
        cf__error(CF_ERR_STATE, "cf_backward: the tensor does not require a gradient "
                                "(no input requires one, or grad mode was off)");
        return cf_error();
    }
    cf_tensor **order;
    if (ag__anomaly && dy && ag__anomaly_seed(dy) != CF_OK)
        return cf_error();
    int64_t n = topo_order(y, &order);
    if (n < 0 || !claim_graph(order, n, retain))
        return cf_error();
    /* Gradients of intermediate results are per call; leaves accumulate. */
    for (int64_t i = 0; i < n; i++)
        if (order[i]->op)
            order[i]->grad = NULL;
    if (y->op) {
        /* The output's gradient is fresh: write the seed, no zeroing first. */
        y->grad = cf__alloc("cf_backward", CF_F32, y->ndim, y->shape);
        if (!y->grad)
            return cf_error();
        if (dy)
            cf__copy(y->grad, dy);
        else
            cf_fill(y->grad, 1.0f);
    } else {
        cf_tensor *g = cf_grad_for(y);
        if (!g)
            return cf_error();
        if (dy)
            cf__acc(g, dy);
        else
            cf_fill(g, 1.0f);
    }
    for (int64_t i = n - 1; i >= 0; i--) {
        cf_tensor *t = order[i];
        /* Post-order puts every consumer of a leaf after it, so all of them
         * have run by the time the reverse walk reaches the leaf. */
        if (!t->op && t->grad && ready_fn) {
            cf_status s = ready_fn(t, ready_ud);
            if (s != CF_OK)
                return s;
        }
        if (!t->op || !t->grad)
            continue;
        cf_status s;
        if (cf__profiling) {
            double t0;
            uint64_t f0;
            cf__prof_backward_begin(&t0, &f0);
            s = t->op->backward(t);
            cf__prof_backward_end(t->op->name, t0, f0);
        } else {
            s = t->op->backward(t);
        }
        if (s == CF_OK && ag__anomaly)
            s = ag__anomaly_backward(t);
        if (s != CF_OK)
            return s;
        /* Every consumer of t has run, and t's own backward too: its
         * gradient is dead, and its memory can serve the next ones. */
        cf__release(t->grad);
        t->grad = NULL;
    }
    return cf_error();
}

static cf_status backward(cf_tensor *y, const cf_tensor *dy, bool retain)
{
    if (!dy && cf_numel(y) != 1) {
        char b[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE,
                  "cf_backward: output of shape %s is not a scalar "
                  "(use cf_backward_with and pass its gradient)",
                  cf_shape_str(y, b, sizeof b));
        return cf_error();
    }
    if (dy && (!cf_same_shape(y, dy) || dy->dtype != CF_F32)) {
        char a[CF_SHAPE_BUF], b[CF_SHAPE_BUF];
        cf__error(CF_ERR_SHAPE, "cf_backward_with: gradient of shape %s %s for output of shape %s",
                  cf_shape_str(dy, b, sizeof b), cf_dtype_name(dy->dtype),
                  cf_shape_str(y, a, sizeof a));
        return cf_error();
    }
    return run_backward(y, dy, retain);
}

cf_status cf_backward(cf_tensor *y)
{
    if (!y)
        return cf__null_arg("cf_backward", "y");
    cf_error_frame saved;
    cf_error_enter(&saved);
    return cf_error_leave(&saved, backward(y, NULL, false));
}

cf_status cf_backward_with(cf_tensor *y, const cf_tensor *dy)
{
    if (!y || !dy)
        return cf__null_arg("cf_backward_with", y ? "dy" : "y");
    cf_error_frame saved;
    cf_error_enter(&saved);
    return cf_error_leave(&saved, backward(y, dy, false));
}

cf_status cf_backward_ex(cf_tensor *y, const cf_backward_opts *opts)
{
    static const cf_backward_opts none = {0};
    if (!opts)
        opts = &none;
    if (!y)
        return cf__null_arg("cf_backward_ex", "y");
    cf_error_frame saved;
    cf_error_enter(&saved);
    if (!cf_check_reserved("cf_backward_ex", "cf_backward_opts", opts->reserved, CF_RESERVED_WORDS))
        return cf_error_leave(&saved, CF_ERR_ARG);
    return cf_error_leave(&saved, backward(y, opts->grad, opts->retain_graph));
}
