/* cf_viz_heatmap: a 2-D tensor as coloured cells with labels and a colour
 * bar. */
#include "viz/internal.h"

#include <math.h>
#include <stdlib.h>

#define PAD       10 /* margin around the picture */
#define LABEL_GAP 5  /* between a label and what it labels */
#define BAR_GAP   14 /* between the cells and the colour bar */
#define BAR_W     16 /* width of the colour bar */
#define BAR_MIN_H 120

static const char *label_at(const char *const *labels, int64_t i)
{
    return labels && labels[i] ? labels[i] : "";
}

static int max_width(const char *const *labels, int64_t n)
{
    int w = 0;
    for (int64_t i = 0; labels && i < n; i++) {
        int k = cfv_text_width(label_at(labels, i), 1);
        w = k > w ? k : w;
    }
    return w;
}

/* Draws the colour bar at (x, y), h high, for values lo (bottom) to hi (top),
 * with tick numbers to its right. */
static void colorbar(cfv_canvas *c, int x, int y, int h, double lo, double hi)
{
    for (int r = 0; r < h; r++)
        cfv_fill(c, x, y + r, x + BAR_W, y + r + 1,
                 cfv_colormap(h > 1 ? 1 - (float)r / (float)(h - 1) : 0.5f));
    double ticks[16], step;
    double a = lo < hi ? lo : hi, b = lo < hi ? hi : lo;
    int n = cfv_ticks(a, b, h / 40 < 2 ? 2 : h / 40, ticks, 16, &step);
    for (int k = 0; k < n; k++) {
        double t = hi != lo ? (ticks[k] - lo) / (hi - lo) : 0.5;
        int ty = y + (int)lround((1 - t) * (h - 1));
        char buf[32];
        cfv_fmt(buf, sizeof buf, ticks[k], step);
        cfv_fill(c, x + BAR_W, ty, x + BAR_W + 4, ty + 1, CFV_INK);
        cfv_text(c, x + BAR_W + 7, ty - CFV_CAP_H / 2, buf, 1, CFV_INK);
    }
}

/* The widest tick label colorbar() will draw. */
static int colorbar_label_width(int h, double lo, double hi)
{
    double ticks[16], step;
    double a = lo < hi ? lo : hi, b = lo < hi ? hi : lo;
    int n = cfv_ticks(a, b, h / 40 < 2 ? 2 : h / 40, ticks, 16, &step), w = 0;
    for (int k = 0; k < n; k++) {
        char buf[32];
        cfv_fmt(buf, sizeof buf, ticks[k], step);
        int tw = cfv_text_width(buf, 1);
        w = tw > w ? tw : w;
    }
    return w;
}

