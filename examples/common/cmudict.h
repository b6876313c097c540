/* The CMU pronouncing dictionary 0.4 in Festival's format, prepared for
 * grapheme-to-phoneme (G2P) models, and the metrics G2P is judged by.
 *
 *     cmudict d;
 *     if (cmudict_load(&d, CMUDICT_PATH) != CF_OK)
 *         fprintf(stderr, "%s\n", cf_error_message());   // names the package
 *     for (int64_t i = 0; i < d.n; i++)
 *         if (d.entries[i].split == CMUDICT_TRAIN) ...    // word -> phones
 *     cmudict_free(&d);
 *
 * The file (Debian package festlex-cmu) holds one entry a line,
 *     ("abandon" nil (((ax) 0) ((b ae n) 1) ((d ax n) 0)))
 * a word, a part of speech, and syllables of phones with a stress digit.
 * A word with several pronunciations appears on several lines, one per part
 * of speech ("abject" n and "abject" j); a word also appears capitalised
 * ("Chaim"). Kept: words of letters a-z only after lowercasing, the first
 * line of each, at most CMUDICT_MAX_LEN letters and phones; the phones
 * are flattened in order, syllables and stress dropped. The 40 phones are
 * Festival's names for CMU's ARPAbet (ax for the reduced vowel).
 *
 * Split: crc32(word) % 100 (zlib's crc32 of the lowercased word) below 5 is
 * test, 5 is dev, the rest train; on cmudict-0.4.out that gives 99,295
 * training, 1,062 dev and 5,307 test words of 105,664, the same words as
 * examples/torch/g2p_common.py picks with Python's zlib.crc32.
 */
#ifndef EXAMPLES_CMUDICT_H
#define EXAMPLES_CMUDICT_H

#include <cformer/tensor.h>

#include <stddef.h>
#include <stdint.h>

#define CMUDICT_PATH    "/usr/share/festival/dicts/cmu/cmudict-0.4.out"
#define CMUDICT_PHONES  40
#define CMUDICT_MAX_LEN 32 /* longest word and phone sequence kept */

/* Model token ids: letters a-z are CMUDICT_FIRST + 0..25, phone p is
 * CMUDICT_FIRST + p. */
enum { CMUDICT_PAD = 0, CMUDICT_BOS = 1, CMUDICT_EOS = 2, CMUDICT_FIRST = 3 };
#define CMUDICT_SRC_VOCAB (CMUDICT_FIRST + 26)
#define CMUDICT_TGT_VOCAB (CMUDICT_FIRST + CMUDICT_PHONES)

enum { CMUDICT_TRAIN = 0, CMUDICT_DEV = 1, CMUDICT_TEST = 2 };

typedef struct {
    const char *word;      /* lowercase a-z, NUL-terminated */
    const uint8_t *phones; /* indices into cmudict_phone_names */
    int word_len, phone_len;
    int split; /* CMUDICT_TRAIN, _DEV or _TEST */
} cmudict_entry;

typedef struct {
    cmudict_entry *entries; /* in file order */
    int64_t n;
    int64_t count[3];        /* entries per split */
    int64_t lines;           /* lines read */
    int64_t skipped_letters; /* words with a character outside a-z/A-Z */
    int64_t skipped_repeats; /* further pronunciations of a kept word */
    int64_t skipped_long;    /* words or pronunciations over CMUDICT_MAX_LEN */
    char *store_;            /* private: the words and phones */
} cmudict;

/* Festival's phone names, alphabetical ("aa" .. "zh"). */
extern const char *const cmudict_phone_names[CMUDICT_PHONES];

/* Parses the len bytes at buf (no terminating NUL needed), named `name` in
 * messages, into *d, which the caller frees with cmudict_free. Returns
 * CF_OK; CF_ERR_FORMAT naming the file, the line and what is wrong there
 * (d is then empty); CF_ERR_NOMEM. An optional first line "MNCL" (Festival's
 * compiled-lexicon marker) and blank lines are allowed; an empty dictionary
 * is an error. */
cf_status cmudict_parse(cmudict *d, const char *buf, size_t len, const char *name);

/* Reads and parses the file at path. A missing file is CF_ERR_IO naming the
 * Debian package festlex-cmu and its install command; otherwise as
 * cmudict_parse. */
cf_status cmudict_load(cmudict *d, const char *path);

/* Frees what d holds and empties it; an empty or zeroed d is a no-op. */
void cmudict_free(cmudict *d);

/* The split of a lowercase word of len letters. */
int cmudict_split_of(const char *word, size_t len);

/* Levenshtein distance between token sequences a[0..na) and b[0..nb),
 * each at most CMUDICT_MAX_LEN * 4 long (longer: -1). */
int edit_distance(const int32_t *a, int na, const int32_t *b, int nb);

/* Running G2P scores. */
typedef struct {
    int64_t words, wrong_words; /* WER = wrong_words / words */
    int64_t edits, ref_len;     /* PER = edits / ref_len */
} g2p_score;

/* Adds one word: hypothesis hyp[0..nh) against reference ref[0..nr). */
void g2p_score_add(g2p_score *s, const int32_t *hyp, int nh, const int32_t *ref, int nr);
double g2p_wer(const g2p_score *s); /* 0..1; 0 for no words */
double g2p_per(const g2p_score *s); /* edits per reference phone */

#endif
