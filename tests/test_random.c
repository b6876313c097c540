/* Random numbers (tensor/random.c): Philox streams, reproducible from the
 * seed and independent of the thread count, with the requested moments. */
#include "tests/util.h"

#include <math.h>
#include <string.h>

TEST(same_seed_gives_same_numbers)
{
    cf_rng a, b;
    cf_rng_init(&a, 42);
    cf_rng_init(&b, 42);
    assert_close(cf_normal(&a, 0, 1, CF_SHAPE(100)), cf_normal(&b, 0, 1, CF_SHAPE(100)), 0, 0);
}
END_TEST

/* Random123's known answer for Philox4x32-10 with counter and key zero:
 * the words 6627e8d5 e169c58d bc57ac4c 9b00dbd8, each giving a uniform
 * from its top 24 bits. */
TEST(first_draws_of_seed_zero_are_philoxs_known_answer)
{
    static const uint32_t words[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    cf_rng g;
    cf_rng_init(&g, 0);
    const float *u = cf_uniform(&g, 0, 1, CF_SHAPE(4))->data;
    for (int j = 0; j < 4; j++)
        ck_assert_float_eq(u[j], (float)(words[j] >> 8) / 16777216.0f);
}
END_TEST

/* Philox4x32-10 word j of counter c under key, written plainly: the
 * reference the library's vector code must reproduce. */
static uint32_t philox_word(uint64_t c, uint64_t key, int j)
{
    uint32_t x[4] = {(uint32_t)c, (uint32_t)(c >> 32), 0, 0};
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * x[0], p1 = (uint64_t)0xCD9E8D57u * x[2];
        uint32_t y[4] = {(uint32_t)(p1 >> 32) ^ x[1] ^ k0, (uint32_t)p1,
                         (uint32_t)(p0 >> 32) ^ x[3] ^ k1, (uint32_t)p0};
        memcpy(x, y, sizeof x);
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return x[j];
}

TEST(draws_follow_philox_across_the_counters_32_bit_carry)
{
    cf_rng g;
    cf_rng_init(&g, 0x0123456789abcdefull);
    g.offset = 0xfffffff0ull;
    const float *u = cf_uniform(&g, 0, 1, CF_SHAPE(301))->data;
    for (int e = 0; e < 301; e++)
        ck_assert_float_eq(u[e], (float)(philox_word(0xfffffff0ull + e / 4, g.seed, e % 4) >> 8) /
                                     16777216.0f);
    ck_assert_uint_eq(g.offset, 0xfffffff0ull + 76);
}
END_TEST

TEST(dropout_keeps_exactly_the_elements_whose_uniform_is_below_one_minus_p)
{
    cf_rng g;
    cf_rng_init(&g, 11);
    cf_tensor *x = cf_requires_grad(cf_ones(CF_SHAPE(999)), true);
    const float *y = cf_dropout(x, 0.25f, true, &g)->data;
    for (int e = 0; e < 999; e++) {
        float u = (float)(philox_word((uint64_t)e / 4, 11, e % 4) >> 8) / 16777216.0f;
        ck_assert_float_eq(y[e], u < 0.75f ? 1.0f / 0.75f : 0.0f);
    }
}
END_TEST

TEST(successive_draws_differ)
{
    cf_rng g;
    cf_rng_init(&g, 1);
    cf_tensor *x = cf_uniform(&g, 0, 1, CF_SHAPE(8)), *y = cf_uniform(&g, 0, 1, CF_SHAPE(8));
    ck_assert(memcmp(x->data, y->data, 8 * sizeof(float)) != 0);
}
END_TEST

TEST(random_numbers_do_not_depend_on_thread_count)
{
    int nt = cf_get_num_threads();
    cf_rng g;
    cf_set_num_threads(1);
    cf_rng_init(&g, 7);
    cf_tensor *x = cf_normal(&g, 0, 1, CF_SHAPE(300001));
    cf_set_num_threads(4);
    cf_rng_init(&g, 7);
    cf_tensor *y = cf_normal(&g, 0, 1, CF_SHAPE(300001));
    cf_set_num_threads(nt);
    ck_assert(memcmp(x->data, y->data, 300001 * sizeof(float)) == 0);
}
END_TEST

TEST(normal_has_the_requested_moments)
{
    cf_rng g;
    cf_rng_init(&g, 3);
    cf_tensor *x = cf_normal(&g, 2, 3, CF_SHAPE(200000));
    float mean = cf_item(cf_mean_all(x));
    float var = cf_item(cf_mean_all(cf_square(cf_add_scalar(x, -mean))));
    ck_assert_float_eq_tol(mean, 2, 0.03);
    ck_assert_float_eq_tol(var, 9, 0.15);
}
END_TEST

TEST(uniform_stays_in_range_and_bernoulli_hits_its_rate)
{
    cf_rng g;
    cf_rng_init(&g, 5);
    cf_tensor *u = cf_uniform(&g, -2, 3, CF_SHAPE(10000));
    float *d = u->data;
    for (int i = 0; i < 10000; i++)
        ck_assert(d[i] >= -2 && d[i] < 3);
    ck_assert_float_eq_tol(cf_item(cf_mean_all(cf_bernoulli(&g, 0.3f, CF_SHAPE(100000)))), 0.3,
                           0.01);
    ck_assert_ptr_null(cf_bernoulli(&g, 1.5f, CF_SHAPE(2)));
    assert_error(CF_ERR_ARG, "cf_bernoulli", NULL);
}
END_TEST
