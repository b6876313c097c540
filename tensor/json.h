/* The JSON of safetensors headers: a strict reader of the few shapes the
 * format uses (objects walked by the caller, strings, non-negative
 * integers, objects of string values) that needs no tree, so a hostile
 * header costs bounded memory and depth; and a writer of escaped strings.
 * Strings hold UTF-8 where the pair C0 80 stands for U+0000 (io.h), so
 * each stays one C string. Internal to the library. */
#ifndef CF_TENSOR_JSON_H
#define CF_TENSOR_JSON_H

#include "tensor/internal.h"

#include <stdint.h>

/* Well-formed UTF-8 (no overlong forms, surrogates or code points beyond
 * U+10FFFF), C0 80 allowed. */
bool cf__utf8_valid(const char *s);

/* String pairs in the order given. Keys and values are owned by the map. */
typedef struct {
    char **kv; /* key 0, value 0, key 1, ... */
    int n;
    size_t cap;
} cf__kv;

void cf__kv_free(cf__kv *m);
/* The value of key, or NULL. */
const char *cf__kv_get(const cf__kv *m, const char *key);

/* A reader over [start, end). Every failure records an error through
 * cf__fail into *st: kind with "who: what (header byte N)", or
 * CF_ERR_NOMEM. */
typedef struct {
    const unsigned char *start, *p, *end;
    const char *who; /* message prefix: the file, or the function */
    cf_status kind;  /* CF_ERR_FORMAT for files, CF_ERR_ARG for arguments */
    cf_status *st;   /* the calling function's status */
} cf__json;

/* Records an error at the reader's position; returns false. */
bool cf__json_fail(cf__json *J, const char *fmt, ...) CF_PRINTF(2, 3);
/* Records running out of memory; returns false. */
bool cf__json_oom(cf__json *J);
/* Skips white space. */
void cf__json_ws(cf__json *J);
/* Skips white space and consumes c if it comes next. */
bool cf__json_accept(cf__json *J, char c);
/* As cf__json_accept, but a missing c is an error naming where. */
bool cf__json_expect(cf__json *J, char c, const char *where);
/* A string, decoded into a new NUL-terminated string in *out (the caller
 * frees it with cf_free). */
bool cf__json_string(cf__json *J, char **out, const char *what);
/* An integer from 0 to INT64_MAX (no sign, fraction or exponent). */
bool cf__json_uint(cf__json *J, uint64_t *v, const char *what);
/* {"key": "value", ...} appended to m; duplicate keys are refused. */
bool cf__json_kv(cf__json *J, cf__kv *m, const char *what);

/* A growable string; after a failed allocation it stops growing and oom
 * is set, so a writer checks once at the end. */
typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} cf__sbuf;

void cf__sb_put(cf__sbuf *b, const char *s, size_t n);
void cf__sb_str(cf__sbuf *b, const char *s);
/* Appends a formatted piece of at most 63 bytes. */
void cf__sb_fmt(cf__sbuf *b, const char *fmt, ...) CF_PRINTF(2, 3);
/* Appends s (valid UTF-8, C0 80 allowed) as a JSON string. */
void cf__sb_json(cf__sbuf *b, const char *s);

#endif
