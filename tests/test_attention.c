/* cf_attention: PyTorch golden cases (tests/golden/gen_attention.py), finite
 * differences, dropout, the inference path against the training path, and
 * bad input. */
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Golden cases ---- */

/* How a case's leaves become q, k and v. */
typedef enum { DIRECT, PACKED, KV_EXPANDED } qkv_kind;

/* A case of gen_attention.py; its first build stores the inference path's
 * output and the weights in it, for the checks after assert_golden_case. */
typedef struct {
    const char *name;
    qkv_kind kind;
    int nin; /* q, k, v (or x) and the mask */
    bool causal;
    float scale;
    cf_tensor *inference, *weights;
} attn_case;

static cf_tensor *attn_build(cf_tensor *const *in, const void *ud)
{
    attn_case *c = (attn_case *)ud;
    cf_tensor *q, *k, *v;
    if (c->kind == PACKED) { /* in[0]: [B, T, 3, H, D] */
        cf_tensor *qkv[3];
        for (int i = 0; i < 3; i++)
            qkv[i] =
                cf_permute(cf_squeeze(cf_slice(in[0], 2, i, i + 1, 1), 2), (int[]){0, 2, 1, 3});
        q = qkv[0], k = qkv[1], v = qkv[2];
    } else if (c->kind == KV_EXPANDED) {
        q = in[0], k = cf_expand(in[1], CF_SHAPE(2, 3, 5, 4)),
        v = cf_expand(in[2], CF_SHAPE(2, 3, 5, 2));
    } else {
        q = in[0], k = in[1], v = in[2];
    }
    cf_attention_opts o = {
        .causal = c->causal, .scale = c->scale, .mask = c->nin > 3 ? in[3] : NULL};
    if (c->inference) /* a build of the gradient check, in its scratch arena */
        return cf_attention(q, k, v, &o);
    CF_NO_GRAD { c->inference = cf_attention(q, k, v, &o); }
    o.weights = &c->weights;
    return cf_attention(q, k, v, &o);
}

/* Runs case c: output and gradients (assert_golden_case), then the
 * weights, and the inference path's output, which must record no op. */
static void run_case(attn_case c)
{
    assert_golden_case("attention.safetensors", c.name, c.nin, attn_build, &c);
    cf_safetensors *f = open_fixture("attention.safetensors");
    char key[64];
    snprintf(key, sizeof key, "%s.weights", c.name);
    assert_golden(c.weights, f, key);
    snprintf(key, sizeof key, "%s.out", c.name);
    assert_golden(c.inference, f, key);
    ck_assert_ptr_null(c.inference->op);
    cf_safetensors_close(f);
}

/* The cases of attention.safetensors. */
static const attn_case CASES[] = {
    /* no mask */
    {.name = "plain", .kind = DIRECT, .nin = 3},
    /* a bool key padding mask */
    {.name = "pad", .kind = DIRECT, .nin = 4},
    /* an additive float mask, with its gradient, and a scale */
    {.name = "additive", .kind = DIRECT, .nin = 4, .scale = 0.3f},
    /* causal, as many queries as keys */
    {.name = "causal", .kind = DIRECT, .nin = 3, .causal = true},
    /* causal with fewer queries than keys: aligned top left */
    {.name = "causal_short", .kind = DIRECT, .nin = 3, .causal = true},
    /* a single token */
    {.name = "t1", .kind = DIRECT, .nin = 3},
    /* seven tokens, heads of size five */
    {.name = "t7", .kind = DIRECT, .nin = 3},
    /* q, k and v as permuted views of one packed projection */
    {.name = "packed", .kind = PACKED, .nin = 1, .causal = true},
    /* keys and values expanded over the heads (shared, as in GQA) */
    {.name = "gqa", .kind = KV_EXPANDED, .nin = 3},
};

TEST_WITH(attention_matches_pytorch, .loop = COUNT(CASES)) { run_case(CASES[_i]); }
END_TEST

/* ---- The two forward paths ---- */

/* A bool tensor, true with probability p_true. */
static cf_tensor *bool_mask(uint64_t seed, float p_true, int ndim, const int64_t *shape)
{
    cf_rng g;
    cf_rng_init(&g, seed);
    cf_tensor *u = cf_uniform(&g, 0, 1, ndim, shape), *m = cf_empty(CF_BOOL, ndim, shape);
    int64_t n = cf_numel(u);
    for (int64_t i = 0; i < n; i++)
        ((uint8_t *)m->data)[i] = ((float *)u->data)[i] < p_true;
    return m;
}

