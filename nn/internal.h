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

/* ---- Recurrent layers (nn/recurrent.c) ---- */

/* Makes one cell's tensors as parameters of m, named as PyTorch's
 * (weight_ih, weight_hh, bias_ih, bias_hh, each followed by suffix; no
 * biases without bias): [gates * hidden, input], [gates * hidden, hidden],
 * [gates * hidden] twice, all ~ U(-1/sqrt(hidden), 1/sqrt(hidden)) from g,
 * into w[0..3] (NULL where absent). False with the error recorded. */
bool nn__rnn_cell(cf_module *m, const char *suffix, int gates, int input, int hidden, bool bias,
                  cf_rng *g, cf_tensor **w);
/* Whether a stacked recurrent layer's sizes are valid and its cells fit in
 * one module; false with CF_ERR_ARG naming type "name" otherwise. */
bool nn__rnn_check(const char *type, const char *name, int input, int hidden, int layers, int dirs,
                   float dropout, bool bias);
/* The cells of layers x dirs directions (suffixes _l<layer>, _reverse for
 * the second direction) into w[layer * dirs + dir]. */
bool nn__rnn_cells(cf_module *m, int gates, int input, int hidden, int layers, int dirs, bool bias,
                   cf_rng *g, cf_tensor *(*w)[4]);
/* Whether state s (named what) is NULL or [lead, B, H] ([B, H] for lead
 * 0); false with CF_ERR_SHAPE naming type "name" and both shapes. */
bool nn__rnn_state(const char *type, const char *name, const char *what, const cf_tensor *s,
                   int lead, int64_t B, int64_t H);
/* Whether x has ndim dimensions, the last of size input; false with
 * CF_ERR_SHAPE naming type "name" otherwise. */
bool nn__rnn_input(const char *type, const char *name, const cf_tensor *x, int ndim, int input);

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
