/* The encoder-decoder Transformer against torch.nn.Transformer
 * (tests/golden/gen_transformer.py): two trained models, "post" (post-norm,
 * separate tables) and "pre" (pre-norm, shared tables tied to the
 * generator), their logits, every parameter's gradient of a masked cross
 * entropy, and greedy decoding. Tolerance: assert_golden's 1e-5 +
 * 1e-4 * |want| against float64 references. */
#include "cformer/zoo.h"
#include "tests/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PAD = 0, BOS = 1, EOS = 2, MAX_LEN = 8 };

static cf_transformer_config fixture_config(bool pre)
{
    cf_transformer_config c = cf_transformer_small(pre ? 11 : 13, 11);
    c.d_model = 32;
    c.heads = 4;
    c.enc_layers = c.dec_layers = 2;
    c.ff = 64;
    c.dropout = 0;
    c.max_len = 16;
    c.pre_norm = pre;
    c.share_embeddings = c.tie_output = pre;
    return c;
}

/* The fixture model NAME ("post" or "pre") with its weights. */
static cf_transformer *fixture_model(const cf_safetensors *f, const char *name)
{
    cf_transformer_config c = fixture_config(!strcmp(name, "pre"));
    cf_transformer *m = cf_transformer_new(&c, NULL);
    ck_assert_msg(m != NULL, "%s", cf_error_message());
    load_params(cf_transformer_module(m), f, name);
    return m;
}

static int32_t *ints(const cf_tensor *t)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, CF_I32);
    return t->data;
}

/* ---- Structure ---- */

typedef struct {
    const cf_safetensors *f;
    const char *prefix;
    int count;
} namecheck;

static void has_fixture(const char *name, cf_tensor *p, void *ud)
{
    namecheck *n = ud;
    char key[256];
    snprintf(key, sizeof key, "%s.grad.%s", n->prefix, name);
    cf_tensor *want = cf_safetensors_get(n->f, key);
    ck_assert_msg(want != NULL, "torch has no parameter %s", name);
    ck_assert_msg(cf_same_shape(p, want), "%s: shapes differ from torch", name);
    n->count++;
}

static int fixture_count(const cf_safetensors *f, const char *prefix)
{
    char head[64];
    int len = snprintf(head, sizeof head, "%s.grad.", prefix), n = 0;
    for (int i = 0; i < cf_safetensors_count(f); i++)
        n += !strncmp(cf_safetensors_name(f, i), head, (size_t)len);
    return n;
}

static void check_names(const char *prefix)
{
    cf_safetensors *f = open_fixture("transformer.safetensors");
    cf_transformer_config c = fixture_config(!strcmp(prefix, "pre"));
    cf_transformer *m = cf_transformer_new(&c, NULL);
    ck_assert_ptr_nonnull(m);
    namecheck n = {f, prefix, 0};
    cf_module_visit(cf_transformer_module(m), has_fixture, &n);
    ck_assert_int_eq(n.count, fixture_count(f, prefix));
    cf_module_free(cf_transformer_module(m));
    cf_safetensors_close(f);
}

TEST(parameters_are_named_and_shaped_as_torch) { check_names("post"); }
END_TEST

TEST(shared_tied_model_has_one_table_and_a_generator_bias)
{
    check_names("pre");
    cf_transformer_config c = fixture_config(true);
    cf_transformer *m = cf_transformer_new(&c, NULL);
    cf_module *mod = cf_transformer_module(m);
    ck_assert_ptr_null(cf_module_find(mod, "tgt_embed.weight"));
    ck_assert_ptr_null(cf_module_find(mod, "generator.weight"));
    ck_assert_ptr_nonnull(cf_module_find(mod, "generator.bias"));
    cf_module_free(mod);
}
END_TEST

/* Whether the pad rows of the model's table start at zero and get no
 * gradient from a batch that holds padding. */
