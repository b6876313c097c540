/* cformer/tensor.h: tensors, arenas, errors, random numbers.
 *
 * A tensor is a view: a shape, strides in elements and a pointer to its first
 * element. Views made by reshape, permute, slice or expand share the storage
 * of the tensor they come from.
 *
 * Ownership. Every tensor made by an op or a creation function (cf_zeros,
 * cf_add, ...) belongs to the arena in use on the calling thread, together with
 * its gradient and the graph that autograd records for it. cf_arena_reset
 * frees all of them in one call. Tensors that must outlive a step (parameters,
 * optimizer state) come from cf_tensor_new and belong to the caller, who frees
 * them with cf_tensor_free; their gradients belong to them.
 *
 *     cf_arena *step = cf_arena_new(0);
 *     cf_arena_use(step);
 *     for (;;) {
 *         cf_tensor *loss = model_loss(params, batch);   // arena tensors
 *         cf_backward(loss);                             // fills params' grad
 *         optimizer_step(params);
 *         cf_arena_reset(step);                          // frees the step
 *     }
 *     cf_arena_free(step);
 *
 * Errors. Functions that can fail return NULL (or a status) and record the
 * first error on the calling thread: cf_error() and cf_error_message() read
 * it, cf_error_clear() forgets it. An op handed NULL returns NULL and keeps the
 * first message, so a whole expression can be checked once at the end. The
 * library never exits or aborts on bad input.
 *
 * Threads. Kernels use OpenMP with cf_get_num_threads() threads (default: the
 * CF_NUM_THREADS environment variable, else the number of cores). Results are
 * bit-identical for any thread count. Each thread has its own arena in use,
 * error state and grad mode.
 */
#ifndef CFORMER_TENSOR_H
#define CFORMER_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CF_API __attribute__((visibility("default")))
#else
#define CF_API
#endif

#define CF_MAX_DIMS 8
#define CF_MAX_SRC 6
#define CF_MAX_SAVED 4

/* CF_SHAPE(2, 3) expands to the two arguments `ndim, shape` that creation
 * functions take: cf_zeros(CF_SHAPE(2, 3)). */
#define CF_SHAPE(...)                                                          \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),                 \
        (const int64_t[]) { __VA_ARGS__ }
/* CF_IDX(i, j) is an index array for cf_get and cf_set. */
#define CF_IDX(...) ((const int64_t[]){__VA_ARGS__})

typedef enum {
    CF_F32,  /* float */
    CF_I32,  /* int32_t, for indices */
    CF_BOOL, /* uint8_t holding 0 or 1, for masks */
} cf_dtype;

typedef enum {
    CF_OK = 0,
    CF_ERR_SHAPE,    /* shapes do not fit the op */
    CF_ERR_DTYPE,    /* wrong element type */
    CF_ERR_DIM,      /* dimension out of range */
    CF_ERR_INDEX,    /* index or value out of range */
    CF_ERR_ARG,      /* other invalid argument, including a NULL operand */
    CF_ERR_NOMEM,    /* allocation failed */
    CF_ERR_NO_ARENA, /* an op ran with no arena in use */
    CF_ERR_STATE,    /* call out of order (e.g. backward twice) */
    CF_ERR_IO,       /* a file could not be read or written */
    CF_ERR_FORMAT,   /* a file's contents are corrupt or do not match */
} cf_status;

typedef struct cf_tensor cf_tensor;
typedef struct cf_op cf_op;
typedef struct cf_arena cf_arena;

/* Tensor flags (cf_tensor.flags). */
enum {
    CF_REQUIRES_GRAD = 1u << 0, /* backward computes a gradient for it */
    CF_HEAP = 1u << 1,          /* made by cf_tensor_new; owned by the caller */
};

/* Fields are read-only for users; ops (including user-defined ones, see
 * autograd.h) fill the graph fields through cf_op_record. */
struct cf_tensor {
    cf_dtype dtype;
    int ndim;                     /* 0 for a scalar */
    int64_t shape[CF_MAX_DIMS];   /* sizes; unused entries are 1 */
    int64_t stride[CF_MAX_DIMS];  /* in elements; 0 along a broadcast dim */
    void *data;                   /* the first element */
    cf_tensor *grad;              /* contiguous, same shape; NULL until set */
    unsigned flags;               /* CF_REQUIRES_GRAD, CF_HEAP */
    const char *name;             /* optional label, shown by cf_graph_dot */
    /* Graph record: the op that made this tensor and what its backward needs. */
    const cf_op *op;              /* NULL for a leaf */
    int nsrc;
    cf_tensor *src[CF_MAX_SRC];       /* inputs */
    cf_tensor *saved[CF_MAX_SAVED];   /* extra tensors saved for backward */
    int64_t iparam[8];                /* op parameters (dims, sizes, ...) */
    float fparam[4];                  /* op parameters (scalars) */
    void *ctx;                        /* op state, allocated in the arena */
    /* Private. */
    void *alloc;      /* the block to free, for heap tensors */
    uint32_t visit;   /* traversal stamp used by backward */
};

