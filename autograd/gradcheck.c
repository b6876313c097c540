/* Numerical gradient checking by central differences. */
#include "autograd/internal.h"

#include <math.h>
#include <stdlib.h>

/* sum(out * r) in double precision. */
static double project(const cf_tensor *out, const float *r, float *buf)
{
    int64_t n = cf_numel(out);
    cf_copy_to(out, buf);
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)buf[i] * r[i];
    return s;
}

static void unravel(const cf_tensor *t, int64_t k, int64_t *idx)
{
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = k % t->shape[d];
        k /= t->shape[d];
    }
}

static cf_status gradcheck(cf_gradcheck_fn f, void *ud, int n, cf_tensor *const *inputs, float eps,
                           cf_gradcheck_report *rep)
{
    *rep = (cf_gradcheck_report){0};
    for (int i = 0; i < n; i++)
        cf_zero_grad(inputs[i]);

    /* Analytic: backward of sum(f * r). */
    cf_tensor *out = f(inputs, ud);
    if (!out)
        return cf_error();
    cf_rng g;
    cf_rng_init(&g, 1234);
    cf_tensor *r = cf_uniform(&g, -1, 1, out->ndim, out->shape);
    cf_tensor *loss = cf_sum_all(cf_mul(out, r));
    if (!loss || cf_backward(loss) != CF_OK)
        return cf_error();

    int64_t nout = cf_numel(out);
    float *buf = cf_malloc(sizeof(float) * (nout ? nout : 1));
    cf_arena *scratch = cf_arena_new(1 << 20);
    if (!buf || !scratch) {
        cf_free(buf);
        cf_arena_free(scratch);
        cf__error(CF_ERR_NOMEM, "cf_gradcheck: out of memory");
        return cf_error();
    }
    const float *rv = r->data;
    cf_arena *prev = cf_arena_use(scratch);
    bool prev_grad = cf_set_grad_enabled(false);
    for (int i = 0; i < n && !cf__failed(); i++) {
        cf_tensor *x = inputs[i];
        if (!(x->flags & CF_REQUIRES_GRAD) || x->dtype != CF_F32)
            continue;
        int64_t idx[CF_MAX_DIMS];
        for (int64_t k = 0; k < cf_numel(x) && !cf__failed(); k++) {
            unravel(x, k, idx);
            float x0 = cf_get(x, idx);
            cf_set(x, idx, x0 + eps);
            cf_tensor *yp = f(inputs, ud);
            double lp = yp ? project(yp, rv, buf) : 0;
            cf_arena_reset(scratch);
            cf_set(x, idx, x0 - eps);
            cf_tensor *ym = f(inputs, ud);
            double lm = ym ? project(ym, rv, buf) : 0;
            cf_arena_reset(scratch);
            cf_set(x, idx, x0);
            double num = (lp - lm) / (2.0 * eps);
            double ana = x->grad ? cf_get(x->grad, idx) : 0.0;
            double err = fabs(ana - num);
            double rel = err / fmax(fabs(num), 1.0);
            if (err > rep->max_abs[i] || isnan(err))
                rep->max_abs[i] = (float)err;
            if (rel > rep->max_rel[i] || isnan(rel))
                rep->max_rel[i] = (float)rel;
        }
    }
    cf_set_grad_enabled(prev_grad);
    cf_arena_use(prev);
    cf_arena_free(scratch);
    cf_free(buf);
    return cf_error();
}

cf_status cf_gradcheck(cf_gradcheck_fn f, void *ud, int n, cf_tensor *const *inputs, float eps,
                       cf_gradcheck_report *rep)
{
    for (int i = 0; inputs && i < n && i < CF_MAX_SRC; i++)
        if (!inputs[i])
            return cf__null_arg("cf_gradcheck", "an input");
    cf_error_frame saved;
    cf_error_enter(&saved);
    bool ok = f && rep && n >= 0 && n <= CF_MAX_SRC && (inputs || n == 0);
    if (!ok)
        cf__error(CF_ERR_ARG, "cf_gradcheck: %s",
                  !f                        ? "f is NULL"
                  : !rep                    ? "rep is NULL"
                  : n < 0 || n > CF_MAX_SRC ? "the number of inputs is not in 0..CF_MAX_SRC"
                                            : "inputs is NULL");
    return cf_error_leave(&saved, ok ? gradcheck(f, ud, n, inputs, eps, rep) : CF_ERR_ARG);
}
