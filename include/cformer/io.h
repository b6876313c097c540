/* cformer/io.h: reading and writing tensors in the safetensors format.
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of
 * JSON naming each tensor's dtype, shape and byte range, then the raw
 * little-endian data, row-major: the format of huggingface/safetensors, the
 * usual way to exchange weights with PyTorch. (The tests read a file made by
 * an independent Python writer, tests/golden/io.safetensors.)
 *
 *     cf_tensor *ts[] = {w, b};
 *     const char *names[] = {"fc.weight", "fc.bias"};
 *     cf_safetensors_save("model.safetensors", 2, names, ts,
 *                         "{\"epoch\": \"3\"}");
 *     ...
 *     cf_safetensors *f;
 *     if (cf_safetensors_open("model.safetensors", &f) == CF_OK) {
 *         cf_safetensors_read_into(f, "fc.weight", w);  // into a parameter
 *         cf_safetensors_read_into(f, "fc.bias", b);
 *         printf("epoch %s\n", cf_safetensors_metadata(f, "epoch"));
 *         cf_safetensors_close(f);
 *     }
 *
 * Errors follow tensor.h ("Errors"): a failing call returns its own status
 * and records its error, with a message naming the file and, where there is
 * one, the tensor. A corrupt or hostile file gives CF_ERR_FORMAT; it is never
 * read out of bounds.
 *
 * Threads. An open handle is read-only: several threads may call
 * cf_safetensors_get and cf_safetensors_read_into on it at once.
 *
 * U+0000. Names and metadata are C strings, so a \u0000 in the file's JSON
 * is returned as the two bytes C0 80 (as Java's modified UTF-8 writes it),
 * which no valid UTF-8 text contains; cf_safetensors_save writes such a
 * pair in a name or metadata value back as \u0000. Messages quote text
 * from a file with control bytes escaped (\n, \x07, \u0000).
 */
#ifndef CFORMER_IO_H
#define CFORMER_IO_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes n tensors (F32, I32 or BOOL, any strides: each is written row-major)
 * under the given names to path, replacing the file atomically: the data
 * goes to path.tmp-XXXXXX in the same directory, is flushed and synced, then
 * renamed over path, and the directory is synced. On failure the temporary
 * file is removed and an existing file at path is left as it was. A file
 * that is replaced keeps its permission bits. When path is a symbolic link,
 * the file it leads to is replaced and the link stays (as editors do); a
 * link to nothing is CF_ERR_IO, as is a path that is a directory, FIFO or
 * device. A save holds a lock on its temporary file, and removes the
 * temporaries of the same path that no save holds: those of saves that were
 * killed.
 * metadata_json is NULL or the text of a JSON object whose values are all
 * strings, e.g. {"epoch": "3"}; it is stored under "__metadata__".
 * Returns CF_OK; CF_ERR_ARG for NULL arguments, a NULL tensor, duplicate or
 * invalid names (not UTF-8, or "__metadata__") and invalid metadata_json;
 * CF_ERR_IO naming the path and the system's reason when a file operation
 * fails. The tensors are only read. */
CF_API cf_status cf_safetensors_save(const char *path, int n, const char *const *names,
                                     cf_tensor *const *tensors, const char *metadata_json);

/* An open safetensors file (opaque). */
typedef struct cf_safetensors cf_safetensors;

/* Opens path (a regular file: a FIFO or device is refused at once, not
 * waited on), maps or reads it, and validates the whole header: JSON syntax,
 * dtypes, shapes against byte ranges, and that the tensors' byte ranges
 * tile the data area exactly. Tensors of dtypes cformer does not hold (F16,
 * BF16, F64, I64, ...) are accepted here and refused when requested.
 * Returns CF_OK and stores a handle in *out, which the caller frees with
 * cf_safetensors_close; on failure *out is NULL and the status is
 * CF_ERR_IO (cannot open or read; names the path and the reason),
 * CF_ERR_FORMAT (corrupt; names the file and, where relevant, the tensor),
 * CF_ERR_NOMEM or CF_ERR_ARG (NULL path or out). Needs no arena. The file
 * must not be truncated by another process while it is open. */
CF_API cf_status cf_safetensors_open(const char *path, cf_safetensors **out);

/* Closes the file and frees the handle; strings returned by the functions
 * below become invalid. NULL is a no-op. */
CF_API void cf_safetensors_close(cf_safetensors *f);

/* The number of tensors in the file (0 for NULL). */
CF_API int cf_safetensors_count(const cf_safetensors *f);

/* The name of tensor i, 0 <= i < count, in the header's order; NULL when i is
 * out of range or f is NULL. Owned by the handle. */
CF_API const char *cf_safetensors_name(const cf_safetensors *f, int i);

/* The metadata value stored under key, or NULL when there is none (or f or
 * key is NULL). Owned by the handle. */
CF_API const char *cf_safetensors_metadata(const cf_safetensors *f, const char *key);

/* Returns a contiguous copy of the named tensor in the arena in use (a leaf,
 * not requiring a gradient). BOOL bytes other than 0 are read as 1. NULL
 * with CF_ERR_FORMAT ("file: no tensor named X") when the name is missing,
 * CF_ERR_DTYPE when its dtype is not F32, I32 or BOOL, CF_ERR_DIM when it
 * has more than CF_MAX_DIMS dims, CF_ERR_ARG for NULL arguments, or the
 * arena's error (CF_ERR_NO_ARENA, CF_ERR_NOMEM). */
CF_API cf_tensor *cf_safetensors_get(const cf_safetensors *f, const char *name);

/* Copies the named tensor into dst (any strides, e.g. a parameter made by
 * cf_tensor_new), leaving its graph fields alone. Returns CF_OK;
 * CF_ERR_FORMAT when the name is missing, CF_ERR_SHAPE naming the file, the
 * tensor and both shapes when they differ, CF_ERR_DTYPE when the dtypes
 * differ (except that an I64 tensor, as PyTorch saves counters such as
 * BatchNorm's num_batches_tracked, is read into an int32 dst when every
 * value fits: CF_ERR_DTYPE naming a value that does not), CF_ERR_ARG for
 * NULL arguments or a dst that is a broadcast view (stride 0 along a dim
 * of size > 1). dst is unchanged on error. Needs no arena. */
CF_API cf_status cf_safetensors_read_into(const cf_safetensors *f, const char *name,
                                          cf_tensor *dst);

#ifdef __cplusplus
}
#endif
#endif
