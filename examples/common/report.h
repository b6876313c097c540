/* examples/common/report.h: the one JSON line an example ends with.
 *
 * Scripts read an example's results from its last line of stdout without
 * parsing prose:
 *
 *     {"example": "copy", "metrics": {"test_exact": 1, "final_loss": 0.0123},
 *      "wall_seconds": 71.4, "threads": 2, "parameters": 77451,
 *      "command": "./copy --epochs 20"}
 *
 * (one line in the output). Metrics keep the order they were added in;
 * a non-finite number is written as null, since JSON has no NaN.
 *
 *     ex_report r;
 *     ex_report_init(&r, "copy");
 *     ex_report_num(&r, "test_exact", acc);
 *     ex_report_int(&r, "epochs", epochs);
 *     if (ex_report_print(&r, stdout, wall, threads, params, argc, argv) != CF_OK)
 *         ...
 *     ex_report_free(&r);
 */
#ifndef EXAMPLES_COMMON_REPORT_H
#define EXAMPLES_COMMON_REPORT_H

#include "strbuf.h"

#include <cformer/tensor.h>

#include <stdio.h>

/* Fields are private. */
typedef struct {
    const char *example;
    ex_buf metrics; /* the inside of the metrics object */
} ex_report;

void ex_report_init(ex_report *r, const char *example);
/* Adds a metric (the key is escaped as needed). Out of memory is reported
 * by ex_report_print. */
void ex_report_num(ex_report *r, const char *key, double value);
void ex_report_int(ex_report *r, const char *key, int64_t value);
void ex_report_str(ex_report *r, const char *key, const char *value);
/* Writes the line: the metrics, wall time, threads, parameter count and
 * the command (argv joined, with shell quoting where needed), and flushes.
 * Returns CF_OK, CF_ERR_NOMEM (recorded) when adding a metric ran out of
 * memory, or CF_ERR_IO (recorded) when the write fails. */
cf_status ex_report_print(const ex_report *r, FILE *out, double wall_seconds, int threads,
                          int64_t parameters, int argc, char **argv);
/* Frees the metrics; the report may be initialised again. */
void ex_report_free(ex_report *r);

#endif