cf_status cf_viz_heatmap(const char *path, const cf_tensor *t, const cf_heatmap_opts *o)
{
    const char *fn = "cf_viz_heatmap";
    static const cf_heatmap_opts defaults = {0};
    if (!o)
        o = &defaults;
    if (!t && cf_error() != CF_OK)
        return cf_error(); /* t is the NULL result of that failure */
    if (!path || !t) {
        cfv_fail(CF_ERR_ARG, "%s: %s is NULL", fn, path ? "the tensor" : "path");
        return CF_ERR_ARG;
    }
    char shape[64];
    cf_shape_str(t, shape, sizeof shape);
    if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1) {
        cfv_fail(CF_ERR_SHAPE, "%s: %s: the tensor of shape %s is not 2-D with rows and columns",
                 fn, path, shape);
        return CF_ERR_SHAPE;
    }
    if (!cfv_reserved(fn, "cf_heatmap_opts", o->reserved))
        return CF_ERR_ARG;
    if (o->cell < 0 || isnan(o->vmin) || isnan(o->vmax)) {
        cfv_fail(CF_ERR_ARG, "%s: %s: %s", fn, path,
                 o->cell < 0 ? "cell is negative" : "vmin or vmax is NaN");
        return CF_ERR_ARG;
    }
    int64_t rows = t->shape[0], cols = t->shape[1], most = rows > cols ? rows : cols;
    int64_t cell = o->cell ? o->cell : (640 / most > 1 ? 640 / most : 1);
    if (rows * cell > CFV_MAX_SIDE || cols * cell > CFV_MAX_SIDE) {
        cfv_fail(CF_ERR_ARG, "%s: %s: %s cells of %lld pixels make more than %d pixels a side", fn,
                 path, shape, (long long)cell, CFV_MAX_SIDE);
        return CF_ERR_ARG;
    }
    int gw = (int)(cols * cell), gh = (int)(rows * cell), cl = (int)cell;

    float *v = cfv_read(fn, t);
    if (!v)
        return CF_ERR_NOMEM;
    double lo = o->vmin, hi = o->vmax;
    if (lo == hi) {
        lo = INFINITY;
        hi = -INFINITY;
        for (int64_t i = 0; i < rows * cols; i++)
            if (isfinite(v[i])) {
                lo = v[i] < lo ? v[i] : lo;
                hi = v[i] > hi ? v[i] : hi;
            }
        if (lo > hi)
            lo = hi = 0;
    }

    /* Layout, left to right: y title, row labels, cells, colour bar; top to
     * bottom: title, cells, column labels, x title. Labels closer than a
     * text line are thinned to every step-th. */
    int title_h = o->title ? 2 * CFV_LINE_H + 6 : 0;
    int row_w = max_width(o->row_labels, rows), col_w = max_width(o->col_labels, cols);
    int row_step = (CFV_LINE_H + cl - 1) / cl;
    bool col_flat = col_w <= cl - 2;
    int col_step = col_flat ? 1 : row_step;
    int col_h = o->col_labels ? (col_flat ? CFV_LINE_H : col_w) + LABEL_GAP : 0;
    int top = PAD + title_h;
    int left =
        PAD + (o->ylabel ? CFV_LINE_H + LABEL_GAP : 0) + (o->row_labels ? row_w + LABEL_GAP : 0);
    int bar_h = gh > BAR_MIN_H ? gh : BAR_MIN_H;
    int right = o->no_colorbar ? 0 : BAR_GAP + BAR_W + 7 + colorbar_label_width(bar_h, lo, hi);
    int body_h = o->no_colorbar || gh > bar_h ? gh : bar_h;
    int below = col_h + (o->xlabel ? CFV_LINE_H + LABEL_GAP : 0);
    int w = left + gw + right + PAD, h = top + body_h + below + PAD;
    int tw = o->title ? cfv_text_width(o->title, 2) : 0;
    int xw = o->xlabel ? cfv_text_width(o->xlabel, 1) : 0;
    w = w > tw + 2 * PAD ? w : tw + 2 * PAD;
    w = w > xw + 2 * PAD ? w : xw + 2 * PAD;

    cfv_canvas c;
    cf_status st = cfv_canvas_init(&c, fn, w, h, CFV_WHITE);
    if (st != CF_OK) {
        free(v);
        return st;
    }
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            float x = v[i * cols + j];
            cfv_rgb col = CFV_NONFINITE;
            if (isfinite(x))
                col = cfv_colormap(hi != lo ? (float)((x - lo) / (hi - lo)) : 0.5f);
            int x0 = left + (int)j * cl, y0 = top + (int)i * cl;
            cfv_fill(&c, x0, y0, x0 + cl, y0 + cl, col);
        }
    free(v);

    int gcx = left + gw / 2;
    if (o->title)
        cfv_text(&c, cfv_center(gcx, tw, w, PAD), PAD, o->title, 2, CFV_INK);
    for (int64_t i = 0; o->row_labels && i < rows; i += row_step) {
        const char *s = label_at(o->row_labels, i);
        cfv_text(&c, left - LABEL_GAP - cfv_text_width(s, 1),
                 top + (int)i * cl + cl / 2 - CFV_CAP_H / 2, s, 1, CFV_INK);
    }
    for (int64_t j = 0; o->col_labels && j < cols; j += col_step) {
        const char *s = label_at(o->col_labels, j);
        int cx = left + (int)j * cl + cl / 2;
        if (col_flat)
            cfv_text_centered(&c, cx, top + gh + LABEL_GAP, s, 1, CFV_INK);
        else
            cfv_text_up(&c, cx - CFV_CAP_H / 2, top + gh + LABEL_GAP + cfv_text_width(s, 1), s, 1,
                        CFV_INK);
    }
    if (o->xlabel)
        cfv_text(&c, cfv_center(gcx, xw, w, PAD), top + gh + col_h + LABEL_GAP, o->xlabel, 1,
                 CFV_INK);
    if (o->ylabel) {
        int yw = cfv_text_width(o->ylabel, 1);
        int yb = top + gh / 2 + yw / 2;
        cfv_text_up(&c, PAD, yb > h ? h : yb, o->ylabel, 1, CFV_INK);
    }
    if (!o->no_colorbar)
        colorbar(&c, left + gw + BAR_GAP, top, bar_h, lo, hi);

    st = cfv_write_png(fn, path, &c);
    cfv_canvas_free(&c);
    return st;
}
