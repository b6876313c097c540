/* cformer/dist.h: data-parallel training over MPI (library cformer-dist).
 *
 * Every rank (an MPI process) holds a whole copy of the model and trains on
 * its own shard of each global batch; after backward the gradients are
 * averaged over the ranks, so every copy takes the same optimizer step.
 * Build with ./configure --with-mpi, link with
 * `pkg-config --cflags --libs cformer-dist`, run with `mpirun -np N prog`.
 *
 *     cf_dist *d;
 *     if (cf_dist_init(&argc, &argv, &d) != CF_OK) ...
 *     cf_dist_broadcast_module(d, net, 0);              // one start for all
 *     cf_ddp *ddp = cf_ddp_new(d, net, NULL);
 *     cf_dist_sampler *s = cf_dist_sampler_new(d, n_train, global_batch, seed, true);
 *     int64_t idx[global_batch];
 *     for (;;) {
 *         int64_t n = cf_dist_sampler_next(s, idx);      // this rank's shard
 *         if (n < 0) { cf_dist_sampler_set_epoch(s, ++epoch); continue; }
 *         cf_tensor *loss = ...;                         // mean over the shard
 *         cf_optim_zero_grad(opt);
 *         cf_ddp_set_weight(ddp, cf_dist_sampler_weight(s));
 *         cf_backward(loss);          // buckets are sent as their grads are final
 *         if (cf_ddp_finish(ddp) != CF_OK)              // wait: grads averaged
 *             cf_dist_abort(d, cf_error_message());
 *         cf_optim_step(opt);
 *         cf_arena_reset(step);
 *     }
 *     double m[2] = {loss_sum, count};
 *     cf_dist_allreduce_sum(d, m, 2);                   // metrics of all ranks
 *     cf_dist_save(d, net, "net.safetensors", opt, "opt.safetensors");
 *     cf_ddp_free(ddp);
 *     cf_dist_finalize(d);
 *
 * Determinism. By default the gradient sum is cformer's own: each rank owns
 * one slice of every bucket, adds the ranks' contributions to it in rank
 * order (((g0 + g1) + g2) ...) and hands the sums to all. So a run is
 * bit-identical for the same seed and number of ranks, and N ranks give
 * bit for bit what one process gets by computing the N shard gradients and
 * adding them in that order. Against one process on the whole batch at
 * once the gradients agree within float rounding of the sum (a relative
 * 1e-6 or so; see docs/distributed.md). CF_DDP_MPI_SUM uses MPI's own
 * all-reduce instead (same traffic, sum order chosen by MPI).
 *
 * Failures. Every wait has a deadline (CF_DIST_TIMEOUT seconds, default
 * 300): a rank that stops answering turns into CF_ERR_IO on the others,
 * naming the operation. A rank that dies is seen by mpirun, which ends the
 * job. Communication errors are CF_ERR_IO; the message names the rank.
 * Collective calls (everything taking a cf_dist but rank/size/abort) must
 * be made by every rank in the same order.
 */
#ifndef CFORMER_DIST_H
#define CFORMER_DIST_H

#include <mpi.h>

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cf_dist cf_dist;

/* ---- Processes ---- */

/* Initialises MPI (unless the program already did) and returns in *out a
 * handle on a private copy of MPI_COMM_WORLD. argc and argv may be NULL.
 * Returns CF_OK, CF_ERR_IO when MPI fails, CF_ERR_NOMEM. The caller frees
 * the handle with cf_dist_finalize. */
CF_API cf_status cf_dist_init(int *argc, char ***argv, cf_dist **out);
/* The same over a copy of an existing communicator (MPI initialised by the
 * caller, who also finalizes it). */
CF_API cf_status cf_dist_from_comm(MPI_Comm comm, cf_dist **out);
/* Frees the handle; calls MPI_Finalize when cf_dist_init initialised MPI.
 * Collective. NULL is a no-op. */
