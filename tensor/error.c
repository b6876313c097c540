/* The error mechanism: the first error on a thread is kept with its message
 * until cf_error_clear, so a failed expression reports its root cause. */
#include "tensor/internal.h"

#include <stdio.h>

static _Thread_local cf_status err_status;
static _Thread_local char err_msg[512];
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
    }
    return "unknown status";
}

void cf__error(cf_status s, const char *fmt, ...)
{
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

void cf_error_set(cf_status s, const char *fmt, ...)
{
    if (err_status != CF_OK)
        return;
    char msg[sizeof err_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cf__error(s, "%s", msg);
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
