/* Reading and writing the JSON of safetensors headers (json.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* qsort_r */
#endif

#include "tensor/json.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at p (at most n bytes available),
 * or 0 when it is not one (overlong, surrogate, beyond U+10FFFF, cut). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* Well-formed UTF-8, where the pair C0 80 stands for U+0000 (io.h). */
bool cf__utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        size_t k = n >= 2 && p[0] == 0xC0 && p[1] == 0x80 ? 2 : utf8_len(p, n);
        if (k == 0)
            return false;
        p += k;
        n -= k;
    }
    return true;
}

void cf__kv_free(cf__kv *m)
{
    for (int i = 0; i < 2 * m->n; i++)
        cf_free(m->kv[i]);
    cf_free(m->kv);
    memset(m, 0, sizeof *m);
}

const char *cf__kv_get(const cf__kv *m, const char *key)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->kv[2 * i], key) == 0)
            return m->kv[2 * i + 1];
    return NULL;
}

/* Records an error at the parser's position; always returns false. */
bool cf__json_fail(cf__json *J, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cf__fail(J->st, J->kind, "%s: %s (header byte %zu)", J->who, msg, (size_t)(J->p - J->start));
    return false;
}

bool cf__json_oom(cf__json *J)
{
    cf__fail(J->st, CF_ERR_NOMEM, "%s: out of memory parsing the header", J->who);
    return false;
}

void cf__json_ws(cf__json *J)
{
    while (J->p < J->end && (*J->p == ' ' || *J->p == '\t' || *J->p == '\n' || *J->p == '\r'))
        J->p++;
}

/* Skips white space and consumes c if it comes next. */
bool cf__json_accept(cf__json *J, char c)
{
    cf__json_ws(J);
    if (J->p < J->end && *J->p == (unsigned char)c) {
        J->p++;
        return true;
    }
    return false;
}

