/* The model and optimizer that the checkpoint fuzz targets load into, and
 * that tests/fuzz/seeds.c saves as their seed inputs: small, so that the
 * seeds are a few hundred bytes, with every kind of state a checkpoint
 * holds (weights, biases, an embedding, a layer norm, a dropout generator;
 * Adam moments, a step count, a learning rate). */
#ifndef CF_FUZZ_NET_H
#define CF_FUZZ_NET_H

#include "cformer/nn.h"

/* The model "Net": fc (Linear 4 -> 3), norm (LayerNorm 3), emb (Embedding
 * 5 x 3), drop (Dropout 0.1). NULL with the error recorded. */
cf_module *fuzz_net_new(void);

/* AdamW on net after two steps on a fixed gradient, so that its moments,
 * step count and learning rate are all set. NULL with the error recorded. */
cf_optim *fuzz_optim_new(cf_module *net);

#endif
