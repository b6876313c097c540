/* The op profiler: time, calls and matrix-product FLOPs per op, forward and
 * backward apart.
 *
 * Forward: every op ends in cf_op_record, so an op's time runs from its first
 * arena allocation (its output, usually) to that call; an op that allocates
 * nothing is timed from the previous op's end. Backward: the engine times
 * each node's backward function. FLOPs are those of the matrix products run
 * meanwhile (cf__gemm counts them whether or not profiling is on).
 *
 * Off, the cost is one test of a global flag per allocation and per op. */
#include "tensor/internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ENTRIES 256

typedef struct {
    const char *name;
    bool backward;
    int64_t calls;
    double seconds;
    uint64_t flops;
} entry;

bool cf__profiling;
static atomic_uint_least64_t gemm_flops;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry table[MAX_ENTRIES];
static int nentries;
static bool report_at_exit;

/* This thread's mark: when the op being run started, and the FLOP count
 * then. */
static _Thread_local double mark_time;
static _Thread_local uint64_t mark_flops;
static _Thread_local bool marked;
static _Thread_local int in_backward;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cf__count_flops(uint64_t flops)
{
    atomic_fetch_add_explicit(&gemm_flops, flops, memory_order_relaxed);
}

uint64_t cf_profile_matmul_flops(void)
{
    return atomic_load_explicit(&gemm_flops, memory_order_relaxed);
}

static void add(const char *name, bool backward, double seconds, uint64_t flops)
{
    pthread_mutex_lock(&lock);
    int i = 0;
    while (i < nentries && !(table[i].backward == backward &&
                             (table[i].name == name || strcmp(table[i].name, name) == 0)))
        i++;
    if (i == nentries && nentries < MAX_ENTRIES)
        table[nentries++] = (entry){.name = name, .backward = backward};
    if (i < nentries) {
        table[i].calls++;
        table[i].seconds += seconds;
        table[i].flops += flops;
    }
    pthread_mutex_unlock(&lock);
}

void cf__prof_alloc(void)
{
    if (!marked && !in_backward) {
        mark_time = now();
        mark_flops = cf_profile_matmul_flops();
        marked = true;
    }
}

void cf__prof_forward(const char *name)
{
    if (in_backward)
        return;
    double t = now();
    uint64_t f = cf_profile_matmul_flops();
    if (marked)
        add(name, false, t - mark_time, f - mark_flops);
    else
        add(name, false, 0, 0);
    marked = false;
}

void cf__prof_backward_begin(double *t, uint64_t *flops)
{
    in_backward++;
    *t = now();
    *flops = cf_profile_matmul_flops();
}

void cf__prof_backward_end(const char *name, double t, uint64_t flops)
{
    add(name, true, now() - t, cf_profile_matmul_flops() - flops);
    in_backward--;
    marked = false;
}

void cf_profile_enable(bool on)
{
    cf__profiling = on;
    marked = false;
}

void cf_profile_reset(void)
{
    pthread_mutex_lock(&lock);
    nentries = 0;
    pthread_mutex_unlock(&lock);
}

static int by_time(const void *x, const void *y)
{
    const entry *a = x, *b = y;
    return (a->seconds < b->seconds) - (a->seconds > b->seconds);
}

void cf_profile_report(FILE *f)
{
    pthread_mutex_lock(&lock);
    entry sorted[MAX_ENTRIES];
    int n = nentries;
    memcpy(sorted, table, sizeof(entry) * (size_t)n);
    pthread_mutex_unlock(&lock);
    qsort(sorted, (size_t)n, sizeof(entry), by_time);
    double total = 0;
    for (int i = 0; i < n; i++)
        total += sorted[i].seconds;
    fprintf(f, "cformer profile (%d threads): %.3f s in ops\n", cf_get_num_threads(), total);
    fprintf(f, "%-24s %-8s %10s %12s %7s %12s %9s\n", "op", "pass", "calls", "total ms", "%",
            "us/call", "GFLOP/s");
    for (int i = 0; i < n; i++) {
        const entry *e = &sorted[i];
        fprintf(f, "%-24s %-8s %10lld %12.2f %7.2f %12.2f", e->name,
                e->backward ? "backward" : "forward", (long long)e->calls, 1e3 * e->seconds,
                total > 0 ? 100 * e->seconds / total : 0.0, 1e6 * e->seconds / (double)e->calls);
        if (e->flops && e->seconds > 0)
            fprintf(f, " %9.1f\n", 1e-9 * (double)e->flops / e->seconds);
        else
            fprintf(f, " %9s\n", "-");
    }
}

static void report_exit(void)
{
    if (report_at_exit)
        cf_profile_report(stderr);
}

__attribute__((constructor)) static void profile_from_env(void)
{
    const char *env = getenv("CF_PROFILE");
    if (env && *env && strcmp(env, "0") != 0) {
        cf__profiling = true;
        report_at_exit = true;
        atexit(report_exit);
    }
}
