/* cf_viz_lines: curves on numbered axes with a legend. */
#include "viz/internal.h"

#include <math.h>
#include <stdio.h>

#define PAD       10
#define TICK      5 /* tick mark length */
#define GAP       4 /* between a tick mark and its number */
#define MAX_TICKS 64
#define LINE_W    2.0f /* curve width */
#define SWATCH    22   /* length of a legend's line sample */

/* Okabe and Ito's colour-blind-safe palette, without its yellow (too pale on
 * white), cycled over the series: the first cycle solid, the second dashed,
 * the third dotted, and so on again. */
static const cfv_rgb palette[] = {
    {0, 114, 178}, {213, 94, 0},   {0, 158, 115}, {204, 121, 167},
    {230, 159, 0}, {86, 180, 233}, {0, 0, 0},
};
#define NPALETTE (int)(sizeof palette / sizeof palette[0])

/* One axis: the data range after padding, and where its ticks go. */
typedef struct {
    double lo, hi; /* in plotted units (log10 of y for a log axis) */
    bool log;
    int n;
    double at[MAX_TICKS]; /* tick positions in plotted units */
    char text[MAX_TICKS][32];
    int text_w; /* widest tick number */
} axis;

/* The plotted coordinate of a value, or NAN when it cannot be drawn. */
static double plotted(double v, bool log)
{
    if (!isfinite(v) || (log && v <= 0))
        return NAN;
    return log ? log10(v) : v;
}

/* Pads [lo, hi] by 4 % a side (an empty range by a unit around it). */
static void pad_range(axis *a, double lo, double hi)
{
    if (lo > hi) {
        lo = 0;
        hi = 1;
    }
    if (hi == lo) {
        double d = fabs(lo) > 0 ? fabs(lo) * 0.1 : 0.5;
        lo -= d;
        hi += d;
    }
    double m = (hi - lo) * 0.04;
    a->lo = lo - m;
    a->hi = hi + m;
}

static void linear_ticks(axis *a, int target)
{
    double step;
    a->n = cfv_ticks(a->lo, a->hi, target, a->at, MAX_TICKS, &step);
    for (int k = 0; k < a->n; k++)
        cfv_fmt(a->text[k], sizeof a->text[k], a->at[k], step);
}

/* Decades, every m-th one to stay near target; over less than two decades,
 * 1, 2 and 5 times the powers of ten; over less still (fewer than three of
 * those inside), 1-2-5 steps of the values themselves. */
static void log_ticks(axis *a, int target)
{
    double first = ceil(a->lo - 1e-9), last = floor(a->hi + 1e-9);
    a->n = 0;
    if (last - first >= 2) {
        double every = ceil((last - first + 1) / (target < 1 ? 1 : target));
        for (double k = first; k <= last && a->n < MAX_TICKS; k += every) {
            a->at[a->n] = k;
            if (k >= -4 && k <= 5)
                cfv_fmt(a->text[a->n], sizeof a->text[0], pow(10, k), k < 0 ? pow(10, k) : 1);
            else
                snprintf(a->text[a->n], sizeof a->text[0], "1e%d", (int)k);
            a->n++;
        }
        return;
    }
    static const double mult[3] = {1, 2, 5};
    for (double k = floor(a->lo); k <= ceil(a->hi) && a->n < MAX_TICKS; k++)
        for (int m = 0; m < 3 && a->n < MAX_TICKS; m++) {
            double at = k + log10(mult[m]);
            if (at < a->lo - 1e-9 || at > a->hi + 1e-9)
                continue;
            double p = pow(10, k);
            a->at[a->n] = at;
            cfv_fmt(a->text[a->n++], sizeof a->text[0], mult[m] * p, k < 0 ? p : 1);
        }
    if (a->n >= 3)
        return;
    double v[MAX_TICKS], step;
    int n = cfv_ticks(pow(10, a->lo), pow(10, a->hi), target, v, MAX_TICKS, &step);
    a->n = 0;
    for (int k = 0; k < n; k++)
        if (v[k] > 0) {
            a->at[a->n] = log10(v[k]);
            cfv_fmt(a->text[a->n++], sizeof a->text[0], v[k], step);
        }
}

