/* A growable string; see strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ex_buf_add(ex_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = 2 * (b->len + n + 1) + 64;
        char *m = realloc(b->s, cap);
        if (!m) {
            b->failed = true;
            return;
        }
        b->s = m, b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void ex_buf_addf(ex_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        b->failed = true; /* a caller's bug: never cut text silently */
    else
        ex_buf_add(b, tmp, (size_t)n);
}

void ex_buf_json(ex_buf *b, const char *s)
{
    ex_buf_add(b, "\"", 1);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            ex_buf_addf(b, "\\%c", c);
        else if (c < 0x20)
            ex_buf_addf(b, "\\u%04x", c);
        else
            ex_buf_add(b, s, 1);
    }
    ex_buf_add(b, "\"", 1);
}

const char *ex_buf_str(const ex_buf *b) { return b->s && !b->failed ? b->s : ""; }

void ex_buf_free(ex_buf *b)
{
    free(b->s);
    *b = (ex_buf){0};
}
