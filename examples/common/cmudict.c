/* The CMU dictionary reader and the G2P metrics (see cmudict.h). */
#include "cmudict.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

const char *const cmudict_phone_names[CMUDICT_PHONES] = {
    "aa", "ae", "ah", "ao", "aw", "ax", "ay", "b", "ch", "d", "dh", "eh", "er", "ey",
    "f",  "g",  "hh", "ih", "iy", "jh", "k",  "l", "m",  "n", "ng", "ow", "oy", "p",
    "r",  "s",  "sh", "t",  "th", "uh", "uw", "v", "w",  "y", "z",  "zh"};

int cmudict_split_of(const char *word, size_t len)
{
    uLong c = crc32(0L, (const Bytef *)word, (uInt)len) % 100;
    return c < 5 ? CMUDICT_TEST : c == 5 ? CMUDICT_DEV : CMUDICT_TRAIN;
}

/* The phone index of the n bytes at s, or -1. */
static int phone_index(const char *s, size_t n)
{
    for (int i = 0; i < CMUDICT_PHONES; i++)
        if (strlen(cmudict_phone_names[i]) == n && memcmp(cmudict_phone_names[i], s, n) == 0)
            return i;
    return -1;
}

/* ---- A growing byte store and a set of words ---- */

typedef struct {
    char *p;
    size_t len, cap;
} store;

static bool store_reserve(store *s, size_t more)
{
    if (s->len + more <= s->cap)
        return true;
    size_t cap = s->cap ? s->cap : 1 << 16;
    while (cap < s->len + more)
        cap *= 2;
    char *p = realloc(s->p, cap);
    if (!p)
        return false;
    s->p = p, s->cap = cap;
    return true;
}

/* Per entry while parsing: offsets into the store, as it may move. */
typedef struct {
    size_t word, phones;
    int word_len, phone_len;
} pending;

typedef struct {
    int64_t *slot; /* entry index + 1; 0 empty */
    size_t cap;    /* a power of two */
} word_set;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* The slot for word w[0..n): the one holding it, or the empty one where it
 * would go. */
static int64_t *set_find(const word_set *ws, const store *st, const pending *e, const char *w,
                         size_t n)
{
    size_t i = (size_t)hash_bytes(w, n) & (ws->cap - 1);
    for (;; i = (i + 1) & (ws->cap - 1)) {
        int64_t k = ws->slot[i];
        if (!k)
            return &ws->slot[i];
        const pending *p = &e[k - 1];
        if ((size_t)p->word_len == n && memcmp(st->p + p->word, w, n) == 0)
            return &ws->slot[i];
    }
}

/* Keeps the table at most half full for n + 1 entries. */
static bool set_grow(word_set *ws, const store *st, const pending *e, int64_t n)
{
    if ((size_t)(n + 1) * 2 <= ws->cap)
        return true;
    word_set bigger = {.cap = ws->cap ? ws->cap * 2 : 1 << 12};
    bigger.slot = calloc(bigger.cap, sizeof *bigger.slot);
    if (!bigger.slot)
        return false;
    for (size_t i = 0; i < ws->cap; i++)
        if (ws->slot[i]) {
            const pending *p = &e[ws->slot[i] - 1];
            *set_find(&bigger, st, e, st->p + p->word, (size_t)p->word_len) = ws->slot[i];
        }
    free(ws->slot);
    *ws = bigger;
    return true;
}

/* ---- One line ---- */

typedef struct {
    const char *p, *end; /* the line, without its newline */
    const char *why;     /* the first fault, or NULL */
    char detail[64];     /* its subject, quoted after it when set */
    size_t col;          /* where it is, 1-based */
    const char *line;
} cursor;

static bool fault(cursor *c, const char *why)
{
    if (!c->why) {
        c->why = why;
        c->col = (size_t)(c->p - c->line) + 1;
    }
    return false;
}

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static bool expect(cursor *c, char ch, const char *why)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return fault(c, why);
}

static bool is_name_char(char ch)
{
    return ch != ' ' && ch != '\t' && ch != '(' && ch != ')' && ch != '"';
}

/* Parses `(((ph ph) 1) ((ph) 0) ...)` into phones[0..*n) (at most cap;
 * *n counts on past cap so the caller can tell). */
