/* Matrix product (torch.matmul semantics) through BLIS, with batch dims that
 * broadcast. Strided operands go to BLIS as they are. */
#include "autograd/internal.h"

#include <string.h>

/* A (batched) matrix operand viewed in the batch shape of the product. */
typedef struct {
    const float *p;
    int64_t bst[CF_MAX_DIMS]; /* batch strides, 0 where broadcast */
    int64_t rs, cs;
} mview;

typedef struct {
    int nb;
    int64_t shape[CF_MAX_DIMS]; /* batch shape */
} batch;

static mview mat(const cf_tensor *t, const batch *bt)
{
    mview m = {t->data, {0}, t->stride[t->ndim - 2], t->stride[t->ndim - 1]};
    cf_tensor head = *t;
    head.ndim = t->ndim - 2;
    cf__expand_strides(&head, bt->nb, bt->shape, m.bst);
    return m;
}

/* True when the batch dims and a matrix dim of m (n entries of the given
 * stride) form one strided dim, so the batch can be folded into it. */
static bool folds(const mview *m, const batch *bt, int64_t stride, int64_t n)
{
    int64_t want = stride * n;
    for (int i = bt->nb - 1; i >= 0; i--) {
        if (bt->shape[i] == 1)
            continue;
        if (m->bst[i] != want)
            return false;
        want = m->bst[i] * bt->shape[i];
    }
    return true;
}

static bool broadcast_batch(const mview *m, const batch *bt)
{
    for (int i = 0; i < bt->nb; i++)
        if (m->bst[i] == 0 && bt->shape[i] != 1)
            return true;
    return false;
}

static bool fully_broadcast(const mview *m, const batch *bt)
{
    for (int i = 0; i < bt->nb; i++)
        if (m->bst[i] != 0 && bt->shape[i] != 1)
            return false;
    return true;
}

/* c[i] (+)= a[i] @ b[i] for every index i of the batch shape; c may be
 * broadcast along the batch (it then accumulates over it). */
static void mm(bool acc, const batch *bt, const cf_tensor *c, const cf_tensor *a,
               const cf_tensor *b)
{
    int nb = bt->nb;
    int64_t M = a->shape[a->ndim - 2], N = b->shape[b->ndim - 1], K = a->shape[a->ndim - 1];
    int64_t nbatch = cf__prod(nb, bt->shape);
    mview A = mat(a, bt), B = mat(b, bt), C = mat(c, bt);
    /* Small products finish before extra threads would wake up. */
    int nt = M * N * K * nbatch < ((int64_t)1 << 18) ? 1 : cf_threads_in_use();
    bool c_bcast = broadcast_batch(&C, bt);
    if (nbatch == 1 ||
        (!c_bcast && fully_broadcast(&B, bt) && folds(&A, bt, A.rs, M) && folds(&C, bt, C.rs, M))) {
        /* One call: a single matrix, or a batch of A rows times one B. */
        cf__gemm(acc, M * nbatch, N, K, A.p, A.rs, A.cs, B.p, B.rs, B.cs, (float *)C.p, C.rs, C.cs,
                 nt);
        return;
    }
    if (acc && fully_broadcast(&C, bt) && folds(&A, bt, A.cs, K) && folds(&B, bt, B.rs, K)) {
        /* A sum over the batch into one output (a weight's gradient): the
         * batch folds into the inner dim of one long product. */
        cf__gemm(true, M, N, K * nbatch, A.p, A.rs, A.cs, B.p, B.rs, B.cs, (float *)C.p, C.rs, C.cs,
                 nt);
        return;
    }
    /* Batches in parallel with one BLIS thread each, unless they are few
     * and large, or accumulate into one broadcast output (then in order). */
    bool serial = c_bcast || nbatch < nt || M * N * K > ((int64_t)1 << 21);
#pragma omp parallel for num_threads(serial ? 1 : nt) schedule(static)
    for (int64_t i = 0; i < nbatch; i++) {
        int64_t oa = 0, ob = 0, oc = 0, r = i;
        for (int d = nb - 1; d >= 0; d--) {
            int64_t k = r % bt->shape[d];
            r /= bt->shape[d];
            oa += k * A.bst[d];
            ob += k * B.bst[d];
            oc += k * C.bst[d];
        }
        cf__gemm(acc, M, N, K, A.p + oa, A.rs, A.cs, B.p + ob, B.rs, B.cs, (float *)C.p + oc, C.rs,
                 C.cs, serial ? nt : 1);
    }
}