CF_API void cf_dist_finalize(cf_dist *d);
/* This process's rank in [0, size) and the number of ranks. */
CF_API int cf_dist_rank(const cf_dist *d);
CF_API int cf_dist_size(const cf_dist *d);
/* Prints "cf_dist: rank R of N: msg" to stderr and ends every rank of the
 * job (MPI_Abort with status 1). Does not return. */
CF_API void cf_dist_abort(const cf_dist *d, const char *msg);

/* Waits until every rank has called it. Returns CF_OK or CF_ERR_IO. */
CF_API cf_status cf_dist_barrier(cf_dist *d);
/* Copies bytes bytes of buf on rank root into buf on every rank. */
CF_API cf_status cf_dist_broadcast(cf_dist *d, void *buf, size_t bytes, int root);
/* Copies every parameter under m (cf_module_visit order) from rank root to
 * all ranks; the models must have the same parameters. CF_ERR_SHAPE when
 * a rank's parameter count or sizes differ from root's. */
CF_API cf_status cf_dist_broadcast_module(cf_dist *d, cf_module *m, int root);
/* Gives every random generator under m (dropout) a stream of its own on
 * each rank: rank 0 keeps its generators, rank r > 0 derives new seeds from
 * them and r. Call after creating or loading m, so that the shards do not
 * share dropout masks. Not collective. */
CF_API void cf_dist_split_rngs(const cf_dist *d, cf_module *m);

/* Replaces v[0..n) on every rank by its sum over the ranks, added in rank
 * order in double precision (the same bits on every rank, for any
 * placement): for metrics such as a loss sum and a count, correct
 * predictions, word errors. Returns CF_OK, CF_ERR_IO, CF_ERR_NOMEM. */
CF_API cf_status cf_dist_allreduce_sum(cf_dist *d, double *v, int n);

/* ---- Checkpoints ---- */

/* Rank 0 writes m to mpath and, when o is not NULL, o to opath, with the
 * atomic cf_module_save / cf_optim_save; the others wait. Every rank
 * returns rank 0's status, and on failure records rank 0's message. */
CF_API cf_status cf_dist_save(cf_dist *d, cf_module *m, const char *mpath, const cf_optim *o,
                              const char *opath);
/* Every rank reads the checkpoint (cf_module_load with strict, and
 * cf_optim_load when o is not NULL; the files must be visible to all
 * ranks). Written by any number of ranks, it resumes on any number. Returns
 * CF_OK on every rank when all succeeded, else on every rank the status
 * of the lowest failing rank, with its message. */
CF_API cf_status cf_dist_load(cf_dist *d, cf_module *m, const char *mpath, bool strict, cf_optim *o,
                              const char *opath);

/* ---- Gradient averaging (data-parallel) ---- */

typedef enum {
    CF_DDP_ORDERED = 0, /* cformer's rank-ordered sum (default) */
    CF_DDP_MPI_SUM,     /* MPI_Iallreduce with MPI_SUM */
} cf_ddp_reduce;

typedef struct {
    size_t bucket_bytes;  /* gradient bytes per message; 0: 1 MiB */
    cf_ddp_reduce reduce; /* how the sum is taken */
    bool no_overlap;      /* send everything in cf_ddp_finish (for measuring) */
    double timeout;       /* seconds a wait may take; 0: CF_DIST_TIMEOUT or 300 */
    CF_RESERVED;
} cf_ddp_opts;

typedef struct cf_ddp cf_ddp;

/* Prepares gradient averaging for the parameters under m (every rank
 * must pass the same model) and installs a grad-ready hook (see
 * autograd.h) on the calling thread, so that each bucket of gradients is
 * sent while backward computes the rest. opts may be NULL. Returns the
 * handle (free with cf_ddp_free, which removes the hook), or NULL with
 * CF_ERR_NOMEM. */
