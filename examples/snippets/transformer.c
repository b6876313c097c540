/* The Transformer example of include/cformer/zoo.h: a few teacher-forced
 * training steps on one padded batch, then greedy decoding. `make check`
 * builds and runs it. */
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
    cf_arena *step = cf_arena_new(0); /* owns every tensor of a step */
    cf_arena_use(step);
    cf_rng g;
    cf_rng_init(&g, 1);
    cf_transformer_config cfg = cf_transformer_small(20, 20); /* pad 0, bos 1, eos 2 */
    cfg.d_model = 32, cfg.ff = 64, cfg.max_len = 16;
    cf_transformer *m = cf_transformer_new(&cfg, &g); /* yours: free it below */
    if (!m)
        return fail();
    cf_optim *opt = cf_adam_new(cf_transformer_module(m),
                                &(cf_adam_opts){.lr = 1e-3f, .beta2 = 0.98f, .eps = 1e-9f});
    /* Two sentences, padded with pad_id 0; targets are bos ... eos. */
    const int32_t src_ids[2 * 4] = {5, 6, 7, 8, 9, 10, 0, 0};
    const int32_t in_ids[2 * 4] = {1, 11, 12, 13, 1, 14, 15, 0};  /* tgt[:, :-1] */
    const int32_t out_ids[2 * 4] = {11, 12, 13, 2, 14, 15, 2, 0}; /* tgt[:, 1:] */
    for (int it = 0; it < 3; it++) {
        cf_tensor *src = cf_from_ints(src_ids, CF_SHAPE(2, 4));
        cf_tensor *logits = /* [2, 4, 20] */
            cf_transformer_forward(m, src, cf_from_ints(in_ids, CF_SHAPE(2, 4)), NULL);
        cf_tensor *loss = cf_cross_entropy(
            cf_reshape(logits, CF_SHAPE(8, 20)), cf_from_ints(out_ids, CF_SHAPE(8)),
            &(cf_loss_opts){.ignore = true, .ignore_index = cfg.pad_id, .label_smoothing = 0.1f});
        if (!loss) /* any failure above lands here */
            return fail();
        printf("step %d: loss %.4f\n", it, cf_item(loss));
        cf_optim_zero_grad(opt);
        cf_backward(loss);
        cf_optim_step(opt);
        cf_arena_reset(step); /* frees the step's tensors and graph */
    }
    int32_t out[2 * 6]; /* row b: out[b * 6 ...], eos then pad */
    if (cf_transformer_greedy(m, cf_from_ints(src_ids, CF_SHAPE(2, 4)), 6, out) != CF_OK)
        return fail();
    for (int i = 0; i < 12; i++)
        printf("%d%s", out[i], i % 6 == 5 ? "\n" : " ");
    cf_optim_free(opt);
    cf_module_free(cf_transformer_module(m)); /* the model and its parameters */
    cf_arena_free(step);
    return 0;
}
