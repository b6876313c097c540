/* cf_viz_image_grid: images in a grid, optionally under a colour-mapped
 * overlay such as an attention map. */
#include "viz/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PAD   10
#define SPACE 8 /* between images */

static uint8_t to_byte(float v) { return (uint8_t)lrintf((v < 0 ? 0 : v > 1 ? 1 : v) * 255); }

/* Bilinear sample of the h x w map m at the centre of pixel (y, x) of an
 * H x W image, pixel centres aligned. */
static float sample(const float *m, int64_t h, int64_t w, int64_t H, int64_t W, int64_t y,
                    int64_t x)
{
    double sy = ((double)y + 0.5) * (double)h / (double)H - 0.5;
    double sx = ((double)x + 0.5) * (double)w / (double)W - 0.5;
    sy = sy < 0 ? 0 : sy > (double)(h - 1) ? (double)(h - 1) : sy;
    sx = sx < 0 ? 0 : sx > (double)(w - 1) ? (double)(w - 1) : sx;
    int64_t y0 = (int64_t)sy, x0 = (int64_t)sx;
    int64_t y1 = y0 + 1 < h ? y0 + 1 : y0, x1 = x0 + 1 < w ? x0 + 1 : x0;
    double fy = sy - (double)y0, fx = sx - (double)x0;
    double top = m[y0 * w + x0] * (1 - fx) + m[y0 * w + x1] * fx;
    double bot = m[y1 * w + x0] * (1 - fx) + m[y1 * w + x1] * fx;
    return (float)(top * (1 - fy) + bot * fy);
}

static bool check_args(const char *fn, const char *path, const cf_tensor *im, const cf_tensor *ov,
                       const cf_grid_opts *o, cf_status *st)
{
    char s1[64], s2[64];
    if (!im && cf_error() != CF_OK) {
        *st = cf_error(); /* images is the NULL result of that failure */
        return false;
    }
    if (!path || !im) {
        cfv_fail(*st = CF_ERR_ARG, "%s: %s is NULL", fn, path ? "images" : "path");
        return false;
    }
    cf_shape_str(im, s1, sizeof s1);
    bool rgb = im->ndim == 4 && im->shape[1] == 3;
    if ((im->ndim != 3 && !rgb) || cf_numel(im) < 1) {
        cfv_fail(*st = CF_ERR_SHAPE,
                 "%s: %s: images of shape %s are neither [N, H, W] nor [N, 3, H, W] with "
                 "N, H, W > 0",
                 fn, path, s1);
        return false;
    }
    if (ov) {
        cf_shape_str(ov, s2, sizeof s2);
        if (ov->ndim != 3 || ov->shape[0] != im->shape[0] || cf_numel(ov) < 1) {
            cfv_fail(*st = CF_ERR_SHAPE,
                     "%s: %s: the overlay of shape %s is not [N, h, w] for images of shape %s", fn,
                     path, s2, s1);
            return false;
        }
    }
    if (o->cols < 0 || o->scale < 0 || !(o->alpha >= 0 && o->alpha <= 1)) {
        cfv_fail(*st = CF_ERR_ARG, "%s: %s: %s", fn, path,
                 o->cols < 0    ? "cols is negative"
                 : o->scale < 0 ? "scale is negative"
                                : "alpha is outside [0, 1]");
        return false;
    }
    if (!cfv_reserved(fn, "cf_grid_opts", o->reserved)) {
        *st = CF_ERR_ARG;
        return false;
    }
    return true;
}

/* Draws image n of the batch at (ox, oy). */
static void draw_image(cfv_canvas *c, int ox, int oy, int scale, const float *im, bool rgb,
                       int64_t H, int64_t W, const float *ov, int64_t h, int64_t w, float alpha)
{
    double mn = INFINITY, mx = -INFINITY;
    for (int64_t i = 0; ov && i < h * w; i++)
        if (isfinite(ov[i])) {
            mn = ov[i] < mn ? ov[i] : mn;
            mx = ov[i] > mx ? ov[i] : mx;
        }
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
            int64_t p = y * W + x;
            float r = im[p], g = rgb ? im[H * W + p] : r, b = rgb ? im[2 * H * W + p] : r;
            cfv_rgb col = {to_byte(r), to_byte(g), to_byte(b)};
            if (!isfinite(r) || !isfinite(g) || !isfinite(b))
                col = CFV_NONFINITE;
            int px = ox + (int)x * scale, py = oy + (int)y * scale;
            cfv_fill(c, px, py, px + scale, py + scale, col);
            if (!ov)
                continue;
            float v = sample(ov, h, w, H, W, y, x);
            if (!isfinite(v))
                continue;
            cfv_rgb heat = cfv_colormap(mx > mn ? (float)((v - mn) / (mx - mn)) : 0.5f);
            for (int yy = py; yy < py + scale; yy++)
                for (int xx = px; xx < px + scale; xx++)
                    cfv_blend(c, xx, yy, heat, alpha);
        }
}