static void make_ticks(axis *a, int target)
{
    if (a->log)
        log_ticks(a, target);
    else
        linear_ticks(a, target);
    a->text_w = 0;
    for (int k = 0; k < a->n; k++) {
        int w = cfv_text_width(a->text[k], 1);
        a->text_w = w > a->text_w ? w : a->text_w;
    }
}

/* The plot area and the mapping into it. */
typedef struct {
    int x0, y0, x1, y1; /* [x0, x1) x [y0, y1) */
    const axis *ax, *ay;
} frame;

static float px_of(const frame *f, double x)
{
    return (float)(f->x0 + (x - f->ax->lo) / (f->ax->hi - f->ax->lo) * (f->x1 - f->x0));
}

static float py_of(const frame *f, double y)
{
    return (float)(f->y1 - (y - f->ay->lo) / (f->ay->hi - f->ay->lo) * (f->y1 - f->y0));
}

/* Series k's look. */
typedef struct {
    cfv_rgb col;
    float on, off; /* dash pattern in pixels; off 0: solid */
} pen;

static pen pen_of(int k)
{
    static const float pattern[3][2] = {{1, 0}, {9, 5}, {2.5f, 4}};
    const float *p = pattern[k / NPALETTE % 3];
    return (pen){palette[k % NPALETTE], p[0], p[1]};
}

/* A segment in pen p; *phase carries the position in the dash pattern
 * from one segment of a curve to the next. */
static void pen_line(cfv_canvas *c, float x0, float y0, float x1, float y1, pen p, float *phase)
{
    if (p.off <= 0) {
        cfv_line(c, x0, y0, x1, y1, LINE_W, p.col);
        return;
    }
    float len = hypotf(x1 - x0, y1 - y0), period = p.on + p.off, at = 0;
    while (at < len) {
        float ph = fmodf(*phase, period);
        float step = ph < p.on ? p.on - ph : period - ph;
        float end = at + step < len ? at + step : len;
        if (ph < p.on && len > 0)
            cfv_line(c, x0 + (x1 - x0) * at / len, y0 + (y1 - y0) * at / len,
                     x0 + (x1 - x0) * end / len, y0 + (y1 - y0) * end / len, LINE_W, p.col);
        *phase += end - at;
        at = end;
    }
}

static void draw_series(cfv_canvas *c, const frame *f, const cf_series *s, bool log_y, pen pn)
{
    cfv_rgb col = pn.col;
    float prev_x = 0, prev_y = 0, phase = 0;
    bool have_prev = false;
    for (int i = 0; i < s->n; i++) {
        double x = plotted(s->x ? s->x[i] : i, false), y = plotted(s->y[i], log_y);
        if (isnan(x) || isnan(y)) {
            have_prev = false;
            continue;
        }
        float px = px_of(f, x), py = py_of(f, y);
        if (have_prev)
            pen_line(c, prev_x, prev_y, px, py, pn, &phase);
        else {
            /* A point with no drawable neighbour would otherwise vanish. */
            bool next_ok = i + 1 < s->n && !isnan(plotted(s->x ? s->x[i + 1] : i + 1, false)) &&
                           !isnan(plotted(s->y[i + 1], log_y));
            if (!next_ok)
                cfv_disc(c, px + 0.5f, py + 0.5f, 2.5f, col);
        }
        prev_x = px;
        prev_y = py;
        have_prev = true;
    }
}

/* Pixels in the box that curves drew on (neither background nor grid). */
static int64_t busy(const cfv_canvas *c, int x0, int y0, int x1, int y1)
{
    int64_t n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
            bool white = p[0] == 255 && p[1] == 255 && p[2] == 255;
            bool grid = p[0] == CFV_GRID.r && p[1] == CFV_GRID.g && p[2] == CFV_GRID.b;
            n += !white && !grid;
        }
    return n;
}

/* Draws the legend in the corner of the plot where it hides the fewest
 * curve pixels (top right on a tie). */