static void check_pad_rows(bool no_padding_idx)
{
    cf_transformer_config c = fixture_config(false);
    c.no_padding_idx = no_padding_idx;
    cf_rng g;
    cf_rng_init(&g, 3);
    cf_transformer *m = cf_transformer_new(&c, &g);
    cf_tensor *src = cf_from_ints((int32_t[]){5, 6, 0, 7, 0, 0}, CF_SHAPE(2, 3));
    cf_tensor *tgt = cf_from_ints((int32_t[]){1, 8, 0, 1, 9, 0}, CF_SHAPE(2, 3));
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_transformer_forward(m, src, tgt, NULL))), CF_OK);
    const char *names[2] = {"src_embed.weight", "tgt_embed.weight"};
    for (int i = 0; i < 2; i++) {
        cf_tensor *w = cf_module_find(cf_transformer_module(m), names[i]);
        float row = 0, grad = 0;
        for (int64_t j = 0; j < c.d_model; j++) {
            row += fabsf(cf_get(w, CF_IDX(PAD, j)));
            grad += fabsf(cf_get(w->grad, CF_IDX(PAD, j)));
        }
        ck_assert_msg((row == 0 && grad == 0) == !no_padding_idx, "%s: |row| %g, |grad| %g",
                      names[i], row, grad);
    }
    cf_module_free(cf_transformer_module(m));
}

TEST(pad_rows_are_zero_and_frozen_by_default) { check_pad_rows(false); }
END_TEST

TEST(no_padding_idx_makes_pad_rows_learned) { check_pad_rows(true); }
END_TEST

TEST(presets_follow_the_paper)
{
    cf_transformer_config b = cf_transformer_base(100, 200), s = cf_transformer_small(100, 200);
    ck_assert_int_eq(b.d_model, 512);
    ck_assert_int_eq(b.heads, 8);
    ck_assert_int_eq(b.enc_layers, 6);
    ck_assert_int_eq(b.dec_layers, 6);
    ck_assert_int_eq(b.ff, 2048);
    ck_assert_float_eq(b.dropout, 0.1f);
    ck_assert(!b.pre_norm);
    ck_assert_int_eq(s.d_model, 128);
    ck_assert_int_eq(s.heads, 4);
    ck_assert_int_eq(s.enc_layers, 2);
    ck_assert_int_eq(s.ff, 512);
    ck_assert_int_eq(s.tgt_vocab, 200);
}
END_TEST

static void refuse(cf_transformer_config c, const char *f1, const char *f2)
{
    ck_assert_ptr_null(cf_transformer_new(&c, NULL));
    assert_error(CF_ERR_ARG, "cf_transformer_new", f1, f2, NULL);
}

TEST(invalid_config_is_refused_naming_the_field)
{
    cf_transformer_config c = fixture_config(false);
    cf_transformer_config d = c;
    d.d_model = 30;
    refuse(d, "d_model 30", "heads 4");
    d = c, d.ff = 0;
    refuse(d, "ff 0", NULL);
    d = c, d.heads = 0;
    refuse(d, "heads 0", NULL);
    d = c, d.enc_layers = 0;
    refuse(d, "enc_layers", NULL);
    d = c, d.dec_layers = -1;
    refuse(d, "dec_layers", NULL);
    d = c, d.src_vocab = 0;
    refuse(d, "src_vocab", NULL);
    d = c, d.max_len = 0;
    refuse(d, "max_len", NULL);
    d = c, d.eos_id = 11;
    refuse(d, "eos_id 11", NULL);
    d = c, d.dropout = 1.5f;
    refuse(d, "dropout", NULL);
    d = c, d.share_embeddings = true;
    refuse(d, "share_embeddings", "13");
    ck_assert_ptr_null(cf_transformer_new(NULL, NULL));
    assert_error(CF_ERR_ARG, "config", NULL);
}
END_TEST

/* ---- Against PyTorch ---- */

static cf_tensor *loss_of(cf_tensor *logits, cf_tensor *labels, int V)
{
    return cf_cross_entropy(cf_reshape(logits, CF_SHAPE(-1, V)), cf_reshape(labels, CF_SHAPE(-1)),
                            &(cf_loss_opts){.ignore = true, .ignore_index = PAD});
}

