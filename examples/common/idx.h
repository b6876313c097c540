/* examples/common/idx.h: IDX files (MNIST, Fashion-MNIST), plain or gzip.
 *
 * An IDX file is a 4-byte magic number (0, 0, type, ndim), ndim big-endian
 * 32-bit sizes, then the data row-major. Only unsigned bytes (type 0x08)
 * are read here: the images and labels of MNIST-like sets.
 *
 *     ex_idx_set train;
 *     if (ex_idx_load_set(dir, "train", 10, "dataset-fashion-mnist", &train) != CF_OK) {
 *         fprintf(stderr, "%s\n", cf_error_message());
 *         return 1;
 *     }
 *     ... train.n images of train.rows x train.cols bytes, train.labels[i] < 10 ...
 *     ex_idx_set_free(&train);
 *
 * Hardening: every size a file claims is checked against the bytes it
 * really holds before anything is allocated from it, and a gzip file
 * expands into a buffer that grows with the real output (up to
 * EX_IDX_MAX_BYTES), never to a claimed size. A missing file's message
 * names the Debian package and its install command; a corrupt one's names
 * the file, the byte offset and what is wrong. ex_idx_parse works on any
 * memory buffer (the fuzz target).
 */
#ifndef EXAMPLES_COMMON_IDX_H
#define EXAMPLES_COMMON_IDX_H

#include <cformer/tensor.h>

#include <stddef.h>
#include <stdint.h>

#define EX_IDX_MAX_DIMS  4
#define EX_IDX_MAX_BYTES ((size_t)1 << 30) /* the largest file content accepted */

/* A parsed IDX image: views into the parsed buffer, nothing allocated. */
typedef struct {
    int ndim;
    uint32_t dims[EX_IDX_MAX_DIMS];
    const uint8_t *data; /* dims[0] * ... * dims[ndim-1] bytes */
    size_t size;         /* that product */
} ex_idx;

/* Parses buf[0..len) as an IDX file of unsigned bytes with 1 to
 * EX_IDX_MAX_DIMS dims, whose data fills the rest of the buffer exactly.
 * name is used in messages only (NULL: "IDX data"). Returns CF_OK and
 * fills *out (pointing into buf), or CF_ERR_FORMAT recorded as "<name>:
 * offset <n>: <what is wrong>" (a bad magic number, another element type,
 * a zero or overflowing size, data shorter or longer than the sizes
 * claim); CF_ERR_ARG for NULL arguments. Never reads outside buf. */
cf_status ex_idx_parse(const uint8_t *buf, size_t len, const char *name, ex_idx *out);

/* A file read and parsed by ex_idx_load. */
typedef struct {
    uint8_t *buf; /* the file's content (decompressed), malloc'd */
    ex_idx idx;   /* views into buf */
} ex_idx_file;

/* Reads path (gzip-compressed or not; zlib tells them apart) and parses
 * it. package, when not NULL, is the Debian package that ships the file:
 * a missing file's message then says how to install it. Returns CF_OK and
 * fills *out (free with ex_idx_file_free); CF_ERR_IO naming the file and
 * the system's reason; CF_ERR_FORMAT for corrupt gzip data (with the
 * offset reached in the decompressed content), content over
 * EX_IDX_MAX_BYTES, or as ex_idx_parse; CF_ERR_NOMEM. */
cf_status ex_idx_load(const char *path, const char *package, ex_idx_file *out);
/* Frees the content; NULL or a zeroed file is a no-op. */
void ex_idx_file_free(ex_idx_file *f);

/* An image set: "<set>-images-idx3-ubyte" and "<set>-labels-idx1-ubyte"
 * (each with .gz, or else without) from one directory. */
typedef struct {
    int64_t n;             /* items */
    int rows, cols;        /* image size */
    const uint8_t *images; /* (n, rows, cols) */
    const uint8_t *labels; /* (n), each < classes */
    ex_idx_file img, lab;  /* the owners */
} ex_idx_set;

/* Loads a set, checking that the images are 3-dimensional, the labels
 * 1-dimensional, their counts equal and every label below classes.
 * Errors as ex_idx_load, plus CF_ERR_FORMAT naming the file for each
 * mismatch and CF_ERR_ARG for a path too long. */
cf_status ex_idx_load_set(const char *dir, const char *set, int classes, const char *package,
                          ex_idx_set *out);
void ex_idx_set_free(ex_idx_set *s);

#endif
