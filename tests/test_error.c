/* Error reporting (tensor/error.c): the handler, status strings and error
 * frames of nested calls. */
#include "tests/util.h"

static int handler_calls;

static void count_errors(cf_status s, const char *msg, void *ud)
{
    (void)s, (void)msg, (void)ud;
    handler_calls++;
}

/* A status function of the user's, written as the library's are. */
static cf_status user_call(bool fail)
{
    cf_error_frame fr;
    cf_error_enter(&fr);
    if (fail)
        cf_zeros(CF_SHAPE(-1));
    return cf_error_leave(&fr, fail ? CF_ERR_DIM : CF_OK);
}

TEST(error_handler_sees_the_first_error_only)
{
    cf_set_error_handler(count_errors, NULL);
    cf_zeros(CF_SHAPE(-1));
    cf_zeros(CF_SHAPE(-2));
    cf_set_error_handler(NULL, NULL);
    ck_assert_int_eq(handler_calls, 1);
    assert_error(CF_ERR_DIM, "[-1]", NULL);
}
END_TEST

TEST(status_strings_describe_each_status)
{
    ck_assert_str_eq(cf_status_str(CF_OK), "ok");
    ck_assert_str_eq(cf_status_str(CF_ERR_SHAPE), "shape mismatch");
    ck_assert_str_eq(cf_status_str(CF_ERR_FORMAT), "bad file format");
}
END_TEST

TEST(error_frames_report_the_call_not_an_older_error)
{
    cf_item(cf_zeros(CF_SHAPE(2))); /* an older error, left recorded */
    ck_assert_int_eq(user_call(false), CF_OK);
    assert_error(CF_ERR_SHAPE, "cf_item", NULL);
    cf_item(cf_zeros(CF_SHAPE(2)));
    ck_assert_int_eq(user_call(true), CF_ERR_DIM);
    assert_error(CF_ERR_DIM, "negative size", NULL);
}
END_TEST
