/* IDX files; see idx.h. */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* stat */
#endif
#include "idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define TYPE_UBYTE 0x08

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *type_name(int t)
{
    switch (t) {
    case 0x08: return "unsigned bytes";
    case 0x09: return "signed bytes";
    case 0x0B: return "16-bit integers";
    case 0x0C: return "32-bit integers";
    case 0x0D: return "32-bit floats";
    case 0x0E: return "64-bit floats";
    }
    return "an unknown type";
}

static cf_status corrupt(const char *name, size_t offset, const char *what)
{
    cf_error_set(CF_ERR_FORMAT, "%s: offset %zu: %s", name, offset, what);
    return CF_ERR_FORMAT;
}

cf_status ex_idx_parse(const uint8_t *buf, size_t len, const char *name, ex_idx *out)
{
    char why[160];
    if (!name)
        name = "IDX data";
    if (!buf || !out) {
        cf_error_set(CF_ERR_ARG, "ex_idx_parse: %s: NULL buffer or output", name);
        return CF_ERR_ARG;
    }
    if (len < 4) {
        snprintf(why, sizeof why, "truncated: %zu bytes, shorter than the 4-byte magic number",
                 len);
        return corrupt(name, len, why);
    }
    if (buf[0] || buf[1]) {
        snprintf(why, sizeof why,
                 "magic number 0x%08x does not start with two zero bytes: not an IDX file",
                 be32(buf));
        return corrupt(name, 0, why);
    }
    if (buf[2] != TYPE_UBYTE) {
        snprintf(why, sizeof why, "element type 0x%02x (%s); only unsigned bytes (0x08) are read",
                 buf[2], type_name(buf[2]));
        return corrupt(name, 2, why);
    }
    int ndim = buf[3];
    if (ndim < 1 || ndim > EX_IDX_MAX_DIMS) {
        snprintf(why, sizeof why, "%d dimensions; 1 to %d are read", ndim, EX_IDX_MAX_DIMS);
        return corrupt(name, 3, why);
    }
    size_t head = 4 + 4 * (size_t)ndim;
    if (len < head) {
        snprintf(why, sizeof why,
                 "truncated: the header of %d sizes needs %zu bytes, the data "
                 "holds %zu",
                 ndim, head, len);
        return corrupt(name, len, why);
    }
    ex_idx r = {.ndim = ndim};
    size_t size = 1;
    for (int i = 0; i < ndim; i++) {
        r.dims[i] = be32(buf + 4 + 4 * i);
        if (r.dims[i] == 0) {
            snprintf(why, sizeof why, "size %d is 0", i);
            return corrupt(name, 4 + 4 * (size_t)i, why);
        }
        /* Bounded by the real length, so the product cannot overflow. */
        if (r.dims[i] > (len - head) / size) {
            snprintf(why, sizeof why,
                     "the sizes claim more data than the %zu bytes after the header (size %d is "
                     "%u)",
                     len - head, i, r.dims[i]);
            return corrupt(name, 4 + 4 * (size_t)i, why);
        }
        size *= r.dims[i];
    }
    if (size != len - head) {
        snprintf(why, sizeof why, "%zu bytes follow the %zu the sizes claim", len - head - size,
                 size);
        return corrupt(name, head + size, why);
    }
    r.data = buf + head;
    r.size = size;
    *out = r;
    return CF_OK;
}

/* zlib's reason for the last failure on f, without the file name zlib
 * puts in front. */
static const char *gz_reason(gzFile f, const char *path)
{
    int err;
    const char *msg = gzerror(f, &err);
    size_t n = strlen(path);
    if (err == Z_ERRNO)
        return strerror(errno);
    if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
        msg += n + 2;
    return err == Z_OK ? "no error" : msg;
}

/* Reads all of f (decompressed) into a malloc'd buffer that grows with
 * what is really read. */
static cf_status read_all(gzFile f, const char *path, uint8_t **out, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        cf_error_set(CF_ERR_NOMEM, "%s: out of memory", path);
        return CF_ERR_NOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= EX_IDX_MAX_BYTES) {
                free(buf);
                cf_error_set(CF_ERR_FORMAT,
                             "%s: offset %zu: content longer than %zu bytes, the "
                             "most an IDX file is read to",
                             path, n, (size_t)EX_IDX_MAX_BYTES);
                return CF_ERR_FORMAT;
            }
            uint8_t *b = realloc(buf, 2 * cap);
            if (!b) {
                free(buf);
                cf_error_set(CF_ERR_NOMEM, "%s: out of memory after %zu bytes", path, n);
                return CF_ERR_NOMEM;
            }
            buf = b, cap *= 2;
        }
        size_t want = cap - n < (1u << 24) ? cap - n : 1u << 24;
        int got = gzread(f, buf + n, (unsigned)want);
        if (got < 0) {
            cf_error_set(CF_ERR_FORMAT,
                         "%s: offset %zu of the decompressed content: corrupt "
                         "gzip data: %s",
                         path, n, gz_reason(f, path));
            free(buf);
            return CF_ERR_FORMAT;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    /* A truncated gzip stream ends without an error from gzread: gzclose
     * or gzerror tells. */
    int err;
    gzerror(f, &err);
    if (err != Z_OK && err != Z_BUF_ERROR) {
        cf_error_set(CF_ERR_FORMAT, "%s: offset %zu of the decompressed content: %s", path, n,
                     gz_reason(f, path));
        free(buf);
        return CF_ERR_FORMAT;
    }
    if (err == Z_BUF_ERROR) {
        cf_error_set(CF_ERR_FORMAT,
                     "%s: offset %zu of the decompressed content: the gzip "
                     "stream is truncated",
                     path, n);
        free(buf);
        return CF_ERR_FORMAT;
    }
    *out = buf, *len = n;
    return CF_OK;
}