/* out of the inference path (no gradient, no weights) and of the training
 * path (weights requested) for the same inputs. */
static void both_paths(cf_tensor *q, cf_tensor *k, cf_tensor *v, cf_attention_opts o,
                       cf_tensor **inf, cf_tensor **train)
{
    CF_NO_GRAD { *inf = cf_attention(q, k, v, &o); }
    cf_tensor *w;
    o.weights = &w;
    *train = cf_attention(q, k, v, &o);
    ASSERT_NO_ERROR();
}

TEST(inference_path_matches_training_path_over_key_blocks_causal)
{
    cf_tensor *q = rand_leaf(1, -2, 2, CF_SHAPE(2, 2, 300, 16));
    cf_tensor *k = rand_leaf(2, -2, 2, CF_SHAPE(2, 2, 300, 16));
    cf_tensor *v = rand_leaf(3, -1, 1, CF_SHAPE(2, 2, 300, 8));
    cf_tensor *inf, *train;
    both_paths(q, k, v, (cf_attention_opts){.causal = true}, &inf, &train);
    ck_assert_ptr_null(inf->op);
    assert_close(inf, train, 1e-5f, 1e-4f);
}
END_TEST

TEST(inference_path_matches_training_path_with_padding_and_uneven_blocks)
{
    cf_tensor *q = rand_leaf(4, -2, 2, CF_SHAPE(2, 3, 70, 9));
    cf_tensor *k = rand_leaf(5, -2, 2, CF_SHAPE(2, 3, 201, 9));
    cf_tensor *v = rand_leaf(6, -1, 1, CF_SHAPE(2, 3, 201, 5));
    cf_tensor *keep = bool_mask(1, 0.7f, CF_SHAPE(2, 1, 1, 201));
    cf_tensor *bias = cf_uniform(NULL, -1, 1, CF_SHAPE(70, 201));
    cf_tensor *inf, *train;
    both_paths(q, k, v, (cf_attention_opts){.mask = keep}, &inf, &train);
    assert_close(inf, train, 1e-5f, 1e-4f);
    both_paths(q, k, v, (cf_attention_opts){.mask = bias, .causal = true}, &inf, &train);
    assert_close(inf, train, 1e-5f, 1e-4f);
}
END_TEST

/* One to four queries take the decoding step's path: dot products, no BLIS. */
TEST(inference_path_matches_training_path_for_few_queries)
{
    for (int64_t Tq = 1; Tq <= 4; Tq += 3) {
        cf_tensor *q = rand_leaf(10, -2, 2, CF_SHAPE(3, 2, Tq, 12));
        cf_tensor *k = rand_leaf(11, -2, 2, CF_SHAPE(3, 2, 150, 12));
        cf_tensor *v = rand_leaf(12, -1, 1, CF_SHAPE(3, 2, 150, 7));
        cf_tensor *keep = bool_mask(3, 0.6f, CF_SHAPE(3, 1, 1, 150));
        cf_tensor *bias = cf_uniform(NULL, -1, 1, CF_SHAPE(Tq, 150));
        cf_tensor *inf, *train;
        both_paths(q, k, v, (cf_attention_opts){0}, &inf, &train);
        assert_close(inf, train, 1e-5f, 1e-4f);
        both_paths(q, k, v, (cf_attention_opts){.mask = keep, .causal = true}, &inf, &train);
        assert_close(inf, train, 1e-5f, 1e-4f);
        both_paths(q, k, v, (cf_attention_opts){.mask = bias}, &inf, &train);
        assert_close(inf, train, 1e-5f, 1e-4f);
    }
}
END_TEST

TEST(inference_path_memory_is_linear_in_sequence_length)
{
    cf_set_num_threads(2);
    const int64_t T = 1024;
    cf_tensor *q = cf_uniform(NULL, -1, 1, CF_SHAPE(1, 1, T, 8));
    cf_tensor *k = cf_uniform(NULL, -1, 1, CF_SHAPE(1, 1, T, 8));
    cf_tensor *v = cf_uniform(NULL, -1, 1, CF_SHAPE(1, 1, T, 8));
    size_t before = cf_arena_used(cf_arena_current());
    cf_tensor *out = cf_attention(q, k, v, &(cf_attention_opts){.causal = true});
    ASSERT_NO_ERROR();
    ck_assert_ptr_nonnull(out);
    size_t used = cf_arena_used(cf_arena_current()) - before;
    ck_assert_msg(used < sizeof(float) * T * T / 8, "inference used %zu bytes", used);
}
END_TEST

