/* cf_seq2seq: PyTorch names, golden logits, attention weights and
 * gradients (tests/golden/gen_seq2seq.py), teacher forcing, greedy and beam
 * decoding, checkpoints and bad input. */
#include "cformer/zoo.h"
#include "tests/util.h"

#include <math.h>
#include <string.h>

/* The reference model of gen_seq2seq.py. */
static const cf_seq2seq_config golden_cfg = {.src_vocab = 11,
                                             .tgt_vocab = 13,
                                             .emb = 8,
                                             .hidden = 12,
                                             .attn = 10,
                                             .enc_layers = 2,
                                             .pad_id = 0,
                                             .bos_id = 1,
                                             .eos_id = 2};
enum { B = 3, S = 7, T = 6, MAX_LEN = 8 };
/* The lengths of the fixture's source and target rows, padding excluded. */
static const int64_t src_len[B] = {7, 4, 5}, tgt_len[B] = {7, 4, 5};

static const cf_seq2seq_config tiny = {.src_vocab = 5,
                                       .tgt_vocab = 6,
                                       .emb = 3,
                                       .hidden = 4,
                                       .attn = 2,
                                       .enc_layers = 1,
                                       .pad_id = 0,
                                       .bos_id = 1,
                                       .eos_id = 5};

/* The reference model with its weights and the given dropout. */
static cf_seq2seq *golden_model_with_dropout(cf_safetensors *f, float dropout)
{
    cf_seq2seq_config cfg = golden_cfg;
    cfg.dropout = dropout;
    cf_seq2seq *m = cf_seq2seq_new(&cfg, NULL);
    ck_assert_msg(m != NULL, "cf_seq2seq_new: %s", cf_error_message());
    load_params(cf_seq2seq_module(m), f, "s2s");
    return m;
}

static cf_seq2seq *golden_model(cf_safetensors *f) { return golden_model_with_dropout(f, 0); }

/* ---- Golden cases ---- */

/* The reference model's logits with the given teacher forcing against the
 * fixture's `want`. */
static void assert_golden_logits(float teacher_forcing, const char *want)
{
    cf_safetensors *f = open_fixture("seq2seq.safetensors");
    cf_seq2seq *m = golden_model(f);
    cf_tensor *logits = cf_seq2seq_forward(m, fixture(f, "s2s.src"), fixture(f, "s2s.tgt"),
                                           teacher_forcing, NULL, NULL);
    assert_golden(logits, f, want);
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}

TEST(golden_teacher_forced_logits_match_pytorch) { assert_golden_logits(1, "s2s.logits"); }
END_TEST