static void check_golden(const char *prefix)
{
    cf_safetensors *f = open_fixture("transformer.safetensors");
    cf_transformer *m = fixture_model(f, prefix);
    cf_tensor *logits = cf_transformer_forward(m, fixture(f, "src"), fixture(f, "tgt"), NULL);
    char key[64];
    snprintf(key, sizeof key, "%s.logits", prefix);
    assert_golden(logits, f, key);
    cf_tensor *loss = loss_of(logits, fixture(f, "labels"), 11);
    snprintf(key, sizeof key, "%s.loss", prefix);
    assert_golden(loss, f, key);
    ck_assert_int_eq(cf_backward(loss), CF_OK);
    snprintf(key, sizeof key, "%s.grad", prefix);
    assert_param_grads(cf_transformer_module(m), f, key);
    cf_module_free(cf_transformer_module(m));
    cf_safetensors_close(f);
}

TEST(post_norm_logits_and_gradients_match_torch) { check_golden("post"); }
END_TEST

TEST(pre_norm_shared_tied_logits_and_gradients_match_torch) { check_golden("pre"); }
END_TEST

/* ---- Generation ---- */

static void check_greedy(const char *prefix)
{
    cf_safetensors *f = open_fixture("transformer.safetensors");
    cf_transformer *m = fixture_model(f, prefix);
    cf_tensor *src = fixture(f, "src");
    char key[64];
    snprintf(key, sizeof key, "%s.greedy", prefix);
    const int32_t *want = ints(fixture(f, key));
    int32_t out[3 * MAX_LEN];
    ck_assert_int_eq(cf_transformer_greedy(m, src, MAX_LEN, out), CF_OK);
    for (int i = 0; i < 3 * MAX_LEN; i++)
        ck_assert_msg(out[i] == want[i], "%s: row %d step %d: %d, want %d", prefix, i / MAX_LEN,
                      i % MAX_LEN, out[i], want[i]);
    cf_module_free(cf_transformer_module(m));
    cf_safetensors_close(f);
}

TEST(greedy_decoding_matches_torch)
{
    check_greedy("post");
    check_greedy("pre");
}
END_TEST

/* Greedy decoding without a cache: the whole model over the prefix at every
 * step, the pad token excluded, pad after eos. */
static void greedy_uncached(cf_transformer *m, cf_tensor *src, int max_len, int32_t *out)
{
    int64_t B = src->shape[0];
    int V = cf_transformer_cfg(m)->tgt_vocab;
    int32_t *ys = malloc(sizeof *ys * B * (max_len + 1));
    bool *done = calloc(B, sizeof *done);
    float *row = malloc(sizeof *row * V);
    for (int64_t b = 0; b < B; b++)
        ys[b * (max_len + 1)] = BOS;
    CF_NO_GRAD
    {
        for (int t = 0; t < max_len; t++) {
            cf_tensor *tgt = cf_slice(cf_from_ints(ys, CF_SHAPE(B, max_len + 1)), 1, 0, t + 1, 1);
            cf_tensor *logits = cf_transformer_forward(m, src, cf_contiguous(tgt), NULL);
            ck_assert_ptr_nonnull(logits);
            for (int64_t b = 0; b < B; b++) {
                cf_copy_to(cf_slice(cf_slice(logits, 0, b, b + 1, 1), 1, t, t + 1, 1), row);
                int best = 1;
                for (int v = 1; v < V; v++)
                    if (row[v] > row[best])
                        best = v;
                int32_t tok = done[b] ? PAD : best;
                out[b * max_len + t] = ys[b * (max_len + 1) + t + 1] = tok;
                done[b] = done[b] || tok == EOS;
            }
        }
    }
    free(ys);
    free(done);
    free(row);
}

TEST(cached_greedy_equals_uncached)
{
    cf_safetensors *f = open_fixture("transformer.safetensors");
    const char *names[] = {"post", "pre"};
    for (int k = 0; k < 2; k++) {
        cf_transformer *m = fixture_model(f, names[k]);
        cf_module_train(cf_transformer_module(m), false);
        cf_tensor *src = fixture(f, "src");
        int32_t got[3 * 12], want[3 * 12];
        ck_assert_int_eq(cf_transformer_greedy(m, src, 12, got), CF_OK);
        greedy_uncached(m, src, 12, want);
        for (int i = 0; i < 3 * 12; i++)
            ck_assert_msg(got[i] == want[i], "%s: element %d: %d, want %d", names[k], i, got[i],
                          want[i]);
        cf_module_free(cf_transformer_module(m));
    }
    cf_safetensors_close(f);
}
END_TEST

