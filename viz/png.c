/* Writing a canvas as a PNG file, atomically, over libpng (whose errors
 * longjmp back here). */
#include "viz/internal.h"

#include <png.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* Encodes the canvas into f; false with ctx->msg set on failure. Nothing
 * local changes after setjmp, so nothing needs to be volatile. */
static bool encode(FILE *f, png_ctx *ctx, const cfv_canvas *c)
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
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++)
        png_write_row(png, c->px + (size_t)y * (size_t)c->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return true;
}

/* Creates a new file named path.tmp-XXXXXX (written into tmp) with the
 * permissions a plain fopen would give; -1 with errno on failure. */
static int open_temp(const char *path, char *tmp, size_t size)
{
    static _Thread_local unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned long x = (unsigned long)ts.tv_nsec * 2654435761u +
                          (unsigned long)getpid() * 40503u + ++counter * 97u;
        if ((size_t)snprintf(tmp, size, "%s.tmp-%06lx", path, x & 0xffffff) >= size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

cf_status cfv_write_png(const char *fn, const char *path, const cfv_canvas *c)
{
    size_t size = strlen(path) + 16;
    char *tmp = malloc(size);
    if (!tmp) {
        cfv_fail(CF_ERR_NOMEM, "%s: %s: out of memory", fn, path);
        return CF_ERR_NOMEM;
    }
    png_ctx ctx = {.msg = ""};
    bool created = false, ok = false;
    FILE *f = NULL;
    int fd = open_temp(path, tmp, size);
    if (fd < 0) {
        snprintf(ctx.msg, sizeof ctx.msg, "cannot create a file next to it: %s", strerror(errno));
        goto done;
    }
    created = true;
    f = fdopen(fd, "wb");
    if (!f) {
        snprintf(ctx.msg, sizeof ctx.msg, "%s", strerror(errno));
        close(fd);
        goto done;
    }
    if (!encode(f, &ctx, c))
        goto done;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        snprintf(ctx.msg, sizeof ctx.msg, "%s", strerror(errno));
        goto done;
    }
    int closed = fclose(f);
    f = NULL;
    if (closed != 0 || rename(tmp, path) != 0) {
        snprintf(ctx.msg, sizeof ctx.msg, "%s", strerror(errno));
        goto done;
    }
    created = false;
    ok = true;
done:
    if (f)
        fclose(f);
    if (created)
        unlink(tmp);
    free(tmp);
    if (!ok) {
        cfv_fail(CF_ERR_IO, "%s: cannot write %s: %s", fn, path, ctx.msg);
        return CF_ERR_IO;
    }
    return CF_OK;
}
