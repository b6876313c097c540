/* examples/common/progress.h: training progress on a terminal or in a log.
 *
 * On a terminal (isatty) one line is redrawn in place, at most ten times a
 * second:
 *
 *     epoch 3/30 [#########.......]  412/469  loss 0.4123  5210 img/s  ETA 11:02
 *
 * Anywhere else (a pipe, a file, CI) plain lines are printed, one every
 * `interval` seconds and one at the end of every epoch, so logs stay
 * short and greppable:
 *
 *     epoch 3/30  step 412/469  loss 0.4123  5210 img/s  elapsed 2:11  ETA 11:02
 *
 *     ex_progress p;
 *     ex_progress_init(&p, stdout, epochs, "img", 10);
 *     ex_progress_plan(&p, total_steps);           // again when a budget shortens it
 *     for (...) {
 *         ... one step over b items ...
 *         ex_progress_step(&p, epoch, s + 1, steps_per_epoch, loss, b);
 *     }
 *     ex_progress_printf(&p, "epoch %d  test accuracy %.2f%%\n", epoch, 100 * acc);
 *     ex_progress_done(&p);
 *
 * The loss shown is the mean over the steps since the last line. The ETA
 * is the remaining planned steps at the pace of the run so far. Nothing
 * here allocates.
 */
#ifndef EXAMPLES_COMMON_PROGRESS_H
#define EXAMPLES_COMMON_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Seconds on a monotonic clock. */
double ex_now(void);

/* "m:ss", or "h:mm:ss" from an hour on, into buf (returned). */
const char *ex_clock(double seconds, char *buf, size_t size);

/* Fields are private. */
typedef struct {
    FILE *out;
    bool tty, drawn; /* drawn: a bar is on the current line */
    int epochs;
    const char *unit;
    double interval;
    double t_start, t_line, t_draw;
    int64_t planned, done, done_at_start;
    double loss_sum;
    int64_t loss_n, items_since;
    double rate; /* items per second over the last line's span */
} ex_progress;

/* Starts reporting to out (a terminal gets the bar) for a run of at most
 * `epochs` epochs; unit names the items ("img", "seq"); interval is the
 * seconds between plain lines. */
void ex_progress_init(ex_progress *p, FILE *out, int epochs, const char *unit, double interval);
/* Sets the steps the whole run will take, for the ETA, and the steps
 * already done (a resumed run starts there: its pace counts only new
 * steps). */
void ex_progress_plan(ex_progress *p, int64_t planned, int64_t done);
/* Records a step (1-based `step` of `steps` in `epoch`) with its loss over
 * `items` items, and draws or prints when due. */
void ex_progress_step(ex_progress *p, int epoch, int64_t step, int64_t steps, double loss,
                      int64_t items);
/* Prints a message as its own line (clearing a bar first). */
void ex_progress_printf(ex_progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Ends the bar's line, if one is drawn. */
void ex_progress_done(ex_progress *p);

#endif
