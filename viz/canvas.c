/* The canvas: rectangles, anti-aliased lines, bitmap text, the colour map
 * and tick placement shared by the three kinds of picture. */
#include "viz/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cfv_fail(cf_status s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cf_error_clear();
    cf_error_set(s, "%s", msg);
}

bool cfv_reserved(const char *fn, const char *type, const uint64_t *reserved)
{
    static const uint64_t zero[CF_RESERVED_WORDS];
    if (memcmp(reserved, zero, sizeof zero) == 0)
        return true;
    cf_error_clear();
    return cf_check_reserved(fn, type, reserved, CF_RESERVED_WORDS);
}

cf_status cfv_canvas_init(cfv_canvas *c, const char *fn, int w, int h, cfv_rgb bg)
{
    memset(c, 0, sizeof *c);
    if (w < 1 || h < 1 || w > CFV_MAX_SIDE || h > CFV_MAX_SIDE) {
        cfv_fail(CF_ERR_ARG, "%s: the picture would be %d x %d pixels (1 to %d on a side)", fn, w,
                 h, CFV_MAX_SIDE);
        return CF_ERR_ARG;
    }
    c->px = malloc((size_t)w * (size_t)h * 3);
    if (!c->px) {
        cfv_fail(CF_ERR_NOMEM, "%s: out of memory for a %d x %d picture", fn, w, h);
        return CF_ERR_NOMEM;
    }
    c->w = w;
    c->h = h;
    cfv_clip(c, 0, 0, w, h);
    cfv_fill(c, 0, 0, w, h, bg);
    return CF_OK;
}

void cfv_canvas_free(cfv_canvas *c)
{
    free(c->px);
    c->px = NULL;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void cfv_clip(cfv_canvas *c, int x0, int y0, int x1, int y1)
{
    c->cx0 = clampi(x0, 0, c->w);
    c->cy0 = clampi(y0, 0, c->h);
    c->cx1 = clampi(x1, c->cx0, c->w);
    c->cy1 = clampi(y1, c->cy0, c->h);
}

void cfv_fill(cfv_canvas *c, int x0, int y0, int x1, int y1, cfv_rgb col)
{
    x0 = clampi(x0, c->cx0, c->cx1);
    x1 = clampi(x1, c->cx0, c->cx1);
    y0 = clampi(y0, c->cy0, c->cy1);
    y1 = clampi(y1, c->cy0, c->cy1);
    for (int y = y0; y < y1; y++) {
        uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x0) * 3;
        for (int x = x0; x < x1; x++, p += 3) {
            p[0] = col.r;
            p[1] = col.g;
            p[2] = col.b;
        }
    }
}

void cfv_blend(cfv_canvas *c, int x, int y, cfv_rgb col, float a)
{
    if (x < c->cx0 || x >= c->cx1 || y < c->cy0 || y >= c->cy1 || !(a > 0))
        return;
    if (a > 1)
        a = 1;
    uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    p[0] = (uint8_t)lrintf((float)p[0] + a * ((float)col.r - (float)p[0]));
    p[1] = (uint8_t)lrintf((float)p[1] + a * ((float)col.g - (float)p[1]));
    p[2] = (uint8_t)lrintf((float)p[2] + a * ((float)col.b - (float)p[2]));
}

/* Coverage of a pixel whose centre is at distance d from a shape's edge
 * region of half-width hw: a one-pixel ramp gives smooth edges. */
static float coverage(float d, float hw)
{
    float a = hw + 0.5f - d;
    return a < 0 ? 0 : a > 1 ? 1 : a;
}

void cfv_line(cfv_canvas *c, float x0, float y0, float x1, float y1, float width, cfv_rgb col)
{
    float hw = width / 2;
    float dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    int bx0 = (int)floorf(fminf(x0, x1) - hw - 1), bx1 = (int)ceilf(fmaxf(x0, x1) + hw + 1);
    int by0 = (int)floorf(fminf(y0, y1) - hw - 1), by1 = (int)ceilf(fmaxf(y0, y1) + hw + 1);
    bx0 = clampi(bx0, c->cx0, c->cx1);
    bx1 = clampi(bx1, c->cx0, c->cx1);
    by0 = clampi(by0, c->cy0, c->cy1);
    by1 = clampi(by1, c->cy0, c->cy1);
    for (int y = by0; y < by1; y++)
        for (int x = bx0; x < bx1; x++) {
            float px = (float)x + 0.5f - x0, py = (float)y + 0.5f - y0;
            float t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float ex = px - t * dx, ey = py - t * dy;
            cfv_blend(c, x, y, col, coverage(sqrtf(ex * ex + ey * ey), hw));
        }
}

void cfv_disc(cfv_canvas *c, float x, float y, float radius, cfv_rgb col)
{
    cfv_line(c, x, y, x, y, 2 * radius, col);
}

