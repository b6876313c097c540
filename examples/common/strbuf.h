/* examples/common/strbuf.h: a growable string for building JSON text.
 *
 *     ex_buf b = {0};
 *     ex_buf_add(&b, "{", 1);
 *     ex_buf_json(&b, "a \"quoted\" key");
 *     ex_buf_addf(&b, ": %d}", 3);
 *     if (!b.failed)
 *         puts(b.s);
 *     ex_buf_free(&b);
 *
 * Out of memory sets `failed` and turns later calls into no-ops, so a
 * caller checks once at the end.
 */
#ifndef EXAMPLES_COMMON_STRBUF_H
#define EXAMPLES_COMMON_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *s; /* NUL-terminated once anything is added; NULL before */
    size_t len, cap;
    bool failed;
} ex_buf;

/* Appends n bytes of s. */
void ex_buf_add(ex_buf *b, const char *s, size_t n);
/* Appends printf-style text (up to 255 bytes a call). */
void ex_buf_addf(ex_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends s as a JSON string, quoted: quotes, backslashes and control
 * characters escaped, other bytes (UTF-8) as they are. */
void ex_buf_json(ex_buf *b, const char *s);
/* The text so far ("" when empty or failed). */
const char *ex_buf_str(const ex_buf *b);
/* Frees the text; the buffer is empty and usable again. */
void ex_buf_free(ex_buf *b);

#endif
