/* The thread count every kernel uses. */
#include "tensor/internal.h"

#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this many elementary operations a parallel region costs more than it
 * saves. */
#define PARALLEL_MIN_WORK 32768

static int num_threads;

static int default_threads(void)
{
    const char *env = getenv("CF_NUM_THREADS");
    if (env && atoi(env) > 0)
        return atoi(env);
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

void cf_set_num_threads(int n) { num_threads = n < 1 ? 1 : n; }

int cf_get_num_threads(void)
{
    if (num_threads == 0)
        num_threads = default_threads();
    return num_threads;
}

int cf__threads_for(int64_t work)
{
    return work < PARALLEL_MIN_WORK ? 1 : cf_get_num_threads();
}
