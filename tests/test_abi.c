/* The ABI of growing structs (tensor.h, "Growing structs"): their sizes
 * stay put from release to release, and a call given reserved words that
 * are not 0 refuses them. */
#include "tests/util.h"

#include <stdlib.h>
#include <string.h>

/* A change here is an ABI change: it needs a libtool CURRENT bump and a
 * new soname (Makefile.am, LT_VERSION_INFO). Sizes of LP64 (x86_64, arm64). */
TEST(test_growing_structs_keep_their_size)
{
    if (sizeof(void *) != 8 || sizeof(long) != 8)
        return;
    ck_assert_uint_eq(sizeof(cf_allocator), 64);
    ck_assert_uint_eq(sizeof(cf_backward_opts), 48);
    ck_assert_uint_eq(sizeof(cf_gradcheck_report), 80);
    ck_assert_uint_eq(sizeof(cf_loss_opts), 48);
    ck_assert_uint_eq(sizeof(cf_attention_opts), 72);
    ck_assert_uint_eq(sizeof(cf_mha_opts), 88);
    ck_assert_uint_eq(sizeof(cf_sgd_opts), 64);
    ck_assert_uint_eq(sizeof(cf_adam_opts), 64);
    ck_assert_uint_eq(sizeof(cf_decoder), 72);
    ck_assert_uint_eq(sizeof(cf_sample_opts), 48);
    ck_assert_uint_eq(sizeof(cf_load_report), 56);
    ck_assert_uint_eq(sizeof(cf_module), 5304);
}
END_TEST

static void *never_malloc(size_t size, void *ud)
{
    (void)size;
    (void)ud;
    return NULL;
}

