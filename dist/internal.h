/* Shared by the files of libcformer_dist. */
#ifndef CF_DIST_INTERNAL_H
#define CF_DIST_INTERNAL_H

#include "cformer/dist.h"

struct cf_dist {
    MPI_Comm comm;  /* private copy: our collectives never meet the user's */
    MPI_Comm comm2; /* second copy, for the gather phase of ordered sums */
    int rank, size;
    bool own_mpi; /* cf_dist_init called MPI_Init_thread */
};

/* Monotonic seconds. */
double dist__now(void);
/* opt when positive, else CF_DIST_TIMEOUT from the environment, else 300. */
double dist__timeout(double opt);
/* True when req is complete; records CF_ERR_IO naming what on an MPI error
 * (then *err is set). */
bool dist__test(const cf_dist *d, MPI_Request *req, const char *what, cf_status *err);
/* Waits for req until the deadline (seconds from now), polling so that a
 * silent rank becomes CF_ERR_IO naming what instead of a hang. */
cf_status dist__wait(const cf_dist *d, MPI_Request *req, double timeout, const char *what);
/* Lets other processes run while polling: spins briefly, then sleeps. */
void dist__pause(int *spins);
/* Records CF_ERR_IO for MPI return code rc; returns CF_ERR_IO. */
cf_status dist__mpi_error(const cf_dist *d, int rc, const char *what);

#endif
