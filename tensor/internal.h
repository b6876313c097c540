/* Internal interfaces of the tensor layer, shared with the layers above.
 * Nothing here is exported: the library builds with -fvisibility=hidden. */
#ifndef CF_TENSOR_INTERNAL_H
#define CF_TENSOR_INTERNAL_H

#include "cformer/tensor.h"

#include <stdarg.h>

#define CF_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* A hot kernel compiled twice, for AVX2 and for the baseline, the variant
 * picked when the library loads. Floating-point contraction is off (ISO C),
 * so both variants compute the same values. */
#if defined(CF_TARGET_CLONES) && defined(__x86_64__)
#define CF_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CF_CLONES
#endif

/* Records status s with a formatted message unless an error is already
 * recorded on this thread (the first one wins). */
void cf__error(cf_status s, const char *fmt, ...) CF_PRINTF(2, 3);
/* cf__error, keeping s in *st unless *st already holds a failure: for
 * functions that return the status of their first failure. */
void cf__fail(cf_status *st, cf_status s, const char *fmt, ...) CF_PRINTF(3, 4);
/* Returns true when every one of the n tensors is non-NULL; otherwise records
 * "op: operand i is NULL" (unless an error is already recorded). */
bool cf__check(const char *op, int n, cf_tensor *const *ts);
/* Returns true when p is not NULL; otherwise records CF_ERR_ARG "fn: what is
 * NULL" (unless an error is already recorded: the NULL is likely its
 * result). For arguments other than tensors, such as modules. */
bool cf__nonnull(const char *fn, const void *p, const char *what);
/* Copies s into buf for an error message, with control bytes written as
 * \n, \t, \r or \xNN and the pair C0 80 (U+0000, see io.h) as \u0000, so
 * that text from a file cannot break a message into lines or hide in it;
 * cut with "..." to fit. Returns buf. */
#define CF_SHOW_BUF 160
const char *cf__show(const char *s, char *buf, size_t size);
/* True when an error is recorded on this thread. */
bool cf__failed(void);
/* The number of errors raised on this thread so far, recorded or not (the
 * first one wins): an op that must know whether a callee failed compares
 * two readings, whatever was recorded before it ran. */
uint64_t cf__error_seq(void);

/* For a NULL tensor handed to a status-returning call: when an error is
 * recorded, the NULL is its result and the call returns it; otherwise
 * records CF_ERR_ARG "fn: what is NULL". Returns the status. */
cf_status cf__null_arg(const char *fn, const char *what);

/* A contiguous tensor of the given shape in the arena in use, elements
 * uninitialised; NULL with the error recorded (op names the caller). */
cf_tensor *cf__alloc(const char *op, cf_dtype dtype, int ndim, const int64_t *shape);
/* A new tensor struct in the arena that views t's data (no graph). */
cf_tensor *cf__view_of(const char *op, const cf_tensor *t);
void cf__contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
void *cf__arena_alloc(const char *op, size_t size);
/* strdup and strndup through the allocator (cf_set_allocator); NULL when it
 * fails. */
char *cf__strdup(const char *s);
char *cf__strndup(const char *s, size_t n);
/* Grows *p, an array of *cap elements of size sz (cf_realloc), to hold at
 * least need elements; false, leaving it as it was, when that fails. */
bool cf__grow(void **p, size_t *cap, size_t need, size_t sz);
/* True on a little-endian host, as files are written. */
static inline bool cf__little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}
/* Gives the block p of size bytes, from cf__arena_alloc of the arena in use,
 * back to that arena for reuse before its reset; a pointer outside the
 * arena is ignored. */
void cf__arena_release(void *p, size_t size);
/* Flag of a tensor made by cf__alloc: its header and data are one arena
 * block that cf__release can give back. Views never carry it. */
#define CF__OWN_BLOCK (1u << 30)
/* Flag of a tensor made by an op that a backward has gone through (without
 * retain_graph): another backward through it is refused, as in PyTorch. */
#define CF__GRAPH_USED (1u << 29)
/* Flag of an op output whose values the op's backward never reads (affine,
 * matmul, attention, residual, and reshaped views of them): an in-place op
 * may write over it, when its caller knows nothing else reads it. */
#define CF__OUTPUT_UNREAD (1u << 28)
/* Releases t's block when t owns one (see CF__OWN_BLOCK); t and its data
 * must not be used afterwards. NULL is a no-op. */
void cf__release(cf_tensor *t);