TEST(beam_of_width_one_equals_greedy)
{
    cf_safetensors *f = open_fixture("transformer.safetensors");
    const char *names[] = {"post", "pre"};
    for (int k = 0; k < 2; k++) {
        cf_transformer *m = fixture_model(f, names[k]);
        int32_t greedy[3 * MAX_LEN], beam[3 * MAX_LEN];
        ck_assert_int_eq(cf_transformer_greedy(m, fixture(f, "src"), MAX_LEN, greedy), CF_OK);
        ck_assert_int_eq(cf_transformer_beam(m, fixture(f, "src"), 1, 0, MAX_LEN, beam), CF_OK);
        for (int i = 0; i < 3 * MAX_LEN; i++)
            ck_assert_msg(beam[i] == greedy[i], "%s: element %d: %d, want %d", names[k], i, beam[i],
                          greedy[i]);
        cf_module_free(cf_transformer_module(m));
    }
    cf_safetensors_close(f);
}
END_TEST

/* The log-probability of tokens (after bos, up to eos or n) given src [1, S]. */
static double sequence_logp(cf_transformer *m, cf_tensor *src, const int32_t *tokens, int n)
{
    int32_t ys[16] = {BOS};
    int len = 0;
    while (len < n && (len == 0 || tokens[len - 1] != EOS))
        ys[len + 1] = tokens[len], len++;
    double total = 0;
    CF_NO_GRAD
    {
        cf_tensor *logits =
            cf_transformer_forward(m, src, cf_from_ints(ys, CF_SHAPE(1, len)), NULL);
        cf_tensor *lp = cf_log_softmax(logits, -1);
        for (int t = 0; t < len; t++)
            total += cf_get(lp, CF_IDX(0, t, ys[t + 1]));
    }
    return total;
}