/* ---- Masking ---- */

TEST(fully_masked_rows_give_zero_output_and_zero_gradient)
{
    cf_tensor *q = rand_leaf(7, -1, 1, CF_SHAPE(1, 2, 3, 4));
    cf_tensor *k = rand_leaf(8, -1, 1, CF_SHAPE(1, 2, 5, 4));
    cf_tensor *v = rand_leaf(9, -1, 1, CF_SHAPE(1, 2, 5, 3));
    cf_tensor *mask = bool_mask(2, 1, CF_SHAPE(3, 5)); /* all true */
    for (int64_t j = 0; j < 5; j++)
        cf_set(mask, CF_IDX(1, j), 0);
    cf_attention_opts o = {.mask = mask};
    cf_tensor *out = cf_attention(q, k, v, &o), *inf;
    ck_assert_int_eq(cf_backward(cf_sum_all(out)), CF_OK);
    CF_NO_GRAD { inf = cf_attention(q, k, v, &o); }
    ASSERT_NO_ERROR();
    for (int64_t h = 0; h < 2; h++) {
        for (int64_t d = 0; d < 3; d++) {
            ck_assert_float_eq(cf_get(out, CF_IDX(0, h, 1, d)), 0);
            ck_assert_float_eq(cf_get(inf, CF_IDX(0, h, 1, d)), 0);
        }
        for (int64_t d = 0; d < 4; d++)
            ck_assert_float_eq(cf_get(q->grad, CF_IDX(0, h, 1, d)), 0);
    }
    float gk[40];
    cf_copy_to(k->grad, gk);
    for (int i = 0; i < 40; i++)
        ck_assert(isfinite(gk[i]));
}
END_TEST

/* NaN is data: it must reach the output, as it does in PyTorch and through
 * the same computation from ops, rather than pass for a masked row. */
TEST(nan_in_a_query_gives_a_nan_row_on_both_paths)
{
    cf_tensor *q = rand_leaf(7, -1, 1, CF_SHAPE(1, 2, 3, 4));
    cf_tensor *k = rand_leaf(8, -1, 1, CF_SHAPE(1, 2, 5, 4));
    cf_tensor *v = rand_leaf(9, -1, 1, CF_SHAPE(1, 2, 5, 3));
    cf_set(q, CF_IDX(0, 0, 1, 2), NAN);
    cf_tensor *out = cf_attention(q, k, v, NULL), *inf;
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_slice(out, 1, 1, 2, 1))), CF_OK);
    CF_NO_GRAD { inf = cf_attention(q, k, v, NULL); }
    ASSERT_NO_ERROR();
    for (int64_t d = 0; d < 3; d++) {
        ck_assert(isnan(cf_get(out, CF_IDX(0, 0, 1, d))));
        ck_assert(isnan(cf_get(inf, CF_IDX(0, 0, 1, d))));
        ck_assert(isfinite(cf_get(out, CF_IDX(0, 0, 0, d))));
        ck_assert(isfinite(cf_get(inf, CF_IDX(0, 1, 1, d))));
    }
    for (int64_t d = 0; d < 4; d++)
        ck_assert(isnan(cf_get(q->grad, CF_IDX(0, 0, 1, d))));
}
END_TEST

TEST(a_nan_scale_gives_nan_everywhere_on_both_paths)
{
    cf_tensor *q = rand_leaf(7, -1, 1, CF_SHAPE(1, 1, 2, 4));
    cf_tensor *k = rand_leaf(8, -1, 1, CF_SHAPE(1, 1, 3, 4));
    cf_tensor *v = rand_leaf(9, -1, 1, CF_SHAPE(1, 1, 3, 2));
    cf_attention_opts o = {.scale = NAN};
    cf_tensor *out = cf_attention(q, k, v, &o), *inf;
    CF_NO_GRAD { inf = cf_attention(q, k, v, &o); }
    ASSERT_NO_ERROR();
    float a[4], b[4];
    cf_copy_to(out, a);
    cf_copy_to(inf, b);
    for (int i = 0; i < 4; i++)
        ck_assert(isnan(a[i]) && isnan(b[i]));
}
END_TEST