static bool parse_syllables(cursor *c, uint8_t *phones, int cap, int *n)
{
    *n = 0;
    if (!expect(c, '(', "expected '(' opening the syllables"))
        return false;
    int syllables = 0;
    for (;;) {
        skip_space(c);
        if (c->p < c->end && *c->p == ')')
            break;
        if (!expect(c, '(', "expected '(' opening a syllable or ')' closing the syllables") ||
            !expect(c, '(', "expected '(' opening a syllable's phones"))
            return false;
        int in_syllable = 0;
        for (;;) {
            skip_space(c);
            if (c->p < c->end && *c->p == ')')
                break;
            const char *s = c->p;
            while (c->p < c->end && is_name_char(*c->p))
                c->p++;
            if (c->p == s)
                return fault(c, c->p == c->end ? "the line ends inside a syllable"
                                               : "expected a phone or ')'");
            int ph = phone_index(s, (size_t)(c->p - s));
            if (ph < 0) {
                int shown = (int)(c->p - s) < 16 ? (int)(c->p - s) : 16;
                snprintf(c->detail, sizeof c->detail, "%.*s%s", shown, s,
                         c->p - s > 16 ? "..." : "");
                c->p = s;
                return fault(c, "unknown phone (not one of Festival's 40 CMU phones)");
            }
            if (*n < cap)
                phones[*n] = (uint8_t)ph;
            ++*n, ++in_syllable;
        }
        if (!in_syllable)
            return fault(c, "a syllable without phones");
        c->p++;
        skip_space(c);
        if (!(c->p < c->end && *c->p >= '0' && *c->p <= '2'))
            return fault(c, "expected a stress digit 0, 1 or 2 after a syllable's phones");
        c->p++;
        if (!expect(c, ')', "expected ')' after the stress digit"))
            return false;
        syllables++;
    }
    c->p++;
    return syllables ? true : fault(c, "no syllables");
}

/* ---- The file ---- */

static cf_status format_error(cmudict *d, const char *name, int64_t line, size_t col,
                              const char *why)
{
    cmudict_free(d);
    cf_error_set(CF_ERR_FORMAT, "%s: line %lld, column %zu: %s", name, (long long)line, col, why);
    return CF_ERR_FORMAT;
}

