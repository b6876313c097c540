/* What the benchmarks in bench/ share: the command line, the timing method,
 * the load note and running a PyTorch script for comparison.
 *
 * Method: a warm-up of at least `warmup` seconds (and two calls) measures
 * the cost of a call; then BENCH_REPS repetitions, each as many calls as
 * fill about `rep_seconds` (at least one), and the median repetition is the
 * result. bench/torch_harness.py times the PyTorch side the same way.
 */
#ifndef CF_BENCH_HARNESS_H
#define CF_BENCH_HARNESS_H

#include <stdbool.h>
#include <stdio.h>

#define BENCH_REPS        7                  /* repetitions per measurement */
#define BENCH_MAX_RUNNERS 4                  /* of one bench_time_interleaved */
#define BENCH_PYTHON      "/usr/bin/python3" /* the Python with torch */

/* Makes `calls` calls of the code being timed, on the benchmark's state. */
typedef void (*bench_runner)(void *state, int calls);

/* Parses the command line, [--threads N] [--worker NAME], setting
 * cformer's thread count; *worker receives NAME or NULL (pass worker NULL
 * where --worker is not taken). On anything else prints the usage to stderr
 * and returns false. */
bool bench_parse_args(int argc, char **argv, const char **worker);

/* Seconds per call of run on state, by the method above. */
double bench_time(bench_runner run, void *state, double warmup, double rep_seconds);

/* The same for n runners (1 <= n <= BENCH_MAX_RUNNERS) into per_call[n]:
 * each is warmed up in turn, then every repetition runs each once, the
 * runners going first in turn, so that they all see about the same state of
 * a shared machine. */
void bench_time_interleaved(int n, const bench_runner *run, void *state, double warmup,
                            double rep_seconds, double *per_call);

/* Worker mode, for the driver bench/suite.c: a warm-up of at least
 * `warmup` seconds (and two calls), then one line "ready S F" (seconds per
 * call, matrix-product FLOPs per call), then for each line "run N" read from
 * stdin, N calls and one line with the seconds per call and the process's
 * CPU seconds per call (all threads; at one thread a measure that the
 * machine's load hardly moves); "error MESSAGE"
 * instead when a call recorded an error. Returns at end of input: 0, or 1
 * after an error. bench/torch_harness.py serves the same protocol.
 * Under valgrind, only the "run" requests are instrumented: instructions per
 * call, independent of the machine's load, come from
 *     echo "run 1" | valgrind --tool=callgrind --instr-atstart=no \
 *         bench/decode --worker b1 --threads 1 */
int bench_serve(bench_runner run, void *state, double warmup);

/* Prints a note when the 1-minute load average exceeds the cores: busy
 * cores make the timings noisy (and wreck spinning barriers). */
void bench_note_load(void);

/* True when BENCH_PYTHON exists and imports torch; then torch's version is
 * in buf. */
bool bench_torch_version(char *buf, int size);

/* Starts `BENCH_PYTHON 'script' --threads threads` followed by the arguments
 * of the printf format args_fmt (quote them for the shell), for reading its
 * stdout; NULL when it cannot start. Close with pclose. */
FILE *bench_torch_open(const char *script, int threads, const char *args_fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