CF_API cf_ddp *cf_ddp_new(cf_dist *d, cf_module *m, const cf_ddp_opts *opts);
CF_API void cf_ddp_free(cf_ddp *ddp);
/* This rank's weight in the next average: the gradients become the sum
 * over ranks of weight_r * grad_r. Each cf_ddp_finish sets it back to
 * 1 / size (a plain mean); for shards of unequal size pass shard size /
 * global batch size before each backward (cf_dist_sampler_weight). */
CF_API void cf_ddp_set_weight(cf_ddp *ddp, float weight);
/* After cf_backward: sends what backward has not sent, waits for every
 * bucket and writes the weighted sum into each parameter's .grad (a
 * parameter backward did not reach counts as a zero gradient and gets one).
 * Call once per backward, on every rank (a rank with no samples calls it
 * without a backward). Returns CF_OK, CF_ERR_STATE (backward twice before
 * finish), CF_ERR_IO (a rank failed or did not answer in time; the ranks
 * are then out of step: end the job with cf_dist_abort). */
CF_API cf_status cf_ddp_finish(cf_ddp *ddp);

typedef struct {
    int64_t steps; /* cf_ddp_finish calls */
    int buckets;   /* messages per step */
    int64_t bytes; /* gradient bytes per step */
    double hook_s; /* time spent packing and starting sends in backward */
    double wait_s; /* time blocked in cf_ddp_finish: unhidden communication */
    CF_RESERVED;   /* 0 */
} cf_ddp_stats;
/* Totals since cf_ddp_new. */
CF_API cf_ddp_stats cf_ddp_get_stats(const cf_ddp *ddp);

/* ---- Sharding a dataset ----
 * Each epoch visits the n samples in one order shared by all ranks (a
 * seeded shuffle, or 0..n-1), cut into global batches of global_batch
 * samples (the last one may be smaller); rank r takes the r-th of size
 * contiguous slices of each batch. The order and batches do not depend on
 * the number of ranks, so N ranks see exactly the samples of one process
 * with the same global batch. */

typedef struct cf_dist_sampler cf_dist_sampler;

/* Returns a sampler for this rank (free with cf_dist_sampler_free), or
 * NULL with CF_ERR_ARG (n or global_batch below 1) or CF_ERR_NOMEM. */
CF_API cf_dist_sampler *cf_dist_sampler_new(const cf_dist *d, int64_t n, int64_t global_batch,
                                            uint64_t seed, bool shuffle);
/* The same for an explicit rank and size (no MPI needed). */
CF_API cf_dist_sampler *cf_dist_sampler_new_for(int rank, int size, int64_t n, int64_t global_batch,
                                                uint64_t seed, bool shuffle);
CF_API void cf_dist_sampler_free(cf_dist_sampler *s);
/* Writes this rank's sample indices of the next global batch to idx (room
 * for global_batch / size + 1) and returns how many (possibly 0 on some
 * ranks when the last batch is small); returns -1 at the end of the epoch. */
CF_API int64_t cf_dist_sampler_next(cf_dist_sampler *s, int64_t *idx);
/* This rank's share of the batch last returned: its count / batch size
 * (for cf_ddp_set_weight). */
CF_API float cf_dist_sampler_weight(const cf_dist_sampler *s);
/* Starts epoch e (a new shuffle) from its first batch. */
CF_API void cf_dist_sampler_set_epoch(cf_dist_sampler *s, int64_t e);
/* Positions the sampler after `steps` global batches since the start of
 * training (epoch 0, batch 0), e.g. cf_optim_steps of a resumed optimizer:
 * resumes the data order whatever the number of ranks. */
CF_API void cf_dist_sampler_seek(cf_dist_sampler *s, int64_t steps);
/* The current epoch and the number of global batches per epoch. */
CF_API int64_t cf_dist_sampler_epoch(const cf_dist_sampler *s);
CF_API int64_t cf_dist_sampler_batches(const cf_dist_sampler *s);

#ifdef __cplusplus
}
#endif
#endif
