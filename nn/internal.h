/* Internal helpers of the nn layer. */
#ifndef CF_NN_INTERNAL_H
#define CF_NN_INTERNAL_H

#include "cformer/nn.h"
#include "tensor/internal.h"

/* Allocates a zeroed subtype struct of `size` bytes and attaches it; NULL
 * with the error recorded. */
void *nn__new(size_t size, const char *type, cf_module *parent, const char *name);

/* A seed for a module's own generator (dropout), drawn from g (NULL: the
 * global generator): each module gets its own stream, reproducibly. */
uint64_t nn__seed(cf_rng *g);

/* Calls fn(path, module, ud) for m and every module under it, depth first,
 * with the dotted path of module names ("" for m itself). */
typedef void (*nn__module_fn)(const char *path, cf_module *m, void *ud);
void nn__walk(cf_module *m, nn__module_fn fn, void *ud);

/* A batch of sequences of different lengths, each padded at its end. */
typedef struct {
    cf_tensor *real, *pad; /* bool [B, T]: t < lengths[b], and its negation */
    int64_t shortest;      /* every row is real before this step */
} nn__packing;

/* Builds the packing of x [B, T, ...] from lengths, int32 [B] in [0, T];
 * false with CF_ERR_DTYPE / CF_ERR_SHAPE / CF_ERR_INDEX naming the module
 * (type "name") otherwise. */
bool nn__pack(const char *type, const char *name, const cf_tensor *x, cf_tensor *lengths,
              nn__packing *p);

#endif
