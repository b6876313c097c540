/* Printing tensors (tensor/print.c). */
#include "tests/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TEST(print_truncates_long_dims)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cf_fprint(f, cf_arange(0, 100, 1));
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "shape=[100]"));
    ck_assert_ptr_nonnull(strstr(buf, "float32"));
    ck_assert_ptr_nonnull(strstr(buf, "[0, 1, 2, ..., 97, 98, 99]"));
    free(buf);
}
END_TEST