TEST(wider_beam_finds_a_sequence_at_least_as_likely)
{
    cf_safetensors *f = open_fixture("transformer.safetensors");
    cf_transformer *m = fixture_model(f, "pre");
    cf_tensor *src = fixture(f, "src");
    int32_t one[3 * MAX_LEN], four[3 * MAX_LEN];
    ck_assert_int_eq(cf_transformer_beam(m, src, 1, 0, MAX_LEN, one), CF_OK);
    ck_assert_int_eq(cf_transformer_beam(m, src, 4, 0, MAX_LEN, four), CF_OK);
    for (int b = 0; b < 3; b++) {
        cf_tensor *row = cf_contiguous(cf_slice(src, 0, b, b + 1, 1));
        double lp1 = sequence_logp(m, row, one + b * MAX_LEN, MAX_LEN);
        double lp4 = sequence_logp(m, row, four + b * MAX_LEN, MAX_LEN);
        ck_assert_msg(lp4 >= lp1 - 1e-4, "row %d: beam 4 log p %g < beam 1 log p %g", b, lp4, lp1);
    }
    cf_module_free(cf_transformer_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST(generation_restores_mode_and_leaves_the_arena_alone)
{
    cf_safetensors *f = open_fixture("transformer.safetensors");
    cf_transformer *m = fixture_model(f, "post");
    cf_tensor *src = fixture(f, "src");
    cf_arena *mine = cf_arena_current();
    size_t used = cf_arena_used(mine);
    int32_t out[3 * MAX_LEN];
    ck_assert_int_eq(cf_transformer_greedy(m, src, MAX_LEN, out), CF_OK);
    ck_assert_int_eq(cf_transformer_beam(m, src, 3, 0.6f, MAX_LEN, out), CF_OK);
    ck_assert_ptr_eq(cf_arena_current(), mine);
    ck_assert_uint_eq(cf_arena_used(mine), used);
    ck_assert_int_eq(ints(src)[0], ints(fixture(f, "src"))[0]); /* src survives */
    ck_assert(cf_transformer_module(m)->training);
    ck_assert(cf_is_grad_enabled());
    cf_module_free(cf_transformer_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST(generation_needs_no_arena_in_use)
{
    cf_safetensors *f = open_fixture("transformer.safetensors");
    cf_transformer *m = fixture_model(f, "post");
    cf_tensor *src = fixture(f, "src");
    const int32_t *want = ints(fixture(f, "post.greedy"));
    cf_arena *mine = cf_arena_use(NULL);
    int32_t out[3 * MAX_LEN];
    cf_status s = cf_transformer_greedy(m, src, MAX_LEN, out);
    ck_assert_ptr_null(cf_arena_use(mine));
    ck_assert_int_eq(s, CF_OK);
    ck_assert_mem_eq(out, want, sizeof out);
    cf_module_free(cf_transformer_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST(beam_output_ends_with_eos_then_padding)
{
    cf_safetensors *f = open_fixture("transformer.safetensors");
    cf_transformer *m = fixture_model(f, "post");
    int32_t out[3 * MAX_LEN];
    ck_assert_int_eq(cf_transformer_beam(m, fixture(f, "src"), 3, 0.6f, MAX_LEN, out), CF_OK);
    for (int b = 0; b < 3; b++) {
        const int32_t *r = out + b * MAX_LEN;
        int t = 0;
        while (t < MAX_LEN && r[t] != EOS) {
            ck_assert_int_ne(r[t], PAD);
            t++;
        }
        for (t++; t < MAX_LEN; t++)
            ck_assert_int_eq(r[t], PAD);
    }
    cf_module_free(cf_transformer_module(m));
    cf_safetensors_close(f);
}
END_TEST

TEST(generation_refuses_a_max_len_beyond_the_model)
{
    cf_safetensors *f = open_fixture("transformer.safetensors");
    cf_transformer *m = fixture_model(f, "post");
    int32_t out[3 * 17];
    ck_assert_int_ne(cf_transformer_greedy(m, fixture(f, "src"), 17, out), CF_OK);
    assert_error(CF_ERR_ARG, "cf_transformer_greedy", "max_len 17", NULL);
    ck_assert_int_ne(cf_transformer_beam(m, fixture(f, "src"), 0, 0, 4, out), CF_OK);
    assert_error(CF_ERR_ARG, "beam 0", NULL);
    cf_module_free(cf_transformer_module(m));
    cf_safetensors_close(f);
}
END_TEST

/* ---- Padding ---- */

/* Row b of tokens [B, n] cut to its first len tokens: [1, len]. */
static cf_tensor *row_alone(cf_tensor *tokens, int64_t b, int64_t len)
{
    return cf_contiguous(cf_slice(cf_slice(tokens, 0, b, b + 1, 1), 1, 0, len, 1));
}

/* The fixture's rows have sources of 7, 4 and 1 tokens and targets of 6, 5
 * and 3, the rest padding. */
static const int64_t src_len[3] = {7, 4, 1}, tgt_len[3] = {6, 5, 3};

static void check_rows_alone(const char *prefix)
{
    cf_safetensors *f = open_fixture("transformer.safetensors");
    cf_transformer *m = fixture_model(f, prefix);
    cf_tensor *src = fixture(f, "src"), *tgt = fixture(f, "tgt");
    cf_tensor *logits = cf_transformer_forward(m, src, tgt, NULL);
    int32_t batch[3 * MAX_LEN], one[MAX_LEN];
    ck_assert_int_eq(cf_transformer_greedy(m, src, MAX_LEN, batch), CF_OK);
    for (int64_t b = 0; b < 3; b++) {
        cf_tensor *alone = cf_transformer_forward(m, row_alone(src, b, src_len[b]),
                                                  row_alone(tgt, b, tgt_len[b]), NULL);
        ck_assert_ptr_nonnull(alone);
        assert_close(alone, cf_slice(cf_slice(logits, 0, b, b + 1, 1), 1, 0, tgt_len[b], 1), 1e-5f,
                     0);
        ck_assert_int_eq(cf_transformer_greedy(m, row_alone(src, b, src_len[b]), MAX_LEN, one),
                         CF_OK);
        ck_assert_int_eq(memcmp(one, batch + b * MAX_LEN, sizeof one), 0);
    }
    cf_module_free(cf_transformer_module(m));
    cf_safetensors_close(f);
}

TEST(a_row_gives_the_same_logits_and_decoding_alone_as_in_a_padded_batch)
{
    check_rows_alone("post");
    check_rows_alone("pre");
}
END_TEST

/* ---- Attention maps ---- */

TEST(maps_hold_per_layer_weights_that_ignore_padding)
{
    cf_safetensors *f = open_fixture("transformer.safetensors");
    cf_transformer *m = fixture_model(f, "post");
    cf_tensor *enc[2] = {0}, *dec[2] = {0}, *cross[2] = {0};
    cf_transformer_maps maps = {enc, dec, cross};
    cf_tensor *src = fixture(f, "src"), *tgt = fixture(f, "tgt");
    ck_assert_ptr_nonnull(cf_transformer_forward(m, src, tgt, &maps));
    char s[64];
    for (int i = 0; i < 2; i++) {
        ck_assert_str_eq(cf_shape_str(enc[i], s, sizeof s), "[3, 4, 7, 7]");
        ck_assert_str_eq(cf_shape_str(dec[i], s, sizeof s), "[3, 4, 6, 6]");
        ck_assert_str_eq(cf_shape_str(cross[i], s, sizeof s), "[3, 4, 6, 7]");
    }
    /* Row 1 of the source has 4 tokens: keys 4.. get nothing. */
    for (int i = 0; i < 2; i++)
        for (int h = 0; h < 4; h++)
            for (int q = 0; q < 6; q++) {
                float sum = 0;
                for (int k = 0; k < 7; k++) {
                    float w = cf_get(cross[i], CF_IDX(1, h, q, k));
                    if (k >= 4)
                        ck_assert_float_eq(w, 0);
                    sum += w;
                }
                ck_assert_float_eq_tol(sum, 1, 1e-5);
                /* Causal: query q sees keys up to q. */
                for (int k = q + 1; k < 6; k++)
                    ck_assert_float_eq(cf_get(dec[i], CF_IDX(0, h, q, k)), 0);
            }
    cf_module_free(cf_transformer_module(m));
    cf_safetensors_close(f);
}
END_TEST

/* ---- Checkpoints ---- */

SCRATCH_TEST(load_refuses_a_wrong_shape_naming_the_parameter)
{
    const char *path = scratch_path("transformer.safetensors");
    cf_transformer_config c = fixture_config(false);
    cf_transformer *a = cf_transformer_new(&c, NULL);
    ck_assert_int_eq(cf_module_save(cf_transformer_module(a), path), CF_OK);
    c.ff = 48;
    cf_transformer *b = cf_transformer_new(&c, NULL);
    ck_assert_int_ne(cf_module_load(cf_transformer_module(b), path, true), CF_OK);
    assert_error(CF_ERR_SHAPE, "encoder.layers.0.linear1.weight", "[64, 32]", "[48, 32]", NULL);
    cf_module_free(cf_transformer_module(a));
    cf_module_free(cf_transformer_module(b));
}
END_TEST

SCRATCH_TEST(strict_load_refuses_a_missing_name_naming_the_parameter)
{
    const char *path = scratch_path("transformer.safetensors");
    cf_transformer_config c = fixture_config(true); /* shared and tied */
    c.src_vocab = c.tgt_vocab = 11;
    c.pre_norm = false;
    cf_transformer *a = cf_transformer_new(&c, NULL);
    ck_assert_int_eq(cf_module_save(cf_transformer_module(a), path), CF_OK);
    c.share_embeddings = false;
    cf_transformer *b = cf_transformer_new(&c, NULL);
    ck_assert_int_ne(cf_module_load(cf_transformer_module(b), path, true), CF_OK);
    assert_error(CF_ERR_FORMAT, "tgt_embed.weight", NULL);
    cf_module_free(cf_transformer_module(a));
    cf_module_free(cf_transformer_module(b));
}
END_TEST

SCRATCH_TEST(saved_model_loads_into_a_fresh_one_with_the_same_outputs)
{
    const char *path = scratch_path("transformer.safetensors");
    cf_safetensors *f = open_fixture("transformer.safetensors");
    cf_transformer *a = fixture_model(f, "post");
    ck_assert_int_eq(cf_module_save(cf_transformer_module(a), path), CF_OK);
    cf_transformer_config c = fixture_config(false);
    cf_rng g;
    cf_rng_init(&g, 99);
    cf_transformer *b = cf_transformer_new(&c, &g);
    ck_assert_int_eq(cf_module_load(cf_transformer_module(b), path, true), CF_OK);
    cf_tensor *src = fixture(f, "src"), *tgt = fixture(f, "tgt");
    assert_close(cf_transformer_forward(b, src, tgt, NULL),
                 cf_transformer_forward(a, src, tgt, NULL), 0, 0);
    cf_module_free(cf_transformer_module(a));
    cf_module_free(cf_transformer_module(b));
    cf_safetensors_close(f);
}
END_TEST

/* ---- Inputs ---- */

TEST(forward_refuses_bad_tokens)
{
    cf_transformer_config c = fixture_config(false);
    cf_transformer *m = cf_transformer_new(&c, NULL);
    cf_tensor *src = cf_from_ints((int32_t[]){3, 4, 5, 6}, CF_SHAPE(2, 2));
    ck_assert_ptr_null(cf_transformer_forward(m, cf_zeros(CF_SHAPE(2, 2)), src, NULL));
    assert_error(CF_ERR_SHAPE, "cf_transformer_encode", "src", "float32", "[2, 2]", NULL);
    cf_tensor *tgt = cf_from_ints((int32_t[]){1, 4, 5}, CF_SHAPE(1, 3));
    ck_assert_ptr_null(cf_transformer_forward(m, src, tgt, NULL));
    assert_error(CF_ERR_SHAPE, "cf_transformer_decode", "tgt", "[1, 3]", NULL);
    int32_t toolong[17] = {0};
    ck_assert_ptr_null(cf_transformer_encode(m, cf_from_ints(toolong, CF_SHAPE(1, 17)), NULL));
    assert_error(CF_ERR_SHAPE, "max_len 16", NULL);
    ck_assert_ptr_null(
        cf_transformer_forward(m, cf_from_ints((int32_t[]){3, 13}, CF_SHAPE(1, 2)), tgt, NULL));
    assert_error(CF_ERR_INDEX, "13", NULL);
    cf_module_free(cf_transformer_module(m));
}
END_TEST

TEST(dropout_is_active_in_training_only)
{
    cf_transformer_config c = fixture_config(false);
    c.dropout = 0.3f;
    cf_rng g;
    cf_rng_init(&g, 5);
    cf_transformer *m = cf_transformer_new(&c, &g);
    cf_tensor *src = cf_from_ints((int32_t[]){3, 4, 5, 6}, CF_SHAPE(1, 4));
    cf_tensor *tgt = cf_from_ints((int32_t[]){1, 7, 8}, CF_SHAPE(1, 3));
    cf_tensor *a = cf_transformer_forward(m, src, tgt, NULL);
    cf_tensor *b = cf_transformer_forward(m, src, tgt, NULL);
    ck_assert_float_ne(cf_get(a, CF_IDX(0, 2, 3)), cf_get(b, CF_IDX(0, 2, 3)));
    cf_module_train(cf_transformer_module(m), false);
    assert_close(cf_transformer_forward(m, src, tgt, NULL),
                 cf_transformer_forward(m, src, tgt, NULL), 0, 0);
    cf_module_free(cf_transformer_module(m));
}
END_TEST

TEST(forward_of_a_null_model_is_an_argument_error)
{
    cf_tensor *tok = cf_from_ints((int32_t[]){1, 2}, CF_SHAPE(1, 2));
    ck_assert_ptr_null(cf_transformer_forward(NULL, tok, tok, NULL));
    assert_error(CF_ERR_ARG, "cf_transformer_forward", "model is NULL", NULL);
    ck_assert_ptr_null(cf_transformer_encode(NULL, tok, NULL));
    assert_error(CF_ERR_ARG, "cf_transformer_encode", "model is NULL", NULL);
}
END_TEST
