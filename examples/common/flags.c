/* Table-driven flags over getopt_long; see flags.h. */
#include "flags.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

ex_common ex_common_defaults(const char *data, const char *out)
{
    return (ex_common){.data = data, .out = out, .seed = 42};
}

static bool ranged(const ex_flag *f) { return f->min != 0 || f->max != 0; }

static bool in_range(const ex_flag *f, double v)
{
    if (!ranged(f))
        return true;
    return (f->open_min ? v > f->min : v >= f->min) && v <= f->max;
}

/* "from 1 to 100" or "above 0 and at most 10". */
static void range_text(const ex_flag *f, char *buf, size_t size)
{
    if (f->open_min)
        snprintf(buf, size, "above %g and at most %g", f->min, f->max);
    else
        snprintf(buf, size, "from %g to %g", f->min, f->max);
}

static cf_status bad_value(const ex_flag *f, const char *v, const char *why)
{
    cf_error_set(CF_ERR_ARG, "--%s '%s': %s", f->name, v, why);
    return CF_ERR_ARG;
}

/* Stores the text v as flag f's value, or records why it cannot. */
static cf_status set_value(const ex_flag *f, const char *v)
{
    char *end = NULL, range[80];
    errno = 0;
    switch (f->kind) {
    case EX_STRING:
        if (!*v)
            return bad_value(f, v, "must not be empty");
        *(const char **)f->dst = v;
        return CF_OK;
    case EX_INT:
    case EX_U64: {
        /* strtoll, not strtoull: the latter takes "-1" as a huge number. */
        long long x = strtoll(v, &end, 10);
        if (end == v || *end || errno == ERANGE)
            return bad_value(f, v, "not a whole number");
        if (!in_range(f, (double)x) || (f->kind == EX_U64 && x < 0) ||
            (f->kind == EX_INT && (x < -2147483647LL || x > 2147483647LL))) {
            range_text(f, range, sizeof range);
            return bad_value(f, v, ranged(f) ? range : "out of range");
        }
        if (f->kind == EX_INT)
            *(int *)f->dst = (int)x;
        else
            *(uint64_t *)f->dst = (uint64_t)x;
        return CF_OK;
    }
    case EX_FLOAT:
    case EX_DOUBLE: {
        double x = strtod(v, &end);
        if (end == v || *end || !isfinite(x) || (f->kind == EX_FLOAT && fabs(x) > 3e38))
            return bad_value(f, v, "not a finite number");
        if (!in_range(f, x)) {
            range_text(f, range, sizeof range);
            char why[100];
            snprintf(why, sizeof why, "must be %s", range);
            return bad_value(f, v, why);
        }
        if (f->kind == EX_FLOAT)
            *(float *)f->dst = (float)x;
        else
            *(double *)f->dst = x;
        return CF_OK;
    }
    case EX_BOOL: break;
    }
    cf_error_set(CF_ERR_ARG, "--%s: a bool flag takes no value", f->name);
    return CF_ERR_ARG;
}

