/* Arenas (tensor/arena.c): memory reused after the first step, growth past
 * a chunk, alignment, and ops without an arena. */
#include "tests/util.h"

TEST(arena_reuses_its_memory_after_the_first_step)
{
    cf_arena *a = cf_arena_new(1 << 16);
    cf_arena *prev = cf_arena_use(a);
    size_t cap = 0;
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < 10; i++)
            ck_assert_ptr_nonnull(cf_zeros(CF_SHAPE(64, 64))); /* 16 KiB each */
        if (step == 1)
            cap = cf_arena_capacity(a);
        if (step == 2)
            ck_assert_uint_eq(cf_arena_capacity(a), cap);
        cf_arena_reset(a);
    }
    ck_assert_uint_ge(cf_arena_high_water(a), 10 * 64 * 64 * sizeof(float));
    ck_assert_uint_eq(cf_arena_used(a), 0);
    cf_arena_use(prev);
    cf_arena_free(a);
}
END_TEST

TEST(arena_grows_past_its_chunk_size)
{
    cf_arena *a = cf_arena_new(1024);
    cf_arena *prev = cf_arena_use(a);
    cf_tensor *big = cf_zeros(CF_SHAPE(1000, 100));
    ck_assert_ptr_nonnull(big);
    ck_assert_uint_ge(cf_arena_capacity(a), 400000);
    cf_arena_use(prev);
    cf_arena_free(a);
}
END_TEST

TEST(ops_without_an_arena_report_it)
{
    cf_arena *prev = cf_arena_use(NULL);
    ck_assert_ptr_null(cf_zeros(CF_SHAPE(2)));
    cf_arena_use(prev);
    assert_error(CF_ERR_NO_ARENA, "cf_zeros", "cf_arena_use", NULL);
}
END_TEST

TEST(arena_alloc_is_aligned)
{
    char *p = cf_arena_alloc(3), *q = cf_arena_alloc(5);
    ck_assert_uint_eq((uintptr_t)p % 64, 0);
    ck_assert_uint_eq((uintptr_t)q % 64, 0);
}
END_TEST