/* The draw of cf_bernoulli(g, p, ...) over n elements as bytes 0 or 1 into
 * m[0..n) (a quarter of the memory), advancing g alike. */
void cf__bernoulli_bytes(cf_rng *g, float p, uint8_t *m, int64_t n);

/* ---- Profiling (tensor/profile.c) ----
 * cf__profiling is set by CF_PROFILE=1 or cf_profile_enable; the hooks below
 * are called only when it is. */
extern bool cf__profiling;
/* Marks the start of an op at its first allocation. */
void cf__prof_alloc(void);
/* Ends the forward of op `name` (from cf_op_record). */
void cf__prof_forward(const char *name);
/* Brackets one node's backward in the engine. */
void cf__prof_backward_begin(double *t, uint64_t *flops);
void cf__prof_backward_end(const char *name, double t, uint64_t flops);
/* Adds to the count of matrix-product FLOPs (always called). */
void cf__count_flops(uint64_t flops);

/* Thread count for a kernel of `work` elementary operations: 1 below a
 * threshold, so small tensors do not pay for a parallel region. */
int cf__threads_for(int64_t work);

/* ---- Shapes ---- */

/* Normalises dim (negative counts from the end) for a tensor of ndim dims;
 * records CF_ERR_DIM naming op and returns -1 when out of range. */
int cf__dim(const char *op, int dim, int ndim);
/* The broadcast shape of a and b; false with CF_ERR_SHAPE naming op and both
 * shapes when they do not broadcast. */
bool cf__broadcast(const char *op, const cf_tensor *a, const cf_tensor *b, int *ndim,
                   int64_t *shape);
/* Strides that view t as the (broadcast) shape, 0 along stretched dims. */
void cf__expand_strides(const cf_tensor *t, int ndim, const int64_t *shape, int64_t *stride);
/* Formats a shape as "[2, 3]" into buf; returns buf. */
char *cf__shape_str(int ndim, const int64_t *shape, char *buf, size_t size);
#define CF_SHAPE_BUF 128
int64_t cf__prod(int ndim, const int64_t *shape);
/* The most elements a tensor may have: byte sizes and offsets of any dtype
 * stay far from overflowing int64_t and size_t. */
#define CF__MAX_NUMEL ((int64_t)1 << 60)
/* True when no size is negative and the sizes (zeros left out) multiply to
 * at most CF__MAX_NUMEL; otherwise records CF_ERR_DIM naming op. */
bool cf__valid_sizes(const char *op, int ndim, const int64_t *shape);

/* ---- Strided loops ----
 * cf__loop calls fn over rows of the index space `shape` for nops operands
 * whose byte strides are strides[op][dim]. fn(n, p, s, ud) handles n
 * elements: operand i's first element at p[i], its byte stride s[i]. Dims are
 * merged where the layout allows, and the work is split over threads in
 * chunks that never depend on the thread count. strides is only read (not
 * const-qualified: ISO C before C23 will not add const to a pointer to an
 * array implicitly). */
#define CF_LOOP_MAX 5
typedef void (*cf__row_fn)(int64_t n, char *const *p, const int64_t *s, const void *ud);
void cf__loop(int nops, int ndim, const int64_t *shape, int64_t (*strides)[CF_MAX_DIMS],
              char *const *base, cf__row_fn fn, const void *ud);

/* dst = src, src broadcastable to dst's shape; both float or both of one
 * dtype. */
void cf__copy(cf_tensor *dst, const cf_tensor *src);
/* dst += src (float), src broadcastable to dst's shape. */
void cf__acc(cf_tensor *dst, const cf_tensor *src);
/* dst (+)= scale * sum of src over the dims where dst has size 1 (dst's shape
 * aligned to src's from the right; missing leading dims are summed too).
 * Each element is summed in a fixed order in double precision, so the result
 * does not depend on the thread count. */
void cf__sum_to(cf_tensor *dst, const cf_tensor *src, double scale, bool accumulate);

/* ---- Matrix multiply through BLIS ----
 * C (+)= A B with A m x k, B k x n, C m x n, strides in elements (any, but
 * not both zero-free and overlapping). nthreads threads inside BLIS, at most
 * that many for outer products (k = 1); products with a vector (m or n 1)
 * size their threads to their work alone. */
void cf__gemm(bool accumulate, int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa,
              int64_t csa, const float *b, int64_t rsb, int64_t csb, float *c, int64_t rsc,
              int64_t csc, int nthreads);

#endif
