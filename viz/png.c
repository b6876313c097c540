/* Writing a canvas as a PNG file over libpng (whose errors longjmp back
 * here), atomically through tensor/atomic_file.h. */
#include "tensor/atomic_file.h"
#include "viz/internal.h"

#include <png.h>

#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct {
    char msg[160]; /* libpng's reason for failing */
} png_ctx;

static void on_error(png_structp png, png_const_charp msg)
{
    png_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* libpng's output goes to the temporary; a failed write ends the encoding
 * through on_error. */
static void on_write(png_structp png, png_bytep data, size_t n)
{
    cf__atomic_file *w = png_get_io_ptr(png);
    if (!cf__atomic_write(w, data, n))
        png_error(png, w->why);
}

static void on_flush(png_structp png) { (void)png; }

/* Encodes the canvas into w; false with ctx->msg set on failure. Nothing
 * local changes after setjmp, so nothing needs to be volatile. */
static bool encode(cf__atomic_file *w, png_ctx *ctx, const cfv_canvas *c)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(ctx->msg, sizeof ctx->msg, "out of memory");
        return false;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return false;
    }
    png_set_write_fn(png, w, on_write, on_flush);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++)
        png_write_row(png, c->px + (size_t)y * (size_t)c->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return true;
}

cf_status cfv_write_png(const char *fn, const char *path, const cfv_canvas *c)
{
    png_ctx ctx = {.msg = ""};
    cf__atomic_file w;
    bool ok = cf__atomic_begin(&w, path);
    if (!ok)
        snprintf(ctx.msg, sizeof ctx.msg, "%s", w.why);
    else
        ok = encode(&w, &ctx, c);
    if (ok && !cf__atomic_commit(&w)) {
        snprintf(ctx.msg, sizeof ctx.msg, "%s", w.why);
        ok = false;
    }
    cf__atomic_end(&w);
    if (!ok) {
        cf_status st = w.nomem ? CF_ERR_NOMEM : CF_ERR_IO;
        cfv_fail(st, "%s: cannot write %s: %s", fn, path, ctx.msg);
        return st;
    }
    return CF_OK;
}
