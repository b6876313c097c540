/* The user-defined op of include/cformer/autograd.h, whole: y = x^2 with
 * its backward, on a transposed (strided) input, checked against the
 * numerical gradient. `make check` builds and runs it. */
#include <cformer/cformer.h>

#include <stdio.h>

/* Adds 2 x dy into x's gradient. out->grad and cf_grad_for are contiguous;
 * x may be any view, so it is read through cf_contiguous. */
static cf_status square_backward(cf_tensor *out)
{
    cf_tensor *x = cf_contiguous(out->src[0]);
    cf_tensor *gx = cf_grad_for(out->src[0]);
    if (!x || !gx)
        return gx ? cf_error() : CF_OK;
    const float *xv = x->data, *dy = out->grad->data;
    float *g = gx->data;
    for (int64_t i = 0; i < cf_numel(x); i++)
        g[i] += 2 * xv[i] * dy[i];
    return CF_OK;
}

static const cf_op square_op = {"square", square_backward};

static cf_tensor *square(cf_tensor *x)
{
    cf_tensor *xc = cf_contiguous(x);
    cf_tensor *out = xc ? cf_empty(CF_F32, x->ndim, x->shape) : NULL;
    if (!out)
        return NULL;
    const float *xv = xc->data;
    float *y = out->data;
    for (int64_t i = 0; i < cf_numel(out); i++)
        y[i] = xv[i] * xv[i];
    return cf_op_record(out, &square_op, 1, (cf_tensor *[]){x});
}

static cf_tensor *loss_of(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_sum_all(square(cf_transpose(in[0], 0, 1)));
}

int main(void)
{
    cf_arena *a = cf_arena_new(0);
    cf_arena_use(a);
    cf_rng g;
    cf_rng_init(&g, 3);
    cf_tensor *x = cf_requires_grad(cf_uniform(&g, -1, 1, CF_SHAPE(3, 4)), true);
    cf_gradcheck_report rep;
    if (cf_gradcheck(loss_of, NULL, 1, &x, 1e-3f, &rep) != CF_OK) {
        fprintf(stderr, "%s\n", cf_error_message());
        return 1;
    }
    printf("square: largest relative gradient error %g\n", (double)rep.max_rel[0]);
    if (!(rep.max_rel[0] < 1e-2f))
        return 1;
    cf_arena_free(a);
    return 0;
}
