/* Safetensors files: an 8-byte little-endian header length N, N bytes of
 * JSON, then the tensors' bytes back to back.
 *
 *     {"__metadata__": {"key": "value", ...},
 *      "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
 *
 * data_offsets are [begin, end) byte offsets into the data area, which starts
 * right after the header. The reader trusts nothing in the file: the header
 * is parsed by a strict JSON parser that follows the schema above (so its
 * depth is bounded and it needs no tree), every read is bounds-checked, and
 * the tensors' byte ranges must tile the data area exactly, as the reference
 * implementation requires. */
#define _POSIX_C_SOURCE 200809L

#include "tensor/internal.h"
#include "cformer/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The reference implementation refuses larger headers too. */
#define MAX_HEADER ((uint64_t)100000000)
/* Files this size or larger are mapped; smaller ones are read, which is
 * cheaper for them. */
#define MAP_THRESHOLD ((size_t)1 << 20)
/* More dims than any real tensor has; bounds memory for hostile headers. */
#define MAX_RANK 1024
/* Bytes gathered before a write() when saving. */
#define WRITE_BUF ((size_t)1 << 16)

/* Every dtype the format defines, so that files holding ones cformer lacks
 * still open. bits is the element size (the F4 and F6 types are packed). */
static const struct {
    const char *name;
    int bits;
    int cf; /* the cf_dtype, or -1 when cformer has no such dtype */
} dtypes[] = {
    {"BOOL", 8, CF_BOOL}, {"F4", 4, -1},       {"F6_E2M3", 6, -1}, {"F6_E3M2", 6, -1},
    {"U8", 8, -1},        {"I8", 8, -1},       {"F8_E5M2", 8, -1}, {"F8_E4M3", 8, -1},
    {"F8_E8M0", 8, -1},   {"I16", 16, -1},     {"U16", 16, -1},    {"F16", 16, -1},
    {"BF16", 16, -1},     {"I32", 32, CF_I32}, {"U32", 32, -1},    {"F32", 32, CF_F32},
    {"C64", 64, -1},      {"F64", 64, -1},     {"I64", 64, -1},    {"U64", 64, -1},
};
#define NDTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

static const char *st_dtype_name(cf_dtype d)
{
    switch (d) {
    case CF_F32: return "F32";
    case CF_I32: return "I32";
    case CF_BOOL: return "BOOL";
    }
    return NULL;
}

typedef struct {
    char *name;
    int dtype; /* index into dtypes */
    int ndim;
    size_t dim0;    /* its sizes are dims[dim0 .. dim0 + ndim) */
    uint64_t begin; /* byte range [begin, end) in the data area */
    uint64_t end;
} st_entry;

/* Key/value string pairs, in the order given. */
typedef struct {
    char **kv; /* key 0, value 0, key 1, ... */
    int n;
    size_t cap;
} st_kv;

struct cf_safetensors {
    char *path;
    unsigned char *file; /* the whole file, mapped or read */
    size_t size;
    bool mapped;
    const unsigned char *data; /* the data area */
    uint64_t data_size;
    st_entry *t; /* in the header's order */
    int n;
    size_t cap;
    int *by_name; /* indices into t, sorted by name */
    int64_t *dims;
    size_t ndims;
    size_t dims_cap;
    st_kv meta;
};

/* Records an error and keeps the status in *st, which the failing call then
 * returns. */
static void CF_PRINTF(3, 4) fail(cf_status *st, cf_status s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cf__error(s, "%s", msg);
    if (*st == CF_OK)
        *st = s;
}

static bool host_little_endian(void)
{
    uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Grows *p (an array of *cap elements of size sz) to hold need elements. */
static bool grow(void **p, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 8;
    while (c < need) {
        if (c > SIZE_MAX / 2 / sz)
            return false;
        c *= 2;
    }
    void *q = cf_realloc(*p, c * sz);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

static void kv_free(st_kv *m)
{
    for (int i = 0; i < 2 * m->n; i++)
        cf_free(m->kv[i]);
    cf_free(m->kv);
    memset(m, 0, sizeof *m);
}

static const char *kv_get(const st_kv *m, const char *key)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->kv[2 * i], key) == 0)
            return m->kv[2 * i + 1];
    return NULL;
}

/* Formats a file shape of any rank as "[2, 3]", truncated to fit. */
static const char *dims_str(int ndim, const int64_t *d, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)d[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
    return buf;
}

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
static bool valid_utf8(const char *s)
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

/* ---- Sorting indices with a context (qsort has none) ---- */

typedef int (*idx_cmp)(const void *ctx, int a, int b);

/* Stable bottom-up merge sort of idx[0..n); false when out of memory. */
static bool sort_idx(int *idx, int n, idx_cmp cmp, const void *ctx)
{
    int *tmp = cf_malloc(sizeof(int) * (n ? (size_t)n : 1));
    if (!tmp)
        return false;
    int *a = idx, *b = tmp;
    /* After a pass of width w, runs of 2w are sorted; stop before 2w
     * could overflow. */
    for (int w = 1; w < n; w = (w > n / 2) ? n : 2 * w) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n;
            int hi = mid + w < n ? mid + w : n;
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                b[k++] = cmp(ctx, a[j], a[i]) < 0 ? a[j++] : a[i++];
            while (i < mid)
                b[k++] = a[i++];
            while (j < hi)
                b[k++] = a[j++];
        }
        int *t = a;
        a = b;
        b = t;
    }
    if (a != idx)
        memcpy(idx, a, sizeof(int) * (size_t)n);
    cf_free(tmp);
    return true;
}

/* ---- The header parser ---- */

typedef struct {
    const unsigned char *start, *p, *end;
    const char *who;   /* message prefix: the file, or the function */
    cf_status kind;    /* CF_ERR_FORMAT for files, CF_ERR_ARG for save */
    cf_status *st;     /* the calling function's status */
    cf_safetensors *f; /* receives the tensors (NULL when parsing metadata) */
} jparser;

/* Records an error at the parser's position; always returns false. */
static bool CF_PRINTF(2, 3) jfail(jparser *J, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fail(J->st, J->kind, "%s: %s (header byte %zu)", J->who, msg, (size_t)(J->p - J->start));
    return false;
}

