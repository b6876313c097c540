/* The ViT example of include/cformer/zoo.h: a few training steps on random
 * images, then predictions and the attention rollout. `make check` builds
 * and runs it. */
#include <cformer/cformer.h>

#include <stdio.h>

/* Prints the error the failing call recorded. */
static int fail(void)
{
    fprintf(stderr, "%s\n", cf_error_message());
    return 1;
}

int main(void)
{
    cf_arena *step = cf_arena_new(0);
    cf_arena_use(step);
    cf_rng g;
    cf_rng_init(&g, 1);
    cf_vit_config cfg = {.image_size = 16,
                         .channels = 1,
                         .patch_size = 4,
                         .dim = 32,
                         .depth = 2,
                         .heads = 4,
                         .mlp_ratio = 2,
                         .classes = 10};
    cf_vit *m = cf_vit_new(&cfg, &g); /* NULL for an invalid config */
    if (!m)
        return fail();
    cf_optim *opt =
        cf_adamw_new(cf_vit_module(m), &(cf_adamw_opts){.lr = 1e-3f, .weight_decay = 0.05f});
    const int32_t labels[4] = {3, 1, 4, 1};
    for (int it = 0; it < 3; it++) {
        cf_tensor *images = cf_normal(&g, 0, 1, CF_SHAPE(4, 1, 16, 16)); /* [B, C, H, W] */
        cf_tensor *logits = cf_vit_forward(m, images, NULL);             /* [4, 10] */
        cf_tensor *loss = cf_cross_entropy(logits, cf_from_ints(labels, CF_SHAPE(4)), NULL);
        if (!loss)
            return fail();
        printf("step %d: loss %.4f\n", it, cf_item(loss));
        cf_optim_zero_grad(opt);
        cf_backward(loss);
        cf_optim_step(opt);
        cf_arena_reset(step);
    }
    /* Inference: eval mode (no dropout), no graph, maps for the rollout. */
    cf_module_train(cf_vit_module(m), false);
    CF_NO_GRAD
    {
        cf_tensor *maps[2]; /* depth entries, [B, heads, N + 1, N + 1] */
        cf_tensor *images = cf_normal(&g, 0, 1, CF_SHAPE(2, 1, 16, 16));
        cf_tensor *pred = cf_argmax(cf_vit_forward(m, images, maps), -1, false); /* [2] */
        cf_tensor *rollout = cf_vit_rollout(m, maps); /* [2, N]: CLS attention per patch */
        if (!rollout)
            return fail();
        printf("predicted %g %g; rollout of patch 0: %.4f\n", cf_get(pred, CF_IDX(0)),
               cf_get(pred, CF_IDX(1)), cf_get(rollout, CF_IDX(0, 0)));
    }
    cf_optim_free(opt);
    cf_module_free(cf_vit_module(m));
    cf_arena_free(step);
    return 0;
}