bool cf__json_expect(cf__json *J, char c, const char *where)
{
    if (cf__json_accept(J, c))
        return true;
    if (J->p == J->end)
        return cf__json_fail(J, "header ends where '%c' was expected %s", c, where);
    return cf__json_fail(J, "expected '%c' %s", c, where);
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t put_utf8(unsigned char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the escape at J->p (just after the backslash; q is the closing
 * quote) into o; returns the bytes written, 0 on error (recorded). */
static size_t parse_escape(cf__json *J, const unsigned char *q, unsigned char *o)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    unsigned e = *J->p;
    const char *hit = e ? strchr(from, (int)e) : NULL;
    if (hit) {
        J->p++;
        o[0] = (unsigned char)to[hit - from];
        return 1;
    }
    if (e != 'u' || q - J->p < 5 || hex4(J->p + 1) < 0) {
        cf__json_fail(J, "invalid escape in a string");
        return 0;
    }
    uint32_t u = (uint32_t)hex4(J->p + 1);
    if (u >= 0xDC00 && u <= 0xDFFF) {
        cf__json_fail(J, "lone low surrogate in a string");
        return 0;
    }
    if (u >= 0xD800 && u <= 0xDBFF) {
        const unsigned char *r = J->p + 5;
        int lo = q - r >= 6 && r[0] == '\\' && r[1] == 'u' ? hex4(r + 2) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF) {
            cf__json_fail(J, "lone high surrogate in a string");
            return 0;
        }
        u = 0x10000 + ((u - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
        J->p += 6;
    }
    J->p += 5;
    if (u == 0) { /* modified UTF-8 (io.h): the string stays one C string */
        o[0] = 0xC0;
        o[1] = 0x80;
        return 2;
    }
    return put_utf8(o, u);
}

/* Parses a JSON string into a new NUL-terminated UTF-8 string in *out,
 * U+0000 written as C0 80 (io.h). */
bool cf__json_string(cf__json *J, char **out, const char *what)
{
    *out = NULL;
    cf__json_ws(J);
    if (J->p == J->end || *J->p != '"')
        return cf__json_fail(J, "expected a string for %s", what);
    /* Find the closing quote first: decoding never makes a string longer,
     * so its raw length bounds the buffer. */
    const unsigned char *s = J->p + 1, *q = s;
    while (q < J->end && *q != '"') {
        if (*q == '\\' && J->end - q < 2)
            q = J->end;
        else
            q += *q == '\\' ? 2 : 1;
    }
    if (q == J->end)
        return cf__json_fail(J, "unterminated string for %s", what);
    unsigned char *o = cf_malloc((size_t)(q - s) + 1);
    if (!o)
        return cf__json_oom(J);
    size_t n = 0;
    J->p = s;
    while (J->p < q) {
        unsigned c = *J->p;
        size_t k = 1;
        if (c < 0x20) {
            k = 0;
            cf__json_fail(J, "control character 0x%02x in a string", c);
        } else if (c == '\\') {
            J->p++; /* the scan guarantees a byte before q */
            k = parse_escape(J, q, o + n);
            n += k;
            if (k == 0)
                break;
            continue;
        } else if (c >= 0x80 && !(k = utf8_len(J->p, (size_t)(q - J->p)))) {
            cf__json_fail(J, "invalid UTF-8 in a string");
        }
        if (k == 0)
            break;
        memcpy(o + n, J->p, k);
        n += k;
        J->p += k;
    }
    if (J->p != q) {
        cf_free(o);
        return false;
    }
    o[n] = '\0';
    J->p = q + 1;
    *out = (char *)o;
    return true;
}

/* Parses a JSON number that must be a non-negative integer <= INT64_MAX. */
bool cf__json_uint(cf__json *J, uint64_t *v, const char *what)
{
    cf__json_ws(J);
    if (J->p < J->end && *J->p == '-')
        return cf__json_fail(J, "%s must not be negative", what);
    if (J->p == J->end || *J->p < '0' || *J->p > '9')
        return cf__json_fail(J, "expected an integer for %s", what);
    uint64_t x = 0;
    if (*J->p == '0') {
        J->p++;
        if (J->p < J->end && *J->p >= '0' && *J->p <= '9')
            return cf__json_fail(J, "leading zero in a number");
    } else {
        while (J->p < J->end && *J->p >= '0' && *J->p <= '9') {
            unsigned d = *J->p - '0';
            if (x > ((uint64_t)INT64_MAX - d) / 10)
                return cf__json_fail(J, "%s is too large", what);
            x = x * 10 + d;
            J->p++;
        }
    }
    if (J->p < J->end && (*J->p == '.' || *J->p == 'e' || *J->p == 'E'))
        return cf__json_fail(J, "%s must be an integer", what);
    *v = x;
    return true;
}

static int cmp_key(const void *a, const void *b, void *ctx)
{
    const cf__kv *m = ctx;
    return strcmp(m->kv[2 * *(const int *)a], m->kv[2 * *(const int *)b]);
}

/* Refuses duplicate keys (by sorting, so a huge header cannot make this
 * quadratic). */
static bool kv_unique(cf__json *J, const cf__kv *m)
{
    int *idx = cf_malloc(sizeof(int) * (m->n ? (size_t)m->n : 1));
    if (!idx)
        return cf__json_oom(J);
    for (int i = 0; i < m->n; i++)
        idx[i] = i;
    qsort_r(idx, (size_t)m->n, sizeof *idx, cmp_key, (void *)m);
    bool ok = true;
    for (int i = 1; ok && i < m->n; i++)
        if (cmp_key(&idx[i - 1], &idx[i], (void *)m) == 0) {
            char sk[CF_SHOW_BUF];
            ok = cf__json_fail(J, "duplicate metadata key \"%s\"",
                               cf__show(m->kv[2 * idx[i]], sk, sizeof sk));
        }
    cf_free(idx);
    return ok;
}

/* Parses {"key": "value", ...} into m; duplicate keys are refused. */
bool cf__json_kv(cf__json *J, cf__kv *m, const char *what)
{
    if (!cf__json_expect(J, '{', what))
        return false;
    if (cf__json_accept(J, '}'))
        return true;
    do {
        char *k, *v;
        if (!cf__json_string(J, &k, "a metadata key"))
            return false;
        if (!cf__json_expect(J, ':', "after a metadata key") ||
            !cf__json_string(J, &v, "a metadata value (values must be strings)")) {
            cf_free(k);
            return false;
        }
        if (m->n == INT_MAX / 2 ||
            !cf__grow((void **)&m->kv, &m->cap, 2 * (size_t)m->n + 2, sizeof(char *))) {
            cf_free(k);
            cf_free(v);
            return cf__json_oom(J);
        }
        m->kv[2 * m->n] = k;
        m->kv[2 * m->n + 1] = v;
        m->n++;
    } while (cf__json_accept(J, ','));
    return cf__json_expect(J, '}', "to close the metadata") && kv_unique(J, m);
}

void cf__sb_put(cf__sbuf *b, const char *s, size_t n)
{
    if (b->oom || !cf__grow((void **)&b->s, &b->cap, b->n + n + 1, 1)) {
        b->oom = true;
        return;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

void cf__sb_str(cf__sbuf *b, const char *s) { cf__sb_put(b, s, strlen(s)); }

void cf__sb_fmt(cf__sbuf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    cf__sb_put(b, tmp, n < 0 ? 0 : (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Appends s (valid UTF-8) as a JSON string. */
void cf__sb_json(cf__sbuf *b, const char *s)
{
    cf__sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            cf__sb_put(b, e, 2);
        } else if (c == 0xC0 && (unsigned char)s[1] == 0x80) {
            cf__sb_str(b, "\\u0000");
            s++;
        } else if (c < 0x20) {
            cf__sb_fmt(b, "\\u%04x", c);
        } else {
            cf__sb_put(b, (const char *)&c, 1);
        }
    }
    cf__sb_put(b, "\"", 1);
}
