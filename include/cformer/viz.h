/* cformer/viz.h: PNG pictures of tensors and training curves.
 *
 * A separate library, libcformer-viz (pkg-config: cformer-viz), built when
 * libpng is available; the core library does not need libpng. It draws with
 * its own bitmap font (printable ASCII; other bytes show as '?') and the
 * viridis colour map, and uses only the public tensor API.
 *
 *     cf_heatmap_opts ho = {.title = "attention, head 0", .xlabel = "key",
 *                           .ylabel = "query"};
 *     cf_viz_heatmap("attn.png", weights, &ho);           // weights: [T, T]
 *
 *     cf_series s[2] = {{.label = "train", .y = train_loss, .n = epochs},
 *                       {.label = "test", .y = test_loss, .n = epochs}};
 *     cf_plot_opts po = {.title = "loss", .xlabel = "epoch", .log_y = true};
 *     cf_viz_lines("loss.png", s, 2, &po);
 *
 * Every function writes its file atomically: the picture goes to a temporary
 * file in the same directory that is renamed over path, so a reader never
 * sees a partial PNG and a failed call leaves an existing file as it was.
 *
 * Errors follow tensor.h's rule for status-returning calls: a function
 * returns CF_OK, or its own status with its error recorded in place of any
 * older one (a NULL tensor handed in while an error is recorded returns that
 * error, whose result it is): CF_ERR_ARG naming the bad argument
 * (NULL path or tensor, negative counts, ...), CF_ERR_SHAPE with the shape
 * for a tensor of the wrong rank, CF_ERR_NOMEM, and CF_ERR_IO naming the
 * file and the system's reason. The tensors are only read; no arena is
 * needed.
 *
 * Threads. The functions keep no state: several threads may draw at once.
 */
#ifndef CFORMER_VIZ_H
#define CFORMER_VIZ_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* All opts structs: zero-initialised means defaults; an opts pointer may be
 * NULL. Strings are only read during the call. Each struct, cf_series too,
 * ends in reserved words that must be 0 (tensor.h, "Growing structs"): a
 * call given one that is not fails with CF_ERR_ARG. */

typedef struct {
    const char *title;
    const char *const *row_labels; /* NULL, or one per row */
    const char *const *col_labels; /* NULL, or one per column */
    const char *xlabel, *ylabel;
    int cell;         /* pixels per cell; 0: fit about 640 px */
    float vmin, vmax; /* equal: the data's min and max */
    bool no_colorbar;
    CF_RESERVED;
} cf_heatmap_opts;

/* Writes a PNG heatmap of a 2-D tensor (any dtype, any strides): element
 * [i, j] is the cell in row i (top to bottom), column j, coloured with
 * viridis from vmin (dark) to vmax (bright); values outside are clamped and
 * NaN or infinite elements are drawn in red. A colour bar
 * with numbers is drawn right of the cells unless no_colorbar.
 * Returns CF_OK, or CF_ERR_ARG (NULL path or tensor, negative cell),
 * CF_ERR_SHAPE (not 2-D, or an empty dimension), CF_ERR_NOMEM, CF_ERR_IO. */
CF_API cf_status cf_viz_heatmap(const char *path, const cf_tensor *t, const cf_heatmap_opts *o);

typedef struct {
    const char *label; /* legend entry; NULL: none */
    const float *x;    /* NULL: 0 .. n-1 */
    const float *y;
    int n;
    CF_RESERVED;
} cf_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    int width, height; /* 0: 800 x 500 */
    bool log_y;
    CF_RESERVED;
} cf_plot_opts;

/* Writes a PNG line plot of nseries curves, each in its own colour (seven
 * colour-blind-safe colours, solid, then dashed, then dotted): axes,
 * ticks at 1-2-5 steps with numbers, axis titles and, when any series has a
 * label, a legend. Points with a NaN or infinite coordinate (or y <= 0 with
 * log_y) are skipped and break the line there.
 * Returns CF_OK, or CF_ERR_ARG (NULL path, s NULL with nseries > 0, nseries
 * < 1, a series with n < 0 or NULL y, width or height out of 64 .. 8192),
 * CF_ERR_NOMEM, CF_ERR_IO. */
CF_API cf_status cf_viz_lines(const char *path, const cf_series *s, int nseries,
                              const cf_plot_opts *o);

typedef struct {
    const char *title;
    const char *const *labels; /* NULL, or one caption per image */
    int cols;                  /* 0: about square */
    int scale;                 /* pixels per image pixel; 0: 4 */
    float alpha;               /* overlay opacity; 0: 0.5 */
    CF_RESERVED;
} cf_grid_opts;

/* Writes a PNG grid of N images: images is [N, H, W] (grey, values in
 * [0, 1], clamped) or [N, 3, H, W] (RGB); overlay is NULL or [N, h, w] (any
 * h, w; upsampled bilinearly to H x W, normalised per image to its own min
 * and max, drawn with viridis and blended with opacity alpha), e.g. an
 * attention map over patches. Captions go under each image.
 * Returns CF_OK, or CF_ERR_ARG (NULL path or images, negative cols or scale,
 * alpha outside [0, 1]), CF_ERR_SHAPE (wrong rank, N differing between
 * images and overlay, an empty dimension), CF_ERR_NOMEM, CF_ERR_IO. */
CF_API cf_status cf_viz_image_grid(const char *path, const cf_tensor *images,
                                   const cf_tensor *overlay, const cf_grid_opts *o);

#ifdef __cplusplus
}
#endif
#endif
