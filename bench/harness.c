#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime, popen */
#endif
#include "bench/harness.h"

#include "cformer/cformer.h"

#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

bool bench_parse_args(int argc, char **argv, const char **worker)
{
    if (worker)
        *worker = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0) {
            cf_set_num_threads(atoi(argv[++i]));
        } else if (worker && strcmp(argv[i], "--worker") == 0 && i + 1 < argc) {
            *worker = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--threads N]%s\n", argv[0],
                    worker ? " [--worker NAME]" : "");
            return false;
        }
    }
    return true;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process (all threads) so far. */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

void bench_time_interleaved(int n, const bench_runner *run, void *state, double warmup,
                            double rep_seconds, double *per_call)
{
    assert(n >= 1 && n <= BENCH_MAX_RUNNERS);
    int calls[BENCH_MAX_RUNNERS];
    double t[BENCH_MAX_RUNNERS][BENCH_REPS];
    for (int r = 0; r < n; r++) {
        int k = 0;
        double t0 = now(), dt;
        do {
            run[r](state, 1);
            k++;
        } while ((dt = now() - t0) < warmup || k < 2);
        double c = rep_seconds / (dt / k);
        calls[r] = c < 1 ? 1 : (int)c;
    }
    for (int rep = 0; rep < BENCH_REPS; rep++)
        for (int j = 0; j < n; j++) {
            int r = (rep + j) % n;
            double t0 = now();
            run[r](state, calls[r]);
            t[r][rep] = (now() - t0) / calls[r];
        }
    for (int r = 0; r < n; r++) {
        qsort(t[r], BENCH_REPS, sizeof(double), cmp_double);
        per_call[r] = t[r][BENCH_REPS / 2];
    }
}

double bench_time(bench_runner run, void *state, double warmup, double rep_seconds)
{
    double per_call;
    bench_time_interleaved(1, &run, state, warmup, rep_seconds, &per_call);
    return per_call;
}

int bench_serve(bench_runner run, void *state, double warmup)
{
    int k = 0;
    uint64_t f0 = cf_profile_matmul_flops();
    double t0 = now(), dt;
    do {
        run(state, 1);
        k++;
    } while ((dt = now() - t0) < warmup || k < 2);
    if (cf_error()) {
        printf("error %s\n", cf_error_message());
        return 1;
    }
    printf("ready %.9g %.6g\n", dt / k, (double)(cf_profile_matmul_flops() - f0) / k);
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        int calls;
        if (sscanf(line, "run %d", &calls) != 1 || calls < 1) {
            printf("error bad request: %s", line);
            return 1;
        }
        t0 = now();
        double c0 = cpu_seconds();
        CALLGRIND_START_INSTRUMENTATION;
        run(state, calls);
        CALLGRIND_STOP_INSTRUMENTATION;
        double cpu = cpu_seconds() - c0;
        dt = now() - t0;
        if (cf_error()) {
            printf("error %s\n", cf_error_message());
            return 1;
        }
        printf("%.9g %.9g\n", dt / calls, cpu / calls);
        fflush(stdout);
    }
    return 0;
}

/* The 1-minute load average, or -1 where /proc/loadavg does not exist. */
static double load_average(void)
{
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = -1;
        fclose(f);
    }
    return load;
}

void bench_note_load(void)
{
    int cores = 1;
#ifdef _OPENMP
    cores = omp_get_num_procs();
#endif
    double load = load_average();
    if (load > cores)
        printf("note: load average %.1f on %d cores: other processes compete for them, "
               "so expect noise\n",
               load, cores);
}

bool bench_torch_version(char *buf, int size)
{
    if (access(BENCH_PYTHON, X_OK) != 0)
        return false;
    FILE *p = popen(BENCH_PYTHON " -c 'import torch; print(torch.__version__)' 2>/dev/null", "r");
    if (!p)
        return false;
    bool got = fgets(buf, size, p) != NULL;
    if (pclose(p) != 0 || !got)
        return false;
    buf[strcspn(buf, "\n")] = '\0';
    return true;
}

FILE *bench_torch_open(const char *script, int threads, const char *args_fmt, ...)
{
    char cmd[4096];
    int len = snprintf(cmd, sizeof cmd, BENCH_PYTHON " '%s' --threads %d ", script, threads);
    if (len < 0 || (size_t)len >= sizeof cmd)
        return NULL;
    va_list ap;
    va_start(ap, args_fmt);
    int more = vsnprintf(cmd + len, sizeof cmd - (size_t)len, args_fmt, ap);
    va_end(ap);
    if (more < 0 || (size_t)more >= sizeof cmd - (size_t)len)
        return NULL;
    return popen(cmd, "r");
}