TEST(a_nan_key_in_a_later_block_makes_every_row_nan_on_the_inference_path)
{
    int64_t Tk = 300; /* three blocks of keys */
    cf_tensor *q = rand_leaf(7, -1, 1, CF_SHAPE(1, 1, 2, 4));
    cf_tensor *k = rand_leaf(8, -1, 1, CF_SHAPE(1, 1, Tk, 4));
    cf_tensor *v = rand_leaf(9, -1, 1, CF_SHAPE(1, 1, Tk, 2));
    cf_set(k, CF_IDX(0, 0, 200, 1), NAN);
    cf_tensor *inf, *ref;
    CF_NO_GRAD
    {
        inf = cf_attention(q, k, v, NULL);
        cf_tensor *w =
            cf_softmax(cf_mul_scalar(cf_matmul(q, cf_transpose(k, 2, 3)), 0.5f), -1); /* D = 4 */
        ref = cf_matmul(w, v);
    }
    ASSERT_NO_ERROR();
    float a[4], b[4];
    cf_copy_to(inf, a);
    cf_copy_to(ref, b);
    for (int i = 0; i < 4; i++)
        ck_assert(isnan(a[i]) && isnan(b[i]));
}
END_TEST

/* ---- Finite differences ---- */

typedef struct {
    bool causal;
    float dropout;
} gc_cfg;

/* inputs: q^T [B, H, D, Tq] (attended transposed), k, v, optional mask. */
static cf_tensor *gc_fn(cf_tensor *const *in, void *ud)
{
    const gc_cfg *cfg = ud;
    cf_rng g;
    cf_rng_init(&g, 11); /* the same dropout mask at every evaluation */
    cf_attention_opts o = {
        .mask = in[3], .causal = cfg->causal, .dropout = cfg->dropout, .rng = &g};
    return cf_attention(cf_transpose(in[0], 2, 3), in[1], in[2], &o);
}

TEST(gradcheck_with_float_mask_and_transposed_query)
{
    cf_tensor *in[4] = {
        rand_leaf(10, -1, 1, CF_SHAPE(2, 2, 3, 4)), rand_leaf(11, -1, 1, CF_SHAPE(2, 2, 5, 3)),
        rand_leaf(12, -1, 1, CF_SHAPE(2, 2, 5, 2)), rand_leaf(13, -1, 1, CF_SHAPE(1, 4, 5))};
    assert_gradcheck(gc_fn, &(gc_cfg){0}, 4, in, 1e-2f);
}
END_TEST

TEST(gradcheck_with_dropout)
{
    cf_tensor *in[4] = {rand_leaf(17, -1, 1, CF_SHAPE(1, 2, 3, 4)),
                        rand_leaf(18, -1, 1, CF_SHAPE(1, 2, 5, 3)),
                        rand_leaf(19, -1, 1, CF_SHAPE(1, 2, 5, 2)), NULL};
    assert_gradcheck(gc_fn, &(gc_cfg){.dropout = 0.4f}, 3, in, 1e-2f);
}
END_TEST

/* ---- Dropout ---- */

/* With V the identity, out = weights * keep / (1 - p) elementwise. */
TEST(dropout_zeroes_weights_and_scales_the_rest)
{
    const float p = 0.25f;
    cf_tensor *q = cf_uniform(NULL, -1, 1, CF_SHAPE(2, 2, 6, 4));
    cf_tensor *k = cf_uniform(NULL, -1, 1, CF_SHAPE(2, 2, 6, 4));
    float eye[36] = {0};
    for (int i = 0; i < 6; i++)
        eye[i * 6 + i] = 1;
    cf_tensor *v = cf_expand(cf_from_array(eye, CF_SHAPE(1, 1, 6, 6)), CF_SHAPE(2, 2, 6, 6));
    cf_rng g;
    cf_rng_init(&g, 5);
    cf_tensor *w;
    cf_tensor *out =
        cf_attention(q, k, v, &(cf_attention_opts){.dropout = p, .rng = &g, .weights = &w});
    ASSERT_NO_ERROR();
    float o[144], ww[144];
    cf_copy_to(out, o);
    cf_copy_to(w, ww);
    int dropped = 0;
    for (int i = 0; i < 144; i++) {
        if (o[i] == 0) {
            dropped++;
            continue;
        }
        ck_assert_float_eq_tol(o[i], ww[i] / (1 - p), 1e-6f);
    }
    ck_assert_int_gt(dropped, 10);
    ck_assert_int_lt(dropped, 72);
    /* The weights are those before dropout. */
    for (int r = 0; r < 24; r++) {
        float s = 0;
        for (int j = 0; j < 6; j++)
            s += ww[r * 6 + j];
        ck_assert_float_eq_tol(s, 1, 1e-6f);
    }
}
END_TEST

