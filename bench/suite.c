/* Every zoo workload against its PyTorch twin, interleaved, at 1 and all
 * threads; ends with one summary table.
 *
 *     make bench                     # runs it last
 *     ./bench/suite [--threads 1,2] [--only TEXT] [--reps R] [--busy]
 *
 * For each workload and thread count the driver starts two workers: the
 * cformer program (bench/transformer, vit, seq2seq, decode with --worker)
 * and its PyTorch twin (bench/NAME_torch.py --worker), each in its own process,
 * and talks to both through the protocol of bench_serve (bench/harness.h).
 * Each worker warms up; then the driver asks them in turn for a repetition of
 * about --rep-seconds (first cformer, then PyTorch, then the other way
 * round), R times, so both sides see the same state of a shared machine.
 * It reports the best and the median repetition of each, their ratio
 * (cformer / PyTorch, lower is better), the peak resident memory of each
 * worker process (wait4's ru_maxrss: the whole process, interpreter and
 * libraries included), and cformer's matrix-product GFLOP per call and rate
 * beside raw BLIS's (bli_sgemm on 1024 x 1024 x 1024 at the same thread
 * count, timed here just before the workloads).
 *
 * --busy instead starts a process that keeps one core spinning and times
 * cformer alone at 1 thread against 2 threads (interleaved the same way):
 * on a shared machine more threads must never cost time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* wait4, prctl */
#endif
#include "cformer/cformer.h"
#include "bench/harness.h"

#include <blis.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_SRCDIR
#define BENCH_SRCDIR "bench"
#endif

#define MAX_REPS     15
#define MAX_THREADS  4 /* thread counts in one run */
#define BUSY_SECONDS 3600
#define BLIS_SIZE    1024

typedef struct {
    const char *label;  /* summary row */
    const char *prog;   /* cformer worker program, beside this one */
    const char *script; /* PyTorch twin, in BENCH_SRCDIR */
    const char *worker; /* --worker NAME for both */
    double tokens;      /* tokens per call: rate in tokens/s; 0: ms per call */
} workload;

static const workload workloads[] = {
    {"Transformer train d256 3+3 B32x64", "transformer", "transformer_torch.py", "train", 0},
    {"Transformer inference", "transformer", "transformer_torch.py", "infer", 0},
    {"Transformer base 6+6 d512 train B8x64", "transformer", "transformer_torch.py", "base-train",
     0},
    {"ViT train dim64 depth4 B128", "vit", "vit_torch.py", "train", 0},
    {"ViT inference", "vit", "vit_torch.py", "infer", 0},
    {"seq2seq GRU train B64", "seq2seq", "seq2seq_torch.py", "train", 0},
    {"seq2seq GRU greedy B64", "seq2seq", "seq2seq_torch.py", "greedy", 0},
    {"greedy decode B1 [tokens/s]", "decode", "decode_torch.py", "b1", 64},
    {"greedy decode B32 [tokens/s]", "decode", "decode_torch.py", "b32", 32 * 64},
};
#define NWORK (int)(sizeof workloads / sizeof workloads[0])

typedef struct {
    pid_t pid;
    FILE *to, *from;
    double per_call; /* from the warm-up */
    double flops;    /* matrix-product FLOPs per call (cformer) */
    int calls;       /* per repetition */
    double t[MAX_REPS];
    long rss_kib;
    bool ok;
} worker;

typedef struct {
    bool done, torch;
    double best[2], median[2]; /* seconds per call: cformer, PyTorch */
    long rss[2];               /* KiB */
    double flops;
} result;

static struct {
    char dir[4096]; /* of the cformer worker programs */
    int reps;
    double rep_seconds;
    bool torch;
} opt = {.reps = 7, .rep_seconds = 0.5};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double load_average(void)
{
    double l[1];
    return getloadavg(l, 1) == 1 ? l[0] : -1;
}

/* Starts argv[0] with pipes to its stdin and from its stdout; the pipes are
 * close-on-exec, so a later worker does not hold this one's input open. */
static bool spawn(worker *w, char *const *argv)
{
    int in[2], out[2];
    *w = (worker){.pid = -1};
    if (pipe2(in, O_CLOEXEC) != 0)
        return false;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]), close(in[1]);
        return false;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        return false;
    }
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execv(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    w->pid = pid;
    w->to = fdopen(in[1], "w");
    w->from = fdopen(out[0], "r");
    return w->to && w->from;
}

/* Reads the worker's next reply into *value (after "ready", also flops);
 * false, with the message shown, on an error or a closed pipe. */
