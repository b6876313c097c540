/* The seq2seq example of include/cformer/zoo.h: a few training steps with
 * teacher forcing on one padded batch, then greedy decoding with its
 * attention weights. `make check` builds and runs it. */
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
    cf_seq2seq_config cfg = {.src_vocab = 20,
                             .tgt_vocab = 20,
                             .emb = 16,
                             .hidden = 32,
                             .attn = 16,
                             .enc_layers = 1,
                             .dropout = 0.1f,
                             .pad_id = 0,
                             .bos_id = 1,
                             .eos_id = 2};
    cf_seq2seq *m = cf_seq2seq_new(&cfg, &g);
    if (!m)
        return fail();
    cf_optim *opt = cf_adam_new(cf_seq2seq_module(m), &(cf_adam_opts){.lr = 1e-3f});
    /* Sources padded with pad_id; targets bos ... eos, padded. */
    const int32_t src_ids[2 * 4] = {5, 6, 7, 8, 9, 10, 0, 0};
    const int32_t tgt_ids[2 * 5] = {1, 11, 12, 13, 2, 1, 14, 2, 0, 0};
    for (int it = 0; it < 3; it++) {
        cf_tensor *tgt = cf_from_ints(tgt_ids, CF_SHAPE(2, 5));
        /* Logits [2, 4, 20] predicting tgt[:, 1:]; teacher forcing 0.5
         * feeds the model's own argmax at about half the steps, drawn
         * from g. */
        cf_tensor *logits =
            cf_seq2seq_forward(m, cf_from_ints(src_ids, CF_SHAPE(2, 4)), tgt, 0.5f, &g, NULL);
        cf_tensor *next = cf_reshape(cf_slice(tgt, 1, 1, 5, 1), CF_SHAPE(8));
        cf_tensor *loss =
            cf_cross_entropy(cf_reshape(logits, CF_SHAPE(8, 20)), next,
                             &(cf_loss_opts){.ignore = true, .ignore_index = cfg.pad_id});
        if (!loss)
            return fail();
        printf("step %d: loss %.4f\n", it, cf_item(loss));
        cf_optim_zero_grad(opt);
        cf_backward(loss);
        cf_clip_grad_norm(cf_seq2seq_module(m), 1.0f);
        cf_optim_step(opt);
        cf_arena_reset(step);
    }
    int32_t out[2 * 6];
    cf_tensor *weights = NULL; /* [2, 6, 4]: where each output token looked */
    if (cf_seq2seq_greedy(m, cf_from_ints(src_ids, CF_SHAPE(2, 4)), 6, out, &weights) != CF_OK)
        return fail();
    for (int i = 0; i < 12; i++)
        printf("%d%s", out[i], i % 6 == 5 ? "\n" : " ");
    printf("first token of row 1 attends to its 2 source tokens: %.3f %.3f (pads: %g %g)\n",
           cf_get(weights, CF_IDX(1, 0, 0)), cf_get(weights, CF_IDX(1, 0, 1)),
           cf_get(weights, CF_IDX(1, 0, 2)), cf_get(weights, CF_IDX(1, 0, 3)));
    cf_optim_free(opt);
    cf_module_free(cf_seq2seq_module(m));
    cf_arena_free(step);
    return 0;
}