TEST(dropout_is_reproducible_from_the_generator)
{
    cf_tensor *q = cf_uniform(NULL, -1, 1, CF_SHAPE(1, 2, 8, 4));
    cf_tensor *k = cf_uniform(NULL, -1, 1, CF_SHAPE(1, 2, 8, 4));
    cf_tensor *v = cf_uniform(NULL, -1, 1, CF_SHAPE(1, 2, 8, 4));
    cf_tensor *outs[3];
    uint64_t seeds[3] = {3, 3, 4};
    for (int i = 0; i < 3; i++) {
        cf_rng g;
        cf_rng_init(&g, seeds[i]);
        outs[i] = cf_attention(q, k, v, &(cf_attention_opts){.dropout = 0.5f, .rng = &g});
    }
    ASSERT_NO_ERROR();
    float a[64], b[64], c[64];
    cf_copy_to(outs[0], a);
    cf_copy_to(outs[1], b);
    cf_copy_to(outs[2], c);
    ck_assert(memcmp(a, b, sizeof a) == 0);
    ck_assert(memcmp(a, c, sizeof a) != 0);
}
END_TEST

TEST(dropout_of_one_drops_everything)
{
    cf_tensor *q = rand_leaf(20, -1, 1, CF_SHAPE(1, 1, 3, 2));
    cf_tensor *k = rand_leaf(21, -1, 1, CF_SHAPE(1, 1, 3, 2));
    cf_tensor *v = rand_leaf(22, -1, 1, CF_SHAPE(1, 1, 3, 2));
    cf_tensor *out = cf_attention(q, k, v, &(cf_attention_opts){.dropout = 1});
    ck_assert_int_eq(cf_backward(cf_sum_all(out)), CF_OK);
    float o[6] = {0};
    assert_values(out, o, 0, 0);
    assert_values(v->grad, o, 0, 0);
}
END_TEST

/* ---- Threads and graph ---- */

/* Output and gradients with n threads, as bytes. */
static void run_threads(int n, int64_t B, int64_t H, bool grad, float *res, int64_t len)
{
    cf_set_num_threads(n);
    cf_tensor *q = rand_leaf(30, -1, 1, CF_SHAPE(B, H, 64, 16));
    cf_tensor *k = rand_leaf(31, -1, 1, CF_SHAPE(B, H, 80, 16));
    cf_tensor *v = rand_leaf(32, -1, 1, CF_SHAPE(B, H, 80, 16));
    cf_tensor *out;
    cf_set_grad_enabled(grad);
    out = cf_attention(q, k, v, &(cf_attention_opts){.causal = true});
    cf_set_grad_enabled(true);
    int64_t no = cf_numel(out), nq = cf_numel(q), nk = cf_numel(k);
    ck_assert_int_eq(len, grad ? no + nq + 2 * nk : no);
    cf_copy_to(out, res);
    if (!grad)
        return;
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_square(out))), CF_OK);
    cf_copy_to(q->grad, res + no);
    cf_copy_to(k->grad, res + no + nq);
    cf_copy_to(v->grad, res + no + nq + nk);
}

static void same_for_thread_counts(int64_t B, int64_t H, bool grad)
{
    int64_t len = B * H * 64 * 16 + (grad ? B * H * (64 + 2 * 80) * 16 : 0);
    float *a = malloc(sizeof(float) * len), *b = malloc(sizeof(float) * len);
    run_threads(1, B, H, grad, a, len);
    run_threads(4, B, H, grad, b, len);
    bool same = memcmp(a, b, sizeof(float) * len) == 0;
    free(a);
    free(b);
    ck_assert_msg(same, "results differ between 1 and 4 threads");
}

TEST(results_do_not_depend_on_thread_count)
{
    same_for_thread_counts(1, 2, true);  /* heads in turn, threads in BLIS */
    same_for_thread_counts(2, 4, true);  /* heads in parallel */
    same_for_thread_counts(2, 4, false); /* inference path */
}
END_TEST

