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
 * implementation requires. This file opens and reads them; saving is
 * safetensors_save.c, the JSON json.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* qsort_r, O_CLOEXEC */
#endif

#include "cformer/io.h"
#include "tensor/internal.h"
#include "tensor/json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reference implementation refuses larger headers too. */
#define MAX_HEADER ((uint64_t)100000000)
/* Files this size or larger are mapped; smaller ones are read, which is
 * cheaper for them. */
#define MAP_THRESHOLD ((size_t)1 << 20)
/* More dims than any real tensor has; bounds memory for hostile headers. */
#define MAX_RANK 1024

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

typedef struct {
    char *name;
    int dtype; /* index into dtypes */
    int ndim;
    size_t dim0;    /* its sizes are dims[dim0 .. dim0 + ndim) */
    uint64_t begin; /* byte range [begin, end) in the data area */
    uint64_t end;
} st_entry;

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
    cf__kv meta;
};

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

static bool parse_dtype(cf__json *J, st_entry *e)
{
    char *d;
    if (!cf__json_string(J, &d, "dtype"))
        return false;
    e->dtype = -1;
    for (int i = 0; i < NDTYPES; i++)
        if (strcmp(d, dtypes[i].name) == 0)
            e->dtype = i;
    char sn[CF_SHOW_BUF], sd[CF_SHOW_BUF];
    bool ok = e->dtype >= 0 ||
              cf__json_fail(J, "tensor %s: unknown dtype \"%s\"", cf__show(e->name, sn, sizeof sn),
                            cf__show(d, sd, sizeof sd));
    cf_free(d);
    return ok;
}

static bool parse_shape(cf__json *J, cf_safetensors *f, st_entry *e)
{
    e->dim0 = f->ndims;
    e->ndim = 0;
    if (!cf__json_expect(J, '[', "to open the shape"))
        return false;
    if (cf__json_accept(J, ']'))
        return true;
    do {
        uint64_t d;
        if (!cf__json_uint(J, &d, "a size"))
            return false;
        if (e->ndim == MAX_RANK) {
            char sn[CF_SHOW_BUF];
            return cf__json_fail(J, "tensor %s: more than %d dims",
                                 cf__show(e->name, sn, sizeof sn), MAX_RANK);
        }
        if (!cf__grow((void **)&f->dims, &f->dims_cap, f->ndims + 1, sizeof(int64_t)))
            return cf__json_oom(J);
        f->dims[f->ndims++] = (int64_t)d;
        e->ndim++;
    } while (cf__json_accept(J, ','));
    return cf__json_expect(J, ']', "to close the shape");
}

/* Parses the value of tensor entry e: {"dtype": .., "shape": [..],
 * "data_offsets": [b, e]} in any order, nothing else. */
static bool parse_entry(cf__json *J, cf_safetensors *f, st_entry *e)
{
    char sn[CF_SHOW_BUF];
    const char *nm = cf__show(e->name, sn, sizeof sn);
    bool have_dtype = false, have_shape = false, have_offsets = false;
    cf__json_ws(J);
    if (J->p == J->end || *J->p != '{')
        return cf__json_fail(J, "tensor %s: expected an object", nm);
    J->p++;
    if (cf__json_accept(J, '}'))
        return cf__json_fail(J, "tensor %s: missing \"dtype\"", nm);
    do {
        char *key;
        if (!cf__json_string(J, &key, "a field name"))
            return false;
        bool ok = cf__json_expect(J, ':', "after a field name");
        bool *seen = strcmp(key, "dtype") == 0          ? &have_dtype
                     : strcmp(key, "shape") == 0        ? &have_shape
                     : strcmp(key, "data_offsets") == 0 ? &have_offsets
                                                        : NULL;
        char sk[CF_SHOW_BUF];
        if (ok && (!seen || *seen))
            ok = cf__json_fail(J, "tensor %s: %s field \"%s\"", nm, seen ? "duplicate" : "unknown",
                               cf__show(key, sk, sizeof sk));
        cf_free(key);
        if (!ok)
            return false;
        *seen = true;
        if (seen == &have_dtype)
            ok = parse_dtype(J, e);
        else if (seen == &have_shape)
            ok = parse_shape(J, f, e);
        else
            ok = cf__json_expect(J, '[', "to open data_offsets") &&
                 cf__json_uint(J, &e->begin, "a data offset") &&
                 cf__json_expect(J, ',', "in data_offsets (it holds two numbers)") &&
                 cf__json_uint(J, &e->end, "a data offset") &&
                 cf__json_expect(J, ']', "after data_offsets' two numbers");
        if (!ok)
            return false;
    } while (cf__json_accept(J, ','));
    if (!cf__json_expect(J, '}', "to close a tensor entry"))
        return false;
    if (!have_dtype || !have_shape || !have_offsets)
        return cf__json_fail(J, "tensor %s: missing \"%s\"", nm,
                             !have_dtype   ? "dtype"
                             : !have_shape ? "shape"
                                           : "data_offsets");
    return true;
}