static bool reply(worker *w, const char *who, double *value, double *flops)
{
    char line[1024];
    if (!w->from || !fgets(line, sizeof line, w->from)) {
        printf("  %s worker stopped without answering\n", who);
        return false;
    }
    if (strncmp(line, "error", 5) == 0) {
        printf("  %s worker: %s", who, line);
        return false;
    }
    int got = flops ? sscanf(line, "ready %lf %lf", value, flops) : sscanf(line, "%lf", value);
    if (got != (flops ? 2 : 1)) {
        printf("  %s worker: unexpected reply: %s", who, line);
        return false;
    }
    return true;
}

/* Starts a worker and waits for its warm-up. */
static bool start(worker *w, char *const *argv, const char *who)
{
    if (!spawn(w, argv)) {
        printf("  cannot start %s: %s\n", argv[0], strerror(errno));
        return false;
    }
    w->ok = reply(w, who, &w->per_call, &w->flops);
    double c = opt.rep_seconds / w->per_call;
    w->calls = c < 1 ? 1 : (int)c;
    return w->ok;
}

static bool rep(worker *w, int r, const char *who)
{
    if (!w->ok)
        return false;
    fprintf(w->to, "run %d\n", w->calls);
    fflush(w->to);
    w->ok = reply(w, who, &w->t[r], NULL);
    return w->ok;
}

/* Closes the worker's input, so it exits, and collects its peak RSS. */
static void finish(worker *w)
{
    if (w->pid < 0)
        return;
    if (w->to)
        fclose(w->to);
    struct rusage ru;
    int status;
    if (wait4(w->pid, &status, 0, &ru) == w->pid) {
        w->rss_kib = ru.ru_maxrss;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            w->ok = false;
    }
    if (w->from)
        fclose(w->from);
    w->pid = -1;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void best_median(worker *w, double *best, double *median)
{
    double t[MAX_REPS];
    memcpy(t, w->t, sizeof(double) * (size_t)opt.reps);
    qsort(t, (size_t)opt.reps, sizeof(double), cmp_double);
    *best = t[0];
    *median = t[opt.reps / 2];
}

/* Two workers timed in turn, the order alternating between repetitions
 * (b NULL: a alone). */
static bool interleave(worker *a, const char *wa, worker *b, const char *wb)
{
    for (int r = 0; r < opt.reps; r++) {
        if (!b) {
            if (!rep(a, r, wa))
                return false;
            continue;
        }
        worker *first = r % 2 ? b : a, *second = r % 2 ? a : b;
        if (!rep(first, r, first == a ? wa : wb) || !rep(second, r, second == a ? wa : wb))
            return false;
    }
    return true;
}

static void cformer_argv(char *path, size_t size, char **argv, const workload *w, char *threads)
{
    snprintf(path, size, "%s/%s", opt.dir, w->prog);
    /* execv's argv is char *const []: it does not write the strings. */
    argv[0] = path, argv[1] = (char *)"--worker", argv[2] = (char *)w->worker;
    argv[3] = (char *)"--threads", argv[4] = threads, argv[5] = NULL;
}

/* One value in the workload's unit: ms per call, or tokens/s. */
static double unit(const workload *w, double seconds)
{
    return w->tokens > 0 ? w->tokens / seconds : 1e3 * seconds;
}

static void run_case(const workload *w, int threads, result *res)
{
    char path[4200], script[4200], nt[16];
    char *cargv[6];
    snprintf(nt, sizeof nt, "%d", threads);
    cformer_argv(path, sizeof path, cargv, w, nt);
    snprintf(script, sizeof script, "%s/%s", BENCH_SRCDIR, w->script);
    char *targv[] = {(char *)BENCH_PYTHON,
                     script,
                     (char *)"--worker",
                     (char *)w->worker,
                     (char *)"--threads",
                     nt,
                     NULL};

    printf("%s, %d thread%s\n", w->label, threads, threads > 1 ? "s" : "");
    worker c, t = {.pid = -1};
    bool ok = start(&c, cargv, "cformer");
    res->torch = opt.torch && ok && start(&t, targv, "PyTorch");
    if (ok)
        ok = interleave(&c, "cformer", res->torch ? &t : NULL, "PyTorch");
    finish(&c);
    finish(&t);
    if (!ok || !c.ok)
        return;
    res->done = true;
    res->flops = c.flops;
    res->rss[0] = c.rss_kib;
    best_median(&c, &res->best[0], &res->median[0]);
    const char *u = w->tokens > 0 ? "tokens/s" : "ms";
    printf("  cformer  best %9.2f  median %9.2f %s  peak RSS %7.1f MiB", unit(w, res->best[0]),
           unit(w, res->median[0]), u, res->rss[0] / 1024.0);
    if (c.flops > 0)
        printf("  %.2f GFLOP/call, %.1f GFLOP/s", 1e-9 * c.flops, 1e-9 * c.flops / res->median[0]);
    printf("\n");
    if (res->torch && t.ok) {
        res->rss[1] = t.rss_kib;
        best_median(&t, &res->best[1], &res->median[1]);
        printf("  PyTorch  best %9.2f  median %9.2f %s  peak RSS %7.1f MiB  ratio %.2f\n",
               unit(w, res->best[1]), unit(w, res->median[1]), u, res->rss[1] / 1024.0,
               res->median[0] / res->median[1]);
    } else {
        res->torch = false;
    }
    fflush(stdout);
}

/* bli_sgemm's rate on a square product at nt threads. */
static double blis_gflops(int nt)
{
    const int64_t n = BLIS_SIZE;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    double best = 0;
    if (a && b && c) {
        for (int64_t i = 0; i < n * n; i++)
            a[i] = b[i] = (float)(i % 7) * 0.25f;
        rntm_t rntm;
        bli_rntm_init(&rntm);
        bli_rntm_set_num_threads(nt, &rntm);
        float one = 1, zero = 0;
        for (int r = 0; r < 5; r++) {
            double t0 = now();
            bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, n, n, n, &one, a, n, 1, b, n, 1,
                         &zero, c, n, 1, NULL, &rntm);
            double g = 2e-9 * (double)(n * n * n) / (now() - t0);
            best = g > best ? g : best;
        }
    }
    free(a), free(b), free(c);
    return best;
}