/* Output and gradients of causal attention over small heads [1, 2, 12, 8]
 * (products that skip BLIS) with n threads, into res [4 * 192]. */
static void run_small_threads(int n, float *res)
{
    cf_set_num_threads(n);
    cf_tensor *q = rand_leaf(33, -1, 1, CF_SHAPE(1, 2, 12, 8));
    cf_tensor *k = rand_leaf(34, -1, 1, CF_SHAPE(1, 2, 12, 8));
    cf_tensor *v = rand_leaf(35, -1, 1, CF_SHAPE(1, 2, 12, 8));
    cf_tensor *out = cf_attention(q, k, v, &(cf_attention_opts){.causal = true});
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_square(out))), CF_OK);
    cf_copy_to(out, res);
    cf_copy_to(q->grad, res + 192);
    cf_copy_to(k->grad, res + 2 * 192);
    cf_copy_to(v->grad, res + 3 * 192);
}

TEST(small_heads_do_not_depend_on_thread_count)
{
    float a[4 * 192], b[4 * 192];
    run_small_threads(1, a);
    run_small_threads(4, b);
    ck_assert_msg(memcmp(a, b, sizeof a) == 0, "results differ between 1 and 4 threads");
}
END_TEST

TEST(small_heads_match_the_blis_path)
{
    /* A query whose rows are not contiguous sends the heads to BLIS; the
     * same values in contiguous rows take the small-head products. */
    cf_tensor *qt = rand_leaf(36, -1, 1, CF_SHAPE(2, 2, 8, 9));
    cf_tensor *q = NULL;
    CF_NO_GRAD { q = cf_contiguous(cf_transpose(qt, 2, 3)); }
    cf_requires_grad(q, true);
    cf_tensor *k = rand_leaf(37, -1, 1, CF_SHAPE(2, 2, 11, 8));
    cf_tensor *v = rand_leaf(38, -1, 1, CF_SHAPE(2, 2, 11, 5));
    cf_rng g;
    cf_rng_init(&g, 39);
    cf_tensor *dout = cf_uniform(&g, -1, 1, CF_SHAPE(2, 2, 9, 5));
    cf_tensor *mask = cf_uniform(&g, -1, 1, CF_SHAPE(9, 11));
    cf_attention_opts o = {.mask = mask};
    cf_tensor *blis = cf_attention(cf_transpose(qt, 2, 3), k, v, &o);
    ck_assert_int_eq(cf_backward_with(blis, dout), CF_OK);
    cf_tensor *gk = cf_clone(k->grad), *gv = cf_clone(v->grad);
    cf_zero_grad(k);
    cf_zero_grad(v);
    cf_tensor *small = cf_attention(q, k, v, &o);
    ck_assert_int_eq(cf_backward_with(small, dout), CF_OK);
    assert_close(small, blis, 1e-6f, 1e-5f);
    assert_close(q->grad, cf_transpose(qt->grad, 2, 3), 1e-6f, 1e-5f);
    assert_close(k->grad, gk, 1e-6f, 1e-5f);
    assert_close(v->grad, gv, 1e-6f, 1e-5f);
}
END_TEST

TEST(records_a_graph_only_when_a_gradient_is_needed)
{
    cf_tensor *q = rand_leaf(40, -1, 1, CF_SHAPE(1, 1, 2, 2));
    cf_tensor *k = cf_detach(q), *v = cf_detach(q);
    cf_tensor *out = cf_attention(cf_detach(q), k, v, NULL);
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_null(out->op);
    out = cf_attention(q, k, v, NULL);
    ck_assert_ptr_nonnull(out->op);
    ck_assert(out->flags & CF_REQUIRES_GRAD);
    ASSERT_NO_ERROR();
}
END_TEST

/* ---- Bad input ---- */

static cf_tensor *z(int ndim, const int64_t *shape) { return cf_zeros(ndim, shape); }

TEST(rejects_null_operand)
{
    cf_tensor *w = (cf_tensor *)1;
    cf_tensor *x = z(CF_SHAPE(1, 1, 2, 2));
    ck_assert_ptr_null(cf_attention(x, NULL, x, &(cf_attention_opts){.weights = &w}));
    ck_assert_ptr_null(w);
    assert_error(CF_ERR_ARG, "cf_attention", NULL);
}
END_TEST

