/* examples/common/flags.h: command-line flags from one table, over
 * getopt_long.
 *
 * Each flag is a row: its long name, its kind, where the value goes, the
 * accepted range and one line of help. The table drives the parser
 * (--opt=value and --opt value; a bool is --opt or --no-opt), the range
 * checks and the --help text, which shows each flag's default read from its
 * variable before parsing.
 *
 *     ex_common c = ex_common_defaults("/usr/share/datasets/x", "x_out");
 *     int width = 64;
 *     const ex_flag flags[] = {
 *         EX_COMMON_FLAGS(&c),
 *         {"width", EX_INT, &width, 8, 1024, false, "model width"},
 *     };
 *     switch (ex_flags_parse(flags, EX_COUNT(flags), argc, argv)) {
 *     case EX_FLAGS_HELP: ex_flags_usage(stdout, argv[0], "Trains x.", flags, EX_COUNT(flags));
 *                         return 0;
 *     case EX_FLAGS_ERROR: fprintf(stderr, "%s\n", cf_error_message()); return 2;
 *     case EX_FLAGS_OK: break;
 *     }
 *
 * Errors are recorded with cf_error_set (CF_ERR_ARG) and name the flag, the
 * value and the accepted range: "--epochs 0: must be from 1 to 100000".
 * Nothing here exits; main decides.
 */
#ifndef EXAMPLES_COMMON_FLAGS_H
#define EXAMPLES_COMMON_FLAGS_H

#include <cformer/tensor.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define EX_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

typedef enum {
    EX_BOOL,   /* bool *: --name sets it, --no-name clears it */
    EX_INT,    /* int * */
    EX_U64,    /* uint64_t * (seeds) */
    EX_FLOAT,  /* float * */
    EX_DOUBLE, /* double * */
    EX_STRING, /* const char **: points into argv; must not be empty */
} ex_flag_kind;

typedef struct {
    const char *name; /* long name without the dashes */
    ex_flag_kind kind;
    void *dst;
    /* Numbers: accepted values are [min, max] ((min, max] when open_min);
     * min == max == 0 accepts any finite value. */
    double min, max;
    bool open_min;
    const char *help; /* one line */
} ex_flag;

typedef enum { EX_FLAGS_OK, EX_FLAGS_HELP, EX_FLAGS_ERROR } ex_flags_result;

/* Parses argv against the n flags, storing values as they come (a flag
 * given twice keeps the last). Returns EX_FLAGS_HELP when -h or --help is
 * given (nothing printed; see ex_flags_usage), EX_FLAGS_ERROR with
 * CF_ERR_ARG recorded for an unknown flag, a missing, malformed or out of
 * range value, a stray argument or a bad table, or CF_ERR_NOMEM; on error
 * some variables may already hold new values. Uses getopt_long's globals,
 * so it is not thread-safe. */
ex_flags_result ex_flags_parse(const ex_flag *flags, int n, int argc, char **argv);

/* Prints "Usage: <prog> [OPTION]...", the about text and one line per flag
 * with its help, the current value of its variable as the default and its
 * range. prog may be a path: only its last component is shown. */
void ex_flags_usage(FILE *f, const char *prog, const char *about, const ex_flag *flags, int n);

/* The flags every example takes. */
typedef struct {
    const char *data; /* where the data is (a directory or a file) */
    const char *out;  /* the folder for the checkpoint, pictures and report */
    int epochs;       /* at most this many epochs */
    double minutes;   /* the time budget of the whole run; 0: none */
    int batch;
    float lr;       /* the peak learning rate */
    int threads;    /* kernel threads; 0: CF_NUM_THREADS or all cores */
    uint64_t seed;  /* initialisation, data order, dropout */
    bool resume;    /* continue from <out>/checkpoint.safetensors */
    int stop_after; /* end after this epoch as if interrupted; 0: never */
    bool quick;     /* a short smoke run that fails unless the loss falls */
} ex_common;

/* Defaults for everything but what each example chooses itself (epochs,
 * minutes, batch, lr): threads 0, seed 42, no resume, not quick. */
ex_common ex_common_defaults(const char *data, const char *out);

/* The rows for an ex_common, to open an example's table. */
/* clang-format off */
#define EX_COMMON_FLAGS(c)                                                                         \
    {"data", EX_STRING, &(c)->data, 0, 0, false, "where the data is"},                             \
    {"epochs", EX_INT, &(c)->epochs, 1, 100000, false, "at most this many epochs"},                \
    {"minutes", EX_DOUBLE, &(c)->minutes, 0, 1e6, false,                                           \
     "time budget of the whole run in minutes (0: none)"},                                         \
    {"batch", EX_INT, &(c)->batch, 1, 1 << 20, false, "training batch size"},                      \
    {"lr", EX_FLOAT, &(c)->lr, 0, 10, true, "peak learning rate"},                                 \
    {"threads", EX_INT, &(c)->threads, 0, 1024, false,                                             \
     "kernel threads (0: CF_NUM_THREADS, else all cores)"},                                        \
    {"seed", EX_U64, &(c)->seed, 0, 9007199254740992.0, false,                                     \
     "seed of initialisation, data order and dropout"},                                            \
    {"out", EX_STRING, &(c)->out, 0, 0, false, "folder for the checkpoint, pictures and report"},  \
    {"resume", EX_BOOL, &(c)->resume, 0, 0, false,                                                 \
     "continue from the checkpoint in --out (same settings)"},                                     \
    {"stop-after", EX_INT, &(c)->stop_after, 0, 100000, false,                                     \
     "end after this epoch as if interrupted, to --resume later (0: never)"},                      \
    {"quick", EX_BOOL, &(c)->quick, 0, 0, false,                                                   \
     "a short smoke run on a slice of the data; fails unless the loss falls"}
/* clang-format on */

#endif