static bool joom(jparser *J)
{
    fail(J->st, CF_ERR_NOMEM, "%s: out of memory parsing the header", J->who);
    return false;
}

static void skip_ws(jparser *J)
{
    while (J->p < J->end && (*J->p == ' ' || *J->p == '\t' || *J->p == '\n' || *J->p == '\r'))
        J->p++;
}

/* Skips white space and consumes c if it comes next. */
static bool accept(jparser *J, char c)
{
    skip_ws(J);
    if (J->p < J->end && *J->p == (unsigned char)c) {
        J->p++;
        return true;
    }
    return false;
}

static bool expect(jparser *J, char c, const char *where)
{
    if (accept(J, c))
        return true;
    if (J->p == J->end)
        return jfail(J, "header ends where '%c' was expected %s", c, where);
    return jfail(J, "expected '%c' %s", c, where);
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
static size_t parse_escape(jparser *J, const unsigned char *q, unsigned char *o)
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
        jfail(J, "invalid escape in a string");
        return 0;
    }
    uint32_t u = (uint32_t)hex4(J->p + 1);
    if (u >= 0xDC00 && u <= 0xDFFF) {
        jfail(J, "lone low surrogate in a string");
        return 0;
    }
    if (u >= 0xD800 && u <= 0xDBFF) {
        const unsigned char *r = J->p + 5;
        int lo = q - r >= 6 && r[0] == '\\' && r[1] == 'u' ? hex4(r + 2) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF) {
            jfail(J, "lone high surrogate in a string");
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
static bool parse_string(jparser *J, char **out, const char *what)
{
    *out = NULL;
    skip_ws(J);
    if (J->p == J->end || *J->p != '"')
        return jfail(J, "expected a string for %s", what);
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
        return jfail(J, "unterminated string for %s", what);
    unsigned char *o = cf_malloc((size_t)(q - s) + 1);
    if (!o)
        return joom(J);
    size_t n = 0;
    J->p = s;
    while (J->p < q) {
        unsigned c = *J->p;
        size_t k = 1;
        if (c < 0x20) {
            k = 0;
            jfail(J, "control character 0x%02x in a string", c);
        } else if (c == '\\') {
            J->p++; /* the scan guarantees a byte before q */
            k = parse_escape(J, q, o + n);
            n += k;
            if (k == 0)
                break;
            continue;
        } else if (c >= 0x80 && !(k = utf8_len(J->p, (size_t)(q - J->p)))) {
            jfail(J, "invalid UTF-8 in a string");
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
static bool parse_uint(jparser *J, uint64_t *v, const char *what)
{
    skip_ws(J);
    if (J->p < J->end && *J->p == '-')
        return jfail(J, "%s must not be negative", what);
    if (J->p == J->end || *J->p < '0' || *J->p > '9')
        return jfail(J, "expected an integer for %s", what);
    uint64_t x = 0;
    if (*J->p == '0') {
        J->p++;
        if (J->p < J->end && *J->p >= '0' && *J->p <= '9')
            return jfail(J, "leading zero in a number");
    } else {
        while (J->p < J->end && *J->p >= '0' && *J->p <= '9') {
            unsigned d = *J->p - '0';
            if (x > ((uint64_t)INT64_MAX - d) / 10)
                return jfail(J, "%s is too large", what);
            x = x * 10 + d;
            J->p++;
        }
    }
    if (J->p < J->end && (*J->p == '.' || *J->p == 'e' || *J->p == 'E'))
        return jfail(J, "%s must be an integer", what);
    *v = x;
    return true;
}

static int cmp_key(const void *ctx, int a, int b)
{
    const st_kv *m = ctx;
    return strcmp(m->kv[2 * a], m->kv[2 * b]);
}

/* Refuses duplicate keys (by sorting, so a huge header cannot make this
 * quadratic). */
static bool kv_unique(jparser *J, const st_kv *m)
{
    int *idx = cf_malloc(sizeof(int) * (m->n ? (size_t)m->n : 1));
    if (!idx)
        return joom(J);
    for (int i = 0; i < m->n; i++)
        idx[i] = i;
    bool ok = sort_idx(idx, m->n, cmp_key, m) || joom(J);
    for (int i = 1; ok && i < m->n; i++)
        if (cmp_key(m, idx[i - 1], idx[i]) == 0) {
            char sk[CF_SHOW_BUF];
            ok = jfail(J, "duplicate metadata key \"%s\"",
                       cf__show(m->kv[2 * idx[i]], sk, sizeof sk));
        }
    cf_free(idx);
    return ok;
}

/* Parses {"key": "value", ...} into m; duplicate keys are refused. */
static bool parse_kv_object(jparser *J, st_kv *m, const char *what)
{
    if (!expect(J, '{', what))
        return false;
    if (accept(J, '}'))
        return true;
    do {
        char *k, *v;
        if (!parse_string(J, &k, "a metadata key"))
            return false;
        if (!expect(J, ':', "after a metadata key") ||
            !parse_string(J, &v, "a metadata value (values must be strings)")) {
            cf_free(k);
            return false;
        }
        if (m->n == INT_MAX / 2 ||
            !grow((void **)&m->kv, &m->cap, 2 * (size_t)m->n + 2, sizeof(char *))) {
            cf_free(k);
            cf_free(v);
            return joom(J);
        }
        m->kv[2 * m->n] = k;
        m->kv[2 * m->n + 1] = v;
        m->n++;
    } while (accept(J, ','));
    return expect(J, '}', "to close the metadata") && kv_unique(J, m);
}

static bool parse_dtype(jparser *J, st_entry *e)
{
    char *d;
    if (!parse_string(J, &d, "dtype"))
        return false;
    e->dtype = -1;
    for (int i = 0; i < NDTYPES; i++)
        if (strcmp(d, dtypes[i].name) == 0)
            e->dtype = i;
    char sn[CF_SHOW_BUF], sd[CF_SHOW_BUF];
    bool ok = e->dtype >= 0 || jfail(J, "tensor %s: unknown dtype \"%s\"",
                                     cf__show(e->name, sn, sizeof sn), cf__show(d, sd, sizeof sd));
    cf_free(d);
    return ok;
}

static bool parse_shape(jparser *J, st_entry *e)
{
    cf_safetensors *f = J->f;
    e->dim0 = f->ndims;
    e->ndim = 0;
    if (!expect(J, '[', "to open the shape"))
        return false;
    if (accept(J, ']'))
        return true;
    do {
        uint64_t d;
        if (!parse_uint(J, &d, "a size"))
            return false;
        if (e->ndim == MAX_RANK) {
            char sn[CF_SHOW_BUF];
            return jfail(J, "tensor %s: more than %d dims", cf__show(e->name, sn, sizeof sn),
                         MAX_RANK);
        }
        if (!grow((void **)&f->dims, &f->dims_cap, f->ndims + 1, sizeof(int64_t)))
            return joom(J);
        f->dims[f->ndims++] = (int64_t)d;
        e->ndim++;
    } while (accept(J, ','));
    return expect(J, ']', "to close the shape");
}

/* Parses the value of tensor entry e: {"dtype": .., "shape": [..],
 * "data_offsets": [b, e]} in any order, nothing else. */
static bool parse_entry(jparser *J, st_entry *e)
{
    char sn[CF_SHOW_BUF];
    const char *nm = cf__show(e->name, sn, sizeof sn);
    bool have_dtype = false, have_shape = false, have_offsets = false;
    skip_ws(J);
    if (J->p == J->end || *J->p != '{')
        return jfail(J, "tensor %s: expected an object", nm);
    J->p++;
    if (accept(J, '}'))
        return jfail(J, "tensor %s: missing \"dtype\"", nm);
    do {
        char *key;
        if (!parse_string(J, &key, "a field name"))
            return false;
        bool ok = expect(J, ':', "after a field name");
        bool *seen = strcmp(key, "dtype") == 0          ? &have_dtype
                     : strcmp(key, "shape") == 0        ? &have_shape
                     : strcmp(key, "data_offsets") == 0 ? &have_offsets
                                                        : NULL;
        char sk[CF_SHOW_BUF];
        if (ok && (!seen || *seen))
            ok = jfail(J, "tensor %s: %s field \"%s\"", nm, seen ? "duplicate" : "unknown",
                       cf__show(key, sk, sizeof sk));
        cf_free(key);
        if (!ok)
            return false;
        *seen = true;
        if (seen == &have_dtype)
            ok = parse_dtype(J, e);
        else if (seen == &have_shape)
            ok = parse_shape(J, e);
        else
            ok = expect(J, '[', "to open data_offsets") &&
                 parse_uint(J, &e->begin, "a data offset") &&
                 expect(J, ',', "in data_offsets (it holds two numbers)") &&
                 parse_uint(J, &e->end, "a data offset") &&
                 expect(J, ']', "after data_offsets' two numbers");
        if (!ok)
            return false;
    } while (accept(J, ','));
    if (!expect(J, '}', "to close a tensor entry"))
        return false;
    if (!have_dtype || !have_shape || !have_offsets)
        return jfail(J, "tensor %s: missing \"%s\"", nm,
                     !have_dtype   ? "dtype"
                     : !have_shape ? "shape"
                                   : "data_offsets");
    return true;
}

/* Parses the whole header: one object, then only white space (the
 * padding). */
static bool parse_header(jparser *J)
{
    cf_safetensors *f = J->f;
    bool have_meta = false;
    skip_ws(J);
    if (J->p == J->end || *J->p != '{')
        return jfail(J, "the header is not a JSON object");
    J->p++;
    if (!accept(J, '}')) {
        do {
            char *key;
            if (!parse_string(J, &key, "a tensor name"))
                return false;
            if (!expect(J, ':', "after a tensor name")) {
                cf_free(key);
                return false;
            }
            if (strcmp(key, "__metadata__") == 0) {
                cf_free(key);
                if (have_meta)
                    return jfail(J, "duplicate \"__metadata__\"");
                have_meta = true;
                skip_ws(J);
                if (J->end - J->p >= 4 && memcmp(J->p, "null", 4) == 0)
                    J->p += 4;
                else if (!parse_kv_object(J, &f->meta, "to open __metadata__"))
                    return false;
                continue;
            }
            if (f->n == INT_MAX || !grow((void **)&f->t, &f->cap, (size_t)f->n + 1, sizeof *f->t)) {
                cf_free(key);
                return joom(J);
            }
            st_entry *e = &f->t[f->n++];
            memset(e, 0, sizeof *e);
            e->name = key;
            if (!parse_entry(J, e))
                return false;
        } while (accept(J, ','));
        if (!expect(J, '}', "to close the header object"))
            return false;
    }
    skip_ws(J);
    if (J->p != J->end)
        return jfail(J, "trailing characters after the header's JSON object");
    return true;
}

/* ---- Validation of the parsed header ---- */

static int cmp_name(const void *ctx, int a, int b)
{
    const cf_safetensors *f = ctx;
    return strcmp(f->t[a].name, f->t[b].name);
}

static int cmp_offset(const void *ctx, int a, int b)
{
    const st_entry *x = &((const cf_safetensors *)ctx)->t[a];
    const st_entry *y = &((const cf_safetensors *)ctx)->t[b];
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Entry e's sizes (NULL when the file has no dims at all). */
static const int64_t *entry_dims(const cf_safetensors *f, const st_entry *e)
{
    return f->dims ? f->dims + e->dim0 : NULL;
}

/* The bytes tensor e occupies; false when the count overflows or a packed
 * dtype does not fill whole bytes. */
static bool entry_bytes(const cf_safetensors *f, const st_entry *e, uint64_t *bytes)
{
    uint64_t n = 1;
    const int64_t *d = entry_dims(f, e);
    for (int i = 0; i < e->ndim; i++)
        if (d[i] == 0)
            n = 0;
    for (int i = 0; i < e->ndim && n; i++) {
        if ((uint64_t)d[i] > UINT64_MAX / n)
            return false;
        n *= (uint64_t)d[i];
    }
    uint64_t bits = (uint64_t)dtypes[e->dtype].bits;
    if (n > UINT64_MAX / bits || n * bits % 8)
        return false;
    *bytes = n * bits / 8;
    return true;
}

static bool check_entry(const cf_safetensors *f, const st_entry *e, cf_status *st)
{
    char sn[CF_SHOW_BUF];
    const char *path = f->path, *dt = dtypes[e->dtype].name,
               *name = cf__show(e->name, sn, sizeof sn);
    unsigned long long b = e->begin, end = e->end;
    char sb[CF_SHAPE_BUF];
    uint64_t bytes;
    dims_str(e->ndim, entry_dims(f, e), sb, sizeof sb);
    if (!entry_bytes(f, e, &bytes)) {
        fail(st, CF_ERR_FORMAT,
             "%s: tensor %s: shape %s of dtype %s is not a whole number of "
             "bytes that fits in 64 bits",
             path, name, sb, dt);
        return false;
    }
    if (end < b) {
        fail(st, CF_ERR_FORMAT, "%s: tensor %s: data_offsets [%llu, %llu] end before they begin",
             path, name, b, end);
        return false;
    }
    if (end - b != bytes) {
        fail(st, CF_ERR_FORMAT,
             "%s: tensor %s: shape %s of dtype %s needs %llu bytes but "
             "data_offsets [%llu, %llu] hold %llu",
             path, name, sb, dt, (unsigned long long)bytes, b, end, end - b);
        return false;
    }
    if (end > f->data_size) {
        fail(st, CF_ERR_FORMAT,
             "%s: tensor %s: data_offsets [%llu, %llu] lie outside the data "
             "area of %llu bytes",
             path, name, b, end, (unsigned long long)f->data_size);
        return false;
    }
    return true;
}

/* Checks every entry, that the byte ranges tile [0, data_size) without gaps
 * or overlaps, and that names are unique; builds the name index. */
static bool validate(cf_safetensors *f, cf_status *st)
{
    const char *path = f->path;
    for (int i = 0; i < f->n; i++)
        if (!check_entry(f, &f->t[i], st))
            return false;

    int *idx = cf_malloc(sizeof(int) * (f->n ? (size_t)f->n : 1));
    f->by_name = cf_malloc(sizeof(int) * (f->n ? (size_t)f->n : 1));
    if (!idx || !f->by_name)
        goto oom;
    for (int i = 0; i < f->n; i++)
        idx[i] = f->by_name[i] = i;
    if (!sort_idx(idx, f->n, cmp_offset, f) || !sort_idx(f->by_name, f->n, cmp_name, f))
        goto oom;
    uint64_t at = 0;
    for (int i = 0; i < f->n; i++) {
        const st_entry *e = &f->t[idx[i]];
        unsigned long long b = e->begin, end = e->end;
        char sn[CF_SHOW_BUF], so[CF_SHOW_BUF];
        if (b < at)
            fail(st, CF_ERR_FORMAT, "%s: tensor %s: data_offsets [%llu, %llu] overlap tensor %s",
                 path, cf__show(e->name, sn, sizeof sn), b, end,
                 cf__show(f->t[idx[i - 1]].name, so, sizeof so));
        else if (b > at)
            fail(st, CF_ERR_FORMAT,
                 "%s: tensor %s: data_offsets [%llu, %llu] leave bytes "
                 "[%llu, %llu) of the data area unused",
                 path, cf__show(e->name, sn, sizeof sn), b, end, (unsigned long long)at, b);
        if (b != at) {
            cf_free(idx);
            return false;
        }
        at = e->end;
    }
    cf_free(idx);
    if (at != f->data_size) {
        fail(st, CF_ERR_FORMAT,
             "%s: %llu bytes after the last tensor's data (the data area "
             "holds %llu)",
             path, (unsigned long long)(f->data_size - at), (unsigned long long)f->data_size);
        return false;
    }
    for (int i = 1; i < f->n; i++) {
        const char *a = f->t[f->by_name[i - 1]].name;
        if (strcmp(a, f->t[f->by_name[i]].name) == 0) {
            char sn[CF_SHOW_BUF];
            fail(st, CF_ERR_FORMAT, "%s: duplicate tensor name %s", path,
                 cf__show(a, sn, sizeof sn));
            return false;
        }
    }
    return true;
oom:
    cf_free(idx);
    fail(st, CF_ERR_NOMEM, "%s: out of memory", path);
    return false;
}

/* ---- Opening ---- */

static bool load_file(cf_safetensors *f, cf_status *st)
{
    const char *fn = "cf_safetensors_open";
    /* Non-blocking, so that a FIFO or a device is refused below rather than
     * waited on; reads of a regular file are not affected. */
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        fail(st, CF_ERR_IO, "%s: %s: %s", fn, f->path, strerror(errno));
        return false;
    }
    struct stat sb;
    const char *why = NULL;
    if (fstat(fd, &sb) != 0)
        why = strerror(errno);
    else if (S_ISDIR(sb.st_mode))
        why = strerror(EISDIR);
    else if (!S_ISREG(sb.st_mode))
        why = "not a regular file";
    else if ((uint64_t)sb.st_size > SIZE_MAX / 2)
        why = strerror(EFBIG);
    if (why) {
        fail(st, CF_ERR_IO, "%s: %s: %s", fn, f->path, why);
        close(fd);
        return false;
    }
    size_t size = (size_t)sb.st_size;
    if (size >= MAP_THRESHOLD) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            close(fd);
            f->file = m;
            f->size = size;
            f->mapped = true;
            return true;
        }
    }
    /* Read small files, and big ones that could not be mapped. */
    f->file = cf_malloc(size ? size : 1);
    if (!f->file) {
        fail(st, CF_ERR_NOMEM, "%s: %s: out of memory for %zu bytes", fn, f->path, size);
        close(fd);
        return false;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, f->file + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fail(st, CF_ERR_IO, "%s: %s: %s", fn, f->path, strerror(errno));
            close(fd);
            return false;
        }
        if (r == 0)
            break; /* the file shrank: parse what is there */
        got += (size_t)r;
    }
    close(fd);
    f->size = got;
    return true;
}

static cf_status safetensors_open(const char *path, cf_safetensors **out)
{
    cf_status st = CF_OK;
    if (out)
        *out = NULL;
    if (!path || !out) {
        fail(&st, CF_ERR_ARG, "cf_safetensors_open: %s is NULL", path ? "out" : "path");
        return st;
    }
    cf_safetensors *f = cf_calloc(1, sizeof *f);
    if (f)
        f->path = cf__strdup(path);
    if (!f || !f->path) {
        cf_free(f);
        fail(&st, CF_ERR_NOMEM, "cf_safetensors_open: %s: out of memory", path);
        return st;
    }
    if (!load_file(f, &st))
        goto fail;
    if (f->size < 8) {
        fail(&st, CF_ERR_FORMAT,
             "%s: file of %zu bytes is too short for the 8-byte header "
             "length",
             path, f->size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f->file[i];
    if (hlen > f->size - 8) {
        fail(&st, CF_ERR_FORMAT,
             "%s: header length %llu exceeds the %zu bytes that follow it "
             "(truncated file?)",
             path, (unsigned long long)hlen, f->size - 8);
        goto fail;
    }
    if (hlen > MAX_HEADER) {
        fail(&st, CF_ERR_FORMAT, "%s: header length %llu exceeds the limit of %llu bytes", path,
             (unsigned long long)hlen, (unsigned long long)MAX_HEADER);
        goto fail;
    }
    f->data = f->file + 8 + hlen;
    f->data_size = f->size - 8 - hlen;
    const unsigned char *h = f->file + 8;
    jparser J = {h, h, h + hlen, path, CF_ERR_FORMAT, &st, f};
    if (!parse_header(&J) || !validate(f, &st))
        goto fail;
    *out = f;
    return CF_OK;
fail:
    cf_safetensors_close(f);
    return st;
}

cf_status cf_safetensors_open(const char *path, cf_safetensors **out)
{
    cf_error_frame saved;
    cf_error_enter(&saved);
    return cf_error_leave(&saved, safetensors_open(path, out));
}

void cf_safetensors_close(cf_safetensors *f)
{
    if (!f)
        return;
    if (f->mapped)
        munmap(f->file, f->size);
    else
        cf_free(f->file);
    for (int i = 0; i < f->n; i++)
        cf_free(f->t[i].name);
    cf_free(f->t);
    cf_free(f->by_name);
    cf_free(f->dims);
    kv_free(&f->meta);
    cf_free(f->path);
    cf_free(f);
}

int cf_safetensors_count(const cf_safetensors *f) { return f ? f->n : 0; }

const char *cf_safetensors_name(const cf_safetensors *f, int i)
{
    return f && i >= 0 && i < f->n ? f->t[i].name : NULL;
}

const char *cf_safetensors_metadata(const cf_safetensors *f, const char *key)
{
    return f && key ? kv_get(&f->meta, key) : NULL;
}

/* ---- Reading tensors ---- */

static const st_entry *find(const cf_safetensors *f, const char *name)
{
    int lo = 0, hi = f->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->t[f->by_name[mid]].name, name);
        if (c == 0)
            return &f->t[f->by_name[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The named entry if cformer can hold it (int64_ok: an I64 entry too, which
 * read_into narrows); otherwise NULL with the error recorded and its status
 * in *st. */
static const st_entry *lookup(const char *fn, const cf_safetensors *f, const char *name,
                              bool int64_ok, cf_status *st)
{
    if (!f || !name) {
        fail(st, CF_ERR_ARG, "%s: %s is NULL", fn, f ? "name" : "file");
        return NULL;
    }
    const st_entry *e = find(f, name);
    char sn[CF_SHOW_BUF];
    if (!e) {
        fail(st, CF_ERR_FORMAT, "%s: no tensor named %s", f->path, cf__show(name, sn, sizeof sn));
        return NULL;
    }
    if (dtypes[e->dtype].cf < 0 && !(int64_ok && !strcmp(dtypes[e->dtype].name, "I64"))) {
        fail(st, CF_ERR_DTYPE, "%s: tensor %s has dtype %s; cformer reads F32, I32 and BOOL",
             f->path, cf__show(name, sn, sizeof sn), dtypes[e->dtype].name);
        return NULL;
    }
    return e;
}

/* Copies a row-major little-endian source of t's shape into t's elements
 * (any strides). Bool bytes become 0 or 1. */
static void scatter(cf_tensor *t, const unsigned char *src)
{
    size_t es = cf_dtype_size(t->dtype);
    bool swap = es > 1 && !host_little_endian();
    bool is_bool = t->dtype == CF_BOOL;
    int64_t n = cf_numel(t);
    if (n == 0)
        return;
    int nd = t->ndim;
    int64_t inner = nd ? t->shape[nd - 1] : 1;
    int64_t istride = nd ? t->stride[nd - 1] : 1;
    if (cf_is_contiguous(t)) {
        inner = n;
        istride = 1;
        nd = 1;
    }
    int64_t idx[CF_MAX_DIMS] = {0};
    for (int64_t row = 0; row < n / inner; row++) {
        char *base = t->data;
        for (int d = 0; d < nd - 1; d++)
            base += idx[d] * t->stride[d] * (int64_t)es;
        if (istride == 1 && !swap && !is_bool) {
            memcpy(base, src, (size_t)inner * es);
            src += (size_t)inner * es;
        } else {
            for (int64_t i = 0; i < inner; i++, src += es) {
                unsigned char *o = (unsigned char *)base + i * istride * (int64_t)es;
                if (is_bool)
                    o[0] = src[0] != 0;
                else if (swap)
                    for (size_t b = 0; b < es; b++)
                        o[b] = src[es - 1 - b];
                else
                    memcpy(o, src, es);
            }
        }
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < t->shape[d])
                break;
            idx[d] = 0;
        }
    }
}

cf_tensor *cf_safetensors_get(const cf_safetensors *f, const char *name)
{
    cf_status st = CF_OK;
    char sn[CF_SHOW_BUF];
    const st_entry *e = lookup("cf_safetensors_get", f, name, false, &st);
    if (!e)
        return NULL;
    if (e->ndim > CF_MAX_DIMS) {
        fail(&st, CF_ERR_DIM, "%s: tensor %s has %d dims (cformer holds at most %d)", f->path,
             cf__show(name, sn, sizeof sn), e->ndim, CF_MAX_DIMS);
        return NULL;
    }
    cf_tensor *t = cf_empty((cf_dtype)dtypes[e->dtype].cf, e->ndim, entry_dims(f, e));
    if (t)
        scatter(t, f->data + e->begin);
    return t;
}

/* The n int64 values of e as little-endian int32 (a malloc'd copy), or NULL
 * with CF_ERR_DTYPE in *st when one does not fit, CF_ERR_NOMEM. */
static unsigned char *narrow_i64(const cf_safetensors *f, const st_entry *e, int64_t n,
                                 cf_status *st)
{
    unsigned char *out = cf_malloc(n ? (size_t)n * 4 : 1);
    char sn[CF_SHOW_BUF];
    if (!out) {
        fail(st, CF_ERR_NOMEM, "%s: out of memory reading %s", f->path,
             cf__show(e->name, sn, sizeof sn));
        return NULL;
    }
    const unsigned char *src = f->data + e->begin;
    for (int64_t i = 0; i < n; i++) {
        uint64_t u = 0;
        for (int b = 7; b >= 0; b--)
            u = u << 8 | src[8 * i + b];
        int64_t v = (int64_t)u;
        if (v < INT32_MIN || v > INT32_MAX) {
            fail(st, CF_ERR_DTYPE, "%s: tensor %s holds int64 %lld, beyond int32", f->path,
                 cf__show(e->name, sn, sizeof sn), (long long)v);
            cf_free(out);
            return NULL;
        }
        uint32_t w = (uint32_t)(int32_t)v;
        for (int b = 0; b < 4; b++)
            out[4 * i + b] = (unsigned char)(w >> (8 * b));
    }
    return out;
}

static cf_status read_into(const cf_safetensors *f, const char *name, cf_tensor *dst)
{
    cf_status st = CF_OK;
    char sn[CF_SHOW_BUF];
    const st_entry *e = lookup("cf_safetensors_read_into", f, name, true, &st);
    if (!e)
        return st;
    const int64_t *d = entry_dims(f, e);
    bool same = e->ndim == dst->ndim;
    for (int i = 0; same && i < e->ndim; i++)
        same = d[i] == dst->shape[i];
    if (!same) {
        char a[CF_SHAPE_BUF], b[CF_SHAPE_BUF];
        fail(&st, CF_ERR_SHAPE,
             "%s: tensor %s has shape %s in the file but the destination has "
             "shape %s",
             f->path, cf__show(name, sn, sizeof sn), dims_str(e->ndim, d, a, sizeof a),
             cf_shape_str(dst, b, sizeof b));
        return st;
    }
    /* PyTorch saves counters such as BatchNorm's num_batches_tracked as
     * int64. */
    bool narrow = dst->dtype == CF_I32 && !strcmp(dtypes[e->dtype].name, "I64");
    if (!narrow && (int)dst->dtype != dtypes[e->dtype].cf) {
        fail(&st, CF_ERR_DTYPE,
             "%s: tensor %s has dtype %s in the file but the destination is "
             "%s",
             f->path, cf__show(name, sn, sizeof sn), dtypes[e->dtype].name,
             cf_dtype_name(dst->dtype));
        return st;
    }
    /* An empty tensor's contiguous strides can be 0 ([5, 0] has strides
     * [0, 1]) and it has nothing to write twice. */
    for (int i = 0; i < dst->ndim && cf_numel(dst) > 0; i++) {
        if (dst->shape[i] > 1 && dst->stride[i] == 0) {
            fail(&st, CF_ERR_ARG,
                 "cf_safetensors_read_into: %s: the destination for %s is a "
                 "broadcast view",
                 f->path, cf__show(name, sn, sizeof sn));
            return st;
        }
    }
    if (narrow) {
        unsigned char *v = narrow_i64(f, e, cf_numel(dst), &st);
        if (!v)
            return st;
        scatter(dst, v);
        cf_free(v);
        return CF_OK;
    }
    scatter(dst, f->data + e->begin);
    return CF_OK;
}

cf_status cf_safetensors_read_into(const cf_safetensors *f, const char *name, cf_tensor *dst)
{
    if (!dst)
        return cf__null_arg("cf_safetensors_read_into", "dst");
    cf_error_frame saved;
    cf_error_enter(&saved);
    return cf_error_leave(&saved, read_into(f, name, dst));
}

/* ---- Saving ---- */

/* A growable string. */
typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom || !grow((void **)&b->s, &b->cap, b->n + n + 1, 1)) {
        b->oom = true;
        return;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void CF_PRINTF(2, 3) sb_fmt(sbuf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, n < 0 ? 0 : (size_t)n);
}

/* Appends s (valid UTF-8) as a JSON string. */
static void sb_json(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c == 0xC0 && (unsigned char)s[1] == 0x80) {
            sb_str(b, "\\u0000");
            s++;
        } else if (c < 0x20) {
            sb_fmt(b, "\\u%04x", c);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* Writes t's elements row-major and little-endian through buf
 * (WRITE_BUF bytes). */
static bool write_tensor(int fd, const cf_tensor *t, unsigned char *buf)
{
    size_t es = cf_dtype_size(t->dtype);
    bool swap = es > 1 && !host_little_endian();
    bool is_bool = t->dtype == CF_BOOL;
    int64_t n = cf_numel(t);
    if (n == 0)
        return true;
    if (cf_is_contiguous(t) && !swap && !is_bool)
        return write_all(fd, t->data, (size_t)n * es);
    int nd = t->ndim;
    int64_t inner = nd ? t->shape[nd - 1] : 1;
    int64_t istride = nd ? t->stride[nd - 1] : 1;
    int64_t idx[CF_MAX_DIMS] = {0};
    size_t used = 0;
    for (int64_t row = 0; row < n / inner; row++) {
        const char *base = t->data;
        for (int d = 0; d < nd - 1; d++)
            base += idx[d] * t->stride[d] * (int64_t)es;
        for (int64_t i = 0; i < inner; i++) {
            const unsigned char *s = (const unsigned char *)base + i * istride * (int64_t)es;
            if (used + es > WRITE_BUF) {
                if (!write_all(fd, buf, used))
                    return false;
                used = 0;
            }
            if (is_bool)
                buf[used] = s[0] != 0;
            else if (swap)
                for (size_t b = 0; b < es; b++)
                    buf[used + b] = s[es - 1 - b];
            else
                memcpy(buf + used, s, es);
            used += es;
        }
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < t->shape[d])
                break;
            idx[d] = 0;
        }
    }
    return write_all(fd, buf, used);
}

static int cmp_str(const void *ctx, int a, int b)
{
    const char *const *names = ctx;
    return strcmp(names[a], names[b]);
}

/* Checks the arguments of cf_safetensors_save. */
static bool check_save_args(const char *path, int n, const char *const *names,
                            cf_tensor *const *tensors, cf_status *st)
{
    const char *fn = "cf_safetensors_save";
    if (!path || n < 0 || (n > 0 && (!names || !tensors))) {
        fail(st, CF_ERR_ARG, "%s: %s", fn,
             !path    ? "path is NULL"
             : n < 0  ? "negative tensor count"
             : !names ? "names is NULL"
                      : "tensors is NULL");
        return false;
    }
    for (int i = 0; i < n; i++) {
        const cf_tensor *t = tensors[i];
        const char *nm = names[i];
        if (!nm)
            fail(st, CF_ERR_ARG, "%s: %s: name %d is NULL", fn, path, i);
        else if (!valid_utf8(nm) || strcmp(nm, "__metadata__") == 0)
            fail(st, CF_ERR_ARG, "%s: %s: invalid tensor name %s", fn, path, nm);
        else if (!t)
            fail(st, CF_ERR_ARG, "%s: %s: tensor %s is NULL", fn, path, nm);
        else if (!st_dtype_name(t->dtype) || t->ndim < 0 || t->ndim > CF_MAX_DIMS ||
                 (!t->data && cf_numel(t) > 0))
            fail(st, CF_ERR_ARG, "%s: %s: tensor %s is not a valid tensor", fn, path, nm);
        if (*st != CF_OK)
            return false;
    }
    int *idx = cf_malloc(sizeof(int) * (n ? (size_t)n : 1));
    bool sorted = idx != NULL;
    for (int i = 0; sorted && i < n; i++)
        idx[i] = i;
    if (sorted)
        sorted = sort_idx(idx, n, cmp_str, names);
    if (!sorted) {
        cf_free(idx);
        fail(st, CF_ERR_NOMEM, "%s: %s: out of memory", fn, path);
        return false;
    }
    for (int i = 1; i < n; i++) {
        if (strcmp(names[idx[i - 1]], names[idx[i]]) == 0) {
            fail(st, CF_ERR_ARG, "%s: %s: duplicate tensor name %s", fn, path, names[idx[i]]);
            break;
        }
    }
    cf_free(idx);
    return *st == CF_OK;
}

/* Builds the header, padded with spaces to a multiple of 8 bytes. Tensor
 * data is laid out in order of decreasing element size, so that every
 * element is aligned to its size within the file; order[] receives that
 * order. */
static bool build_header(sbuf *h, int n, const char *const *names, cf_tensor *const *tensors,
                         const st_kv *meta, int *order)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (cf_dtype_size(tensors[i]->dtype) == 4)
            order[k++] = i;
    for (int i = 0; i < n; i++)
        if (cf_dtype_size(tensors[i]->dtype) != 4)
            order[k++] = i;
    uint64_t *begin = cf_malloc(sizeof(uint64_t) * (n ? (size_t)n : 1));
    if (!begin)
        return false;
    uint64_t at = 0;
    for (int j = 0; j < n; j++) {
        const cf_tensor *t = tensors[order[j]];
        begin[order[j]] = at;
        at += (uint64_t)cf_numel(t) * cf_dtype_size(t->dtype);
    }

    sb_str(h, "{");
    if (meta) {
        sb_str(h, "\"__metadata__\":{");
        for (int i = 0; i < meta->n; i++) {
            if (i)
                sb_str(h, ",");
            sb_json(h, meta->kv[2 * i]);
            sb_str(h, ":");
            sb_json(h, meta->kv[2 * i + 1]);
        }
        sb_str(h, "}");
    }
    for (int i = 0; i < n; i++) {
        const cf_tensor *t = tensors[i];
        uint64_t bytes = (uint64_t)cf_numel(t) * cf_dtype_size(t->dtype);
        if (i || meta)
            sb_str(h, ",");
        sb_json(h, names[i]);
        sb_fmt(h, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            sb_fmt(h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        sb_fmt(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)begin[i],
               (unsigned long long)(begin[i] + bytes));
    }
    sb_str(h, "}");
    /* One append: a loop until the length is a multiple of 8 would never
     * end once the buffer failed to grow. */
    sb_put(h, "       ", (8 - h->n % 8) % 8);
    cf_free(begin);
    return !h->oom;
}

/* Temporaries are named "<target>.tmp-" and TMP_CHARS random characters,
 * and a save holds an exclusive flock() on its temporary until the rename:
 * so another save can tell the temporary of a save that was killed (which
 * holds no lock) from one in progress. */
#define TMP_CHARS 6
static const char tmp_alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/* Opens a new file path.tmp-XXXXXX for writing and locks it; stores its
 * name in tmp. */
static int open_temp(const char *path, char *tmp, size_t size)
{
    static _Thread_local uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 42 ^
                 (uint64_t)(uintptr_t)&counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        /* splitmix64 */
        uint64_t z = (x += 0x9E3779B97F4A7C15ull) + ++counter;
        z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ z >> 27) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        char suffix[TMP_CHARS + 1];
        for (int i = 0; i < TMP_CHARS; i++, z >>= 6)
            suffix[i] = tmp_alphabet[z % 62];
        suffix[TMP_CHARS] = '\0';
        if ((size_t)snprintf(tmp, size, "%s.tmp-%s", path, suffix) >= size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return -1;
        /* Another save may have taken it for stale and removed it between
         * the open and the lock: then make another. A file system without
         * locks fails flock(), and there no save removes another's file. */
        struct stat sb;
        if (flock(fd, LOCK_EX) != 0 || (fstat(fd, &sb) == 0 && sb.st_nlink > 0))
            return fd;
        close(fd);
    }
    errno = EEXIST;
    return -1;
}

