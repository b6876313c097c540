/* A tiny Transformer on a copy task, shared by the MPI tests: the same
 * model, data and loss in every rank and in the one-process references. */
#ifndef CF_TESTS_MPI_TOY_H
#define CF_TESTS_MPI_TOY_H

#include "cformer/cformer.h"

#define TOY_VOCAB   12 /* pad 0, bos 1, eos 2, symbols 3..11 */
#define TOY_LEN     6  /* source symbols per sample */
#define TOY_SAMPLES 240

/* d_model 32, 4 heads, 1 + 1 layers, ff 64; weights from seed. */
cf_transformer *toy_model(uint64_t seed, float dropout);
/* The mean cross entropy over the target tokens of samples idx[0..n)
 * (sample i's symbols depend only on i), in the arena; NULL on error. */
cf_tensor *toy_loss(cf_transformer *m, const int64_t *idx, int64_t n);
/* FNV-1a over the bits of every parameter. */
uint64_t toy_hash(cf_module *m);
/* Every parameter gradient, packed in visit order into a malloc'd array of
 * *n floats. */
float *toy_grads(cf_module *m, int64_t *n);
/* Sets every parameter gradient from g (as packed by toy_grads). */
void toy_set_grads(cf_module *m, const float *g);
/* What N ranks compute for the global batch idx[0..G): in one process,
 * the gradient of each rank's slice (cf_dist_sampler's cut), times the
 * rank's share, added in rank order; returned as toy_grads packs it, and
 * left in the parameters' gradients. NULL on error. */
float *toy_fold(cf_transformer *m, const int64_t *idx, int64_t G, int N);

#endif
