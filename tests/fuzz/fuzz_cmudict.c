/* Fuzz target: the CMU dictionary parser of the examples
 * (examples/common/cmudict.c). Parses the input from memory with
 * cmudict_parse, then writes it to a file and reads that with
 * cmudict_load, which must give the same entries. A parse that succeeds
 * must hold only what the header promises (lowercase words of a-z, known
 * phones, lengths within CMUDICT_MAX_LEN, the split of each word, counts
 * that add up); a failed one must record its error with a message and
 * leave the dictionary empty. Seeds: tests/fuzz/corpus/cmudict. */
#include "examples/common/cmudict.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

static void check_dict(const cmudict *d)
{
    FUZZ_ASSERT(d->n > 0 && d->entries != NULL, "an empty dictionary parsed");
    int64_t count[3] = {0, 0, 0};
    for (int64_t i = 0; i < d->n; i++) {
        const cmudict_entry *e = &d->entries[i];
        FUZZ_ASSERT(e->word_len > 0 && e->word_len <= CMUDICT_MAX_LEN &&
                        (int)strlen(e->word) == e->word_len,
                    "entry %lld: word length %d", (long long)i, e->word_len);
        for (int k = 0; k < e->word_len; k++)
            FUZZ_ASSERT(e->word[k] >= 'a' && e->word[k] <= 'z', "entry %lld: word \"%s\"",
                        (long long)i, e->word);
        FUZZ_ASSERT(e->phone_len > 0 && e->phone_len <= CMUDICT_MAX_LEN, "entry %lld: %d phones",
                    (long long)i, e->phone_len);
        for (int k = 0; k < e->phone_len; k++)
            FUZZ_ASSERT(e->phones[k] < CMUDICT_PHONES, "entry %lld: phone %d", (long long)i,
                        e->phones[k]);
        FUZZ_ASSERT(e->split >= 0 && e->split <= 2 &&
                        e->split == cmudict_split_of(e->word, (size_t)e->word_len),
                    "entry %lld: split %d", (long long)i, e->split);
        count[e->split]++;
    }
    for (int s = 0; s < 3; s++)
        FUZZ_ASSERT(count[s] == d->count[s], "split %d: %lld entries, counted %lld", s,
                    (long long)count[s], (long long)d->count[s]);
}

static bool same(const cmudict *a, const cmudict *b)
{
    if (a->n != b->n)
        return false;
    for (int64_t i = 0; i < a->n; i++) {
        const cmudict_entry *x = &a->entries[i], *y = &b->entries[i];
        if (strcmp(x->word, y->word) != 0 || x->phone_len != y->phone_len ||
            memcmp(x->phones, y->phones, (size_t)x->phone_len) != 0)
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const cf_status errors[] = {CF_ERR_FORMAT};
    cf_error_clear();
    cmudict d, f;
    cf_status parsed = cmudict_parse(&d, (const char *)data, size, "fuzz");
    if (parsed == CF_OK) {
        fuzz_check_success("cmudict_parse");
        check_dict(&d);
    } else {
        fuzz_check_failure("cmudict_parse", parsed, 1, errors);
        FUZZ_ASSERT(d.n == 0 && d.entries == NULL, "a failed parse left entries");
    }
    cf_status loaded = cmudict_load(&f, fuzz_file(data, size));
    if (loaded == CF_OK) {
        fuzz_check_success("cmudict_load");
        FUZZ_ASSERT(parsed == CF_OK && same(&d, &f), "cmudict_load and cmudict_parse disagree");
    } else {
        fuzz_check_failure("cmudict_load", loaded, 1, errors);
        FUZZ_ASSERT(parsed != CF_OK, "cmudict_load fails where cmudict_parse succeeds");
    }
    cmudict_free(&f);
    cmudict_free(&d);
    return 0;
}
