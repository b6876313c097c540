/* Decoding helpers (nn/decode.c): greedy and beam search over a step
 * function, and sampling from logits. The model here is a Markov chain:
 * the next token's log-probabilities depend on the last token only. */
#include "util.h"

#include <math.h>
#include <string.h>

enum { V = 4, BOS = 0, EOS = 1, PAD = 3 };

typedef struct {
    float logp[V][V]; /* [last][next] */
    int calls;
    cf_status fail; /* returned by step once set */
} chain;

static cf_status chain_step(void *ud, const int32_t *tokens, int n, float *logp)
{
    chain *c = ud;
    c->calls++;
    if (c->fail != CF_OK)
        return c->fail;
    for (int i = 0; i < n; i++)
        memcpy(logp + (size_t)i * V, c->logp[tokens[i]], sizeof c->logp[0]);
    return CF_OK;
}

static cf_status chain_reorder(void *ud, const int *from, int n)
{
    (void)ud, (void)from, (void)n; /* stateless: nothing to move */
    return CF_OK;
}

/* Fills the table from probabilities (rows need not be normalised). */
static void chain_init(chain *c, const float p[V][V])
{
    memset(c, 0, sizeof *c);
    for (int a = 0; a < V; a++) {
        float sum = 0;
        for (int b = 0; b < V; b++)
            sum += p[a][b];
        for (int b = 0; b < V; b++)
            c->logp[a][b] = logf(p[a][b] / sum);
    }
}

static cf_decoder decoder(chain *c)
{
    return (cf_decoder){.step = chain_step,
                        .reorder = chain_reorder,
                        .ud = c,
                        .vocab = V,
                        .bos = BOS,
                        .eos = EOS,
                        .pad = PAD};
}

/* From bos, token 2 (0.6) beats eos (0.4); after 2, eos and 2 tie. */
static const float trap[V][V] = {
    {0.00f, 0.40f, 0.60f, 0.00f},
    {0.00f, 1.00f, 0.00f, 0.00f},
    {0.00f, 0.50f, 0.50f, 0.00f},
    {0.00f, 1.00f, 0.00f, 0.00f},
};

TEST(greedy_follows_the_likeliest_token_and_pads_after_eos)
{
    chain c;
    chain_init(&c, trap);
    cf_decoder d = decoder(&c);
    int32_t out[6];
    ck_assert_int_eq(cf_greedy_search(&d, 6, out), CF_OK);
    /* 2 (0.6), then 2 and 1 tie at 0.5: the first, eos (1), wins. */
    const int32_t want[6] = {2, 1, PAD, PAD, PAD, PAD};
    ck_assert_mem_eq(out, want, sizeof want);
}
END_TEST

TEST(greedy_stops_at_max_len_without_eos)
{
    const float loop[V][V] = {{0, 0.1f, 0.9f, 0}, {0, 1, 0, 0}, {0, 0.1f, 0.9f, 0}, {0, 1, 0, 0}};
    chain c;
    chain_init(&c, loop);
    cf_decoder d = decoder(&c);
    int32_t out[3];
    ck_assert_int_eq(cf_greedy_search(&d, 3, out), CF_OK);
    const int32_t want[3] = {2, 2, 2};
    ck_assert_mem_eq(out, want, sizeof want);
    ck_assert_int_eq(c.calls, 3);
}
END_TEST

TEST(beam_of_width_one_is_greedy)
{
    chain c;
    chain_init(&c, trap);
    cf_decoder d = decoder(&c);
    int32_t g[6], b[6];
    ck_assert_int_eq(cf_greedy_search(&d, 6, g), CF_OK);
    ck_assert_int_eq(cf_beam_search(&d, 1, 0, 6, b), CF_OK);
    ck_assert_mem_eq(g, b, sizeof g);
}
END_TEST

TEST(beam_finds_the_sequence_greedy_misses)
{
    /* greedy: 2 (0.6) then eos (0.3): 0.18; beam: eos at once: 0.4. */
    const float p[V][V] = {{0, 0.4f, 0.6f, 0}, {0, 1, 0, 0}, {0, 0.3f, 0.35f, 0.35f}, {0, 1, 0, 0}};
    chain c;
    chain_init(&c, p);
    cf_decoder d = decoder(&c);
    int32_t out[4];
    ck_assert_int_eq(cf_beam_search(&d, 2, 0, 4, out), CF_OK);
    const int32_t want[4] = {EOS, PAD, PAD, PAD};
    ck_assert_mem_eq(out, want, sizeof want);
}
END_TEST

