/* The version: header macros, AC_INIT and the library agree. */
#include "tests/util.h"

#include "config.h"

#include <stdio.h>
#include <string.h>

TEST(test_runtime_version_matches_header) { ck_assert_str_eq(cf_version(), CF_VERSION_STRING); }
END_TEST

TEST(test_header_version_matches_configure)
{
    ck_assert_str_eq(CF_VERSION_STRING, PACKAGE_VERSION);
}
END_TEST

TEST(test_version_parts_spell_the_string)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%d.%d.%d", CF_VERSION_MAJOR, CF_VERSION_MINOR, CF_VERSION_PATCH);
    ck_assert_str_eq(buf, CF_VERSION_STRING);
}
END_TEST

TEST(test_version_number_orders_releases)
{
    ck_assert_int_eq(CF_VERSION_NUMBER,
                     CF_MAKE_VERSION(CF_VERSION_MAJOR, CF_VERSION_MINOR, CF_VERSION_PATCH));
    ck_assert_int_lt(CF_MAKE_VERSION(0, 9, 9), CF_MAKE_VERSION(1, 0, 0));
    ck_assert_int_lt(CF_MAKE_VERSION(1, 2, 3), CF_MAKE_VERSION(1, 3, 0));
}
END_TEST