/* Parses the whole header: one object, then only white space (the
 * padding). */
static bool parse_header(cf__json *J, cf_safetensors *f)
{
    bool have_meta = false;
    cf__json_ws(J);
    if (J->p == J->end || *J->p != '{')
        return cf__json_fail(J, "the header is not a JSON object");
    J->p++;
    if (!cf__json_accept(J, '}')) {
        do {
            char *key;
            if (!cf__json_string(J, &key, "a tensor name"))
                return false;
            if (!cf__json_expect(J, ':', "after a tensor name")) {
                cf_free(key);
                return false;
            }
            if (strcmp(key, "__metadata__") == 0) {
                cf_free(key);
                if (have_meta)
                    return cf__json_fail(J, "duplicate \"__metadata__\"");
                have_meta = true;
                cf__json_ws(J);
                if (J->end - J->p >= 4 && memcmp(J->p, "null", 4) == 0)
                    J->p += 4;
                else if (!cf__json_kv(J, &f->meta, "to open __metadata__"))
                    return false;
                continue;
            }
            if (f->n == INT_MAX ||
                !cf__grow((void **)&f->t, &f->cap, (size_t)f->n + 1, sizeof *f->t)) {
                cf_free(key);
                return cf__json_oom(J);
            }
            st_entry *e = &f->t[f->n++];
            memset(e, 0, sizeof *e);
            e->name = key;
            if (!parse_entry(J, f, e))
                return false;
        } while (cf__json_accept(J, ','));
        if (!cf__json_expect(J, '}', "to close the header object"))
            return false;
    }
    cf__json_ws(J);
    if (J->p != J->end)
        return cf__json_fail(J, "trailing characters after the header's JSON object");
    return true;
}

/* ---- Validation of the parsed header ---- */

static int cmp_name(const void *a, const void *b, void *ctx)
{
    const cf_safetensors *f = ctx;
    return strcmp(f->t[*(const int *)a].name, f->t[*(const int *)b].name);
}

