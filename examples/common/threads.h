/* examples/common/threads.h: one thread or all cores, whichever is faster
 * now.
 *
 * cformer's kernels give the same bits for any thread count, so a run may
 * change its count between steps without changing its numbers. OpenMP
 * threads that spin at barriers collapse when other programs keep the
 * cores busy (on a loaded 2-core machine, 2 threads ran a step 4-5x slower
 * than 1), while on a quiet machine all cores win. So unless the user fixed
 * the count, step 2 of an epoch tries the other choice and the faster
 * against steps 1 and 3 is kept (step 0 warms up). Each time the other
 * choice loses, the epochs between tries double (up to 16), since a try
 * can cost many steps' time.
 *
 *     ex_tuner tune;
 *     ex_tuner_init(&tune, threads_flag);     // 0: tune
 *     for (s = 0; s < steps; s++) {
 *         ex_tuner_begin(&tune, s);            // sets cf_set_num_threads
 *         double t = ex_now();
 *         ... the step ...
 *         if (ex_tuner_end(&tune, s, ex_now() - t))
 *             printf("using %d threads\n", tune.chosen);
 *     }
 */
#ifndef EXAMPLES_COMMON_THREADS_H
#define EXAMPLES_COMMON_THREADS_H

#include <stdbool.h>
#include <stdint.h>

/* Fields are read-only. */
typedef struct {
    int many;          /* all cores; 0: no tuning */
    int chosen;        /* the count in use */
    double ref, other; /* seconds per step with the chosen count, the other */
    int gap, wait;     /* epochs between tries, epochs until the next */
    bool trying;       /* this epoch tries the other count */
} ex_tuner;

/* requested > 0 fixes the count (cf_set_num_threads(requested)); 0 tunes
 * between 1 and the library's default (CF_NUM_THREADS, else all cores),
 * starting with the latter. */
void ex_tuner_init(ex_tuner *t, int requested);
/* Sets the thread count for step s (0-based) of an epoch. */
void ex_tuner_begin(ex_tuner *t, int64_t s);
/* Records that step s took `seconds`; true when a try settled the count
 * (then ref and other hold the two paces). */
bool ex_tuner_end(ex_tuner *t, int64_t s, double seconds);
/* The count not chosen. */
int ex_tuner_other(const ex_tuner *t);

#endif
