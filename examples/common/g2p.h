/* examples/common/g2p.h: what the grapheme-to-phoneme examples share, the
 * data handling and the whole training run around a model given as
 * callbacks.
 *
 *     g2p_opts o = g2p_defaults("g2p_x_out");
 *     ... parse flags into o (EX_COMMON_FLAGS(&o.c), G2P_FLAGS(&o), model flags) ...
 *     g2p_model m = {.name = "g2p_x", .module = ..., .loss = ..., .greedy = ...};
 *     return g2p_main(&o, &m, optimizer, argc, argv);
 *
 * A run: the CMU dictionary's train split (cmudict.h) in length-bucketed
 * batches (each epoch shuffles the words, sorts runs of --bucket batches
 * by length and cuts them into batches, then shuffles the batches: little
 * padding, random order); AdamW with a linear warm-up and a cosine decay to
 * --min-lr that ends with the run (the last epoch, or the time budget as
 * projected from the pace of the steps and the evaluations so far);
 * gradient clipping; greedy WER and PER on the dev split after every
 * epoch, with a checkpoint (ex_run: model, optimizer, step, data order);
 * at the end greedy and beam WER and PER on the test split, the pictures
 * and the JSON line.
 *
 * Batches: src is int32 [B, S], the letters as CMUDICT_FIRST + 0..25;
 * tgt is int32 [B, T], CMUDICT_BOS, the phones, CMUDICT_EOS, then
 * CMUDICT_PAD up to the longest in the batch (both padded with
 * CMUDICT_PAD).
 */
#ifndef EXAMPLES_COMMON_G2P_H
#define EXAMPLES_COMMON_G2P_H

#include "cmudict.h"
#include "flags.h"

#include <cformer/nn.h>

#define G2P_MAX_OUT (CMUDICT_MAX_LEN + 2) /* decoded tokens per word, eos included */

/* The model, behind callbacks; ud is passed back to each. */
typedef struct {
    const char *name; /* the program's name: messages, report, file names */
    cf_module *module;
    void *ud;
    /* The mean training loss (an arena tensor) of a batch, label smoothing
     * `smoothing`; NULL with the error recorded. */
    cf_tensor *(*loss)(void *ud, cf_tensor *src, cf_tensor *tgt, float smoothing);
    /* Decodes src [B, S] into out[b * max_len + t] (phones, then eos, then
     * pad), greedily or with a beam of width beam and length penalty
     * alpha. */
    cf_status (*greedy)(void *ud, cf_tensor *src, int max_len, int32_t *out);
    cf_status (*beam)(void *ud, cf_tensor *src, int beam, float alpha, int max_len, int32_t *out);
    /* The attention [n, S] of the n output positions over the letters
     * while the model reads src [1, S] and emits hyp[0..n) (phones and
     * eos) after bos; an arena tensor, or NULL with the error recorded. */
    cf_tensor *(*attention)(void *ud, cf_tensor *src, const int32_t *hyp, int n);
    const char *attention_what; /* subtitle: which attention it is */
} g2p_model;

/* What a finished run measured, for a program that makes several runs
 * (examples/ablation). */
typedef struct {
    g2p_score dev, test_greedy, test_beam; /* test_beam is test_greedy for beam 1 */
    int64_t steps;
    double epochs, train_seconds;
    float *loss; /* the training loss of each step, malloc'd: the caller frees it */
    int64_t nloss;
} g2p_result;

/* Everything a run takes besides the model. */
typedef struct {
    ex_common c;
    float min_lr, weight_decay, clip, smoothing, alpha, beta2;
    int warmup, bucket, beam, eval_batch;
    const char *settings; /* the model's settings, checked on --resume */
    g2p_result *result;   /* if not NULL, filled when the run ends (not after --stop-after) */
} g2p_opts;

/* Defaults for the recipe: epochs 100 (a cap), minutes 60, batch 128, lr 1e-3,
 * min-lr 1e-5, warm-up 500 steps, AdamW betas (0.9, 0.98), weight decay
 * 0.01, clip 1, label smoothing 0.1, buckets of 50 batches, beam 5 with
 * alpha 0.6 (GNMT's length penalty), evaluation batches of 256. Beam 1
 * decodes the test split once, greedily. */
g2p_opts g2p_defaults(const char *out);

/* The recipe's flag rows, to follow EX_COMMON_FLAGS. */
/* clang-format off */
#define G2P_FLAGS(o)                                                                               \
    {"min-lr", EX_FLOAT, &(o)->min_lr, 0, 1, false, "learning rate at the end of the cosine"},     \
    {"warmup", EX_INT, &(o)->warmup, 0, 1000000, false, "linear warm-up steps"},                   \
    {"wd", EX_FLOAT, &(o)->weight_decay, 0, 1, false, "AdamW weight decay"},                       \
    {"beta2", EX_FLOAT, &(o)->beta2, 0, 1, true, "AdamW beta2"},                                   \
    {"clip", EX_FLOAT, &(o)->clip, 0, 1e6, true, "gradient norm clipping"},                        \
    {"smoothing", EX_FLOAT, &(o)->smoothing, 0, 0.99, false, "label smoothing"},                   \
    {"bucket", EX_INT, &(o)->bucket, 1, 100000, false, "batches per length bucket"},               \
    {"beam", EX_INT, &(o)->beam, 1, 64, false, "beam width for the final test decoding"},          \
    {"alpha", EX_FLOAT, &(o)->alpha, 0, 10, false, "beam length penalty exponent"},                \
    {"eval-batch", EX_INT, &(o)->eval_batch, 1, 65536, false, "words decoded together"}
/* clang-format on */

/* Runs training and evaluation as described above, with opt (AdamW over
 * m->module, made by the caller, whose learning rate the run sets each
 * step). Writes to o->c.out: checkpoint.safetensors (after every epoch),
 * model.safetensors (the final weights), loss.png, dev.png and
 * attention-<word>.png for four test words; prints progress and ends
 * with the JSON line. Returns the exit status: 0, 1 on an error (printed,
 * naming what failed) or on a --quick run whose loss did not fall. */
int g2p_main(const g2p_opts *o, const g2p_model *m, cf_optim *opt, int argc, char **argv);

#endif
