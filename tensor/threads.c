/* The thread count every kernel uses. */
#include "tensor/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this many elementary operations a parallel region costs more than it
 * saves. */
#define PARALLEL_MIN_WORK 32768

static int num_threads;

/* The leading positive integer of s, ended by the end of s or by one of
 * the characters in stops; 0 when there is none. */
static int leading_count(const char *s, const char *stops)
{
    if (!s)
        return 0;
    while (*s == ' ' || *s == '\t')
        s++;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == s || errno || v < 1 || v > 65536 || (*end && !strchr(stops, *end)))
        return 0;
    return (int)v;
}

/* CF_NUM_THREADS, else OMP_NUM_THREADS (whose value may list the counts of
 * nested levels, "4,2": the first is ours), else the processor count. The
 * kernels pass an explicit thread count to every parallel region, so
 * OpenMP would not apply OMP_NUM_THREADS by itself. */
static int default_threads(void)
{
    int n = leading_count(getenv("CF_NUM_THREADS"), "");
    if (n < 1)
        n = leading_count(getenv("OMP_NUM_THREADS"), ",");
    if (n > 0)
        return n;
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

int cf__threads_for(int64_t work) { return work < PARALLEL_MIN_WORK ? 1 : cf_get_num_threads(); }