/* The best score over every sequence of length <= L that ends with eos or
 * at L, by exhaustive search. */
static float best_exhaustive(const chain *c, int L, float alpha, int last, int len, float score)
{
    float best = -INFINITY;
    for (int v = 0; v < V; v++) {
        float s = score + c->logp[last][v];
        if (v == EOS || len + 1 == L)
            best = fmaxf(best, s / powf((5.0f + (float)(len + 1)) / 6.0f, alpha));
        else
            best = fmaxf(best, best_exhaustive(c, L, alpha, v, len + 1, s));
    }
    return best;
}

static float score_of(const chain *c, const int32_t *seq, int L, float alpha)
{
    float s = 0;
    int last = BOS, len = 0;
    for (; len < L; len++) {
        s += c->logp[last][seq[len]];
        if (seq[len] == EOS) {
            len++;
            break;
        }
        last = seq[len];
    }
    return s / powf((5.0f + (float)len) / 6.0f, alpha);
}

TEST(wide_beam_matches_exhaustive_search)
{
    cf_rng g;
    cf_rng_init(&g, 11);
    for (int trial = 0; trial < 20; trial++) {
        float p[V][V];
        cf_tensor *u = cf_uniform(&g, 0.05f, 1, CF_SHAPE(V, V));
        memcpy(p, u->data, sizeof p);
        chain c;
        chain_init(&c, (const float(*)[V])p);
        cf_decoder d = decoder(&c);
        float alpha = (float)(trial % 3) * 0.6f;
        int32_t out[4];
        /* Width V^3 keeps every hypothesis of length 3. */
        ck_assert_int_eq(cf_beam_search(&d, V * V * V, alpha, 4, out), CF_OK);
        ck_assert_float_eq_tol(score_of(&c, out, 4, alpha),
                               best_exhaustive(&c, 4, alpha, BOS, 0, 0), 1e-5f);
    }
}
END_TEST

TEST(search_reports_a_failing_step)
{
    chain c;
    chain_init(&c, trap);
    c.fail = CF_ERR_NOMEM;
    cf_decoder d = decoder(&c);
    int32_t out[4];
    ck_assert_int_eq(cf_greedy_search(&d, 4, out), CF_ERR_NOMEM);
    ck_assert_int_eq(cf_beam_search(&d, 2, 0, 4, out), CF_ERR_NOMEM);
}
END_TEST

