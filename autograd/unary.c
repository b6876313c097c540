/* Unary functions: exp, log, tanh, sigmoid, relu. */
#include "autograd/internal.h"
#include "tensor/vexp.h"

#include <math.h>

AG_UNARY_OP(exp, expf(x), g * y)
AG_UNARY_OP(log, logf(x), g / x)
AG_UNARY_OP(tanh, cf__tanh(x), g * (1.0f - y * y))
AG_UNARY_OP(sigmoid, cf__sigmoid(x), g * y * (1.0f - y))
/* NaN passes, value and gradient, as in PyTorch. */
AG_UNARY_OP(relu, x <= 0 ? 0.0f : x, x <= 0 ? 0.0f : g)

cf_tensor *cf_exp(cf_tensor *a) { return ag__unary("cf_exp", a, 0, exp_fwd, &exp_op); }
cf_tensor *cf_log(cf_tensor *a) { return ag__unary("cf_log", a, 0, log_fwd, &log_op); }
cf_tensor *cf_tanh(cf_tensor *a) { return ag__unary("cf_tanh", a, 0, tanh_fwd, &tanh_op); }
cf_tensor *cf_relu(cf_tensor *a) { return ag__unary("cf_relu", a, 0, relu_fwd, &relu_op); }

cf_tensor *cf_sigmoid(cf_tensor *a)
{
    return ag__unary("cf_sigmoid", a, 0, sigmoid_fwd, &sigmoid_op);
}
