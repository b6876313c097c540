/* The default thread count: CF_NUM_THREADS, else OMP_NUM_THREADS, else the
 * processors. The library reads the environment once, on first use, so
 * every test runs in its own process (fork mode is forced in main). */
#include "tests/util.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int procs(void)
{
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

static void env(const char *cf, const char *omp)
{
    if (cf)
        setenv("CF_NUM_THREADS", cf, 1);
    else
        unsetenv("CF_NUM_THREADS");
    if (omp)
        setenv("OMP_NUM_THREADS", omp, 1);
    else
        unsetenv("OMP_NUM_THREADS");
}

TEST(test_cf_num_threads_wins_over_omp)
{
    env("3", "5");
    ck_assert_int_eq(cf_get_num_threads(), 3);
}
END_TEST

TEST(test_omp_num_threads_used_when_cf_unset)
{
    env(NULL, "5");
    ck_assert_int_eq(cf_get_num_threads(), 5);
}
END_TEST

TEST(test_omp_num_threads_list_gives_its_first_level)
{
    env(NULL, "6,2");
    ck_assert_int_eq(cf_get_num_threads(), 6);
}
END_TEST

TEST(test_invalid_cf_num_threads_falls_back_to_omp)
{
    env("lots", "2");
    ck_assert_int_eq(cf_get_num_threads(), 2);
}
END_TEST

TEST(test_no_setting_gives_the_processor_count)
{
    env(NULL, NULL);
    ck_assert_int_eq(cf_get_num_threads(), procs());
}
END_TEST

/* OMP_NUM_THREADS is only given "0" here: LLVM's libomp 14 aborts at random
 * ("Out of heap memory") when it parses a malformed value itself. */
TEST(test_invalid_values_give_the_processor_count)
{
    env("-2", "0");
    ck_assert_int_eq(cf_get_num_threads(), procs());
}
END_TEST

TEST(test_set_num_threads_overrides_the_environment)
{
    env("3", "5");
    cf_set_num_threads(2);
    ck_assert_int_eq(cf_get_num_threads(), 2);
    cf_set_num_threads(0);
    ck_assert_int_eq(cf_get_num_threads(), 1);
}
END_TEST

TEST(test_backoff_uses_one_thread_while_other_processes_hold_every_core)
{
    env(NULL, NULL);
    cf_set_num_threads(4);
    int n = procs();
    pid_t spinners[64];
    for (int i = 0; i < n && i < 64; i++) {
        spinners[i] = fork();
        if (spinners[i] == 0) {
            alarm(20);
            for (volatile unsigned x = 0;; x++)
                ;
        }
    }
    int used = 0;
    for (int t = 0; t < 150 && used != 1; t++) {
        nanosleep(&(struct timespec){0, 20000000}, NULL);
        used = cf_threads_in_use();
    }
    for (int i = 0; i < n && i < 64; i++) {
        kill(spinners[i], SIGKILL);
        waitpid(spinners[i], NULL, 0);
    }
    ck_assert_int_eq(cf_get_num_threads(), 4);
    ck_assert_int_eq(used, 1);
}
END_TEST

TEST(test_backoff_off_in_the_environment_keeps_the_set_count)
{
    setenv("CF_THREAD_BACKOFF", "0", 1);
    cf_set_num_threads(3);
    ck_assert(!cf_thread_backoff());
    ck_assert_int_eq(cf_threads_in_use(), 3);
}
END_TEST

TEST(test_set_thread_backoff_returns_the_previous_setting)
{
    unsetenv("CF_THREAD_BACKOFF");
    ck_assert(cf_set_thread_backoff(false));
    ck_assert(!cf_set_thread_backoff(true));
    ck_assert(cf_thread_backoff());
}
END_TEST

int main(void) { return run_tests(true); }