/* ---- Errors ---- */

/* Returns the first error recorded on this thread since the last clear. */
CF_API cf_status cf_error(void);
/* Returns its message ("" when there is none); valid until the next clear. */
CF_API const char *cf_error_message(void);
/* Forgets the recorded error. */
CF_API void cf_error_clear(void);
/* Records an error the way the library does (for user-defined ops and
 * models): status s with a printf-style message, unless an error is
 * already recorded on this thread. */
CF_API void cf_error_set(cf_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Returns a fixed description of a status ("shape mismatch", ...). */
CF_API const char *cf_status_str(cf_status s);
/* Calls fn(status, message, ud) whenever an error is first recorded on any
 * thread, e.g. to log it; NULL removes the handler. */
typedef void (*cf_error_fn)(cf_status s, const char *msg, void *ud);
CF_API void cf_set_error_handler(cf_error_fn fn, void *ud);

/* ---- Arenas ---- */

/* Returns a new arena that grows in chunks of chunk_bytes (0: 64 MiB), or
 * NULL on allocation failure. Free it with cf_arena_free. */
CF_API cf_arena *cf_arena_new(size_t chunk_bytes);
/* Frees the arena and everything in it. NULL is a no-op. If the arena is in
 * use on this thread, no arena is in use afterwards. */
CF_API void cf_arena_free(cf_arena *a);
/* Frees everything in the arena at once. Memory is kept: the next step of
 * the same shapes fills the same chunks in the same order, so it allocates
 * nothing and touches no new page. (Chunks holding more than twice the
 * high water, after steps of changing shapes, are merged into one.) */
CF_API void cf_arena_reset(cf_arena *a);
/* Makes a the arena that ops on this thread allocate from (NULL: none).
 * Returns the arena that was in use. */
CF_API cf_arena *cf_arena_use(cf_arena *a);
/* Returns the arena in use on this thread, or NULL. */
CF_API cf_arena *cf_arena_current(void);
/* Returns size bytes aligned to 64 from the arena in use, for op state and
 * scratch; NULL with CF_ERR_NO_ARENA or CF_ERR_NOMEM. Freed by reset. */
CF_API void *cf_arena_alloc(size_t size);
/* Bytes handed out since the last reset. */
CF_API size_t cf_arena_used(const cf_arena *a);
/* The most bytes ever in use between two resets. */
CF_API size_t cf_arena_high_water(const cf_arena *a);
/* Bytes the arena holds from the system. */
CF_API size_t cf_arena_capacity(const cf_arena *a);

/* ---- Creation ----
 * All of these return a contiguous tensor in the arena in use, or NULL with
 * CF_ERR_NO_ARENA, CF_ERR_NOMEM, CF_ERR_DIM (more than CF_MAX_DIMS or a
 * negative size). */

CF_API cf_tensor *cf_empty(cf_dtype dtype, int ndim, const int64_t *shape);
CF_API cf_tensor *cf_zeros(int ndim, const int64_t *shape);
CF_API cf_tensor *cf_ones(int ndim, const int64_t *shape);
CF_API cf_tensor *cf_full(float value, int ndim, const int64_t *shape);
/* [start, start+step, ...) below end (above end for a negative step);
 * CF_ERR_ARG for a zero step. */
CF_API cf_tensor *cf_arange(float start, float end, float step);
/* A copy of n = prod(shape) floats (int32 values for cf_from_ints). */
CF_API cf_tensor *cf_from_array(const float *data, int ndim,
                                const int64_t *shape);
CF_API cf_tensor *cf_from_ints(const int32_t *data, int ndim,
                               const int64_t *shape);
/* A zero-dimensional tensor holding v. */
CF_API cf_tensor *cf_scalar(float v);

/* Returns a zeroed contiguous tensor owned by the caller (for parameters and
 * state that outlive arena resets), or NULL with CF_ERR_NOMEM or CF_ERR_DIM.
 * Needs no arena. Free with cf_tensor_free. */
CF_API cf_tensor *cf_tensor_new(cf_dtype dtype, int ndim,
                                const int64_t *shape);
/* Frees a tensor made by cf_tensor_new and its gradient. NULL is a no-op;
 * arena tensors are left to their arena. */
CF_API void cf_tensor_free(cf_tensor *t);

/* ---- Inspection ---- */

CF_API int64_t cf_numel(const cf_tensor *t);
CF_API size_t cf_dtype_size(cf_dtype dtype);
CF_API const char *cf_dtype_name(cf_dtype dtype);
/* True when the elements are laid out row-major without gaps. */
CF_API bool cf_is_contiguous(const cf_tensor *t);
/* True when both have the same ndim and sizes. */
CF_API bool cf_same_shape(const cf_tensor *a, const cf_tensor *b);
/* Writes "[2, 3, 4]" into buf (always terminated); returns buf. */
CF_API char *cf_shape_str(const cf_tensor *t, char *buf, size_t size);

/* Element access for tests and small programs; indices are not checked
 * beyond an assertion. int32 and bool elements are converted to float. */
CF_API float cf_get(const cf_tensor *t, const int64_t *idx);
CF_API void cf_set(cf_tensor *t, const int64_t *idx, float v);
/* The value of a one-element tensor; NAN with CF_ERR_SHAPE otherwise. */
CF_API float cf_item(const cf_tensor *t);
/* Copies the elements in row-major order into dst (numel floats), whatever
 * the strides. */
CF_API void cf_copy_to(const cf_tensor *t, float *dst);
/* Copies n = numel floats from src into t's elements in row-major order. */
CF_API void cf_copy_from(cf_tensor *t, const float *src);
/* Sets every element of t to v. */
CF_API void cf_fill(cf_tensor *t, float v);

/* Prints shape, dtype and values (at most 6 per dim, with ...) to f. */
CF_API void cf_fprint(FILE *f, const cf_tensor *t);
CF_API void cf_print(const cf_tensor *t);

/* ---- Random numbers ----
 * A counter-based generator (Philox4x32-10): element i of a draw depends only
 * on the seed and the generator's offset, so results are the same for any
 * thread count. Each draw advances the offset. Pass NULL for the global
 * generator (seed 0 until cf_manual_seed). */

typedef struct {
    uint64_t seed;
    uint64_t offset; /* 128-bit blocks consumed so far */
} cf_rng;

CF_API void cf_rng_init(cf_rng *g, uint64_t seed);
/* Reseeds the global generator. */
CF_API void cf_manual_seed(uint64_t seed);
/* Uniform in [lo, hi). */
CF_API cf_tensor *cf_uniform(cf_rng *g, float lo, float hi, int ndim,
                             const int64_t *shape);
/* Normal with the given mean and standard deviation. */
CF_API cf_tensor *cf_normal(cf_rng *g, float mean, float std, int ndim,
                            const int64_t *shape);
/* 1 with probability p, else 0 (float32). */
CF_API cf_tensor *cf_bernoulli(cf_rng *g, float p, int ndim,
                               const int64_t *shape);
/* Fills an existing float tensor (any strides) in place. */
CF_API void cf_fill_uniform(cf_rng *g, cf_tensor *t, float lo, float hi);
CF_API void cf_fill_normal(cf_rng *g, cf_tensor *t, float mean, float std);

/* ---- Threads ---- */

/* Sets the number of threads kernels use (n < 1 means 1). */
CF_API void cf_set_num_threads(int n);
CF_API int cf_get_num_threads(void);

/* ---- Profiling ----
 * With CF_PROFILE=1 in the environment, a program prints to stderr at exit a
 * table of the time, calls and matrix-product GFLOP/s of every op, forward
 * and backward apart. An op's forward is timed from its first allocation to
 * the end of the op; its backward is the node's backward function as
 * cf_backward runs it. Ops from every thread are counted; off, profiling
 * costs a test per op. */

/* Starts (true) or stops counting; CF_PROFILE=1 starts it at load. */
CF_API void cf_profile_enable(bool on);
/* Forgets the counts gathered so far. */
CF_API void cf_profile_reset(void);
/* Prints the table, the op taking the most time first. */
CF_API void cf_profile_report(FILE *f);
/* Floating-point operations (2 m n k each) of every matrix product the
 * library has run in this process, counted whether or not profiling is on. */
CF_API uint64_t cf_profile_matmul_flops(void);

#ifdef __cplusplus
}
#endif
#endif
