#include "tests/fuzz/net.h"

cf_module *fuzz_net_new(void)
{
    cf_rng g;
    cf_rng_init(&g, 11);
    cf_module *net = cf_module_new("Net", NULL, NULL);
    if (net && cf_linear_new(net, "fc", 4, 3, true, &g) &&
        cf_layernorm_new(net, "norm", 3, 1e-5f, true) &&
        cf_embedding_new(net, "emb", 5, 3, -1, &g) && cf_dropout_new(net, "drop", 0.1f, 5))
        return net;
    cf_module_free(net);
    return NULL;
}

static void set_grad(const char *name, cf_tensor *p, void *ud)
{
    (void)name;
    (void)ud;
    cf_tensor *sq = cf_sum_all(cf_mul(p, p));
    if (sq)
        cf_backward(sq);
}

cf_optim *fuzz_optim_new(cf_module *net)
{
    cf_optim *o = cf_adamw_new(net, &(cf_adamw_opts){.lr = 0.01f, .weight_decay = 0.01f});
    cf_arena *a = cf_arena_new(1 << 16), *prev = cf_arena_use(a);
    for (int step = 0; o && a && step < 2; step++) {
        cf_optim_zero_grad(o);
        cf_module_visit(net, set_grad, NULL);
        cf_optim_step(o);
        cf_arena_reset(a);
    }
    cf_arena_use(prev);
    cf_arena_free(a);
    if (o && cf_optim_steps(o) == 2)
        return o;
    cf_optim_free(o);
    return NULL;
}