cf_status ex_idx_load(const char *path, const char *package, ex_idx_file *out)
{
    if (!path || !out) {
        cf_error_set(CF_ERR_ARG, "ex_idx_load: NULL path or output");
        return CF_ERR_ARG;
    }
    *out = (ex_idx_file){0};
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        int e = errno;
        if (e == ENOENT && package)
            cf_error_set(CF_ERR_IO,
                         "%s: %s; it comes with the Debian package %s: apt-get install "
                         "%s (or pass --data with the folder that holds it)",
                         path, strerror(e), package, package);
        else
            cf_error_set(CF_ERR_IO, "%s: cannot open: %s", path, e ? strerror(e) : "out of memory");
        return e ? CF_ERR_IO : CF_ERR_NOMEM;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    cf_status st = read_all(f, path, &buf, &len);
    gzclose(f);
    if (!st)
        st = ex_idx_parse(buf, len, path, &out->idx);
    if (st) {
        free(buf);
        *out = (ex_idx_file){0};
        return st;
    }
    out->buf = buf;
    return CF_OK;
}

void ex_idx_file_free(ex_idx_file *f)
{
    if (!f)
        return;
    free(f->buf);
    *f = (ex_idx_file){0};
}

/* dir/name.gz, or dir/name when only that exists. */
static cf_status find(char *buf, size_t size, const char *dir, const char *name)
{
    struct stat st;
    if ((size_t)snprintf(buf, size, "%s/%s.gz", dir, name) >= size) {
        cf_error_set(CF_ERR_ARG, "%s: path too long", dir);
        return CF_ERR_ARG;
    }
    char plain[4096];
    if (stat(buf, &st) != 0 &&
        (size_t)snprintf(plain, sizeof plain, "%s/%s", dir, name) < sizeof plain &&
        stat(plain, &st) == 0)
        snprintf(buf, size, "%s", plain);
    return CF_OK;
}

cf_status ex_idx_load_set(const char *dir, const char *set, int classes, const char *package,
                          ex_idx_set *out)
{
    char ipath[4096], lpath[4096], name[256];
    *out = (ex_idx_set){0};
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", set);
    cf_status st = find(ipath, sizeof ipath, dir, name);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", set);
    if (!st)
        st = find(lpath, sizeof lpath, dir, name);
    if (!st)
        st = ex_idx_load(ipath, package, &out->img);
    if (!st)
        st = ex_idx_load(lpath, package, &out->lab);
    const ex_idx *im = &out->img.idx, *lb = &out->lab.idx;
    if (!st && im->ndim != 3) {
        cf_error_set(CF_ERR_FORMAT, "%s: %d dimensions, expected 3 (images, rows, columns)", ipath,
                     im->ndim);
        st = CF_ERR_FORMAT;
    } else if (!st && lb->ndim != 1) {
        cf_error_set(CF_ERR_FORMAT, "%s: %d dimensions, expected 1 (one label an image)", lpath,
                     lb->ndim);
        st = CF_ERR_FORMAT;
    } else if (!st && im->dims[0] != lb->dims[0]) {
        cf_error_set(CF_ERR_FORMAT, "%s holds %u labels but %s holds %u images", lpath, lb->dims[0],
                     ipath, im->dims[0]);
        st = CF_ERR_FORMAT;
    }
    for (uint32_t i = 0; !st && i < lb->dims[0]; i++)
        if (lb->data[i] >= classes) {
            cf_error_set(CF_ERR_FORMAT, "%s: offset %u: label %d is not a class 0 to %d", lpath,
                         8 + i, lb->data[i], classes - 1);
            st = CF_ERR_FORMAT;
        }
    if (st) {
        ex_idx_set_free(out);
        return st;
    }
    out->n = im->dims[0];
    out->rows = (int)im->dims[1], out->cols = (int)im->dims[2];
    out->images = im->data, out->labels = lb->data;
    return CF_OK;
}

void ex_idx_set_free(ex_idx_set *s)
{
    if (!s)
        return;
    ex_idx_file_free(&s->img);
    ex_idx_file_free(&s->lab);
    *s = (ex_idx_set){0};
}