TEST(golden_attention_weights_match_and_ignore_padding)
{
    cf_safetensors *f = open_fixture("seq2seq.safetensors");
    cf_seq2seq *m = golden_model(f);
    cf_tensor *w = NULL;
    ck_assert_ptr_nonnull(
        cf_seq2seq_forward(m, fixture(f, "s2s.src"), fixture(f, "s2s.tgt"), 1, NULL, &w));
    assert_golden(w, f, "s2s.weights");
    /* Sequences 1 and 2 have 4 and 5 tokens, then padding. */
    for (int64_t b = 1; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t s = src_len[b]; s < S; s++)
                ck_assert_float_eq(cf_get(w, CF_IDX(b, t, s)), 0);
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST(golden_cross_entropy_gradients_match_for_every_parameter)
{
    cf_safetensors *f = open_fixture("seq2seq.safetensors");
    cf_seq2seq *m = golden_model(f);
    cf_tensor *tgt = fixture(f, "s2s.tgt");
    cf_tensor *logits = cf_seq2seq_forward(m, fixture(f, "s2s.src"), tgt, 1, NULL, NULL);
    cf_tensor *loss =
        cf_cross_entropy(cf_reshape(logits, CF_SHAPE(B * T, golden_cfg.tgt_vocab)),
                         cf_reshape(cf_slice(tgt, 1, 1, T + 1, 1), CF_SHAPE(B * T)),
                         &(cf_loss_opts){.ignore = true, .ignore_index = golden_cfg.pad_id});
    assert_golden(loss, f, "s2s.loss");
    ck_assert_int_eq(cf_backward(loss), CF_OK);
    assert_param_grads(cf_seq2seq_module(m), f, "s2s.grad");
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST(golden_free_running_logits_match_pytorch) { assert_golden_logits(0, "s2s.free_logits"); }
END_TEST

TEST(golden_greedy_decoding_matches_pytorch)
{
    cf_safetensors *f = open_fixture("seq2seq.safetensors");
    cf_seq2seq *m = golden_model(f);
    int32_t out[B * MAX_LEN];
    cf_tensor *w = NULL;
    ck_assert_int_eq(cf_seq2seq_greedy(m, fixture(f, "s2s.src"), MAX_LEN, out, &w), CF_OK);
    const int32_t *want = fixture(f, "s2s.greedy")->data;
    for (int i = 0; i < B * MAX_LEN; i++)
        ck_assert_msg(out[i] == want[i], "token %d of sequence %d is %d, want %d", i % MAX_LEN,
                      i / MAX_LEN, out[i], want[i]);
    assert_golden(w, f, "s2s.greedy_weights");
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}
END_TEST

/* ---- Padding ---- */

/* Row b of the fixture's tokens cut to its own length: [1, len]. */
static cf_tensor *alone(cf_tensor *tokens, int64_t b, int64_t len)
{
    return cf_contiguous(cf_slice(cf_slice(tokens, 0, b, b + 1, 1), 1, 0, len, 1));
}

TEST(a_row_gives_the_same_logits_and_weights_alone_as_in_a_padded_batch)
{
    cf_safetensors *f = open_fixture("seq2seq.safetensors");
    cf_seq2seq *m = golden_model(f);
    cf_tensor *src = fixture(f, "s2s.src"), *tgt = fixture(f, "s2s.tgt");
    cf_tensor *w = NULL, *logits = cf_seq2seq_forward(m, src, tgt, 1, NULL, &w);
    ck_assert_ptr_nonnull(logits);
    for (int64_t b = 0; b < B; b++) {
        int64_t steps = tgt_len[b] - 1;
        cf_tensor *w1 = NULL;
        cf_tensor *l1 = cf_seq2seq_forward(m, alone(src, b, src_len[b]), alone(tgt, b, tgt_len[b]),
                                           1, NULL, &w1);
        ck_assert_ptr_nonnull(l1);
        assert_close(l1, cf_slice(cf_slice(logits, 0, b, b + 1, 1), 1, 0, steps, 1), 1e-5f, 0);
        assert_close(
            w1,
            cf_slice(cf_slice(cf_slice(w, 0, b, b + 1, 1), 1, 0, steps, 1), 2, 0, src_len[b], 1),
            1e-5f, 0);
    }
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST(a_row_decodes_the_same_alone_as_in_a_padded_batch)
{
    cf_safetensors *f = open_fixture("seq2seq.safetensors");
    cf_seq2seq *m = golden_model(f);
    cf_tensor *src = fixture(f, "s2s.src");
    int32_t out[B * MAX_LEN], one[MAX_LEN];
    cf_tensor *w = NULL, *w1 = NULL;
    ck_assert_int_eq(cf_seq2seq_greedy(m, src, MAX_LEN, out, &w), CF_OK);
    for (int64_t b = 0; b < B; b++) {
        ck_assert_int_eq(cf_seq2seq_greedy(m, alone(src, b, src_len[b]), MAX_LEN, one, &w1), CF_OK);
        ck_assert_int_eq(memcmp(one, out + b * MAX_LEN, sizeof one), 0);
        assert_close(w1, cf_slice(cf_slice(w, 0, b, b + 1, 1), 2, 0, src_len[b], 1), 1e-5f, 0);
    }
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST(extra_source_padding_leaves_the_logits_unchanged)
{
    cf_safetensors *f = open_fixture("seq2seq.safetensors");
    cf_seq2seq *m = golden_model(f);
    cf_tensor *src = fixture(f, "s2s.src"), *tgt = fixture(f, "s2s.tgt");
    /* Five more pad tokens after every row. */
    cf_tensor *longer = cf_empty(CF_I32, CF_SHAPE(B, S + 5));
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S + 5; s++)
            ((int32_t *)longer->data)[b * (S + 5) + s] =
                s < S ? ((const int32_t *)src->data)[b * S + s] : golden_cfg.pad_id;
    assert_close(cf_seq2seq_forward(m, longer, tgt, 1, NULL, NULL),
                 cf_seq2seq_forward(m, src, tgt, 1, NULL, NULL), 1e-5f, 0);
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}
END_TEST

/* ---- Layout ---- */

typedef struct {
    cf_safetensors *f;
    int n;
} listing;

static void check_in_fixture(const char *name, cf_tensor *p, void *ud)
{
    listing *l = ud;
    char key[160], a[64], b[64];
    snprintf(key, sizeof key, "s2s.%s", name);
    cf_tensor *want = fixture(l->f, key);
    ck_assert_msg(cf_same_shape(p, want), "%s: %s, PyTorch has %s", name,
                  cf_shape_str(p, a, sizeof a), cf_shape_str(want, b, sizeof b));
    l->n++;
}

TEST(parameters_have_the_pytorch_names_and_shapes)
{
    cf_seq2seq *m = cf_seq2seq_new(&golden_cfg, NULL);
    listing l = {open_fixture("seq2seq.safetensors"), 0};
    cf_module_visit(cf_seq2seq_module(m), check_in_fixture, &l);
    /* The state_dict: 2 embeddings, 2 layers x 2 directions x 4 GRU tensors,
     * bridge 2, attention 4, GRUCell 4, out 2. */
    ck_assert_int_eq(l.n, 2 + 16 + 2 + 4 + 4 + 2);
    ck_assert_int_eq(cf_module_num_tensors(cf_seq2seq_module(m)), l.n);
    cf_safetensors_close(l.f);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

TEST(embedding_padding_rows_start_at_zero_and_get_no_gradient)
{
    cf_safetensors *f = open_fixture("seq2seq.safetensors");
    cf_seq2seq *fresh = cf_seq2seq_new(&golden_cfg, NULL), *m = golden_model(f);
    const char *names[] = {"encoder.embedding.weight", "decoder.embedding.weight"};
    cf_tensor *tgt = fixture(f, "s2s.tgt");
    cf_tensor *logits = cf_seq2seq_forward(m, fixture(f, "s2s.src"), tgt, 1, NULL, NULL);
    ck_assert_int_eq(cf_backward(cf_sum_all(logits)), CF_OK);
    for (int i = 0; i < 2; i++) {
        cf_tensor *w0 = cf_module_find(cf_seq2seq_module(fresh), names[i]);
        cf_tensor *w = cf_module_find(cf_seq2seq_module(m), names[i]);
        for (int64_t j = 0; j < golden_cfg.emb; j++) {
            ck_assert_float_eq(cf_get(w0, CF_IDX(golden_cfg.pad_id, j)), 0);
            /* The fixture's batches hold padding, fed to both embeddings. */
            ck_assert_float_eq(cf_get(w->grad, CF_IDX(golden_cfg.pad_id, j)), 0);
            ck_assert_float_ne(cf_get(w->grad, CF_IDX(5, j)), 0);
        }
    }
    cf_module_free(cf_seq2seq_module(fresh));
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST(only_the_attention_key_projection_has_a_bias)
{
    cf_seq2seq *m = cf_seq2seq_new(&golden_cfg, NULL);
    cf_module *mod = cf_seq2seq_module(m);
    ck_assert_ptr_nonnull(cf_module_find(mod, "decoder.attention.key_proj.bias"));
    ck_assert_ptr_null(cf_module_find(mod, "decoder.attention.query_proj.bias"));
    ck_assert_ptr_null(cf_module_find(mod, "decoder.attention.v.bias"));
    cf_module_free(mod);
}
END_TEST

/* ---- Teacher forcing ---- */

/* The tiny model made to predict token y + 1 (mod V) after token y: one-hot
 * target embeddings (emb = V) and an output layer that reads only the
 * embedding, with logit 10 at y + 1. */
static cf_seq2seq *successor_model(void)
{
    cf_seq2seq_config cfg = tiny;
    cfg.emb = cfg.tgt_vocab;
    cf_seq2seq *m = cf_seq2seq_new(&cfg, NULL);
    cf_module *mod = cf_seq2seq_module(m);
    int V = cfg.tgt_vocab, H = cfg.hidden;
    cf_tensor *emb = cf_module_find(mod, "decoder.embedding.weight");
    cf_tensor *w = cf_module_find(mod, "decoder.out.weight"); /* [V, 3H + V] */
    cf_fill(emb, 0);
    cf_fill(w, 0);
    cf_fill(cf_module_find(mod, "decoder.out.bias"), 0);
    for (int y = 0; y < V; y++) {
        cf_set(emb, CF_IDX(y, y), 1);
        cf_set(w, CF_IDX((y + 1) % V, 3 * H + y), 10);
    }
    return m;
}

static void assert_predicts(cf_tensor *logits, const int32_t *want, int n)
{
    ck_assert_ptr_nonnull(logits);
    int V = tiny.tgt_vocab;
    for (int t = 0; t < n; t++)
        for (int v = 0; v < V; v++)
            ck_assert_msg(cf_get(logits, CF_IDX(0, t, v)) == (v == want[t] ? 10.0f : 0.0f),
                          "step %d, token %d: %g", t, v, cf_get(logits, CF_IDX(0, t, v)));
}

/* The successor model's predictions for the target 1 4 4 2 0 with the given
 * teacher forcing. */
static void assert_successor_predicts(float teacher_forcing, const int32_t *want)
{
    cf_seq2seq *m = successor_model();
    cf_tensor *src = cf_from_ints((int32_t[]){2, 3, 4}, CF_SHAPE(1, 3));
    cf_tensor *tgt = cf_from_ints((int32_t[]){1, 4, 4, 2, 0}, CF_SHAPE(1, 5));
    assert_predicts(cf_seq2seq_forward(m, src, tgt, teacher_forcing, NULL, NULL), want, 4);
    cf_module_free(cf_seq2seq_module(m));
}

TEST(teacher_forcing_one_reads_the_reference_tokens)
{
    assert_successor_predicts(1, (int32_t[]){2, 5, 5, 3});
}
END_TEST

TEST(teacher_forcing_zero_reads_the_models_own_argmax)
{
    /* Only tgt[0] is read: 1 -> 2 -> 3 -> 4 -> 5. */
    assert_successor_predicts(0, (int32_t[]){2, 3, 4, 5});
}
END_TEST

TEST(partial_teacher_forcing_draws_from_the_generator)
{
    cf_seq2seq *m = successor_model();
    cf_tensor *src = cf_from_ints((int32_t[]){2, 3, 4}, CF_SHAPE(1, 3));
    enum { N = 40 };
    int32_t ref[N + 1];
    ref[0] = 1;
    for (int i = 1; i <= N; i++)
        ref[i] = 3; /* teaching predicts 4 */
    cf_tensor *tgt = cf_from_ints(ref, CF_SHAPE(1, N + 1));
    int32_t seen[2][N];
    for (int run = 0; run < 2; run++) {
        cf_rng g;
        cf_rng_init(&g, 11);
        cf_tensor *logits = cf_argmax(cf_seq2seq_forward(m, src, tgt, 0.5f, &g, NULL), -1, false);
        ck_assert_ptr_nonnull(logits);
        memcpy(seen[run], logits->data, sizeof seen[run]);
    }
    /* The same generator state gives the same choices; both kinds occur. */
    ck_assert_int_eq(memcmp(seen[0], seen[1], sizeof seen[0]), 0);
    int taught = 0;
    for (int t = 1; t < N; t++)
        taught += seen[0][t] == 4 && seen[0][t - 1] != 3;
    ck_assert_int_gt(taught, 5);
    ck_assert_int_lt(taught, N - 6);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

TEST(teacher_forcing_zero_or_one_leaves_the_generator_alone)
{
    cf_seq2seq *m = successor_model();
    cf_tensor *src = cf_from_ints((int32_t[]){2, 3, 4}, CF_SHAPE(1, 3));
    cf_tensor *tgt = cf_from_ints((int32_t[]){1, 2, 3, 4}, CF_SHAPE(1, 4));
    const float rates[2] = {0, 1};
    for (int i = 0; i < 2; i++) {
        cf_manual_seed(21);
        float want = cf_item(cf_uniform(NULL, 0, 1, 0, NULL));
        cf_manual_seed(21);
        cf_rng g;
        cf_rng_init(&g, 4);
        ck_assert_ptr_nonnull(cf_seq2seq_forward(m, src, tgt, rates[i], NULL, NULL));
        ck_assert_ptr_nonnull(cf_seq2seq_forward(m, src, tgt, rates[i], &g, NULL));
        ck_assert_int_eq(g.offset, 0);
        ck_assert_float_eq(cf_item(cf_uniform(NULL, 0, 1, 0, NULL)), want);
    }
    cf_manual_seed(0);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

/* ---- Decoding ---- */

static int hyp_len(const int32_t *tokens, int max_len, int eos)
{
    for (int t = 0; t < max_len; t++)
        if (tokens[t] == eos)
            return t + 1;
    return max_len;
}

/* The length-penalised log-probability of a decoded sequence of source b,
 * from the teacher-forced forward: sum log p / ((5 + len) / 6)^alpha. */
static double hyp_score(cf_seq2seq *m, cf_tensor *src, int64_t b, const int32_t *tokens,
                        float alpha)
{
    int len = hyp_len(tokens, MAX_LEN, golden_cfg.eos_id);
    int32_t ids[MAX_LEN + 1] = {golden_cfg.bos_id};
    memcpy(ids + 1, tokens, sizeof *ids * len);
    double sum = 0;
    cf_module_train(cf_seq2seq_module(m), false);
    CF_NO_GRAD
    {
        cf_tensor *logits =
            cf_seq2seq_forward(m, cf_slice(src, 0, b, b + 1, 1),
                               cf_from_ints(ids, CF_SHAPE(1, len + 1)), 1, NULL, NULL);
        cf_tensor *lp = cf_log_softmax(logits, -1);
        for (int t = 0; lp && t < len; t++)
            sum += cf_get(lp, CF_IDX(0, t, tokens[t]));
    }
    ASSERT_NO_ERROR();
    return sum / pow((5.0 + len) / 6.0, alpha);
}

TEST(beam_of_width_one_equals_greedy)
{
    cf_safetensors *f = open_fixture("seq2seq.safetensors");
    cf_seq2seq *m = golden_model(f);
    int32_t greedy[B * MAX_LEN], beam[B * MAX_LEN];
    cf_tensor *src = fixture(f, "s2s.src");
    ck_assert_int_eq(cf_seq2seq_greedy(m, src, MAX_LEN, greedy, NULL), CF_OK);
    ck_assert_int_eq(cf_seq2seq_beam(m, src, 1, 0, MAX_LEN, beam), CF_OK);
    ck_assert_int_eq(memcmp(greedy, beam, sizeof beam), 0);
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST_WITH(beam_of_width_four_scores_at_least_as_well_as_greedy, .loop = 3)
{
    const float alphas[] = {0, 0.6f, 1};
    float alpha = alphas[_i];
    cf_safetensors *f = open_fixture("seq2seq.safetensors");
    cf_seq2seq *m = golden_model(f);
    int32_t greedy[B * MAX_LEN], beam[B * MAX_LEN];
    cf_tensor *src = fixture(f, "s2s.src");
    ck_assert_int_eq(cf_seq2seq_greedy(m, src, MAX_LEN, greedy, NULL), CF_OK);
    ck_assert_int_eq(cf_seq2seq_beam(m, src, 4, alpha, MAX_LEN, beam), CF_OK);
    for (int b = 0; b < B; b++) {
        double g = hyp_score(m, src, b, greedy + b * MAX_LEN, alpha);
        double s = hyp_score(m, src, b, beam + b * MAX_LEN, alpha);
        ck_assert_msg(s >= g - 1e-5, "sequence %d: beam %g < greedy %g", b, s, g);
        /* After the hypothesis: padding only. */
        for (int t = hyp_len(beam + b * MAX_LEN, MAX_LEN, golden_cfg.eos_id); t < MAX_LEN; t++)
            ck_assert_int_eq(beam[b * MAX_LEN + t], golden_cfg.pad_id);
    }
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST(beam_as_wide_as_the_search_space_finds_the_best_sequence)
{
    /* Over every sequence of up to MAX_LEN tokens the best score is hard to
     * know, but a width of V^2 keeps every two-token prefix: on a search
     * that must stop after two tokens it is exhaustive. */
    cf_safetensors *f = open_fixture("seq2seq.safetensors");
    cf_seq2seq *m = golden_model(f);
    cf_tensor *src = fixture(f, "s2s.src");
    int V = golden_cfg.tgt_vocab;
    for (int b = 0; b < B; b++) {
        int32_t out[2];
        cf_tensor *one = cf_slice(src, 0, b, b + 1, 1);
        ck_assert_int_eq(cf_seq2seq_beam(m, one, V * V, 0, 2, out), CF_OK);
        double best = -INFINITY;
        int32_t arg[2] = {0, 0};
        CF_NO_GRAD
        {
            for (int32_t y = 0; y < V; y++) {
                cf_tensor *tgt = cf_from_ints((int32_t[]){golden_cfg.bos_id, y, 0}, CF_SHAPE(1, 3));
                cf_tensor *lp = cf_log_softmax(cf_seq2seq_forward(m, one, tgt, 1, NULL, NULL), -1);
                double first = cf_get(lp, CF_IDX(0, 0, y));
                if (y == golden_cfg.eos_id) {
                    if (first > best)
                        best = first, arg[0] = y, arg[1] = golden_cfg.pad_id;
                    continue;
                }
                for (int32_t z = 0; z < V; z++)
                    if (first + cf_get(lp, CF_IDX(0, 1, z)) > best)
                        best = first + cf_get(lp, CF_IDX(0, 1, z)), arg[0] = y, arg[1] = z;
            }
        }
        ck_assert_msg(out[0] == arg[0] && out[1] == arg[1], "sequence %d: beam %d %d, best %d %d",
                      b, out[0], out[1], arg[0], arg[1]);
    }
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST(greedy_pads_after_eos_and_stops_when_every_sequence_has_ended)
{
    cf_seq2seq *m = successor_model(); /* bos 1 -> 2 -> 3 -> 4 -> eos 5 */
    cf_tensor *src = cf_from_ints((int32_t[]){2, 3, 4, 4, 0, 0}, CF_SHAPE(2, 3));
    int32_t out[2 * 7];
    cf_tensor *w = NULL;
    ck_assert_int_eq(cf_seq2seq_greedy(m, src, 7, out, &w), CF_OK);
    const int32_t want[7] = {2, 3, 4, 5, 0, 0, 0};
    ck_assert_int_eq(memcmp(out, want, sizeof want), 0);
    ck_assert_int_eq(memcmp(out + 7, want, sizeof want), 0);
    ck_assert_int_eq(w->shape[1], 7);
    for (int64_t b = 0; b < 2; b++) {
        for (int64_t t = 0; t < 7; t++) {
            float sum = 0;
            for (int64_t s = 0; s < 3; s++)
                sum += cf_get(w, CF_IDX(b, t, s));
            /* Sequence 1 attends to its one token; nothing after eos. */
            ck_assert_float_eq_tol(sum, t < 4 ? 1 : 0, 1e-6f);
            if (b == 1 && t < 4)
                ck_assert_float_eq(cf_get(w, CF_IDX(b, t, 0)), 1);
        }
    }
    ck_assert_int_eq(cf_seq2seq_beam(m, src, 3, 0.6f, 7, out), CF_OK);
    ck_assert_int_eq(memcmp(out, want, sizeof want), 0);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

TEST(decoding_ignores_an_error_recorded_earlier)
{
    cf_seq2seq *m = successor_model();
    cf_tensor *src = cf_from_ints((int32_t[]){2, 3, 4}, CF_SHAPE(1, 3));
    int32_t out[5] = {-1, -1, -1, -1, -1}, beam[5];
    cf_error_set(CF_ERR_IO, "an earlier failure");
    ck_assert_int_eq(cf_seq2seq_greedy(m, src, 5, out, NULL), CF_OK);
    ck_assert_int_eq(cf_seq2seq_beam(m, src, 2, 0, 5, beam), CF_OK);
    assert_error(CF_ERR_IO, "an earlier failure", NULL);
    const int32_t want[5] = {2, 3, 4, 5, 0};
    ck_assert_int_eq(memcmp(out, want, sizeof want), 0);
    ck_assert_int_eq(memcmp(beam, want, sizeof want), 0);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

TEST(decoding_restores_training_and_grad_modes)
{
    cf_seq2seq *m = cf_seq2seq_new(&tiny, NULL);
    cf_tensor *src = cf_from_ints((int32_t[]){2, 3, 4, 0}, CF_SHAPE(2, 2));
    int32_t out[2 * 4];
    ck_assert_int_eq(cf_seq2seq_greedy(m, src, 4, out, NULL), CF_OK);
    ck_assert(cf_seq2seq_module(m)->training);
    ck_assert(cf_is_grad_enabled());
    cf_module_train(cf_seq2seq_module(m), false);
    CF_NO_GRAD
    {
        ck_assert_int_eq(cf_seq2seq_beam(m, src, 2, 0.6f, 4, out), CF_OK);
        ck_assert(!cf_is_grad_enabled());
    }
    ck_assert(!cf_seq2seq_module(m)->training);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

/* ---- Dropout ---- */

TEST(dropout_acts_in_training_only)
{
    cf_safetensors *f = open_fixture("seq2seq.safetensors");
    cf_seq2seq *m = golden_model_with_dropout(f, 0.5f);
    cf_tensor *src = fixture(f, "s2s.src"), *tgt = fixture(f, "s2s.tgt");
    float a[B * T * 13], b[B * T * 13];
    cf_copy_to(cf_seq2seq_forward(m, src, tgt, 1, NULL, NULL), a);
    cf_copy_to(cf_seq2seq_forward(m, src, tgt, 1, NULL, NULL), b);
    ASSERT_NO_ERROR();
    ck_assert_int_ne(memcmp(a, b, sizeof a), 0);
    cf_module_train(cf_seq2seq_module(m), false);
    assert_golden(cf_seq2seq_forward(m, src, tgt, 1, NULL, NULL), f, "s2s.logits");
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}
END_TEST

/* ---- Threads ---- */

TEST(results_are_identical_for_any_thread_count)
{
    cf_safetensors *f = open_fixture("seq2seq.safetensors");
    cf_seq2seq *m = golden_model(f);
    cf_tensor *src = fixture(f, "s2s.src"), *tgt = fixture(f, "s2s.tgt");
    int prev = cf_get_num_threads();
    float logits[2][B * T * 13], grad[2][13 * 44];
    int32_t beam[2][B * MAX_LEN];
    cf_tensor *w = cf_module_find(cf_seq2seq_module(m), "decoder.out.weight");
    for (int i = 0; i < 2; i++) {
        cf_set_num_threads(i ? 3 : 1);
        cf_module_zero_grad(cf_seq2seq_module(m));
        cf_tensor *y = cf_seq2seq_forward(m, src, tgt, 1, NULL, NULL);
        cf_copy_to(y, logits[i]);
        ck_assert_int_eq(cf_backward(cf_sum(y, 0, NULL, false)), CF_OK);
        cf_copy_to(w->grad, grad[i]);
        ck_assert_int_eq(cf_seq2seq_beam(m, src, 3, 0.6f, MAX_LEN, beam[i]), CF_OK);
    }
    cf_set_num_threads(prev);
    ck_assert_int_eq(memcmp(logits[0], logits[1], sizeof logits[0]), 0);
    ck_assert_int_eq(memcmp(grad[0], grad[1], sizeof grad[0]), 0);
    ck_assert_int_eq(memcmp(beam[0], beam[1], sizeof beam[0]), 0);
    cf_module_free(cf_seq2seq_module(m));
    cf_safetensors_close(f);
}
END_TEST

/* ---- Checkpoints ---- */

SCRATCH_TEST(load_refuses_a_parameter_of_the_wrong_shape_naming_it)
{
    const char *path = scratch_path("seq2seq.safetensors");
    cf_seq2seq *m = cf_seq2seq_new(&tiny, NULL);
    save_params(cf_seq2seq_module(m), path, NULL, "encoder.rnn.weight_hh_l0_reverse",
                cf_zeros(CF_SHAPE(12, 5)));
    ck_assert_int_eq(cf_module_load(cf_seq2seq_module(m), path, true), CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "encoder.rnn.weight_hh_l0_reverse", "[12, 5]", "[12, 4]", NULL);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

SCRATCH_TEST(strict_load_refuses_a_missing_parameter_naming_it)
{
    const char *path = scratch_path("seq2seq.safetensors");
    cf_seq2seq *m = cf_seq2seq_new(&tiny, NULL);
    save_params(cf_seq2seq_module(m), path, "decoder.attention.key_proj.bias", NULL, NULL);
    ck_assert_int_eq(cf_module_load(cf_seq2seq_module(m), path, true), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "decoder.attention.key_proj.bias", NULL);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

SCRATCH_TEST(save_then_load_reproduces_the_decoding)
{
    const char *path = scratch_path("seq2seq.safetensors");
    cf_rng g;
    cf_rng_init(&g, 1);
    cf_seq2seq *a = cf_seq2seq_new(&golden_cfg, &g), *b = cf_seq2seq_new(&golden_cfg, &g);
    cf_tensor *src = cf_from_ints((int32_t[]){3, 4, 5, 6, 7, 8}, CF_SHAPE(2, 3));
    ck_assert_int_eq(cf_module_save(cf_seq2seq_module(a), path), CF_OK);
    ck_assert_int_eq(cf_module_load(cf_seq2seq_module(b), path, true), CF_OK);
    int32_t ya[2 * MAX_LEN], yb[2 * MAX_LEN];
    ck_assert_int_eq(cf_seq2seq_beam(a, src, 3, 0.6f, MAX_LEN, ya), CF_OK);
    ck_assert_int_eq(cf_seq2seq_beam(b, src, 3, 0.6f, MAX_LEN, yb), CF_OK);
    ck_assert_int_eq(memcmp(ya, yb, sizeof ya), 0);
    cf_module_free(cf_seq2seq_module(a));
    cf_module_free(cf_seq2seq_module(b));
}
END_TEST

/* ---- Bad input ---- */

static void refuse_config(cf_seq2seq_config cfg, const char *fragment)
{
    ck_assert_ptr_null(cf_seq2seq_new(&cfg, NULL));
    assert_error(CF_ERR_ARG, "cf_seq2seq_new", fragment, NULL);
}

TEST(invalid_configurations_are_refused)
{
    cf_seq2seq_config c = tiny;
    c.hidden = 0;
    refuse_config(c, "hidden 0");
    c = tiny;
    c.enc_layers = 0;
    refuse_config(c, "enc_layers 0");
    c = tiny;
    c.pad_id = 5; /* a target token, but not a source token */
    refuse_config(c, "pad_id 5");
    c = tiny;
    c.eos_id = 6;
    refuse_config(c, "eos_id 6");
    c = tiny;
    c.dropout = 1.5f;
    refuse_config(c, "dropout 1.5");
    ck_assert_ptr_null(cf_seq2seq_new(NULL, NULL));
    assert_error(CF_ERR_ARG, "cf_seq2seq_new", "config", NULL);
}
END_TEST

TEST(forward_refuses_tokens_of_the_wrong_dtype)
{
    cf_seq2seq *m = cf_seq2seq_new(&tiny, NULL);
    cf_tensor *src = cf_from_ints((int32_t[]){2, 3, 4, 0}, CF_SHAPE(2, 2));
    cf_tensor *tgt = cf_from_ints((int32_t[]){1, 2, 1, 3}, CF_SHAPE(2, 2));
    ck_assert_ptr_null(cf_seq2seq_forward(m, cf_zeros(CF_SHAPE(2, 2)), tgt, 1, NULL, NULL));
    assert_error(CF_ERR_DTYPE, "cf_seq2seq_forward", "source", "float32", NULL);
    ck_assert_ptr_null(cf_seq2seq_forward(m, src, cf_zeros(CF_SHAPE(2, 2)), 1, NULL, NULL));
    assert_error(CF_ERR_DTYPE, "cf_seq2seq_forward", "target", "float32", NULL);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

TEST(forward_refuses_mismatched_shapes)
{
    cf_seq2seq *m = cf_seq2seq_new(&tiny, NULL);
    cf_tensor *src = cf_from_ints((int32_t[]){2, 3, 4, 0}, CF_SHAPE(2, 2));
    cf_tensor *tgt3 = cf_from_ints((int32_t[]){1, 2, 1, 3, 1, 4}, CF_SHAPE(3, 2));
    ck_assert_ptr_null(cf_seq2seq_forward(m, src, tgt3, 1, NULL, NULL));
    assert_error(CF_ERR_SHAPE, "cf_seq2seq_forward", "[2, 2]", "[3, 2]", NULL);
    cf_tensor *short_tgt = cf_from_ints((int32_t[]){1, 1}, CF_SHAPE(2, 1));
    ck_assert_ptr_null(cf_seq2seq_forward(m, src, short_tgt, 1, NULL, NULL));
    assert_error(CF_ERR_SHAPE, "cf_seq2seq_forward", "target", "[2, 1]", NULL);
    ck_assert_ptr_null(cf_seq2seq_forward(m, cf_reshape(src, CF_SHAPE(4)), tgt3, 1, NULL, NULL));
    assert_error(CF_ERR_SHAPE, "cf_seq2seq_forward", "source", "[4]", NULL);
    cf_tensor *empty = cf_empty(CF_I32, CF_SHAPE(2, 0));
    ck_assert_ptr_null(cf_seq2seq_forward(m, empty, tgt3, 1, NULL, NULL));
    assert_error(CF_ERR_SHAPE, "cf_seq2seq_forward", "source", "[2, 0]", NULL);
    ck_assert_ptr_null(cf_seq2seq_forward(m, NULL, tgt3, 1, NULL, NULL));
    assert_error(CF_ERR_ARG, "cf_seq2seq_forward", NULL);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

TEST(forward_refuses_tokens_out_of_range)
{
    cf_seq2seq *m = cf_seq2seq_new(&tiny, NULL);
    cf_tensor *src = cf_from_ints((int32_t[]){2, 3, 4, 0}, CF_SHAPE(2, 2));
    cf_tensor *tgt = cf_from_ints((int32_t[]){1, 2, 1, 3}, CF_SHAPE(2, 2));
    ck_assert_ptr_null(cf_seq2seq_forward(m, cf_from_ints((int32_t[]){2, 3, 5, 0}, CF_SHAPE(2, 2)),
                                          tgt, 1, NULL, NULL));
    assert_error(CF_ERR_INDEX, "5", NULL);
    ck_assert_ptr_null(cf_seq2seq_forward(
        m, src, cf_from_ints((int32_t[]){1, 2, 3, -1, 2, 3}, CF_SHAPE(2, 3)), 1, NULL, NULL));
    assert_error(CF_ERR_INDEX, "-1", NULL);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

TEST(forward_refuses_a_teacher_forcing_ratio_outside_zero_one)
{
    cf_seq2seq *m = cf_seq2seq_new(&tiny, NULL);
    cf_tensor *src = cf_from_ints((int32_t[]){2, 3, 4, 0}, CF_SHAPE(2, 2));
    cf_tensor *tgt = cf_from_ints((int32_t[]){1, 2, 1, 3}, CF_SHAPE(2, 2));
    ck_assert_ptr_null(cf_seq2seq_forward(m, src, tgt, 1.5f, NULL, NULL));
    assert_error(CF_ERR_ARG, "cf_seq2seq_forward", "teacher_forcing 1.5", NULL);
    ck_assert_ptr_null(cf_seq2seq_forward(m, src, tgt, NAN, NULL, NULL));
    assert_error(CF_ERR_ARG, "cf_seq2seq_forward", "teacher_forcing nan", NULL);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

TEST(a_source_row_of_only_padding_is_refused)
{
    cf_seq2seq *m = cf_seq2seq_new(&tiny, NULL);
    cf_tensor *src = cf_from_ints((int32_t[]){2, 3, 0, 0}, CF_SHAPE(2, 2));
    cf_tensor *tgt = cf_from_ints((int32_t[]){1, 2, 1, 3}, CF_SHAPE(2, 2));
    int32_t out[2 * 4];
    ck_assert_ptr_null(cf_seq2seq_forward(m, src, tgt, 1, NULL, NULL));
    assert_error(CF_ERR_ARG, "cf_seq2seq_forward", "source row 1", "only padding", NULL);
    ck_assert_int_eq(cf_seq2seq_greedy(m, src, 4, out, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_seq2seq_greedy", "source row 1", NULL);
    ck_assert_int_eq(cf_seq2seq_beam(m, src, 2, 0, 4, out), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_seq2seq_beam", "source row 1", NULL);
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST

TEST(decoding_refuses_bad_arguments)
{
    cf_seq2seq *m = cf_seq2seq_new(&tiny, NULL);
    cf_tensor *src = cf_from_ints((int32_t[]){2, 3, 4, 0}, CF_SHAPE(2, 2));
    int32_t out[2 * 4];
    ck_assert_int_eq(cf_seq2seq_greedy(m, src, 0, out, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_seq2seq_greedy", "max_len 0", NULL);
    ck_assert_int_eq(cf_seq2seq_greedy(m, cf_zeros(CF_SHAPE(2, 2)), 4, out, NULL), CF_ERR_DTYPE);
    assert_error(CF_ERR_DTYPE, "cf_seq2seq_greedy", "source", NULL);
    ck_assert_int_eq(cf_seq2seq_greedy(m, src, 4, NULL, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_seq2seq_greedy", NULL);
    ck_assert_int_eq(cf_seq2seq_beam(m, src, 0, 0, 4, out), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_seq2seq_beam", "beam 0", NULL);
    ck_assert_int_eq(cf_seq2seq_beam(m, src, 2, 0, -1, out), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_seq2seq_beam", "max_len -1", NULL);
    ck_assert_int_eq(cf_seq2seq_beam(m, src, 2, NAN, 4, out), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_seq2seq_beam", "alpha nan", NULL);
    ck_assert_int_eq(cf_seq2seq_beam(m, cf_zeros(CF_SHAPE(2, 2)), 2, 0, 4, out), CF_ERR_DTYPE);
    assert_error(CF_ERR_DTYPE, "cf_seq2seq_beam", "source", NULL);
    ck_assert_int_eq(
        cf_seq2seq_beam(m, cf_from_ints((int32_t[]){2, 9}, CF_SHAPE(1, 2)), 2, 0, 4, out),
        CF_ERR_INDEX);
    assert_error(CF_ERR_INDEX, "9", NULL);
    ck_assert_int_eq(cf_seq2seq_greedy(NULL, src, 4, out, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_seq2seq_greedy", NULL);
    /* Nothing was left switched off. */
    ck_assert(cf_seq2seq_module(m)->training);
    ck_assert(cf_is_grad_enabled());
    cf_module_free(cf_seq2seq_module(m));
}
END_TEST
