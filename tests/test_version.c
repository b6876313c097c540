/* The version: header macros, AC_INIT and the library agree. */
#include "tests/util.h"

#include "config.h"

#include <stdio.h>
#include <string.h>

START_TEST(test_runtime_version_matches_header)
{
    ck_assert_str_eq(cf_version(), CF_VERSION_STRING);
}
END_TEST

START_TEST(test_header_version_matches_configure)
{
    ck_assert_str_eq(CF_VERSION_STRING, PACKAGE_VERSION);
}
END_TEST

START_TEST(test_version_parts_spell_the_string)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%d.%d.%d", CF_VERSION_MAJOR, CF_VERSION_MINOR, CF_VERSION_PATCH);
    ck_assert_str_eq(buf, CF_VERSION_STRING);
}
END_TEST

START_TEST(test_version_number_orders_releases)
{
    ck_assert_int_eq(CF_VERSION_NUMBER,
                     CF_MAKE_VERSION(CF_VERSION_MAJOR, CF_VERSION_MINOR, CF_VERSION_PATCH));
    ck_assert_int_lt(CF_MAKE_VERSION(0, 9, 9), CF_MAKE_VERSION(1, 0, 0));
    ck_assert_int_lt(CF_MAKE_VERSION(1, 2, 3), CF_MAKE_VERSION(1, 3, 0));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("version");
    TCase *tc = tcase("runtime version matches header");
    tcase_add_test(tc, test_runtime_version_matches_header);
    suite_add_tcase(s, tc);
    tc = tcase("header version matches configure");
    tcase_add_test(tc, test_header_version_matches_configure);
    suite_add_tcase(s, tc);
    tc = tcase("version parts spell the string");
    tcase_add_test(tc, test_version_parts_spell_the_string);
    suite_add_tcase(s, tc);
    tc = tcase("version number orders releases");
    tcase_add_test(tc, test_version_number_orders_releases);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