static void legend(cfv_canvas *c, const frame *f, const cf_series *s, int nseries)
{
    int n = 0, tw = 0;
    for (int k = 0; k < nseries; k++)
        if (s[k].label) {
            int w = cfv_text_width(s[k].label, 1);
            tw = w > tw ? w : tw;
            n++;
        }
    if (!n)
        return;
    int bw = 8 + SWATCH + 6 + tw + 8, bh = 6 + n * CFV_LINE_H + 3, m = 8;
    int best_x = f->x1 - m - bw, best_y = f->y0 + m;
    int64_t best = -1;
    const int xs[4] = {f->x1 - m - bw, f->x0 + m, f->x1 - m - bw, f->x0 + m};
    const int ys[4] = {f->y0 + m, f->y0 + m, f->y1 - m - bh, f->y1 - m - bh};
    for (int k = 0; k < 4; k++) {
        int64_t b = busy(c, xs[k] < 0 ? 0 : xs[k], ys[k] < 0 ? 0 : ys[k], xs[k] + bw, ys[k] + bh);
        if (best < 0 || b < best) {
            best = b;
            best_x = xs[k];
            best_y = ys[k];
        }
    }
    cfv_fill(c, best_x, best_y, best_x + bw, best_y + bh, (cfv_rgb){190, 190, 190});
    cfv_fill(c, best_x + 1, best_y + 1, best_x + bw - 1, best_y + bh - 1, CFV_WHITE);
    int y = best_y + 6;
    for (int k = 0; k < nseries; k++) {
        if (!s[k].label)
            continue;
        float yc = (float)y + CFV_CAP_H / 2.0f, phase = 0;
        pen_line(c, (float)best_x + 8, yc, (float)(best_x + 8 + SWATCH), yc, pen_of(k), &phase);
        cfv_text(c, best_x + 8 + SWATCH + 6, y, s[k].label, 1, CFV_INK);
        y += CFV_LINE_H;
    }
}

static bool check_args(const char *fn, const char *path, const cf_series *s, int nseries,
                       const cf_plot_opts *o)
{
    const char *p = path ? path : "(no path)";
    if (!path) {
        cfv_fail(CF_ERR_ARG, "%s: path is NULL", fn);
        return false;
    }
    if (nseries < 1 || !s) {
        cfv_fail(CF_ERR_ARG, "%s: %s: %s", fn, p,
                 nseries < 1 ? "nseries is less than 1" : "the series array is NULL");
        return false;
    }
    for (int k = 0; k < nseries; k++)
        if (s[k].n < 0 || (s[k].n > 0 && !s[k].y)) {
            cfv_fail(CF_ERR_ARG, "%s: %s: series %d has %s", fn, p, k,
                     s[k].n < 0 ? "a negative n" : "no y values");
            return false;
        }
    for (int k = 0; k < nseries; k++)
        if (!cfv_reserved(fn, "cf_series", s[k].reserved))
            return false;
    if (!cfv_reserved(fn, "cf_plot_opts", o->reserved))
        return false;
    if ((o->width && (o->width < 64 || o->width > 8192)) ||
        (o->height && (o->height < 64 || o->height > 8192))) {
        cfv_fail(CF_ERR_ARG,
                 "%s: %s: a %d x %d plot (64 to 8192 pixels a side, 0 for the "
                 "default)",
                 fn, p, o->width, o->height);
        return false;
    }
    return true;
}

