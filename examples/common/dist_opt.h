/* Optional data parallelism for the examples.
 *
 * Built with -DCF_HAVE_MPI (./configure --with-mpi), these calls run the
 * example data-parallel over MPI through libcformer_dist: start it with
 * `mpirun -np N example ...`. Without it they are one-process stand-ins,
 * so an example has one code path:
 *
 *     dopt_init(&argc, &argv);
 *     ... build the model with the same seed on every rank ...
 *     dopt_attach(model);               // same weights everywhere; averaging
 *     for each global batch of B samples:
 *         int64_t lo, hi;
 *         dopt_range(B, &lo, &hi);      // this rank's samples lo..hi-1
 *         dopt_weight((float)(hi - lo) / B);
 *         if (hi > lo) { forward on the slice; cf_backward(loss); }
 *         dopt_check(dopt_finish());    // gradients of the global batch
 *         cf_optim_step(opt);
 *     dopt_sum(metrics, n);             // totals over the ranks
 *     if (dopt_root()) print;
 *     dopt_finalize();
 *
 * Every rank must make the same calls in the same order, and a rank whose
 * slice is empty still calls dopt_finish. */
#ifndef CF_EXAMPLES_DIST_OPT_H
#define CF_EXAMPLES_DIST_OPT_H

#include <cformer/cformer.h>

/* Starts MPI (or nothing); on failure prints the error and exits. */
void dopt_init(int *argc, char ***argv);
/* Ends MPI; call once at the end of main. */
void dopt_finalize(void);
int dopt_rank(void);
int dopt_size(void);
/* True on rank 0, the rank that prints and writes files. */
bool dopt_root(void);
/* Ends every rank with msg (MPI_Abort), or exits with status 1. */
void dopt_abort(const char *msg);
/* Aborts with the recorded error unless st is CF_OK. */
void dopt_check(cf_status st);

/* Copies rank 0's parameters to every rank, gives each rank its own
 * dropout streams and installs gradient averaging for m (one model per
 * program). */
cf_status dopt_attach(cf_module *m);
/* This rank's contiguous slice [lo, hi) of n items. */
void dopt_range(int64_t n, int64_t *lo, int64_t *hi);
/* This rank's weight in the next gradient average (its share of the
 * batch); defaults to 1 / size. */
void dopt_weight(float w);
/* Waits for the averaged gradients of the last backward (see
 * cf_ddp_finish). */
cf_status dopt_finish(void);
/* Sums v[0..n) over the ranks, in rank order (the same on every rank). */
cf_status dopt_sum(double *v, int n);
/* Rank 0 writes the checkpoint (atomically); the others wait for it. */
cf_status dopt_save(cf_module *m, const char *mpath, const cf_optim *o, const char *opath);
/* Every rank reads the checkpoint; an error on any rank fails all. */
cf_status dopt_load(cf_module *m, const char *mpath, cf_optim *o, const char *opath);
/* Seconds spent communicating gradients so far, and in waiting for them
 * after backward. */
double dopt_comm_seconds(void);
double dopt_wait_seconds(void);

#endif
