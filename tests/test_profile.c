/* The op profiler (tensor/profile.c): matrix-product FLOPs and a line per op,
 * forward and backward apart. */
#include "tests/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TEST(profile_counts_matrix_product_flops)
{
    cf_tensor *x = rand_leaf(1, -1, 1, CF_SHAPE(4, 8));
    cf_tensor *w = rand_leaf(2, -1, 1, CF_SHAPE(8, 3));
    uint64_t before = cf_profile_matmul_flops();
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_matmul(x, w))), CF_OK);
    /* x @ w, then dx = g @ w^T and dw = x^T @ g: 2 * 4 * 8 * 3 each. */
    ck_assert_uint_eq(cf_profile_matmul_flops() - before, 3 * 2 * 4 * 8 * 3);
}
END_TEST

TEST(profile_reports_each_op_forward_and_backward)
{
    cf_profile_reset();
    cf_profile_enable(true);
    cf_tensor *x = rand_leaf(1, -1, 1, CF_SHAPE(4, 8));
    cf_backward(cf_sum_all(cf_exp(x)));
    cf_profile_enable(false);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    ck_assert_ptr_nonnull(f);
    cf_profile_report(f);
    fclose(f);
    ck_assert_msg(strstr(text, "exp ") && strstr(text, "forward") && strstr(text, "backward"),
                  "report lacks exp forward and backward:\n%s", text);
    free(text);
    cf_profile_reset();
}
END_TEST
