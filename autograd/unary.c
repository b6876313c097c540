/* Unary functions: exp, log, tanh, sigmoid, relu. */
#include "autograd/internal.h"
#include "tensor/vexp.h"

#include <math.h>

AG_UNARY_OP(exp, expf(x), g *y)
AG_UNARY_OP(log, logf(x), g / x)
AG_UNARY_OP(tanh, cf__tanh(x), g *(1.0f - y * y))
AG_UNARY_OP(sigmoid, cf__sigmoid(x), g *y *(1.0f - y))
/* NaN passes, value and gradient, as in PyTorch. */
AG_UNARY_OP(relu, x <= 0 ? 0.0f : x, x <= 0 ? 0.0f : g)

cf_tensor *cf_exp(cf_tensor *a) { return ag__unary("cf_exp", a, 0, exp_fwd, &exp_op); }
cf_tensor *cf_log(cf_tensor *a) { return ag__unary("cf_log", a, 0, log_fwd, &log_op); }
cf_tensor *cf_tanh(cf_tensor *a) { return ag__unary("cf_tanh", a, 0, tanh_fwd, &tanh_op); }
cf_tensor *cf_relu(cf_tensor *a) { return ag__unary("cf_relu", a, 0, relu_fwd, &relu_op); }

cf_tensor *ag__relu_in_place(cf_tensor *x)
{
    if (!cf__check("cf_relu", 1, &x) || !ag__need_float("cf_relu", x))
        return NULL;
    if (!(x->flags & CF__OWN_BLOCK))
        return cf_relu(x);
    cf_tensor *out = cf__view_of("cf_relu", x);
    if (!out)
        return NULL;
    float *d = x->data;
    int64_t n = cf_numel(x);
#pragma omp parallel for num_threads(cf__threads_for(n)) schedule(static)
    for (int64_t b = 0; b < n; b += 4096) {
        int64_t e = b + 4096 < n ? b + 4096 : n;
        for (int64_t i = b; i < e; i++)
            d[i] = d[i] > 0 ? d[i] : 0.0f;
    }
    /* relu's backward reads the sign of its input, which the overwrite keeps. */
    return cf_op_record(out, &relu_op, 1, &x);
}

cf_tensor *cf_sigmoid(cf_tensor *a)
{
    return ag__unary("cf_sigmoid", a, 0, sigmoid_fwd, &sigmoid_op);
}