cf_status cmudict_parse(cmudict *d, const char *buf, size_t len, const char *name)
{
    *d = (cmudict){0};
    store st = {0};
    pending *ents = NULL;
    size_t ents_cap = 0;
    word_set ws = {0};
    cf_status status = CF_OK;
    char why[160] = "";
    size_t why_col = 0;
    const char *end = buf + len;
    for (const char *line = buf; line < end && !status;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *stop = nl ? nl : end;
        if (stop > line && stop[-1] == '\r')
            stop--;
        d->lines++;
        cursor c = {.p = line, .end = stop, .line = line};
        skip_space(&c);
        if (c.p == c.end || (d->lines == 1 && c.end - c.p == 4 && memcmp(c.p, "MNCL", 4) == 0)) {
            line = nl ? nl + 1 : end;
            continue;
        }
        const char *word = NULL;
        size_t wlen = 0;
        bool letters = true;
        uint8_t phones[CMUDICT_MAX_LEN];
        int nph = 0;
        if (expect(&c, '(', "expected '(' opening an entry") &&
            expect(&c, '"', "expected '\"' opening the word")) {
            word = c.p;
            while (c.p < c.end && *c.p != '"')
                c.p++;
            wlen = (size_t)(c.p - word);
            if (c.p == c.end)
                fault(&c, "the word has no closing '\"'");
            else if (!wlen)
                fault(&c, "an empty word");
            else {
                c.p++;
                skip_space(&c);
                const char *pos = c.p;
                while (c.p < c.end && is_name_char(*c.p))
                    c.p++;
                if (c.p == pos)
                    fault(&c, "expected a part of speech (like nil) after the word");
                else if (parse_syllables(&c, phones, CMUDICT_MAX_LEN, &nph) &&
                         expect(&c, ')', "expected ')' closing the entry")) {
                    skip_space(&c);
                    if (c.p < c.end)
                        fault(&c, "text after the entry");
                }
            }
        }
        if (c.why) {
            snprintf(why, sizeof why, "%s%s%s%s", c.why, *c.detail ? ": \"" : "", c.detail,
                     *c.detail ? "\"" : "");
            why_col = c.col;
            status = CF_ERR_FORMAT;
            break;
        }
        char low[CMUDICT_MAX_LEN];
        for (size_t i = 0; i < wlen && letters; i++) {
            char ch = word[i];
            letters = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
            if (i < CMUDICT_MAX_LEN)
                low[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
        }
        line = nl ? nl + 1 : end;
        if (!letters) {
            d->skipped_letters++;
            continue;
        }
        if (wlen > CMUDICT_MAX_LEN || nph > CMUDICT_MAX_LEN) {
            d->skipped_long++;
            continue;
        }
        if (!set_grow(&ws, &st, ents, d->n)) {
            status = CF_ERR_NOMEM;
            break;
        }
        int64_t *slot = set_find(&ws, &st, ents, low, wlen);
        if (*slot) {
            d->skipped_repeats++;
            continue;
        }
        if ((size_t)d->n == ents_cap) {
            size_t cap = ents_cap ? 2 * ents_cap : 1 << 12;
            pending *p = realloc(ents, cap * sizeof *p);
            if (!p) {
                status = CF_ERR_NOMEM;
                break;
            }
            ents = p, ents_cap = cap;
        }
        if (!store_reserve(&st, wlen + 1 + (size_t)nph)) {
            status = CF_ERR_NOMEM;
            break;
        }
        pending *e = &ents[d->n];
        e->word = st.len, e->word_len = (int)wlen;
        memcpy(st.p + st.len, low, wlen);
        st.p[st.len + wlen] = '\0';
        st.len += wlen + 1;
        e->phones = st.len, e->phone_len = nph;
        memcpy(st.p + st.len, phones, (size_t)nph);
        st.len += (size_t)nph;
        *slot = ++d->n;
    }
    free(ws.slot);
    if (!status && !d->n) {
        snprintf(why, sizeof why, "no entries of letters a-z in %lld line%s", (long long)d->lines,
                 d->lines == 1 ? "" : "s");
        status = CF_ERR_FORMAT;
    }
    if (!status && !(d->entries = malloc((size_t)d->n * sizeof *d->entries)))
        status = CF_ERR_NOMEM;
    if (status) {
        int64_t line = d->lines;
        free(ents);
        free(st.p);
        if (status == CF_ERR_NOMEM) {
            cmudict_free(d);
            cf_error_set(CF_ERR_NOMEM, "%s: out of memory at line %lld", name, (long long)line);
            return CF_ERR_NOMEM;
        }
        if (!why_col) {
            cmudict_free(d);
            cf_error_set(CF_ERR_FORMAT, "%s: %s", name, why);
            return CF_ERR_FORMAT;
        }
        return format_error(d, name, line, why_col, why);
    }
    d->store_ = st.p;
    for (int64_t i = 0; i < d->n; i++) {
        cmudict_entry *e = &d->entries[i];
        e->word = st.p + ents[i].word;
        e->word_len = ents[i].word_len;
        e->phones = (const uint8_t *)st.p + ents[i].phones;
        e->phone_len = ents[i].phone_len;
        e->split = cmudict_split_of(e->word, (size_t)e->word_len);
        d->count[e->split]++;
    }
    free(ents);
    return CF_OK;
}

cf_status cmudict_load(cmudict *d, const char *path)
{
    *d = (cmudict){0};
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        bool missing = errno == ENOENT;
        cf_error_set(CF_ERR_IO, "%s: cannot open: %s%s", path, strerror(errno),
                     missing ? " (it comes with the Debian package festlex-cmu: apt-get install "
                               "festlex-cmu; or pass --data FILE)"
                             : "");
        return CF_ERR_IO;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t more = cap ? 2 * cap : 1 << 20;
            char *p = realloc(buf, more);
            if (!p) {
                free(buf);
                fclose(f);
                cf_error_set(CF_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, more);
                return CF_ERR_NOMEM;
            }
            buf = p, cap = more;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f);
    int err = errno;
    fclose(f);
    if (bad) {
        free(buf);
        cf_error_set(CF_ERR_IO, "%s: read failed after %zu bytes: %s", path, len, strerror(err));
        return CF_ERR_IO;
    }
    cf_status s = cmudict_parse(d, buf, len, path);
    free(buf);
    return s;
}

void cmudict_free(cmudict *d)
{
    free(d->entries);
    free(d->store_);
    *d = (cmudict){0};
}

/* ---- Metrics ---- */

int edit_distance(const int32_t *a, int na, const int32_t *b, int nb)
{
    enum { MAX = CMUDICT_MAX_LEN * 4 };
    if (na < 0 || nb < 0 || na > MAX || nb > MAX)
        return -1;
    int row[MAX + 1];
    for (int j = 0; j <= nb; j++)
        row[j] = j;
    for (int i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= nb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best, diag = up;
        }
    }
    return row[nb];
}

void g2p_score_add(g2p_score *s, const int32_t *hyp, int nh, const int32_t *ref, int nr)
{
    int d = edit_distance(hyp, nh, ref, nr);
    if (d < 0)
        d = nh > nr ? nh : nr;
    s->words++;
    s->wrong_words += d > 0;
    s->edits += d;
    s->ref_len += nr;
}

double g2p_wer(const g2p_score *s)
{
    return s->words ? (double)s->wrong_words / (double)s->words : 0;
}

double g2p_per(const g2p_score *s)
{
    return s->ref_len ? (double)s->edits / (double)s->ref_len : 0;
}