/* The directory part of path ("." when there is none), or NULL. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? cf__strndup(path, slash == path ? 1 : (size_t)(slash - path)) : cf__strdup(".");
}

/* Removes the temporaries that saves of target left when they were killed:
 * files named as open_temp names them that no save holds locked. Best
 * effort: a failure here only leaves them for the next save. */
static void remove_stale_temps(const char *target)
{
    char *dir = dir_of(target);
    DIR *d = dir ? opendir(dir) : NULL;
    cf_free(dir);
    if (!d)
        return;
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    size_t bl = strlen(base);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (strncmp(nm, base, bl) != 0 || strncmp(nm + bl, ".tmp-", 5) != 0 ||
            strlen(nm + bl + 5) != TMP_CHARS || strspn(nm + bl + 5, tmp_alphabet) != TMP_CHARS)
            continue;
        int fd = openat(dirfd(d), nm, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat a, b;
        /* Unlinked only while locked here, and only if the name still
         * leads to the file that was locked. */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &a) == 0 && S_ISREG(a.st_mode) &&
            fstatat(dirfd(d), nm, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino)
            unlinkat(dirfd(d), nm, 0);
        close(fd);
    }
    closedir(d);
}

/* The file a save to path replaces: path, or the file a symbolic link at
 * path leads to (written through, as editors do). A new string, or NULL
 * with errno set (ENOENT for a link to nothing). */
