/* The thread count every kernel uses. */
#include "tensor/internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __linux__
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
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

/* ---- Backing off while other programs keep cores busy ----
 * OpenMP and BLIS threads wait for each other at every barrier. When another
 * program holds one of two cores, a 2-thread step keeps waiting for a thread
 * the scheduler is not running, and takes 1.6 to 3.4 times as long as a
 * 1-thread step (docs/performance.md; passive waiting is worse). So every
 * PERIOD seconds the library measures the processor time that the cores it
 * may run on spent outside this process (/proc/stat's busy time less the
 * process's own getrusage time) and uses no more threads than the cores left
 * free, rounded to the nearest. Results do not depend on the count, so
 * changing it is invisible but for speed. Linux only. */
#define PERIOD 0.2

static atomic_int backoff = -1; /* -1: CF_THREAD_BACKOFF not read yet */
static atomic_int free_cores;   /* 0: not measured yet */

#ifdef __linux__
static pthread_mutex_t sample_lock = PTHREAD_MUTEX_INITIALIZER;
static double next_sample; /* under sample_lock */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Busy seconds of the processors in *cpus since boot (user, nice, system,
 * irq, softirq and steal: steal is time the host gave to others), or -1. */
static double busy_seconds(const cpu_set_t *cpus)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[256];
    bool at_start = true, seen = false;
    unsigned long long total = 0;
    while (fgets(line, sizeof line, f)) {
        bool whole = strchr(line, '\n') != NULL;
        int id;
        unsigned long long v[8];
        if (at_start &&
            sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &id, &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]) == 9 &&
            id >= 0 && id < CPU_SETSIZE && CPU_ISSET(id, cpus)) {
            total += v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
            seen = true;
        }
        at_start = whole;
    }
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    return seen && hz > 0 ? (double)total / (double)hz : -1;
}

static double own_seconds(void)
{
    struct rusage r;
    if (getrusage(RUSAGE_SELF, &r) != 0)
        return -1;
    return (double)r.ru_utime.tv_sec + (double)r.ru_stime.tv_sec +
           1e-6 * (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
}

/* Measures again when PERIOD has passed; one caller at a time, the others
 * keep the last figure. */
static void sample(void)
{
    static double wall0 = -1, busy0, own0;
    static cpu_set_t cpus;
    static int ncpus, last_left = CPU_SETSIZE;
    if (pthread_mutex_trylock(&sample_lock) != 0)
        return;
    double t = now();
    if (t >= next_sample) {
        next_sample = t + PERIOD;
        if (ncpus == 0) {
            CPU_ZERO(&cpus);
            ncpus = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : -1;
        }
        double busy = ncpus > 0 ? busy_seconds(&cpus) : -1, own = own_seconds();
        if (busy < 0 || own < 0) {
            atomic_store(&backoff, 0);
        } else {
            /* Back off only when two windows in a row agree, so that one
             * burst of another program (or of its threads spinning out)
             * does not. A window with a longer gap since the last call saw
             * this process idle while others may have run in turn: it
             * decides nothing, and the count stays as it was. */
            if (wall0 >= 0 && t > wall0 && t - wall0 <= 2 * PERIOD) {
                double others = ((busy - busy0) - (own - own0)) / (t - wall0);
                double f = (double)ncpus - (others > 0 ? others : 0);
                int left = f < 1.5 ? 1 : (int)(f + 0.5);
                atomic_store(&free_cores, left > last_left ? left : last_left);
                last_left = left;
            }
            wall0 = t, busy0 = busy, own0 = own;
        }
    }
    pthread_mutex_unlock(&sample_lock);
}
#endif

bool cf_set_thread_backoff(bool on)
{
    bool was = cf_thread_backoff();
    atomic_store(&backoff, on);
    atomic_store(&free_cores, 0);
    return was;
}

bool cf_thread_backoff(void)
{
    int b = atomic_load(&backoff);
    if (b < 0) {
        const char *e = getenv("CF_THREAD_BACKOFF");
        b = !(e && strcmp(e, "0") == 0);
        atomic_store(&backoff, b);
    }
    return b;
}

int cf_threads_in_use(void)
{
    int n = cf_get_num_threads();
    if (n == 1 || !cf_thread_backoff())
        return n;
#ifdef __linux__
    sample();
#endif
    int left = atomic_load(&free_cores);
    return left > 0 && left < n ? left : n;
}

int cf__threads_for(int64_t work) { return work < PARALLEL_MIN_WORK ? 1 : cf_threads_in_use(); }