/* The glyph of byte ch; bytes outside printable ASCII show as '?'. */
static const uint8_t *glyph(unsigned char ch)
{
    return cfv_font[(ch < 32 || ch > 126 ? '?' : ch) - 32];
}

int cfv_text_width(const char *s, int scale)
{
    size_t n = strlen(s);
    return n ? (int)n * CFV_ADVANCE * scale - scale : 0;
}

void cfv_text(cfv_canvas *c, int x, int y, const char *s, int scale, cfv_rgb col)
{
    for (; *s; s++, x += CFV_ADVANCE * scale) {
        const uint8_t *g = glyph((unsigned char)*s);
        for (int r = 0; r < CFV_GLYPH_H; r++)
            for (int k = 0; k < CFV_GLYPH_W; k++)
                if (g[r] >> (CFV_GLYPH_W - 1 - k) & 1)
                    cfv_fill(c, x + k * scale, y + r * scale, x + (k + 1) * scale,
                             y + (r + 1) * scale, col);
    }
}

void cfv_text_up(cfv_canvas *c, int x, int y_bottom, const char *s, int scale, cfv_rgb col)
{
    /* Text pixel (tx, ty) lands on (x + ty, y_bottom - 1 - tx). */
    for (int tx0 = 0; *s; s++, tx0 += CFV_ADVANCE * scale) {
        const uint8_t *g = glyph((unsigned char)*s);
        for (int r = 0; r < CFV_GLYPH_H; r++)
            for (int k = 0; k < CFV_GLYPH_W; k++)
                if (g[r] >> (CFV_GLYPH_W - 1 - k) & 1) {
                    int tx = tx0 + k * scale, ty = r * scale;
                    cfv_fill(c, x + ty, y_bottom - tx - scale, x + ty + scale, y_bottom - tx, col);
                }
    }
}

void cfv_text_centered(cfv_canvas *c, int xc, int y, const char *s, int scale, cfv_rgb col)
{
    cfv_text(c, xc - cfv_text_width(s, scale) / 2, y, s, scale, col);
}

int cfv_center(int xc, int width, int w, int pad)
{
    int x = xc - width / 2;
    x = x + width > w - pad ? w - pad - width : x;
    return x < pad ? pad : x;
}

cfv_rgb cfv_colormap(float t)
{
    if (isnan(t))
        return CFV_NONFINITE;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const uint8_t *v = cfv_viridis[lrintf(t * 255)];
    return (cfv_rgb){v[0], v[1], v[2]};
}

int cfv_ticks(double lo, double hi, int target, double *out, int max, double *step)
{
    if (!(hi > lo) || !isfinite(hi - lo)) {
        *step = 1;
        if (max > 0 && isfinite(lo)) {
            out[0] = lo;
            return 1;
        }
        return 0;
    }
    double raw = (hi - lo) / (target < 1 ? 1 : target);
    double mag = pow(10, floor(log10(raw)));
    double r = raw / mag;
    double s = (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
    *step = s;
    /* The 1e-9 slack keeps an end that is a multiple up to rounding. */
    double first = ceil(lo / s - 1e-9), last = floor(hi / s + 1e-9);
    int n = 0;
    for (double k = first; k <= last && n < max; k++) {
        double v = k * s;
        out[n++] = fabs(v) < s * 1e-9 ? 0 : v;
    }
    return n;
}

void cfv_fmt(char *buf, size_t size, double v, double step)
{
    if (v == 0) {
        snprintf(buf, size, "0");
        return;
    }
    int step_exp = (int)floor(log10(fabs(step)) + 1e-9);
    int v_exp = (int)floor(log10(fabs(v)) + 1e-9);
    if (v_exp >= 6 || step_exp <= -5) {
        int digits = v_exp - step_exp;
        snprintf(buf, size, "%.*e", digits < 0 ? 0 : digits > 6 ? 6 : digits, v);
        /* 1.5e+07 -> 1.5e7, 2e-05 -> 2e-5 */
        char *e = strchr(buf, 'e');
        if (e) {
            char *d = e + 1, *w = e + 1;
            if (*d == '+')
                d++;
            else if (*d == '-')
                *w++ = *d++;
            while (*d == '0' && d[1])
                d++;
            memmove(w, d, strlen(d) + 1);
        }
    } else {
        snprintf(buf, size, "%.*f", step_exp < 0 ? -step_exp : 0, v);
    }
}

float *cfv_read(const char *fn, const cf_tensor *t)
{
    int64_t n = cf_numel(t);
    float *v = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!v) {
        cfv_fail(CF_ERR_NOMEM, "%s: out of memory copying %lld elements", fn, (long long)n);
        return NULL;
    }
    cf_copy_to(t, v);
    return v;
}
