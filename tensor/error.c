/* The error mechanism (the rules are in tensor.h, "Errors"): the first error
 * on a thread is kept with its message until cf_error_clear, so a failed
 * expression reports its root cause; a status-returning call brackets its
 * work with cf_error_enter and cf_error_leave, so that it reports its own
 * outcome. */
#include "tensor/internal.h"

#include <stdio.h>
#include <string.h>

static _Thread_local cf_status err_status;
static _Thread_local char err_msg[sizeof(((cf_error_frame *)0)->msg)];
/* Counts the errors raised on this thread, recorded or not. */
static _Thread_local uint64_t err_seq;
static cf_error_fn err_handler;
static void *err_handler_ud;

cf_status cf_error(void) { return err_status; }

const char *cf_error_message(void) { return err_msg; }

void cf_error_clear(void)
{
    err_status = CF_OK;
    err_msg[0] = '\0';
}

bool cf__failed(void) { return err_status != CF_OK; }

void cf_set_error_handler(cf_error_fn fn, void *ud)
{
    err_handler = fn;
    err_handler_ud = ud;
}

const char *cf_status_str(cf_status s)
{
    switch (s) {
    case CF_OK: return "ok";
    case CF_ERR_SHAPE: return "shape mismatch";
    case CF_ERR_DTYPE: return "wrong dtype";
    case CF_ERR_DIM: return "dimension out of range";
    case CF_ERR_INDEX: return "index out of range";
    case CF_ERR_ARG: return "invalid argument";
    case CF_ERR_NOMEM: return "out of memory";
    case CF_ERR_NO_ARENA: return "no arena in use";
    case CF_ERR_STATE: return "invalid state";
    case CF_ERR_IO: return "i/o error";
    case CF_ERR_FORMAT: return "bad file format";
    case CF_ERR_NUMERIC: return "NaN or infinity";
    }
    return "unknown status";
}

void cf__error(cf_status s, const char *fmt, ...)
{
    err_seq++;
    if (err_status != CF_OK)
        return;
    err_status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    if (err_handler)
        err_handler(s, err_msg, err_handler_ud);
}

/* cf__error with a va_list. The message is formatted aside first: an
 * argument may be text in err_msg itself. */
static void verror(cf_status s, const char *fmt, va_list ap)
{
    if (err_status != CF_OK) {
        err_seq++;
        return;
    }
    char msg[sizeof err_msg];
    vsnprintf(msg, sizeof msg, fmt, ap);
    cf__error(s, "%s", msg);
}

void cf_error_set(cf_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(s, fmt, ap);
    va_end(ap);
}

void cf__fail(cf_status *st, cf_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(s, fmt, ap);
    va_end(ap);
    if (*st == CF_OK)
        *st = s;
}

bool cf__nonnull(const char *fn, const void *p, const char *what)
{
    if (!p)
        cf__error(CF_ERR_ARG, "%s: %s is NULL", fn, what);
    return p != NULL;
}

bool cf__check(const char *op, int n, cf_tensor *const *ts)
{
    for (int i = 0; i < n; i++) {
        if (!ts[i]) {
            cf__error(CF_ERR_ARG, "%s: operand %d is NULL", op, i);
            return false;
        }
    }
    return true;
}

bool cf_check_reserved(const char *fn, const char *type, const uint64_t *reserved, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (reserved[i] != 0) {
            cf__error(CF_ERR_ARG,
                      "%s: %s.reserved[%zu] is not 0 (zero-initialise the struct, "
                      "or build against the headers of the library in use)",
                      fn, type, i);
            return false;
        }
    }
    return true;
}

uint64_t cf__error_seq(void) { return err_seq; }

void cf_error_enter(cf_error_frame *saved)
{
    saved->status = err_status;
    if (err_status != CF_OK)
        memcpy(saved->msg, err_msg, sizeof err_msg);
    err_status = CF_OK;
    err_msg[0] = '\0';
}

cf_status cf_error_leave(const cf_error_frame *saved, cf_status st)
{
    if (err_status != CF_OK)
        return err_status;
    if (saved->status != CF_OK) {
        err_status = saved->status;
        memcpy(err_msg, saved->msg, sizeof err_msg);
    }
    return st;
}

cf_status cf__null_arg(const char *fn, const char *what)
{
    if (err_status == CF_OK)
        cf__error(CF_ERR_ARG, "%s: %s is NULL", fn, what);
    return err_status;
}

const char *cf__show(const char *s, char *buf, size_t size)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[8] = {(char)*p, '\0'};
        if (*p == 0xC0 && p[1] == 0x80) {
            strcpy(e, "\\u0000");
            p++;
        } else if (*p == '\n' || *p == '\t' || *p == '\r') {
            e[0] = '\\';
            e[1] = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
            e[2] = '\0';
        } else if (*p < 0x20 || *p == 0x7F) {
            snprintf(e, sizeof e, "\\x%02x", *p);
        }
        size_t k = strlen(e);
        if (n + k + 4 > size) { /* room for "..." and the NUL */
            snprintf(buf + n, size - n, "...");
            return buf;
        }
        memcpy(buf + n, e, k);
        n += k;
    }
    buf[n] = '\0';
    return buf;
}
