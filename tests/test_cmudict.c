/* The CMU dictionary reader of the G2P examples (examples/common/cmudict.c)
 * on small buffers in Festival's format, and the G2P metrics. */
#include "tests/util.h"

#include "examples/common/cmudict.h"

#include <string.h>
#include <zlib.h>

static cf_status parse(cmudict *d, const char *text)
{
    return cmudict_parse(d, text, strlen(text), "dict.out");
}

/* The phones of entry i as Festival's names joined by spaces. */
static const char *phones_of(const cmudict *d, int64_t i, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int j = 0; j < d->entries[i].phone_len; j++) {
        if (j)
            strncat(buf, " ", n - strlen(buf) - 1);
        strncat(buf, cmudict_phone_names[d->entries[i].phones[j]], n - strlen(buf) - 1);
    }
    return buf;
}

TEST(cmudict_flattens_syllables_and_drops_stress)
{
    cmudict d;
    ck_assert_int_eq(parse(&d, "MNCL\n(\"abandon\" nil (((ax) 0) ((b ae n) 1) ((d ax n) 0)))\n"),
                     CF_OK);
    ck_assert_int_eq(d.n, 1);
    char buf[128];
    ck_assert_str_eq(d.entries[0].word, "abandon");
    ck_assert_int_eq(d.entries[0].word_len, 7);
    ck_assert_str_eq(phones_of(&d, 0, buf, sizeof buf), "ax b ae n d ax n");
    cmudict_free(&d);
}
END_TEST

TEST(cmudict_keeps_the_first_pronunciation_of_a_word)
{
    cmudict d;
    ck_assert_int_eq(parse(&d, "(\"abject\" n (((ae b) 1) ((jh eh k t) 0)))\n"
                               "(\"abject\" j (((ax b) 0) ((jh eh k t) 1)))\n"
                               "(\"Abject\" n (((ey) 1)))\n"),
                     CF_OK);
    char buf[128];
    ck_assert_int_eq(d.n, 1);
    ck_assert_int_eq(d.skipped_repeats, 2);
    ck_assert_str_eq(phones_of(&d, 0, buf, sizeof buf), "ae b jh eh k t");
    cmudict_free(&d);
}
END_TEST

TEST(cmudict_lowercases_and_skips_other_characters)
{
    cmudict d;
    ck_assert_int_eq(parse(&d, "(\"Chaim\" n (((ch ey m) 1)))\n"
                               "(\"d'Orsay\" n (((d ao r) 1) ((s iy) 0)))\n"
                               "(\"caf\xe9\" n (((k ae) 0) ((f ey) 1)))\n"),
                     CF_OK);
    ck_assert_int_eq(d.n, 1);
    ck_assert_str_eq(d.entries[0].word, "chaim");
    ck_assert_int_eq(d.skipped_letters, 2);
    cmudict_free(&d);
}
END_TEST

TEST(cmudict_splits_by_crc32_of_the_word)
{
    cmudict d;
    ck_assert_int_eq(parse(&d, "(\"a\" dt (((ax) 0)))\n(\"zzzz\" nil (((z iy z) 1)))\n"), CF_OK);
    for (int64_t i = 0; i < d.n; i++) {
        const char *w = d.entries[i].word;
        uLong c = crc32(0, (const Bytef *)w, (uInt)strlen(w)) % 100;
        int want = c < 5 ? CMUDICT_TEST : c == 5 ? CMUDICT_DEV : CMUDICT_TRAIN;
        ck_assert_int_eq(d.entries[i].split, want);
        ck_assert_int_eq(cmudict_split_of(w, strlen(w)), want);
    }
    ck_assert_int_eq(d.count[0] + d.count[1] + d.count[2], d.n);
    cmudict_free(&d);
}
END_TEST

TEST(cmudict_names_the_line_of_an_unknown_phone)
{
    cmudict d;
    cf_error_clear();
    ck_assert_int_eq(parse(&d, "(\"a\" dt (((ax) 0)))\n(\"b\" nil (((b qq) 1)))\n"), CF_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(cf_error_message(), "dict.out: line 2"));
    ck_assert_ptr_nonnull(strstr(cf_error_message(), "unknown phone"));
    ck_assert_ptr_nonnull(strstr(cf_error_message(), "\"qq\""));
    ck_assert_int_eq(d.n, 0);
    ck_assert_ptr_null(d.entries);
    cf_error_clear();
}
END_TEST

TEST(cmudict_refuses_malformed_lines)
{
    const char *bad[] = {
        "(\"a\" nil (((ax) 0))",    /* unclosed entry */
        "(\"a\" nil ((ax) 0)))",    /* a syllable without its phone list */
        "(\"a\" nil (((ax) 7)))",   /* stress out of range */
        "(\"a\" nil (((ax) 0))) x", /* trailing text */
        "(\"a nil (((ax) 0)))",     /* unclosed word */
        "(\"\" nil (((ax) 0)))",    /* empty word */
        "(\"a\" nil ((() 1)))",     /* a syllable without phones */
        "(\"a\" nil ())",           /* no syllables */
        "abandon ax b ae n d ax n", /* another format */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cmudict d;
        cf_error_clear();
        ck_assert_msg(parse(&d, bad[i]) == CF_ERR_FORMAT, "accepted: %s", bad[i]);
        ck_assert_msg(strstr(cf_error_message(), "dict.out: line 1, column"), "%s: %s", bad[i],
                      cf_error_message());
    }
    cf_error_clear();
}
END_TEST

TEST(cmudict_refuses_an_empty_dictionary)
{
    cmudict d;
    cf_error_clear();
    ck_assert_int_eq(cmudict_parse(&d, "MNCL\n\n", 6, "dict.out"), CF_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(cf_error_message(), "no entries"));
    cf_error_clear();
}
END_TEST

TEST(cmudict_names_the_package_of_a_missing_file)
{
    cmudict d;
    cf_error_clear();
    ck_assert_int_eq(cmudict_load(&d, "/nonexistent/cmudict-0.4.out"), CF_ERR_IO);
    ck_assert_ptr_nonnull(strstr(cf_error_message(), "apt-get install festlex-cmu"));
    cf_error_clear();
}
END_TEST

TEST(cmudict_reads_no_further_than_the_length)
{
    const char text[] = "(\"a\" dt (((ax) 0)))\n(\"b\" nil (((b iy) 1)))\n";
    cmudict d;
    /* Cut inside the second entry: the parser must see the cut, not the
     * rest of the string. */
    ck_assert_int_eq(cmudict_parse(&d, text, 30, "dict.out"), CF_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(cf_error_message(), "line 2"));
    cf_error_clear();
}
END_TEST

TEST(metrics_count_edits_and_wrong_words)
{
    const int32_t ref[] = {1, 2, 3, 4}, same[] = {1, 2, 3, 4}, sub[] = {1, 9, 3, 4},
                  ins_del[] = {2, 3, 4, 5, 6};
    ck_assert_int_eq(edit_distance(ref, 4, same, 4), 0);
    ck_assert_int_eq(edit_distance(ref, 4, sub, 4), 1);
    ck_assert_int_eq(edit_distance(ref, 4, ins_del, 5), 3);
    ck_assert_int_eq(edit_distance(ref, 0, ref, 4), 4);
    g2p_score s = {0};
    g2p_score_add(&s, same, 4, ref, 4);
    g2p_score_add(&s, sub, 4, ref, 4);
    ck_assert_float_eq_tol(g2p_wer(&s), 0.5, 1e-12);
    ck_assert_float_eq_tol(g2p_per(&s), 1.0 / 8, 1e-12);
}
END_TEST