static void summary(const int *threads, int nthreads, result (*res)[MAX_THREADS],
                    const double *blis, double load0)
{
    printf("\nSummary: best and median of %d interleaved repetitions of ~%.1f s; ratio = "
           "cformer / PyTorch medians (time; lower is better); peak RSS of each worker process; "
           "load average %.1f at the start, %.1f at the end\n",
           opt.reps, opt.rep_seconds, load0, load_average());
    printf("%-38s %3s %19s %19s %6s %17s %6s %17s\n", "workload (ms, or tokens/s)", "thr",
           "cformer best/med", "PyTorch best/med", "ratio", "RSS MiB cf/torch", "RSS",
           "mm GFLOP/s/BLIS");
    for (int i = 0; i < NWORK; i++) {
        const workload *w = &workloads[i];
        for (int j = 0; j < nthreads; j++) {
            result *r = &res[i][j];
            if (!r->done)
                continue;
            char cf[32], pt[32] = "-", ratio[16] = "-", rss[32], rssr[16] = "-", mm[32] = "-";
            snprintf(cf, sizeof cf, "%.1f/%.1f", unit(w, r->best[0]), unit(w, r->median[0]));
            snprintf(rss, sizeof rss, "%.0f/-", r->rss[0] / 1024.0);
            if (r->torch) {
                snprintf(pt, sizeof pt, "%.1f/%.1f", unit(w, r->best[1]), unit(w, r->median[1]));
                snprintf(ratio, sizeof ratio, "%.2f", r->median[0] / r->median[1]);
                snprintf(rss, sizeof rss, "%.0f/%.0f", r->rss[0] / 1024.0, r->rss[1] / 1024.0);
                snprintf(rssr, sizeof rssr, "%.2f", (double)r->rss[0] / (double)r->rss[1]);
            }
            if (r->flops > 0)
                snprintf(mm, sizeof mm, "%.0f/%.0f", 1e-9 * r->flops / r->median[0], blis[j]);
            printf("%-38s %3d %19s %19s %6s %17s %6s %17s\n", w->label, threads[j], cf, pt, ratio,
                   rss, rssr, mm);
        }
    }
}

/* A child that keeps one core busy until killed (or BUSY_SECONDS pass, or
 * this process dies). */
static pid_t start_busy(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        double end = now() + BUSY_SECONDS;
        volatile unsigned long spin = 0;
        while (now() < end)
            for (int i = 0; i < 1000000; i++)
                spin++;
        _exit(0);
    }
    return pid;
}