/* Option i of the getopt table is flag i / 2, the --no- form when odd. */
ex_flags_result ex_flags_parse(const ex_flag *flags, int n, int argc, char **argv)
{
    if (!flags || n < 0 || argc < 1 || !argv) {
        cf_error_set(CF_ERR_ARG, "ex_flags_parse: no flags or no arguments");
        return EX_FLAGS_ERROR;
    }
    /* The --no- names need storage of their own. */
    struct option *opts = calloc((size_t)(2 * n + 2), sizeof *opts);
    char **negs = calloc((size_t)n + 1, sizeof *negs);
    bool ok = opts && negs;
    if (!ok)
        cf_error_set(CF_ERR_NOMEM, "ex_flags_parse: out of memory for %d flags", n);
    int m = 0;
    for (int i = 0; ok && i < n; i++) {
        const ex_flag *f = &flags[i];
        if (!f->name || !*f->name || !f->dst || (unsigned)f->kind > EX_STRING) {
            cf_error_set(CF_ERR_ARG,
                         "ex_flags_parse: flag %d has no name, no variable or an "
                         "unknown kind",
                         i);
            ok = false;
            break;
        }
        opts[m++] = (struct option){f->name, f->kind == EX_BOOL ? no_argument : required_argument,
                                    NULL, 2 * i};
        if (f->kind == EX_BOOL) {
            size_t len = strlen(f->name) + 4;
            negs[i] = malloc(len);
            if (!negs[i]) {
                cf_error_set(CF_ERR_NOMEM, "ex_flags_parse: out of memory");
                ok = false;
                break;
            }
            snprintf(negs[i], len, "no-%s", f->name);
            opts[m++] = (struct option){negs[i], no_argument, NULL, 2 * i + 1};
        }
    }
    const int HELP = 2 * n + 1;
    if (ok)
        opts[m++] = (struct option){"help", no_argument, NULL, HELP};

    ex_flags_result r = ok ? EX_FLAGS_OK : EX_FLAGS_ERROR;
    optind = 1;
    opterr = 0; /* our messages, recorded, instead of getopt's on stderr */
    int c;
    while (r == EX_FLAGS_OK && (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h' || c == HELP) {
            r = EX_FLAGS_HELP;
        } else if (c == '?' || c == ':') {
            /* optind has moved past the offending word. */
            const char *word = argv[optind - 1];
            if (c == ':')
                cf_error_set(CF_ERR_ARG, "%s needs a value (see --help)", word);
            else if (strncmp(word, "--", 2) == 0 && strchr(word, '='))
                cf_error_set(CF_ERR_ARG,
                             "'%s': unknown option, or a value for one that takes "
                             "none (see --help)",
                             word);
            else if (strncmp(word, "--", 2) == 0 || !optopt)
                cf_error_set(CF_ERR_ARG, "unknown option '%s' (see --help)", word);
            else
                cf_error_set(CF_ERR_ARG, "unknown option '-%c' (see --help)", optopt);
            r = EX_FLAGS_ERROR;
        } else {
            const ex_flag *f = &flags[c / 2];
            if (f->kind == EX_BOOL)
                *(bool *)f->dst = !(c & 1);
            else if (set_value(f, optarg) != CF_OK)
                r = EX_FLAGS_ERROR;
        }
    }
    if (r == EX_FLAGS_OK && optind < argc) {
        cf_error_set(CF_ERR_ARG, "unexpected argument '%s' (options start with --; see --help)",
                     argv[optind]);
        r = EX_FLAGS_ERROR;
    }
    for (int i = 0; negs && i < n; i++)
        free(negs[i]);
    free(negs);
    free(opts);
    return r;
}

static const char *metavar(ex_flag_kind k)
{
    switch (k) {
    case EX_INT:
    case EX_U64: return "N";
    case EX_FLOAT:
    case EX_DOUBLE: return "X";
    case EX_STRING: return "S";
    case EX_BOOL: break;
    }
    return "";
}

void ex_flags_usage(FILE *f, const char *prog, const char *about, const ex_flag *flags, int n)
{
    const char *base = prog ? strrchr(prog, '/') : NULL;
    base = base ? base + 1 : prog ? prog : "program";
    fprintf(f, "Usage: %s [OPTION]...\n", base);
    if (about && *about)
        fprintf(f, "%s\n", about);
    fprintf(f, "\nOptions (--opt=value or --opt value):\n");
    for (int i = 0; i < n; i++) {
        const ex_flag *x = &flags[i];
        char left[64], def[96] = "", range[80] = "";
        if (x->kind == EX_BOOL)
            snprintf(left, sizeof left, "--[no-]%s", x->name);
        else
            snprintf(left, sizeof left, "--%s=%s", x->name, metavar(x->kind));
        switch (x->kind) {
        case EX_BOOL: snprintf(def, sizeof def, "%s", *(bool *)x->dst ? "on" : "off"); break;
        case EX_INT: snprintf(def, sizeof def, "%d", *(int *)x->dst); break;
        case EX_U64:
            snprintf(def, sizeof def, "%llu", (unsigned long long)*(uint64_t *)x->dst);
            break;
        case EX_FLOAT: snprintf(def, sizeof def, "%g", (double)*(float *)x->dst); break;
        case EX_DOUBLE: snprintf(def, sizeof def, "%g", *(double *)x->dst); break;
        case EX_STRING:
            snprintf(def, sizeof def, "%s", *(const char **)x->dst ? *(const char **)x->dst : "");
            break;
        }
        if (x->kind != EX_BOOL && x->kind != EX_STRING && ranged(x)) {
            char r[64];
            range_text(x, r, sizeof r);
            snprintf(range, sizeof range, "; %s", r);
        }
        fprintf(f, "  %-20s %s (default: %s%s)\n", left, x->help ? x->help : "", def, range);
    }
    fprintf(f, "  %-20s %s\n", "-h, --help", "show this help and exit");
}