static char *save_target(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0 || !S_ISLNK(sb.st_mode))
        return cf__strdup(path);
    /* Into a buffer: realpath would allocate with malloc, around
     * cf_set_allocator. */
    char real[PATH_MAX];
    return realpath(path, real) ? cf__strdup(real) : NULL;
}

/* Syncs directory dir, so that a rename in it is durable. File systems
 * that cannot sync directories are not an error. */
static bool sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0 || errno == EINVAL || errno == ENOTSUP;
    int e = errno;
    close(fd);
    errno = e;
    return ok;
}

static cf_status safetensors_save(const char *path, int n, const char *const *names,
                                  cf_tensor *const *tensors, const char *metadata_json)
{
    const char *fn = "cf_safetensors_save";
    cf_status st = CF_OK;
    if (!check_save_args(path, n, names, tensors, &st))
        return st;
    st_kv meta = {0};
    if (metadata_json) {
        const unsigned char *m = (const unsigned char *)metadata_json;
        jparser J = {
            m,   m,   m + strlen(metadata_json), "cf_safetensors_save: metadata_json", CF_ERR_ARG,
            &st, NULL};
        if (parse_kv_object(&J, &meta, "to open metadata_json")) {
            skip_ws(&J);
            if (J.p != J.end)
                jfail(&J, "trailing characters after the object");
        }
        if (st != CF_OK) {
            kv_free(&meta);
            return st;
        }
    }

    sbuf h = {0};
    int *order = cf_malloc(sizeof(int) * (n ? (size_t)n : 1));
    unsigned char *buf = cf_malloc(WRITE_BUF);
    char *target = NULL, *tmp = NULL, *dir = NULL;
    int fd = -1;
    bool created = false;
    if (!order || !buf ||
        !build_header(&h, n, names, tensors, metadata_json ? &meta : NULL, order)) {
        fail(&st, CF_ERR_NOMEM, "%s: %s: out of memory", fn, path);
        goto done;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));

    target = save_target(path);
    if (!target) {
        if (errno == ENOMEM)
            goto io_error;
        fail(&st, CF_ERR_IO, "%s: %s: a symbolic link whose target cannot be resolved (%s)", fn,
             path, strerror(errno));
        goto done;
    }
    struct stat old;
    bool exists = stat(target, &old) == 0;
    if (!exists && errno != ENOENT)
        goto io_error;
    if (exists && !S_ISREG(old.st_mode)) {
        fail(&st, CF_ERR_IO, "%s: %s: not a regular file", fn, path);
        goto done;
    }
    remove_stale_temps(target);
    size_t tmp_size = strlen(target) + TMP_CHARS + 8;
    tmp = cf_malloc(tmp_size);
    /* Taken now: once the file is renamed into place, running out of memory
     * could no longer be reported as a failed save. */
    dir = dir_of(target);
    if (!tmp || !dir)
        goto io_error;
    fd = open_temp(target, tmp, tmp_size);
    if (fd < 0)
        goto io_error;
    created = true;
    /* The file keeps its permissions; a new one gets the umask's. */
    if (exists && fchmod(fd, old.st_mode & 0777) != 0)
        goto io_error;
    if (!write_all(fd, len8, 8) || !write_all(fd, h.s, h.n))
        goto io_error;
    for (int j = 0; j < n; j++)
        if (!write_tensor(fd, tensors[order[j]], buf))
            goto io_error;
    /* fsync reports the write errors; the file stays locked (open) until
     * it has its final name. */
    if (fsync(fd) != 0 || rename(tmp, target) != 0)
        goto io_error;
    created = false;
    close(fd);
    fd = -1;
    if (!sync_dir(dir))
        goto io_error;
    goto done;

io_error:
    fail(&st, errno == ENOMEM ? CF_ERR_NOMEM : CF_ERR_IO, "%s: %s: %s", fn, path, strerror(errno));
done:
    if (created)
        unlink(tmp);
    if (fd >= 0)
        close(fd);
    cf_free(dir);
    cf_free(tmp);
    cf_free(target);
    cf_free(buf);
    cf_free(order);
    cf_free(h.s);
    kv_free(&meta);
    return st;
}

cf_status cf_safetensors_save(const char *path, int n, const char *const *names,
                              cf_tensor *const *tensors, const char *metadata_json)
{
    /* A NULL tensor after an error is that error's result (tensor.h). */
    for (int i = 0; tensors && i < n; i++)
        if (!tensors[i] && cf__failed())
            return cf_error();
    cf_error_frame saved;
    cf_error_enter(&saved);
    return cf_error_leave(&saved, safetensors_save(path, n, names, tensors, metadata_json));
}
