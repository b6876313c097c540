/* The final JSON line; see report.h. */
#include "report.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void ex_report_init(ex_report *r, const char *example) { *r = (ex_report){.example = example}; }

void ex_report_free(ex_report *r) { ex_buf_free(&r->metrics); }

/* `"k": ` after a comma unless it opens the object. */
static void key(ex_buf *b, const char *k)
{
    if (b->len)
        ex_buf_add(b, ", ", 2);
    ex_buf_json(b, k);
    ex_buf_add(b, ": ", 2);
}

/* The shortest text that reads back as the same double, or null. */
static void number(ex_buf *b, double v)
{
    if (!isfinite(v)) {
        ex_buf_add(b, "null", 4);
        return;
    }
    char text[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(text, sizeof text, "%.*g", prec, v);
        if (strtod(text, NULL) == v)
            break;
    }
    ex_buf_add(b, text, strlen(text));
}

void ex_report_num(ex_report *r, const char *k, double value)
{
    key(&r->metrics, k);
    number(&r->metrics, value);
}

void ex_report_int(ex_report *r, const char *k, int64_t value)
{
    key(&r->metrics, k);
    ex_buf_addf(&r->metrics, "%" PRId64, value);
}

void ex_report_str(ex_report *r, const char *k, const char *value)
{
    key(&r->metrics, k);
    ex_buf_json(&r->metrics, value);
}

/* Whether a word reaches a shell as one argument without quotes. */
static bool plain_word(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *s))
            return false;
    return true;
}

cf_status ex_report_print(const ex_report *r, FILE *out, double wall_seconds, int threads,
                          int64_t parameters, int argc, char **argv)
{
    ex_buf cmd = {0}, line = {0};
    for (int i = 0; i < argc; i++) {
        if (i)
            ex_buf_add(&cmd, " ", 1);
        if (plain_word(argv[i])) {
            ex_buf_add(&cmd, argv[i], strlen(argv[i]));
            continue;
        }
        ex_buf_add(&cmd, "'", 1);
        for (const char *s = argv[i]; *s; s++)
            ex_buf_add(&cmd, *s == '\'' ? "'\\''" : s, *s == '\'' ? 4 : 1);
        ex_buf_add(&cmd, "'", 1);
    }
    ex_buf_add(&line, "{", 1);
    ex_buf_json(&line, "example");
    ex_buf_add(&line, ": ", 2);
    ex_buf_json(&line, r->example ? r->example : "");
    key(&line, "metrics");
    ex_buf_addf(&line, "{");
    ex_buf_add(&line, ex_buf_str(&r->metrics), strlen(ex_buf_str(&r->metrics)));
    ex_buf_add(&line, "}", 1);
    key(&line, "wall_seconds");
    number(&line, round(wall_seconds * 100) / 100);
    key(&line, "threads");
    ex_buf_addf(&line, "%d", threads);
    key(&line, "parameters");
    ex_buf_addf(&line, "%" PRId64, parameters);
    key(&line, "command");
    ex_buf_json(&line, ex_buf_str(&cmd));
    ex_buf_add(&line, "}\n", 2);
    cf_status st = CF_OK;
    if (r->metrics.failed || line.failed || cmd.failed) {
        cf_error_set(CF_ERR_NOMEM, "report: out of memory");
        st = CF_ERR_NOMEM;
    } else if (fputs(line.s, out) < 0 || fflush(out) != 0) {
        cf_error_set(CF_ERR_IO, "report: cannot write the result line");
        st = CF_ERR_IO;
    }
    ex_buf_free(&cmd);
    ex_buf_free(&line);
    return st;
}
