/* The optimizer's layout, shared by the update code and checkpoints. */
#ifndef CF_NN_OPTIM_H
#define CF_NN_OPTIM_H

#include "cformer/nn.h"

typedef enum { CF_OPTIM_SGD, CF_OPTIM_ADAM, CF_OPTIM_ADAMW } cf_optim_kind;

struct cf_optim {
    cf_optim_kind kind;
    float lr, momentum, dampening, weight_decay, beta1, beta2, eps;
    /* The same as the decimals the caller wrote (0.999f: 0.999), for the
     * coefficients torch derives from Python floats in double. */
    double lr_d, dampening_d, weight_decay_d, beta1_d, beta2_d;
    bool nesterov;
    int64_t step; /* calls to cf_optim_step */
    int n;        /* parameters */
    cf_tensor **params;
    char **names;   /* full parameter names, owned */
    cf_tensor **m1; /* momentum buffer (SGD) or exp_avg (Adam); NULL until used */
    cf_tensor **m2; /* exp_avg_sq (Adam) */
    int64_t *steps; /* per-parameter Adam step, as torch keeps it */
    bool *decays;   /* per parameter: weight decay applies */
};

#endif
