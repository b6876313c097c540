/* Helpers for the probes that run library code in child processes: the
 * allocation-failure sweep (test_alloc) and the kills during saves
 * (test_crash_save). A child is the only safe place for them: a trial may
 * crash or hang, and a process that has started OpenMP's threads must not
 * fork, so the parent only forks and waits. */
#ifndef CF_TEST_PROBE_H
#define CF_TEST_PROBE_H

#include <stdbool.h>
#include <stddef.h>

/* True when the tests run under AddressSanitizer (configure
 * --enable-sanitizers), where each trial is several times slower and the
 * probes run fewer trials. */
bool probe_sanitized(void);

/* A positive count from the environment variable name, else dflt. */
long probe_env_long(const char *name, long dflt);

/* A block of memory shared with children forked later (one page or more);
 * the parent reads what a child wrote there once it has exited. */
void *probe_shared(size_t size);
void probe_unshare(void *p, size_t size);

typedef enum {
    PROBE_EXITED,   /* the child returned; *code holds its exit status */
    PROBE_SIGNALED, /* killed by a signal; *code holds it */
    PROBE_TIMEOUT,  /* still running after the timeout: killed */
} probe_end;

/* Runs fn(ud) in a child process, whose exit status is fn's return value,
 * and waits at most timeout_s seconds for it. */
probe_end probe_run(int (*fn)(void *ud), void *ud, double timeout_s, int *code);

/* Seconds since an arbitrary origin (CLOCK_MONOTONIC). */
double probe_now(void);

/* Makes an empty directory in memory (/dev/shm) when the system has one,
 * else under $TMPDIR or /tmp, for probes that save many files and measure
 * no durability: fsync costs nothing there. Returns its path (static) or
 * NULL. */
const char *probe_mkdtemp(void);
/* Removes dir and the files in it. */
void probe_rmdir(const char *dir);

/* The number of files in dir whose name contains part. */
int probe_count_files(const char *dir, const char *part);

#endif