cf_status cf_viz_lines(const char *path, const cf_series *s, int nseries, const cf_plot_opts *o)
{
    const char *fn = "cf_viz_lines";
    static const cf_plot_opts defaults = {0};
    if (!o)
        o = &defaults;
    if (!check_args(fn, path, s, nseries, o))
        return CF_ERR_ARG;
    int w = o->width ? o->width : 800, h = o->height ? o->height : 500;

    axis ax = {.log = false}, ay = {.log = o->log_y};
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int k = 0; k < nseries; k++)
        for (int i = 0; i < s[k].n; i++) {
            double x = plotted(s[k].x ? s[k].x[i] : i, false), y = plotted(s[k].y[i], o->log_y);
            if (isnan(x) || isnan(y))
                continue;
            xlo = x < xlo ? x : xlo;
            xhi = x > xhi ? x : xhi;
            ylo = y < ylo ? y : ylo;
            yhi = y > yhi ? y : yhi;
        }
    pad_range(&ax, xlo, xhi);
    pad_range(&ay, ylo, yhi);

    /* Layout: the y numbers' width sets the left margin, and x ticks thin
     * out until their numbers do not touch. */
    int top = PAD + (o->title ? 2 * CFV_LINE_H + 6 : 0) + 4;
    int bottom = PAD + (o->xlabel ? CFV_LINE_H + GAP : 0) + CFV_LINE_H + GAP + TICK;
    make_ticks(&ay, (h - top - bottom) / 50);
    int left = PAD + (o->ylabel ? CFV_LINE_H + GAP : 0) + ay.text_w + GAP + TICK;
    int right = PAD + 16;
    if (left + 32 > w - right || top + 32 > h - bottom) {
        cfv_fail(CF_ERR_ARG, "%s: %s: a %d x %d plot leaves no room for the curves", fn, path, w,
                 h);
        return CF_ERR_ARG;
    }
    frame f = {left, top, w - right, h - bottom, &ax, &ay};
    for (int target = (f.x1 - f.x0) / 90;; target--) {
        make_ticks(&ax, target);
        double spacing = ax.n > 1 ? px_of(&f, ax.at[1]) - px_of(&f, ax.at[0]) : w;
        if (spacing >= ax.text_w + 12 || target <= 1)
            break;
    }

    cfv_canvas c;
    cf_status st = cfv_canvas_init(&c, fn, w, h, CFV_WHITE);
    if (st != CF_OK)
        return st;
    for (int k = 0; k < ay.n; k++) {
        int y = (int)floorf(py_of(&f, ay.at[k]));
        cfv_fill(&c, f.x0, y, f.x1, y + 1, CFV_GRID);
        cfv_fill(&c, f.x0 - TICK, y, f.x0, y + 1, CFV_INK);
        cfv_text(&c, f.x0 - TICK - GAP - cfv_text_width(ay.text[k], 1), y - CFV_CAP_H / 2,
                 ay.text[k], 1, CFV_INK);
    }
    for (int k = 0; k < ax.n; k++) {
        int x = (int)floorf(px_of(&f, ax.at[k]));
        cfv_fill(&c, x, f.y0, x + 1, f.y1, CFV_GRID);
        cfv_fill(&c, x, f.y1, x + 1, f.y1 + TICK, CFV_INK);
        cfv_text_centered(&c, x, f.y1 + TICK + GAP, ax.text[k], 1, CFV_INK);
    }
    cfv_clip(&c, f.x0, f.y0, f.x1, f.y1);
    for (int k = 0; k < nseries; k++)
        draw_series(&c, &f, &s[k], o->log_y, pen_of(k));
    cfv_clip(&c, 0, 0, w, h);
    cfv_fill(&c, f.x0 - 1, f.y0, f.x0, f.y1 + 1, CFV_INK);
    cfv_fill(&c, f.x0 - 1, f.y1, f.x1, f.y1 + 1, CFV_INK);
    legend(&c, &f, s, nseries);

    int cx = (f.x0 + f.x1) / 2;
    if (o->title)
        cfv_text(&c, cfv_center(cx, cfv_text_width(o->title, 2), w, PAD), PAD, o->title, 2,
                 CFV_INK);
    if (o->xlabel)
        cfv_text(&c, cfv_center(cx, cfv_text_width(o->xlabel, 1), w, PAD),
                 f.y1 + TICK + GAP + CFV_LINE_H + GAP, o->xlabel, 1, CFV_INK);
    if (o->ylabel) {
        int yw = cfv_text_width(o->ylabel, 1), yb = (f.y0 + f.y1) / 2 + yw / 2;
        cfv_text_up(&c, PAD, yb > h ? h : yb, o->ylabel, 1, CFV_INK);
    }
    st = cfv_write_png(fn, path, &c);
    cfv_canvas_free(&c);
    return st;
}
