/* Progress bar and log lines; see progress.h. */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime, fileno */
#endif
#include "progress.h"

#include <math.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 20
#define REDRAW    0.1 /* seconds between redraws of the bar */

double ex_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *ex_clock(double seconds, char *buf, size_t size)
{
    long s = isfinite(seconds) && seconds > 0 ? lround(seconds) : 0;
    if (s >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

void ex_progress_init(ex_progress *p, FILE *out, int epochs, const char *unit, double interval)
{
    double t = ex_now();
    *p = (ex_progress){.out = out,
                       .tty = out && isatty(fileno(out)),
                       .epochs = epochs,
                       .unit = unit ? unit : "items",
                       .interval = interval > 0 ? interval : 10,
                       .t_start = t,
                       .t_line = t,
                       .t_draw = -1};
}

void ex_progress_plan(ex_progress *p, int64_t planned, int64_t done)
{
    if (p->done == 0 && p->done_at_start == 0)
        p->done_at_start = done, p->done = done;
    p->planned = planned;
}

static void clear_bar(ex_progress *p)
{
    if (p->drawn)
        fputs("\r\033[K", p->out);
    p->drawn = false;
}

/* The ETA text: the planned steps left at the pace so far. */
static const char *eta(const ex_progress *p, double t, char *buf, size_t size)
{
    int64_t new_steps = p->done - p->done_at_start;
    if (new_steps < 1 || p->planned <= p->done)
        return ex_clock(0, buf, size);
    double per_step = (t - p->t_start) / (double)new_steps;
    return ex_clock(per_step * (double)(p->planned - p->done), buf, size);
}

void ex_progress_step(ex_progress *p, int epoch, int64_t step, int64_t steps, double loss,
                      int64_t items)
{
    if (!p->out)
        return;
    double t = ex_now();
    p->done++;
    p->loss_sum += loss, p->loss_n++;
    p->items_since += items;
    bool epoch_end = step >= steps;
    double span = t - p->t_line;
    char e1[32], e2[32];
    if (p->tty) {
        if (!epoch_end && p->t_draw >= 0 && t - p->t_draw < REDRAW)
            return;
        if (span > 0.5 || p->rate == 0)
            p->rate = span > 0 ? (double)p->items_since / span : 0;
        int fill = steps > 0 ? (int)(BAR_WIDTH * step / steps) : 0;
        char bar[BAR_WIDTH + 1];
        for (int i = 0; i < BAR_WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH] = '\0';
        fprintf(p->out, "\r\033[Kepoch %d/%d [%s] %lld/%lld  loss %.4f  %.0f %s/s  ETA %s", epoch,
                p->epochs, bar, (long long)step, (long long)steps, p->loss_sum / (double)p->loss_n,
                p->rate, p->unit, eta(p, t, e1, sizeof e1));
        p->drawn = true;
        p->t_draw = t;
        if (span > 0.5) /* the mean and the rate cover the last half second or more */
            p->t_line = t, p->loss_sum = 0, p->loss_n = 0, p->items_since = 0;
        if (epoch_end) {
            fputc('\n', p->out);
            p->drawn = false;
            p->t_line = t, p->loss_sum = 0, p->loss_n = 0, p->items_since = 0;
        }
        fflush(p->out);
        return;
    }
    if (!epoch_end && span < p->interval)
        return;
    p->rate = span > 0 ? (double)p->items_since / span : 0;
    fprintf(p->out, "epoch %d/%d  step %lld/%lld  loss %.4f  %.0f %s/s  elapsed %s  ETA %s\n",
            epoch, p->epochs, (long long)step, (long long)steps, p->loss_sum / (double)p->loss_n,
            p->rate, p->unit, ex_clock(t - p->t_start, e1, sizeof e1), eta(p, t, e2, sizeof e2));
    fflush(p->out);
    p->t_line = t, p->loss_sum = 0, p->loss_n = 0, p->items_since = 0;
}

void ex_progress_printf(ex_progress *p, const char *fmt, ...)
{
    if (!p->out)
        return;
    clear_bar(p);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->out, fmt, ap);
    va_end(ap);
    fflush(p->out);
    p->t_draw = -1; /* redraw the bar at the next step */
}

void ex_progress_done(ex_progress *p)
{
    if (p->out && p->drawn) {
        fputc('\n', p->out);
        fflush(p->out);
    }
    p->drawn = false;
}