static int busy(int nt, const char *only)
{
    pid_t spinner = start_busy();
    if (spinner < 0) {
        printf("cannot start the busy process: %s\n", strerror(errno));
        return 1;
    }
    printf("busy machine: process %d keeps one core spinning; cformer at 1 thread against %d "
           "threads, interleaved; load average %.1f\n",
           (int)spinner, nt, load_average());
    char n1[] = "1", nn[16];
    snprintf(nn, sizeof nn, "%d", nt);
    struct {
        const workload *w;
        double t1, tn;
    } rows[NWORK];
    int nrows = 0, status = 0;
    for (int i = 0; i < NWORK; i++) {
        const workload *w = &workloads[i];
        if (only && !strstr(w->label, only) && !strstr(w->worker, only))
            continue;
        char p1[4200], pn[4200];
        char *a1[6], *an[6];
        cformer_argv(p1, sizeof p1, a1, w, n1);
        cformer_argv(pn, sizeof pn, an, w, nn);
        printf("%s\n", w->label);
        worker c1, cn = {.pid = -1};
        bool ok = start(&c1, a1, "1-thread") && start(&cn, an, "n-thread") &&
                  interleave(&c1, "1-thread", &cn, "n-thread");
        finish(&c1);
        finish(&cn);
        if (!ok || !c1.ok || !cn.ok) {
            status = 1;
            continue;
        }
        double b, m1, mn;
        best_median(&c1, &b, &m1);
        best_median(&cn, &b, &mn);
        rows[nrows].w = w, rows[nrows].t1 = m1, rows[nrows++].tn = mn;
        printf("  1 thread %.2f, %d threads %.2f (%s): %d threads take %.2fx the time\n",
               unit(w, m1), nt, unit(w, mn), w->tokens > 0 ? "tokens/s" : "ms", nt, mn / m1);
        fflush(stdout);
    }
    kill(spinner, SIGKILL);
    waitpid(spinner, NULL, 0);
    printf("\nBusy-machine summary (one core kept busy; medians of %d interleaved repetitions; "
           "target: %d threads at most 1.10x the time of 1)\n",
           opt.reps, nt);
    printf("%-38s %14s %14s %8s\n", "workload (ms, or tokens/s)", "1 thread", "n threads",
           "n/1 time");
    for (int i = 0; i < nrows; i++)
        printf("%-38s %14.2f %14.2f %8.2f%s\n", rows[i].w->label, unit(rows[i].w, rows[i].t1),
               unit(rows[i].w, rows[i].tn), rows[i].tn / rows[i].t1,
               rows[i].tn / rows[i].t1 > 1.10 ? "  over" : "");
    return status;
}

static int usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--threads N,M,...] [--only TEXT] [--reps R] [--rep-seconds S] "
            "[--no-torch] [--busy]\n",
            prog);
    return 2;
}

int main(int argc, char **argv)
{
    int threads[MAX_THREADS], nthreads = 0;
    const char *only = NULL;
    bool busy_mode = false, no_torch = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            for (char *s = argv[++i]; *s && nthreads < MAX_THREADS; s += *s == ',') {
                char *end;
                long v = strtol(s, &end, 10);
                if (end == s || v < 1)
                    return usage(argv[0]);
                threads[nthreads++] = (int)v;
                s = end;
            }
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            opt.reps = atoi(argv[++i]);
            if (opt.reps < 1 || opt.reps > MAX_REPS)
                return usage(argv[0]);
        } else if (!strcmp(argv[i], "--rep-seconds") && i + 1 < argc) {
            opt.rep_seconds = atof(argv[++i]);
            if (!(opt.rep_seconds > 0))
                return usage(argv[0]);
        } else if (!strcmp(argv[i], "--no-torch")) {
            no_torch = true;
        } else if (!strcmp(argv[i], "--busy")) {
            busy_mode = true;
        } else {
            return usage(argv[0]);
        }
    }
    const char *slash = strrchr(argv[0], '/');
    snprintf(opt.dir, sizeof opt.dir, "%.*s", slash ? (int)(slash - argv[0]) : 1,
             slash ? argv[0] : ".");
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    if (nthreads == 0) {
        threads[nthreads++] = 1;
        if (cores > 1)
            threads[nthreads++] = cores;
    }
    if (busy_mode)
        return busy(cores > 1 ? cores : 2, only);

    char version[64];
    opt.torch = !no_torch && bench_torch_version(version, sizeof version);
    double load0 = load_average();
    printf("bench/suite: cformer workers against PyTorch %s; %d interleaved repetitions of "
           "~%.1f s each side; load average %.1f on %d cores\n",
           opt.torch ? version : "(not available)", opt.reps, opt.rep_seconds, load0, cores);
    bench_note_load();

    static result res[NWORK][MAX_THREADS];
    double blis[MAX_THREADS];
    int status = 0;
    for (int j = 0; j < nthreads; j++) {
        blis[j] = blis_gflops(threads[j]);
        printf("\n-- %d thread%s: raw BLIS sgemm %dx%dx%d (%s kernels): %.1f GFLOP/s\n", threads[j],
               threads[j] > 1 ? "s" : "", BLIS_SIZE, BLIS_SIZE, BLIS_SIZE,
               bli_arch_string(bli_arch_query_id()), blis[j]);
        for (int i = 0; i < NWORK; i++) {
            if (only && !strstr(workloads[i].label, only) && !strstr(workloads[i].worker, only))
                continue;
            run_case(&workloads[i], threads[j], &res[i][j]);
            if (!res[i][j].done)
                status = 1;
        }
    }
    summary(threads, nthreads, res, blis, load0);
    return status;
}