static int cmp_offset(const void *a, const void *b, void *ctx)
{
    const st_entry *x = &((const cf_safetensors *)ctx)->t[*(const int *)a];
    const st_entry *y = &((const cf_safetensors *)ctx)->t[*(const int *)b];
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
        cf__fail(st, CF_ERR_FORMAT,
                 "%s: tensor %s: shape %s of dtype %s is not a whole number of "
                 "bytes that fits in 64 bits",
                 path, name, sb, dt);
        return false;
    }
    if (end < b) {
        cf__fail(st, CF_ERR_FORMAT,
                 "%s: tensor %s: data_offsets [%llu, %llu] end before they begin", path, name, b,
                 end);
        return false;
    }
    if (end - b != bytes) {
        cf__fail(st, CF_ERR_FORMAT,
                 "%s: tensor %s: shape %s of dtype %s needs %llu bytes but "
                 "data_offsets [%llu, %llu] hold %llu",
                 path, name, sb, dt, (unsigned long long)bytes, b, end, end - b);
        return false;
    }
    if (end > f->data_size) {
        cf__fail(st, CF_ERR_FORMAT,
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
    qsort_r(idx, (size_t)f->n, sizeof *idx, cmp_offset, f);
    qsort_r(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name, f);
    uint64_t at = 0;
    for (int i = 0; i < f->n; i++) {
        const st_entry *e = &f->t[idx[i]];
        unsigned long long b = e->begin, end = e->end;
        char sn[CF_SHOW_BUF], so[CF_SHOW_BUF];
        if (b < at)
            cf__fail(st, CF_ERR_FORMAT,
                     "%s: tensor %s: data_offsets [%llu, %llu] overlap tensor %s", path,
                     cf__show(e->name, sn, sizeof sn), b, end,
                     cf__show(f->t[idx[i - 1]].name, so, sizeof so));
        else if (b > at)
            cf__fail(st, CF_ERR_FORMAT,
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
        cf__fail(st, CF_ERR_FORMAT,
                 "%s: %llu bytes after the last tensor's data (the data area "
                 "holds %llu)",
                 path, (unsigned long long)(f->data_size - at), (unsigned long long)f->data_size);
        return false;
    }
    for (int i = 1; i < f->n; i++) {
        const char *a = f->t[f->by_name[i - 1]].name;
        if (strcmp(a, f->t[f->by_name[i]].name) == 0) {
            char sn[CF_SHOW_BUF];
            cf__fail(st, CF_ERR_FORMAT, "%s: duplicate tensor name %s", path,
                     cf__show(a, sn, sizeof sn));
            return false;
        }
    }
    return true;
oom:
    cf_free(idx);
    cf__fail(st, CF_ERR_NOMEM, "%s: out of memory", path);
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
        cf__fail(st, CF_ERR_IO, "%s: %s: %s", fn, f->path, strerror(errno));
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
        cf__fail(st, CF_ERR_IO, "%s: %s: %s", fn, f->path, why);
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
        cf__fail(st, CF_ERR_NOMEM, "%s: %s: out of memory for %zu bytes", fn, f->path, size);
        close(fd);
        return false;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, f->file + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            cf__fail(st, CF_ERR_IO, "%s: %s: %s", fn, f->path, strerror(errno));
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
        cf__fail(&st, CF_ERR_ARG, "cf_safetensors_open: %s is NULL", path ? "out" : "path");
        return st;
    }
    cf_safetensors *f = cf_calloc(1, sizeof *f);
    if (f)
        f->path = cf__strdup(path);
    if (!f || !f->path) {
        cf_free(f);
        cf__fail(&st, CF_ERR_NOMEM, "cf_safetensors_open: %s: out of memory", path);
        return st;
    }
    if (!load_file(f, &st))
        goto fail;
    if (f->size < 8) {
        cf__fail(&st, CF_ERR_FORMAT,
                 "%s: file of %zu bytes is too short for the 8-byte header "
                 "length",
                 path, f->size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f->file[i];
    if (hlen > f->size - 8) {
        cf__fail(&st, CF_ERR_FORMAT,
                 "%s: header length %llu exceeds the %zu bytes that follow it "
                 "(truncated file?)",
                 path, (unsigned long long)hlen, f->size - 8);
        goto fail;
    }
    if (hlen > MAX_HEADER) {
        cf__fail(&st, CF_ERR_FORMAT, "%s: header length %llu exceeds the limit of %llu bytes", path,
                 (unsigned long long)hlen, (unsigned long long)MAX_HEADER);
        goto fail;
    }
    f->data = f->file + 8 + hlen;
    f->data_size = f->size - 8 - hlen;
    const unsigned char *h = f->file + 8;
    cf__json J = {
        .start = h, .p = h, .end = h + hlen, .who = path, .kind = CF_ERR_FORMAT, .st = &st};
    if (!parse_header(&J, f) || !validate(f, &st))
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
    cf__kv_free(&f->meta);
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
    return f && key ? cf__kv_get(&f->meta, key) : NULL;
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
        cf__fail(st, CF_ERR_ARG, "%s: %s is NULL", fn, f ? "name" : "file");
        return NULL;
    }
    const st_entry *e = find(f, name);
    char sn[CF_SHOW_BUF];
    if (!e) {
        cf__fail(st, CF_ERR_FORMAT, "%s: no tensor named %s", f->path,
                 cf__show(name, sn, sizeof sn));
        return NULL;
    }
    if (dtypes[e->dtype].cf < 0 && !(int64_ok && !strcmp(dtypes[e->dtype].name, "I64"))) {
        cf__fail(st, CF_ERR_DTYPE, "%s: tensor %s has dtype %s; cformer reads F32, I32 and BOOL",
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
    bool swap = es > 1 && !cf__little_endian();
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
        cf__fail(&st, CF_ERR_DIM, "%s: tensor %s has %d dims (cformer holds at most %d)", f->path,
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
        cf__fail(st, CF_ERR_NOMEM, "%s: out of memory reading %s", f->path,
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
            cf__fail(st, CF_ERR_DTYPE, "%s: tensor %s holds int64 %lld, beyond int32", f->path,
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
        cf__fail(&st, CF_ERR_SHAPE,
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
        cf__fail(&st, CF_ERR_DTYPE,
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
            cf__fail(&st, CF_ERR_ARG,
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
