/* Saving safetensors files (io.h): the header written as JSON (json.h),
 * the tensors' bytes row-major and little-endian after it, the whole file
 * replaced atomically (atomic_file.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* qsort_r */
#endif

#include "cformer/io.h"
#include "tensor/atomic_file.h"
#include "tensor/internal.h"
#include "tensor/json.h"

#include <stdlib.h>
#include <string.h>

/* Bytes gathered before a write. */
#define WRITE_BUF ((size_t)1 << 16)

static const char *dtype_name(cf_dtype d)
{
    switch (d) {
    case CF_F32: return "F32";
    case CF_I32: return "I32";
    case CF_BOOL: return "BOOL";
    }
    return NULL;
}

static int cmp_name(const void *a, const void *b, void *names)
{
    const char *const *nm = names;
    return strcmp(nm[*(const int *)a], nm[*(const int *)b]);
}

/* Writes t's elements row-major and little-endian through buf
 * (WRITE_BUF bytes). */
static bool write_tensor(cf__atomic_file *w, const cf_tensor *t, unsigned char *buf)
{
    size_t es = cf_dtype_size(t->dtype);
    bool swap = es > 1 && !cf__little_endian();
    bool is_bool = t->dtype == CF_BOOL;
    int64_t n = cf_numel(t);
    if (n == 0)
        return true;
    if (cf_is_contiguous(t) && !swap && !is_bool)
        return cf__atomic_write(w, t->data, (size_t)n * es);
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
                if (!cf__atomic_write(w, buf, used))
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
    return cf__atomic_write(w, buf, used);
}

/* Checks the arguments of cf_safetensors_save. */
static bool check_save_args(const char *path, int n, const char *const *names,
                            cf_tensor *const *tensors, cf_status *st)
{
    const char *fn = "cf_safetensors_save";
    if (!path || n < 0 || (n > 0 && (!names || !tensors))) {
        cf__fail(st, CF_ERR_ARG, "%s: %s", fn,
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
            cf__fail(st, CF_ERR_ARG, "%s: %s: name %d is NULL", fn, path, i);
        else if (!cf__utf8_valid(nm) || strcmp(nm, "__metadata__") == 0)
            cf__fail(st, CF_ERR_ARG, "%s: %s: invalid tensor name %s", fn, path, nm);
        else if (!t)
            cf__fail(st, CF_ERR_ARG, "%s: %s: tensor %s is NULL", fn, path, nm);
        else if (!dtype_name(t->dtype) || t->ndim < 0 || t->ndim > CF_MAX_DIMS ||
                 (!t->data && cf_numel(t) > 0))
            cf__fail(st, CF_ERR_ARG, "%s: %s: tensor %s is not a valid tensor", fn, path, nm);
        if (*st != CF_OK)
            return false;
    }
    int *idx = cf_malloc(sizeof(int) * (n ? (size_t)n : 1));
    if (!idx) {
        cf__fail(st, CF_ERR_NOMEM, "%s: %s: out of memory", fn, path);
        return false;
    }
    for (int i = 0; i < n; i++)
        idx[i] = i;
    qsort_r(idx, (size_t)n, sizeof *idx, cmp_name, (void *)names);
    for (int i = 1; i < n; i++) {
        if (strcmp(names[idx[i - 1]], names[idx[i]]) == 0) {
            cf__fail(st, CF_ERR_ARG, "%s: %s: duplicate tensor name %s", fn, path, names[idx[i]]);
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
static bool build_header(cf__sbuf *h, int n, const char *const *names, cf_tensor *const *tensors,
                         const cf__kv *meta, int *order)
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

    cf__sb_str(h, "{");
    if (meta) {
        cf__sb_str(h, "\"__metadata__\":{");
        for (int i = 0; i < meta->n; i++) {
            if (i)
                cf__sb_str(h, ",");
            cf__sb_json(h, meta->kv[2 * i]);
            cf__sb_str(h, ":");
            cf__sb_json(h, meta->kv[2 * i + 1]);
        }
        cf__sb_str(h, "}");
    }
    for (int i = 0; i < n; i++) {
        const cf_tensor *t = tensors[i];
        uint64_t bytes = (uint64_t)cf_numel(t) * cf_dtype_size(t->dtype);
        if (i || meta)
            cf__sb_str(h, ",");
        cf__sb_json(h, names[i]);
        cf__sb_fmt(h, ":{\"dtype\":\"%s\",\"shape\":[", dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            cf__sb_fmt(h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        cf__sb_fmt(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)begin[i],
                   (unsigned long long)(begin[i] + bytes));
    }
    cf__sb_str(h, "}");
    /* One append: a loop until the length is a multiple of 8 would never
     * end once the buffer failed to grow. */
    cf__sb_put(h, "       ", (8 - h->n % 8) % 8);
    cf_free(begin);
    return !h->oom;
}

static cf_status safetensors_save(const char *path, int n, const char *const *names,
                                  cf_tensor *const *tensors, const char *metadata_json)
{
    const char *fn = "cf_safetensors_save";
    cf_status st = CF_OK;
    if (!check_save_args(path, n, names, tensors, &st))
        return st;
    cf__kv meta = {0};
    if (metadata_json) {
        const unsigned char *m = (const unsigned char *)metadata_json;
        cf__json J = {.start = m,
                      .p = m,
                      .end = m + strlen(metadata_json),
                      .who = "cf_safetensors_save: metadata_json",
                      .kind = CF_ERR_ARG,
                      .st = &st};
        if (cf__json_kv(&J, &meta, "to open metadata_json")) {
            cf__json_ws(&J);
            if (J.p != J.end)
                cf__json_fail(&J, "trailing characters after the object");
        }
        if (st != CF_OK) {
            cf__kv_free(&meta);
            return st;
        }
    }

    cf__sbuf h = {0};
    int *order = cf_malloc(sizeof(int) * (n ? (size_t)n : 1));
    unsigned char *buf = cf_malloc(WRITE_BUF);
    cf__atomic_file w = {.fd = -1};
    if (!order || !buf ||
        !build_header(&h, n, names, tensors, metadata_json ? &meta : NULL, order)) {
        cf__fail(&st, CF_ERR_NOMEM, "%s: %s: out of memory", fn, path);
    } else {
        unsigned char len8[8];
        for (int i = 0; i < 8; i++)
            len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
        bool ok = cf__atomic_begin(&w, path) && cf__atomic_write(&w, len8, 8) &&
                  cf__atomic_write(&w, h.s, h.n);
        for (int j = 0; ok && j < n; j++)
            ok = write_tensor(&w, tensors[order[j]], buf);
        if (!ok || !cf__atomic_commit(&w))
            cf__fail(&st, w.nomem ? CF_ERR_NOMEM : CF_ERR_IO, "%s: %s: %s", fn, path, w.why);
    }
    cf__atomic_end(&w);
    cf_free(buf);
    cf_free(order);
    cf_free(h.s);
    cf__kv_free(&meta);
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
