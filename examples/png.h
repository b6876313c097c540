/* A tiny PNG writer for the examples, over libpng. The name keeps out of
 * libpng's png_ namespace.
 *
 *     uint8_t px[H][W][3];               // rows top to bottom, RGB
 *     if (write_png("out.png", W, H, 3, &px[0][0][0]) != CF_OK)
 *         fprintf(stderr, "%s\n", cf_error_message());
 */
#ifndef EXAMPLES_PNG_H
#define EXAMPLES_PNG_H

#include <cformer/tensor.h>

#include <stdint.h>

/* Writes a width x height image of 8-bit samples to path: channels 1
 * (grayscale) or 3 (RGB), rows top to bottom without padding. Returns
 * CF_OK, or records an error naming the file (cf_error_message) and returns
 * CF_ERR_ARG (bad size, NULL pixels) or CF_ERR_IO (cannot create or write
 * it; a partly written file is removed). */
cf_status write_png(const char *path, int width, int height, int channels, const uint8_t *pixels);

#endif