TEST(rejects_operands_that_are_not_4d)
{
    cf_tensor *x = z(CF_SHAPE(1, 1, 2, 2)), *y = z(CF_SHAPE(1, 2, 2));
    ck_assert_ptr_null(cf_attention(x, y, x, NULL));
    assert_error(CF_ERR_SHAPE, "cf_attention", "[1, 2, 2]", "4-D", NULL);
}
END_TEST

TEST(rejects_batch_or_head_mismatch)
{
    cf_tensor *q = z(CF_SHAPE(2, 3, 4, 5)), *k = z(CF_SHAPE(2, 2, 4, 5));
    ck_assert_ptr_null(cf_attention(q, k, k, NULL));
    assert_error(CF_ERR_SHAPE, "cf_attention", "[2, 3, 4, 5]", "[2, 2, 4, 5]", NULL);
    cf_tensor *v = z(CF_SHAPE(1, 3, 4, 5));
    ck_assert_ptr_null(cf_attention(q, q, v, NULL));
    assert_error(CF_ERR_SHAPE, "cf_attention", "[1, 3, 4, 5]", NULL);
}
END_TEST

TEST(rejects_query_and_key_size_mismatch)
{
    cf_tensor *q = z(CF_SHAPE(1, 2, 3, 4)), *k = z(CF_SHAPE(1, 2, 3, 5));
    ck_assert_ptr_null(cf_attention(q, k, q, NULL));
    assert_error(CF_ERR_SHAPE, "cf_attention", "[1, 2, 3, 4]", "[1, 2, 3, 5]", NULL);
}
END_TEST

TEST(rejects_key_and_value_count_mismatch)
{
    cf_tensor *q = z(CF_SHAPE(1, 2, 3, 4)), *v = z(CF_SHAPE(1, 2, 6, 4));
    ck_assert_ptr_null(cf_attention(q, q, v, NULL));
    assert_error(CF_ERR_SHAPE, "cf_attention", "[1, 2, 3, 4]", "[1, 2, 6, 4]", NULL);
}
END_TEST

TEST(rejects_mask_that_does_not_broadcast)
{
    cf_tensor *q = z(CF_SHAPE(2, 2, 3, 4)), *k = z(CF_SHAPE(2, 2, 5, 4));
    cf_tensor *m = z(CF_SHAPE(3, 4));
    ck_assert_ptr_null(cf_attention(q, k, k, &(cf_attention_opts){.mask = m}));
    assert_error(CF_ERR_SHAPE, "cf_attention", "[3, 4]", "[2, 2, 3, 5]", NULL);
    m = z(CF_SHAPE(1, 1, 1, 3, 5));
    ck_assert_ptr_null(cf_attention(q, k, k, &(cf_attention_opts){.mask = m}));
    assert_error(CF_ERR_SHAPE, "cf_attention", "[1, 1, 1, 3, 5]", NULL);
}
END_TEST

TEST(rejects_int32_mask)
{
    cf_tensor *q = z(CF_SHAPE(1, 1, 2, 2));
    cf_tensor *m = cf_from_ints((const int32_t[]){1, 0, 1, 1}, CF_SHAPE(2, 2));
    ck_assert_ptr_null(cf_attention(q, q, q, &(cf_attention_opts){.mask = m}));
    assert_error(CF_ERR_DTYPE, "cf_attention", "int32", NULL);
}
END_TEST

TEST(rejects_non_float_operand)
{
    cf_tensor *q = z(CF_SHAPE(1, 1, 2, 2));
    cf_tensor *k = cf_from_ints((const int32_t[]){1, 0, 1, 1}, CF_SHAPE(1, 1, 2, 2));
    ck_assert_ptr_null(cf_attention(q, k, q, NULL));
    assert_error(CF_ERR_DTYPE, "cf_attention", "int32", NULL);
}
END_TEST

TEST(rejects_dropout_outside_unit_interval)
{
    cf_tensor *q = z(CF_SHAPE(1, 1, 2, 2));
    ck_assert_ptr_null(cf_attention(q, q, q, &(cf_attention_opts){.dropout = 1.5f}));
    assert_error(CF_ERR_ARG, "cf_attention", "1.5", NULL);
    ck_assert_ptr_null(cf_attention(q, q, q, &(cf_attention_opts){.dropout = NAN}));
    assert_error(CF_ERR_ARG, "cf_attention", NULL);
}
END_TEST
