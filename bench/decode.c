/* Speed of greedy decoding with the key/value cache, for comparison with
 * bench/decode_torch.py (the same model in PyTorch, without a cache).
 *
 *     make bench                        # CF_NUM_THREADS threads, else all cores
 *     ./bench/decode --threads 1
 *     ./bench/decode --worker b1|b32    # for bench/suite
 *
 * Model: d_model 256, 4 heads, 3 + 3 layers, ff 1024, ReLU, post-norm,
 * vocabularies of 1000, eval mode. A call is cf_transformer_greedy on a
 * batch of B sources of 64 random tokens for 64 new tokens: the encoder
 * once, then 64 decoder steps of one token per sequence. eos is set to the
 * padding token, which greedy decoding never emits, so every call makes
 * exactly B x 64 tokens whatever the (random) weights predict.
 *  - b1: batch 1; b32: batch 32.
 *
 * Method (bench/harness.h): a warm-up, then BENCH_REPS repetitions of about
 * TARGET_SECONDS / BENCH_REPS each; the median repetition is reported in
 * tokens per second.
 */
#include "cformer/cformer.h"
#include "bench/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TARGET_SECONDS 3.0 /* per measurement */
#define WARMUP_SECONDS 0.5
#define SRC_LEN        64
#define NEW_TOKENS     64
#define VOCAB          1000

typedef struct {
    cf_transformer *m;
    cf_arena *step;
    cf_tensor *src; /* heap: [B, SRC_LEN] */
    int32_t *out;   /* [B, NEW_TOKENS] */
    bool failed;
} bench;

static void greedy_calls(void *state, int n)
{
    bench *b = state;
    for (int i = 0; i < n; i++) {
        if (cf_transformer_greedy(b->m, b->src, NEW_TOKENS, b->out) != CF_OK)
            b->failed = true;
        cf_arena_reset(b->step);
    }
}

/* Random source tokens in [3, VOCAB): 0, 1, 2 are pad, bos and eos. */
static bool set_batch(bench *b, cf_rng *g, int64_t batch)
{
    cf_tensor_free(b->src);
    free(b->out);
    b->src = cf_tensor_new(CF_I32, CF_SHAPE(batch, SRC_LEN));
    b->out = malloc(sizeof(int32_t) * (size_t)(batch * NEW_TOKENS));
    cf_tensor *u = cf_uniform(g, 3, VOCAB, CF_SHAPE(batch, SRC_LEN));
    if (!b->src || !b->out || !u)
        return false;
    for (int64_t i = 0; i < batch * SRC_LEN; i++)
        ((int32_t *)b->src->data)[i] = (int32_t)((float *)u->data)[i];
    cf_arena_reset(b->step);
    return true;
}

/* Standalone mode: both batch sizes in turn. */
static bool report(bench *b, cf_rng *g)
{
    printf("threads: %d (cformer cf_get_num_threads)\n", cf_get_num_threads());
    printf("greedy decoding with a key/value cache, Transformer d_model 256, 4 heads, 3+3 "
           "layers, ff 1024, vocab %d, source %d, %d new tokens; median of %d repetitions\n",
           VOCAB, SRC_LEN, NEW_TOKENS, BENCH_REPS);
    const int64_t batches[] = {1, 32};
    for (int i = 0; i < 2; i++) {
        if (!set_batch(b, g, batches[i]))
            return false;
        double s = bench_time(greedy_calls, b, WARMUP_SECONDS, TARGET_SECONDS / BENCH_REPS);
        printf("batch %-30lld %10.0f tokens/s\n", (long long)batches[i],
               (double)(batches[i] * NEW_TOKENS) / s);
    }
    return true;
}

int main(int argc, char **argv)
{
    const char *worker;
    if (!bench_parse_args(argc, argv, &worker))
        return 2;
    int64_t batch = 1;
    if (worker && strcmp(worker, "b32") == 0)
        batch = 32;
    else if (worker && strcmp(worker, "b1") != 0) {
        fprintf(stderr, "%s: no workload '%s' (b1, b32)\n", argv[0], worker);
        return 2;
    }
    cf_transformer_config cfg = cf_transformer_base(VOCAB, VOCAB);
    cfg.d_model = 256;
    cfg.heads = 4;
    cfg.enc_layers = cfg.dec_layers = 3;
    cfg.ff = 1024;
    cfg.eos_id = cfg.pad_id;
    cf_rng g;
    cf_rng_init(&g, 1234);
    bench b = {.m = cf_transformer_new(&cfg, &g), .step = cf_arena_new(0)};
    cf_arena_use(b.step);
    if (!b.m || !b.step || !set_batch(&b, &g, batch)) {
        fprintf(stderr, "setup failed: %s\n", cf_error_message());
        return 1;
    }
    cf_module_train(cf_transformer_module(b.m), false);

    int status = 0;
    if (worker)
        status = bench_serve(greedy_calls, &b, WARMUP_SECONDS);
    else if (!report(&b, &g))
        b.failed = true;

    cf_arena_use(NULL);
    cf_arena_free(b.step);
    cf_tensor_free(b.src);
    free(b.out);
    cf_module_free(cf_transformer_module(b.m));
    if (b.failed || cf_error()) {
        fprintf(stderr, "a call failed: %s\n", cf_error_message());
        return 1;
    }
    return status;
}
