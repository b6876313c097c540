/* The example of include/cformer/nn.h, whole: a two-layer classifier on
 * random data, trained with AdamW (no decay on biases), saved and loaded
 * back. `make check` builds and runs it. */
#include <cformer/cformer.h>

#include <stdio.h>

static int fail(void)
{
    fprintf(stderr, "%s\n", cf_error_message());
    return 1;
}

int main(void)
{
    cf_arena *step = cf_arena_new(0);
    cf_arena_use(step);
    cf_rng rng;
    cf_rng_init(&rng, 42);
    cf_module *net = cf_module_new("Net", NULL, NULL);
    cf_linear *fc1 = cf_linear_new(net, "fc1", 16, 32, true, &rng);
    cf_linear *fc2 = cf_linear_new(net, "fc2", 32, 4, true, &rng);
    cf_optim *opt = cf_adamw_new(
        net, &(cf_adamw_opts){.lr = 1e-2f, .weight_decay = 0.01f, .decays = cf_decay_matrices});
    if (!fc1 || !fc2 || !opt)
        return fail();
    /* A fixed batch (heap tensors outlive the arena's resets) whose class
     * is the sign pattern of its first two inputs. */
    cf_tensor *x = cf_tensor_new(CF_F32, CF_SHAPE(64, 16));
    cf_tensor *y = cf_tensor_new(CF_I32, CF_SHAPE(64));
    if (!x || !y)
        return fail();
    cf_fill_uniform(&rng, x, -1, 1);
    for (int i = 0; i < 64; i++)
        ((int32_t *)y->data)[i] = (cf_get(x, CF_IDX(i, 0)) > 0) * 2 + (cf_get(x, CF_IDX(i, 1)) > 0);
    float first = 0, last = 0;
    for (int it = 0; it < 100; it++) {
        cf_tensor *h = cf_relu(cf_linear_forward(fc1, x));
        cf_tensor *loss = cf_cross_entropy(cf_linear_forward(fc2, h), y, NULL);
        if (!loss)
            return fail();
        last = cf_item(loss);
        if (it == 0)
            first = last;
        cf_optim_zero_grad(opt);
        if (cf_backward(loss) != CF_OK)
            return fail();
        cf_optim_step(opt);
        cf_arena_reset(step); /* frees h, loss and the graph */
    }
    printf("loss %.4f -> %.4f\n", first, last);
    if (cf_module_save(net, "snippet_nn.safetensors") != CF_OK ||
        cf_module_load(net, "snippet_nn.safetensors", true) != CF_OK)
        return fail();
    remove("snippet_nn.safetensors");
    cf_optim_free(opt);
    cf_module_free(net); /* frees fc1, fc2 and all parameters */
    cf_tensor_free(x);
    cf_tensor_free(y);
    cf_arena_free(step);
    return last < first / 4 ? 0 : 1;
}