/* The broadcast batch shape of two (batched) matrices. */
static bool batch_of(const cf_tensor *a2, const cf_tensor *b2, batch *bt)
{
    cf_tensor ha = *a2, hb = *b2;
    ha.ndim -= 2, hb.ndim -= 2;
    return cf__broadcast("cf_matmul (batch dims)", &ha, &hb, &bt->nb, bt->shape);
}

/* Views of an operand as a (batch of) matrix: a vector becomes a row (left)
 * or a column (right). */
static cf_tensor *as_matrix(const cf_tensor *t, bool left)
{
    if (t->ndim >= 2)
        return (cf_tensor *)t;
    int64_t shape[2], st[2];
    if (left) {
        shape[0] = 1, shape[1] = t->shape[0];
        st[0] = t->shape[0] * t->stride[0], st[1] = t->stride[0];
    } else {
        shape[0] = t->shape[0], shape[1] = 1;
        st[0] = t->stride[0], st[1] = 1;
    }
    return ag__restride("matmul", t, 2, shape, st);
}

/* The same tensor with its last two dims swapped. */
static cf_tensor *mT(const cf_tensor *t)
{
    int64_t shape[CF_MAX_DIMS], st[CF_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(st, t->stride, sizeof st);
    int n = t->ndim;
    shape[n - 2] = t->shape[n - 1], shape[n - 1] = t->shape[n - 2];
    st[n - 2] = t->stride[n - 1], st[n - 1] = t->stride[n - 2];
    return ag__restride("matmul", t, n, shape, st);
}

/* The output gradient viewed with its matrix dims (1-D operands restored). */
static cf_tensor *full_grad(const cf_tensor *g, const batch *bt, int64_t M, int64_t N)
{
    int64_t shape[CF_MAX_DIMS], st[CF_MAX_DIMS];
    memcpy(shape, bt->shape, sizeof(int64_t) * bt->nb);
    shape[bt->nb] = M;
    shape[bt->nb + 1] = N;
    cf__contiguous_strides(bt->nb + 2, shape, st);
    return ag__restride("backward", g, bt->nb + 2, shape, st);
}

/* True when the gradient g2 of an operand broadcast along the batch sums a
 * product per batch index. */
static bool summed(const cf_tensor *g2, const batch *bt)
{
    mview m = mat(g2, bt);
    return broadcast_batch(&m, bt);
}

static cf_status matmul_backward(cf_tensor *out)
{
    cf_tensor *a = out->src[0], *b = out->src[1];
    cf_tensor *a2 = as_matrix(a, true), *b2 = as_matrix(b, false);
    batch bt;
    if (!a2 || !b2 || !batch_of(a2, b2, &bt))
        return cf_error();
    cf_tensor *g = full_grad(out->grad, &bt, a2->shape[a2->ndim - 2], b2->shape[b2->ndim - 1]);
    if (!g)
        return cf_error();
    /* A fresh gradient is written, not zeroed and added to; one broadcast
     * over the batch sums its products, so it is zeroed first. */
    bool fresh;
    cf_tensor *ga = ag__grad(a, &fresh);
    if (ga) {
        cf_tensor *ga2 = as_matrix(ga, true), *bt2 = mT(b2);
        if (!ga2 || !bt2)
            return cf_error();
        if (fresh && summed(ga2, &bt))
            cf_fill(ga, 0), fresh = false;
        mm(!fresh, &bt, ga2, g, bt2); /* dA (+)= dC B^T */
    }
    cf_tensor *gb = ag__grad(b, &fresh);
    if (gb) {
        cf_tensor *gb2 = as_matrix(gb, false), *at = mT(a2);
        if (!gb2 || !at)
            return cf_error();
        if (fresh && summed(gb2, &bt))
            cf_fill(gb, 0), fresh = false;
        mm(!fresh, &bt, gb2, at, g); /* dB (+)= A^T dC */
    }
    return cf_error();
}

static const cf_op matmul_op = {"matmul", matmul_backward};

cf_tensor *cf_matmul(cf_tensor *a, cf_tensor *b)
{
    cf_tensor *ab[2] = {a, b};
    if (!cf__check("cf_matmul", 2, ab) || !ag__need_float("cf_matmul", a) ||
        !ag__need_float("cf_matmul", b))
        return NULL;
    char s1[CF_SHAPE_BUF], s2[CF_SHAPE_BUF];
    if (a->ndim == 0 || b->ndim == 0) {
        cf__error(CF_ERR_SHAPE, "cf_matmul: operands must have at least 1 dim, got %s and %s",
                  cf_shape_str(a, s1, sizeof s1), cf_shape_str(b, s2, sizeof s2));
        return NULL;
    }
    cf_tensor *a2 = as_matrix(a, true), *b2 = as_matrix(b, false);
    if (!a2 || !b2)
        return NULL;
    if (a2->shape[a2->ndim - 1] != b2->shape[b2->ndim - 2]) {
        cf__error(CF_ERR_SHAPE, "cf_matmul: inner sizes differ: %s @ %s",
                  cf_shape_str(a, s1, sizeof s1), cf_shape_str(b, s2, sizeof s2));
        return NULL;
    }
    batch bt;
    if (!batch_of(a2, b2, &bt))
        return NULL;
    int nb = bt.nb;
    int64_t shape[CF_MAX_DIMS];
    memcpy(shape, bt.shape, sizeof(int64_t) * nb);
    shape[nb] = a2->shape[a2->ndim - 2];
    shape[nb + 1] = b2->shape[b2->ndim - 1];
    cf_tensor *c = cf__alloc("cf_matmul", CF_F32, nb + 2, shape);
    if (!c)
        return NULL;
    mm(false, &bt, c, a2, b2);
    /* Drop the dims that 1-D operands added. */
    int nd = nb + 2;
    if (a->ndim == 1) {
        shape[nb] = shape[nb + 1];
        nd--;
    }
    if (b->ndim == 1)
        nd--;
    c->ndim = nd;
    for (int i = nd; i < CF_MAX_DIMS; i++)
        c->shape[i] = 1;
    memcpy(c->shape, shape, sizeof(int64_t) * nd);
    cf__contiguous_strides(nd, c->shape, c->stride);
    c->flags |= CF__OUTPUT_UNREAD;
    return cf_op_record(c, &matmul_op, 2, ab);
}

/* ---- affine: x W^T + b ----
 * x [..., in] is taken as the matrix X [N, in] of its rows (copied once when
 * its leading dims do not fold into one stride), W is [out, in] with any
 * strides, and the bias seeds the output before the product accumulates
 * into it: one tensor, where matmul then add makes two. */

typedef struct {
    const float *p;
    int64_t n, rs, cs; /* rows, row and column strides */
} rows_of;

/* x's rows as one strided matrix, or false when its dims do not fold. */
static bool fold_rows(const cf_tensor *x, rows_of *r)
{
    int nd = x->ndim;
    r->p = x->data;
    r->cs = x->stride[nd - 1];
    r->n = 1;
    r->rs = 0;
    for (int i = nd - 2; i >= 0; i--) {
        if (x->shape[i] == 1)
            continue;
        if (r->n > 1 && x->stride[i] != r->rs * r->n)
            return false;
        if (r->n == 1)
            r->rs = x->stride[i];
        r->n *= x->shape[i];
    }
    if (r->n == 1)
        r->rs = x->shape[nd - 1] * r->cs;
    return true;
}

static cf_status affine_backward(cf_tensor *out)
{
    cf_tensor *x = out->src[0], *w = out->src[1], *b = out->nsrc > 2 ? out->src[2] : NULL;
    cf_tensor *xs = out->saved[0] ? out->saved[0] : x;
    rows_of X;
    fold_rows(xs, &X);
    int64_t N = X.n, in = w->shape[1], nout = w->shape[0];
    const float *g = out->grad->data; /* [N, out] */
    int nt = N * in * nout < ((int64_t)1 << 18) ? 1 : cf_threads_in_use();
    bool fresh;
    cf_tensor *gw = ag__grad(w, &fresh);
    if (gw) /* dW (+)= dY^T X */
        cf__gemm(!fresh, nout, in, N, g, 1, nout, X.p, X.rs, X.cs, gw->data, in, 1, nt);
    cf_tensor *gb = b ? ag__grad(b, &fresh) : NULL;
    if (gb) {
        int64_t shape[2] = {N, nout}, st[2] = {nout, 1};
        cf_tensor *g2 = ag__restride("backward", out->grad, 2, shape, st);
        if (g2)
            cf__sum_to(gb, g2, 1.0, !fresh);
    }
    cf_tensor *gx = ag__grad(x, &fresh);
    if (gx) /* dX (+)= dY W */
        cf__gemm(!fresh, N, in, nout, g, nout, 1, w->data, w->stride[0], w->stride[1], gx->data, in,
                 1, nt);
    return cf_error();
}

static const cf_op affine_op = {"affine", affine_backward};

/* o[r, :] += b over n rows of nout: after the product rather than before it,
 * so that BLIS writes C without reading it back. */
static void add_bias(float *o, int64_t n, int64_t nout, const cf_tensor *b)
{
    const float *bp = b->data;
    int64_t bs = b->stride[0];
#pragma omp parallel for num_threads(cf__threads_for(n *nout)) schedule(static)
    for (int64_t r = 0; r < n; r++) {
        float *orow = o + r * nout;
        if (bs == 1)
            for (int64_t j = 0; j < nout; j++)
                orow[j] += bp[j];
        else
            for (int64_t j = 0; j < nout; j++)
                orow[j] += bp[j * bs];
    }
}

cf_tensor *cf_affine(cf_tensor *x, cf_tensor *w, cf_tensor *b)
{
    cf_tensor *in[3] = {x, w, b};
    int nsrc = b ? 3 : 2;
    if (!cf__check("cf_affine", nsrc, in))
        return NULL;
    for (int i = 0; i < nsrc; i++)
        if (!ag__need_float("cf_affine", in[i]))
            return NULL;
    char s1[CF_SHAPE_BUF], s2[CF_SHAPE_BUF], s3[CF_SHAPE_BUF] = "none";
    if (x->ndim < 1 || w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[1] ||
        (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))) {
        if (b)
            cf_shape_str(b, s3, sizeof s3);
        cf__error(CF_ERR_SHAPE,
                  "cf_affine: input %s, weight %s, bias %s; expected [..., in], [out, in], [out]",
                  cf_shape_str(x, s1, sizeof s1), cf_shape_str(w, s2, sizeof s2), s3);
        return NULL;
    }
    int64_t shape[CF_MAX_DIMS], nout = w->shape[0], K = w->shape[1];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = nout;
    cf_tensor *out = cf__alloc("cf_affine", CF_F32, x->ndim, shape);
    if (!out)
        return NULL;
    rows_of X;
    cf_tensor *xc = NULL;
    if (!fold_rows(x, &X)) {
        xc = cf__alloc("cf_affine", CF_F32, x->ndim, x->shape);
        if (!xc)
            return NULL;
        cf__copy(xc, x);
        fold_rows(xc, &X);
    }
    float *o = out->data;
    int nt = X.n * K * nout < ((int64_t)1 << 18) ? 1 : cf_threads_in_use();
    cf__gemm(false, X.n, nout, K, X.p, X.rs, X.cs, w->data, w->stride[1], w->stride[0], o, nout, 1,
             nt);
    if (b)
        add_bias(o, X.n, nout, b);
    out->saved[0] = xc;
    out->flags |= CF__OUTPUT_UNREAD;
    return cf_op_record(out, &affine_op, nsrc, in);
}