cf_status cf_viz_image_grid(const char *path, const cf_tensor *images, const cf_tensor *overlay,
                            const cf_grid_opts *o)
{
    const char *fn = "cf_viz_image_grid";
    static const cf_grid_opts defaults = {0};
    if (!o)
        o = &defaults;
    cf_status st = CF_OK;
    if (!check_args(fn, path, images, overlay, o, &st))
        return st;
    bool rgb = images->ndim == 4;
    int64_t n = images->shape[0], H = images->shape[rgb ? 2 : 1], W = images->shape[rgb ? 3 : 2];
    int64_t cols = o->cols ? o->cols : (int64_t)ceil(sqrt((double)n));
    cols = cols > n ? n : cols;
    int64_t rows = (n + cols - 1) / cols;
    int64_t scale = o->scale ? o->scale : 4;
    float alpha = o->alpha > 0 ? o->alpha : 0.5f;
    int64_t tile_w = W * scale, tile_h = H * scale;
    int caption_h = o->labels ? CFV_LINE_H + 2 : 0, title_h = o->title ? 2 * CFV_LINE_H + 6 : 0;
    int64_t w = SPACE + cols * (tile_w + SPACE),
            h = SPACE + title_h + rows * (tile_h + caption_h + SPACE);
    int64_t tw = o->title ? cfv_text_width(o->title, 2) + 2 * PAD : 0;
    w = w > tw ? w : tw;
    if (tile_w > CFV_MAX_SIDE || tile_h > CFV_MAX_SIDE || w > CFV_MAX_SIDE || h > CFV_MAX_SIDE) {
        char s[64];
        cf_shape_str(images, s, sizeof s);
        cfv_fail(CF_ERR_ARG, "%s: %s: %s images at scale %lld make more than %d pixels a side", fn,
                 path, s, (long long)scale, CFV_MAX_SIDE);
        return CF_ERR_ARG;
    }

    float *im = cfv_read(fn, images), *ov = overlay ? cfv_read(fn, overlay) : NULL;
    cfv_canvas c = {0};
    if (!im || (overlay && !ov))
        st = CF_ERR_NOMEM;
    else
        st = cfv_canvas_init(&c, fn, (int)w, (int)h, CFV_WHITE);
    if (st == CF_OK) {
        int64_t oh = overlay ? overlay->shape[1] : 0, ow = overlay ? overlay->shape[2] : 0;
        int64_t per = (rgb ? 3 : 1) * H * W;
        for (int64_t k = 0; k < n; k++) {
            int ox = SPACE + (int)((k % cols) * (tile_w + SPACE));
            int oy = SPACE + title_h + (int)((k / cols) * (tile_h + caption_h + SPACE));
            draw_image(&c, ox, oy, (int)scale, im + k * per, rgb, H, W,
                       ov ? ov + k * oh * ow : NULL, oh, ow, alpha);
            if (o->labels && o->labels[k]) {
                /* Captions are cut to the image's width. */
                char buf[256];
                size_t fit = (size_t)(tile_w + 1) / CFV_ADVANCE;
                size_t len = strlen(o->labels[k]);
                len = len < fit ? len : fit;
                len = len < sizeof buf - 1 ? len : sizeof buf - 1;
                memcpy(buf, o->labels[k], len);
                buf[len] = '\0';
                cfv_text_centered(&c, ox + (int)tile_w / 2, oy + (int)tile_h + 3, buf, 1, CFV_INK);
            }
        }
        if (o->title)
            cfv_text(&c, cfv_center((int)w / 2, cfv_text_width(o->title, 2), (int)w, PAD), PAD,
                     o->title, 2, CFV_INK);
        st = cfv_write_png(fn, path, &c);
    }
    cfv_canvas_free(&c);
    free(im);
    free(ov);
    return st;
}
