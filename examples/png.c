/* write_png over libpng, whose errors longjmp back here. */
#include "png.h"

#include <png.h>

#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char msg[160]; /* libpng's reason for failing */
} png_ctx;

static void on_error(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Encodes the image into f; false with ctx->msg set on failure. No local
 * changes after setjmp, so none needs to be volatile. */
static bool encode(FILE *f, png_ctx *ctx, int width, int height, int channels,
                   const uint8_t *pixels)
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
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t)y * (size_t)width * (size_t)channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return true;
}

cf_status write_png(const char *path, int width, int height, int channels, const uint8_t *pixels)
{
    if (!path || !pixels || width < 1 || height < 1 || width > 1 << 20 || height > 1 << 20 ||
        (channels != 1 && channels != 3)) {
        cf_error_set(CF_ERR_ARG,
                     "write_png: %s: cannot write a %dx%d image of %d channels%s (1 or 3, sides "
                     "1 to 2^20)",
                     path ? path : "(no path)", width, height, channels,
                     pixels ? "" : " without pixels");
        return CF_ERR_ARG;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        cf_error_set(CF_ERR_IO, "write_png: cannot create %s: %s", path, strerror(errno));
        return CF_ERR_IO;
    }
    png_ctx ctx = {.msg = ""};
    bool ok = encode(f, &ctx, width, height, channels, pixels);
    if (fclose(f) != 0 && ok) {
        snprintf(ctx.msg, sizeof ctx.msg, "%s", strerror(errno));
        ok = false;
    }
    if (!ok) {
        remove(path);
        cf_error_set(CF_ERR_IO, "write_png: cannot write %s: %s", path, ctx.msg);
        return CF_ERR_IO;
    }
    return CF_OK;
}
