/* Speed of the GRU seq2seq with additive attention, for comparison with
 * bench/seq2seq_torch.py (the same model in PyTorch).
 *
 *     make bench                        # CF_NUM_THREADS threads, else all cores
 *     ./bench/seq2seq --threads 1
 *     ./bench/seq2seq --worker train|greedy      # for bench/suite
 *
 * Model: vocabularies 60 (source) and 50 (target), emb 64, hidden 128,
 * attn 64, 2 bidirectional encoder layers, dropout 0; batch B = 64 of
 * sources of 20 tokens and targets of bos + 20 tokens, sequence i shorter
 * by i % 5 tokens and padded (fixed pseudo-random tokens).
 *  - train: teacher-forced forward (teacher_forcing 1), mean cross entropy
 *    (ignore_index pad), zero_grad, backward, Adam step (lr 1e-3, betas
 *    0.9 0.999, eps 1e-8), arena reset;
 *  - greedy: eval mode, greedy decoding of the batch for up to 20 tokens
 *    (stopping when every sequence has produced eos), arena reset.
 *
 * Method (bench/harness.h): a warm-up, then BENCH_REPS repetitions of about
 * TARGET_SECONDS / BENCH_REPS each (at least one step); the median
 * repetition is reported in milliseconds per step.
 */
#include "cformer/cformer.h"
#include "bench/harness.h"

#include <stdio.h>
#include <string.h>

#define TARGET_SECONDS 3.0 /* per measurement */
#define WARMUP_SECONDS 0.5
#define BATCH          64
#define LEN            20
#define SRC_VOCAB      60
#define TGT_VOCAB      50
#define PAD            0
#define BOS            1
#define EOS            2

typedef struct {
    cf_seq2seq *m;
    cf_optim *opt;
    cf_arena *step;
    cf_tensor *src, *tgt, *labels; /* heap: survive the arena resets */
    int32_t out[BATCH * LEN];
    bool failed;
} bench;

static void train_steps(void *state, int n)
{
    bench *b = state;
    for (int i = 0; i < n; i++) {
        cf_tensor *logits = cf_seq2seq_forward(b->m, b->src, b->tgt, 1, NULL, NULL);
        cf_tensor *loss =
            cf_cross_entropy(cf_reshape(logits, CF_SHAPE(BATCH * LEN, TGT_VOCAB)), b->labels,
                             &(cf_loss_opts){.ignore = true, .ignore_index = PAD});
        cf_optim_zero_grad(b->opt);
        if (!loss || cf_backward(loss) != CF_OK)
            b->failed = true;
        cf_optim_step(b->opt);
        cf_arena_reset(b->step);
    }
}

static void greedy_steps(void *state, int n)
{
    bench *b = state;
    for (int i = 0; i < n; i++) {
        if (cf_seq2seq_greedy(b->m, b->src, LEN, b->out, NULL) != CF_OK)
            b->failed = true;
        cf_arena_reset(b->step);
    }
}

/* The token of sequence i at position t: the same formula as
 * bench/seq2seq_torch.py, padding after 20 - i % 5 tokens. */
static int32_t token(int i, int t, int vocab)
{
    if (t >= LEN - i % 5)
        return PAD;
    return (int32_t)(3 + (i * 31 + t * 17 + (i * t) % 7) % (vocab - 3));
}

/* Standalone mode: both workloads, timed in turn. */
static void report(bench *b)
{
    printf("threads: %d (cformer cf_get_num_threads)\n", cf_get_num_threads());
    printf("seq2seq GRU + additive attention, emb 64, hidden 128, attn 64, 2 encoder layers, "
           "vocab 60/50, batch %d, length %d; %lld parameters; median of %d repetitions\n",
           BATCH, LEN, (long long)cf_module_num_params(cf_seq2seq_module(b->m)), BENCH_REPS);
    cf_module_train(cf_seq2seq_module(b->m), true);
    double train = 1e3 * bench_time(train_steps, b, WARMUP_SECONDS, TARGET_SECONDS / BENCH_REPS);
    double greedy = 1e3 * bench_time(greedy_steps, b, WARMUP_SECONDS, TARGET_SECONDS / BENCH_REPS);
    printf("%-36s %10.2f ms/step\n", "train (fwd + bwd + Adam)", train);
    printf("%-36s %10.2f ms/step\n", "greedy decoding (20 tokens)", greedy);
}

int main(int argc, char **argv)
{
    const char *worker;
    if (!bench_parse_args(argc, argv, &worker))
        return 2;
    if (worker && strcmp(worker, "train") != 0 && strcmp(worker, "greedy") != 0) {
        fprintf(stderr, "%s: no workload '%s' (train, greedy)\n", argv[0], worker);
        return 2;
    }
    cf_seq2seq_config cfg = {.src_vocab = SRC_VOCAB,
                             .tgt_vocab = TGT_VOCAB,
                             .emb = 64,
                             .hidden = 128,
                             .attn = 64,
                             .enc_layers = 2,
                             .pad_id = PAD,
                             .bos_id = BOS,
                             .eos_id = EOS};
    cf_rng g;
    cf_rng_init(&g, 1234);
    bench b = {.m = cf_seq2seq_new(&cfg, &g), .step = cf_arena_new(0)};
    b.opt = cf_adam_new(cf_seq2seq_module(b.m), &(cf_adam_opts){.lr = 1e-3f});
    b.src = cf_tensor_new(CF_I32, CF_SHAPE(BATCH, LEN));
    b.tgt = cf_tensor_new(CF_I32, CF_SHAPE(BATCH, LEN + 1));
    b.labels = cf_tensor_new(CF_I32, CF_SHAPE(BATCH * LEN));
    if (!b.m || !b.opt || !b.step || !b.src || !b.tgt || !b.labels) {
        fprintf(stderr, "setup failed: %s\n", cf_error_message());
        return 1;
    }
    int32_t *src = b.src->data, *tgt = b.tgt->data, *labels = b.labels->data;
    for (int i = 0; i < BATCH; i++) {
        tgt[i * (LEN + 1)] = BOS;
        for (int t = 0; t < LEN; t++) {
            src[i * LEN + t] = token(i, t, SRC_VOCAB);
            tgt[i * (LEN + 1) + t + 1] = labels[i * LEN + t] = token(i + 1, t, TGT_VOCAB);
        }
    }
    cf_arena_use(b.step);

    int status = 0;
    if (worker) {
        bool train = strcmp(worker, "train") == 0;
        cf_module_train(cf_seq2seq_module(b.m), true);
        status = bench_serve(train ? train_steps : greedy_steps, &b, WARMUP_SECONDS);
    } else {
        report(&b);
    }

    cf_arena_use(NULL);
    cf_arena_free(b.step);
    cf_tensor_free(b.src);
    cf_tensor_free(b.tgt);
    cf_tensor_free(b.labels);
    cf_optim_free(b.opt);
    cf_module_free(cf_seq2seq_module(b.m));
    if (b.failed || cf_error()) {
        fprintf(stderr, "a step failed: %s\n", cf_error_message());
        return 1;
    }
    return status;
}