TEST(search_refuses_bad_arguments)
{
    chain c;
    chain_init(&c, trap);
    cf_decoder d = decoder(&c);
    int32_t out[4];
    ck_assert_int_eq(cf_greedy_search(NULL, 4, out), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_greedy_search", NULL);
    ck_assert_int_eq(cf_greedy_search(&d, 0, out), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "max_len", NULL);
    ck_assert_int_eq(cf_beam_search(&d, 0, 0, 4, out), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "beam", NULL);
    ck_assert_int_eq(cf_beam_search(&d, 2, NAN, 4, out), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "alpha", NULL);
    d.reorder = NULL;
    ck_assert_int_eq(cf_beam_search(&d, 2, 0, 4, out), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "reorder", NULL);
}
END_TEST

/* ---- Sampling ---- */

static const float row[5] = {0.5f, 2.0f, -1.0f, 1.0f, 0.0f};

/* Frequencies of each token over n draws from logits row (B = n rows). */
static void frequencies(const cf_sample_opts *o, int n, double *freq)
{
    cf_tensor *logits = cf_expand(cf_from_array(row, CF_SHAPE(1, 5)), CF_SHAPE(n, 5));
    cf_rng g;
    cf_rng_init(&g, 7);
    cf_tensor *tok = cf_sample(logits, o, &g);
    ck_assert_ptr_nonnull(tok);
    memset(freq, 0, sizeof *freq * 5);
    for (int i = 0; i < n; i++)
        freq[((int32_t *)tok->data)[i]] += 1.0 / n;
}

static void softmax_of(float t, double *p)
{
    double sum = 0;
    for (int v = 0; v < 5; v++)
        sum += p[v] = exp(row[v] / t);
    for (int v = 0; v < 5; v++)
        p[v] /= sum;
}

TEST(sample_frequencies_follow_the_softmax)
{
    double f[5], p[5];
    frequencies(NULL, 40000, f);
    softmax_of(1, p);
    for (int v = 0; v < 5; v++)
        ck_assert_msg(fabs(f[v] - p[v]) < 0.01, "token %d: %g, want %g", v, f[v], p[v]);
}
END_TEST

TEST(sample_temperature_divides_the_logits)
{
    double f[5], p[5];
    frequencies(&(cf_sample_opts){.temperature = 0.5f}, 40000, f);
    softmax_of(0.5f, p);
    for (int v = 0; v < 5; v++)
        ck_assert_msg(fabs(f[v] - p[v]) < 0.01, "token %d: %g, want %g", v, f[v], p[v]);
}
END_TEST

TEST(sample_top_k_one_is_argmax)
{
    double f[5];
    frequencies(&(cf_sample_opts){.top_k = 1}, 100, f);
    ck_assert(f[1] > 0.999 && f[0] + f[2] + f[3] + f[4] == 0);
}
END_TEST

TEST(sample_top_k_renormalises_the_kept_tokens)
{
    double f[5], p[5];
    frequencies(&(cf_sample_opts){.top_k = 2}, 40000, f);
    softmax_of(1, p);
    ck_assert(f[0] == 0 && f[2] == 0 && f[4] == 0);
    ck_assert(fabs(f[1] - p[1] / (p[1] + p[3])) < 0.01);
}
END_TEST

TEST(sample_top_p_keeps_the_smallest_nucleus)
{
    /* Probabilities (rounded): 1: .49, 3: .18, 0: .11, 4: .07, 2: .02 ...
     * top_p 0.6 needs tokens 1 and 3. */
    double f[5], p[5];
    softmax_of(1, p);
    ck_assert(p[1] < 0.6 && p[1] + p[3] >= 0.6);
    frequencies(&(cf_sample_opts){.top_p = 0.6f}, 20000, f);
    ck_assert(f[0] == 0 && f[2] == 0 && f[4] == 0 && f[1] > 0 && f[3] > 0);
}
END_TEST

TEST(sample_is_reproducible_from_the_seed)
{
    double a[5], b[5];
    frequencies(&(cf_sample_opts){.temperature = 2}, 1000, a);
    frequencies(&(cf_sample_opts){.temperature = 2}, 1000, b);
    ck_assert_mem_eq(a, b, sizeof a);
}
END_TEST

TEST(sample_reads_strided_logits_and_vectors)
{
    /* Columns of a transposed [5, 2] tensor; the likeliest token by far. */
    const float d[10] = {0, 0, 0, 0, 50, 0, 0, 50, 0, 0};
    cf_tensor *t = cf_transpose(cf_from_array(d, CF_SHAPE(5, 2)), 0, 1); /* [2, 5] */
    cf_tensor *tok = cf_sample(t, NULL, NULL);
    ck_assert_int_eq(tok->ndim, 1);
    ck_assert_int_eq(((int32_t *)tok->data)[0], 2);
    ck_assert_int_eq(((int32_t *)tok->data)[1], 3);
    cf_tensor *one = cf_sample(cf_from_array(d + 4, CF_SHAPE(3)), NULL, NULL);
    ck_assert_int_eq(one->ndim, 0);
    ck_assert_int_eq(*(int32_t *)one->data, 0);
}
END_TEST

TEST(sample_refuses_bad_options_and_operands)
{
    cf_tensor *x = cf_from_array(row, CF_SHAPE(1, 5));
    ck_assert_ptr_null(cf_sample(x, &(cf_sample_opts){.temperature = -1}, NULL));
    assert_error(CF_ERR_ARG, "temperature", NULL);
    ck_assert_ptr_null(cf_sample(x, &(cf_sample_opts){.top_p = 1.5f}, NULL));
    assert_error(CF_ERR_ARG, "top_p", NULL);
    ck_assert_ptr_null(cf_sample(x, &(cf_sample_opts){.top_k = -2}, NULL));
    assert_error(CF_ERR_ARG, "top_k", NULL);
    ck_assert_ptr_null(cf_sample(cf_zeros(CF_SHAPE(2, 2, 2)), NULL, NULL));
    assert_error(CF_ERR_SHAPE, "cf_sample", "[2, 2, 2]", NULL);
    const float bad[3] = {0, NAN, 1};
    ck_assert_ptr_null(cf_sample(cf_from_array(bad, CF_SHAPE(3)), NULL, NULL));
    assert_error(CF_ERR_ARG, "not finite", NULL);
    ck_assert_ptr_null(cf_sample(NULL, NULL, NULL));
}
END_TEST