TEST(test_allocator_with_reserved_bytes_is_refused)
{
    cf_allocator a = cf_get_allocator();
    a.malloc_fn = never_malloc;
    a.reserved[3] = 1;
    ck_assert_int_eq(cf_set_allocator(&a), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_set_allocator", "cf_allocator.reserved[3]", NULL);
    ck_assert(cf_get_allocator().malloc_fn != never_malloc);
}
END_TEST

TEST(test_backward_opts_with_reserved_bytes_are_refused)
{
    cf_tensor *x = rand_leaf(1, -1, 1, CF_SHAPE(3));
    cf_tensor *y = cf_sum_all(cf_square(x));
    cf_backward_opts o = {.reserved[0] = 7};
    ck_assert_int_eq(cf_backward_ex(y, &o), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_backward_ex", "cf_backward_opts.reserved[0]", NULL);
    ck_assert_int_eq(cf_backward_ex(y, &(cf_backward_opts){0}), CF_OK);
}
END_TEST

TEST(test_loss_opts_with_reserved_bytes_are_refused)
{
    cf_tensor *logits = rand_leaf(2, -1, 1, CF_SHAPE(2, 3));
    cf_tensor *target = cf_empty(CF_I32, CF_SHAPE(2));
    memset(target->data, 0, 2 * sizeof(int32_t));
    cf_loss_opts o = {.reserved[1] = 1};
    ck_assert_ptr_null(cf_cross_entropy(logits, target, &o));
    assert_error(CF_ERR_ARG, "cf_cross_entropy", "cf_loss_opts.reserved[1]", NULL);
    ck_assert_ptr_null(cf_nll_loss(logits, target, &o));
    assert_error(CF_ERR_ARG, "cf_nll_loss", "reserved", NULL);
    ck_assert_ptr_null(cf_mse_loss(logits, logits, &o));
    assert_error(CF_ERR_ARG, "cf_mse_loss", "reserved", NULL);
}
END_TEST

TEST(test_attention_opts_with_reserved_bytes_are_refused)
{
    cf_tensor *q = rand_leaf(3, -1, 1, CF_SHAPE(1, 1, 2, 4));
    cf_attention_opts o = {.reserved[2] = 1};
    ck_assert_ptr_null(cf_attention(q, q, q, &o));
    assert_error(CF_ERR_ARG, "cf_attention", "cf_attention_opts.reserved[2]", NULL);
}
END_TEST

TEST(test_mha_opts_with_reserved_bytes_are_refused)
{
    cf_rng g;
    cf_rng_init(&g, 4);
    cf_mha *m = cf_mha_new(NULL, "attn", 4, 2, 0, true, &g);
    ck_assert_ptr_nonnull(m);
    cf_tensor *x = rand_leaf(5, -1, 1, CF_SHAPE(1, 2, 4));
    cf_mha_opts o = {.reserved[0] = 1};
    ck_assert_ptr_null(cf_mha_forward(m, x, x, x, &o));
    assert_error(CF_ERR_ARG, "MultiheadAttention", "cf_mha_opts.reserved[0]", NULL);
    cf_module_free(&m->base);
}
END_TEST

TEST(test_optimizer_opts_with_reserved_bytes_are_refused)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    ck_assert_ptr_nonnull(net);
    ck_assert_ptr_null(cf_sgd_new(net, &(cf_sgd_opts){.lr = 0.1f, .reserved[3] = 1}));
    assert_error(CF_ERR_ARG, "cf_sgd_new", "cf_sgd_opts.reserved[3]", NULL);
    ck_assert_ptr_null(cf_adam_new(net, &(cf_adam_opts){.reserved[0] = 1}));
    assert_error(CF_ERR_ARG, "cf_adam_new", "cf_adam_opts.reserved[0]", NULL);
    ck_assert_ptr_null(cf_adamw_new(net, &(cf_adamw_opts){.reserved[0] = 1}));
    assert_error(CF_ERR_ARG, "cf_adamw_new", "reserved", NULL);
    cf_module_free(net);
}
END_TEST

static cf_status uniform_step(void *ud, const int32_t *tokens, int n, float *logp)
{
    (void)ud;
    (void)tokens;
    for (int i = 0; i < 2 * n; i++)
        logp[i] = -0.6931472f;
    return CF_OK;
}

TEST(test_decoder_with_reserved_bytes_is_refused)
{
    cf_decoder d = {.step = uniform_step, .vocab = 2, .eos = 1, .reserved[1] = 1};
    int32_t out[4];
    ck_assert_int_eq(cf_greedy_search(&d, 4, out), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_greedy_search", "cf_decoder.reserved[1]", NULL);
    ck_assert_int_eq(cf_beam_search(&d, 2, 0, 4, out), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_beam_search", "reserved", NULL);
}
END_TEST

TEST(test_sample_opts_with_reserved_bytes_are_refused)
{
    cf_tensor *logits = cf_zeros(CF_SHAPE(2, 5));
    ck_assert_ptr_null(cf_sample(logits, &(cf_sample_opts){.reserved[0] = 1}, NULL));
    assert_error(CF_ERR_ARG, "cf_sample", "cf_sample_opts.reserved[0]", NULL);
}
END_TEST

static cf_tensor *square(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_square(in[0]);
}

SCRATCH_TEST(test_gradcheck_report_comes_back_with_reserved_zeroed)
{
    cf_tensor *x = rand_leaf(6, -1, 1, CF_SHAPE(3));
    cf_gradcheck_report rep;
    memset(&rep, 0xff, sizeof rep);
    ck_assert_int_eq(cf_gradcheck(square, NULL, 1, &x, 1e-3f, &rep), CF_OK);
    for (int i = 0; i < CF_RESERVED_WORDS; i++)
        ck_assert_uint_eq(rep.reserved[i], 0);
}
END_TEST

SCRATCH_TEST(test_load_report_comes_back_with_reserved_zeroed)
{
    cf_module *net = cf_module_new("Net", NULL, NULL);
    ck_assert_ptr_nonnull(net);
    cf_load_report rep;
    memset(&rep, 0xff, sizeof rep);
    ck_assert_int_ne(cf_module_load_report(net, scratch_path("missing.safetensors"), false, &rep),
                     CF_OK);
    cf_error_clear();
    for (int i = 0; i < CF_RESERVED_WORDS; i++)
        ck_assert_uint_eq(rep.reserved[i], 0);
    cf_load_report_free(&rep);
    cf_module_free(net);
}
END_TEST
