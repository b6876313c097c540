/* Crash during save: a child process saves a model and its optimizer over
 * the same two files again and again, each save a new generation g (every
 * parameter holds g, the learning rate is g), and is killed with SIGKILL at
 * a random moment. After each kill both files must load (cf_module_load
 * strict, cf_optim_load) as one complete generation that was saved before
 * or was being saved at the kill, and temporary files must not accumulate:
 * at most the one of the killed save is left, and the next save clears it.
 *
 * Trials: CF_CRASH_TRIALS, default 60 (12 under AddressSanitizer). The kill
 * comes after a delay drawn uniformly from [0, 3 x the child's mean save
 * time], so it lands in every phase of a save: writing the temporary file,
 * syncing, renaming, syncing the directory, or between saves. */
#include "tests/probe.h"
#include "tests/util.h"

#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char model[512], optim[512];
    long first; /* the generation the child starts with */
    /* Written by the saving child. */
    atomic_long started;  /* the generation being saved (0: not yet) */
    atomic_long done;     /* the last generation saved completely (0: none) */
    atomic_llong save_ns; /* total time of the completed saves */
    /* Written by the checking child. */
    long model_gen, optim_gen; /* the generation each file holds; -1: none */
    char msg[256];
} shared_state;

static cf_module *net_new(void)
{
    cf_rng g;
    cf_rng_init(&g, 3);
    cf_module *net = cf_module_new("Net", NULL, NULL);
    if (net && (!cf_linear_new(net, "fc1", 256, 512, true, &g) ||
                !cf_linear_new(net, "fc2", 512, 64, true, &g))) {
        cf_module_free(net);
        return NULL;
    }
    return net;
}

static void fill_param(const char *name, cf_tensor *p, void *ud)
{
    (void)name;
    cf_fill(p, *(float *)ud);
}

static long now_ns(void) { return (long)(probe_now() * 1e9); }

static int saver(void *ud)
{
    shared_state *s = ud;
    /* On a loaded machine a parallel fill can take longer than a save,
     * and the kills would land between saves. */
    cf_set_num_threads(1);
    cf_arena *ar = cf_arena_new(1 << 20);
    cf_arena_use(ar);
    cf_module *net = net_new();
    cf_optim *o = net ? cf_adam_new(net, &(cf_adam_opts){.lr = 1}) : NULL;
    if (!o)
        return 1;
    for (long g = s->first;; g++) {
        float v = (float)g;
        cf_module_visit(net, fill_param, &v);
        cf_optim_set_lr(o, v);
        atomic_store(&s->started, g);
        long t0 = now_ns();
        if (cf_module_save(net, s->model) != CF_OK || cf_optim_save(o, s->optim) != CF_OK)
            return 2;
        atomic_fetch_add(&s->save_ns, now_ns() - t0);
        atomic_store(&s->done, g);
    }
}

typedef struct {
    float value;
    bool uniform;
} gen_check;

static void check_param(const char *name, cf_tensor *p, void *ud)
{
    (void)name;
    gen_check *c = ud;
    float *d = p->data;
    for (int64_t i = 0; i < cf_numel(p); i++)
        c->uniform &= d[i] == c->value;
}

/* Loads both files into a fresh model and optimizer and reports the
 * generation each holds. */
static int checker(void *ud)
{
    shared_state *s = ud;
    s->model_gen = s->optim_gen = -1;
    cf_module *net = net_new();
    cf_optim *o = net ? cf_adam_new(net, &(cf_adam_opts){.lr = 0.5f}) : NULL;
    if (!o)
        return 1;
    if (cf_module_load(net, s->model, true) == CF_OK) {
        gen_check c = {cf_get(cf_module_find(net, "fc1.weight"), CF_IDX(0, 0)), true};
        cf_module_visit(net, check_param, &c);
        s->model_gen = c.uniform && c.value == floorf(c.value) ? (long)c.value : -2;
    }
    if (cf_optim_load(o, s->optim) == CF_OK)
        s->optim_gen = (long)cf_optim_lr(o);
    snprintf(s->msg, sizeof s->msg, "%s", cf_error_message());
    cf_optim_free(o);
    cf_module_free(net);
    return 0;
}

/* A file must hold the last generation saved completely before the kill
 * or the one being saved at the kill. */
static bool allowed(long gen, const shared_state *s)
{
    return gen >= atomic_load(&s->done) && gen <= atomic_load(&s->started);
}

TEST_WITH(a_killed_save_leaves_the_old_or_the_new_checkpoint, .scratch = true, .timeout = 900)
{
    shared_state *s = probe_shared(sizeof *s);
    ck_assert_ptr_nonnull(s);
    snprintf(s->model, sizeof s->model, "%s", scratch_path("model.safetensors"));
    snprintf(s->optim, sizeof s->optim, "%s", scratch_path("optim.safetensors"));
    const char *dir = scratch_path(NULL);
    long trials = probe_env_long("CF_CRASH_TRIALS", probe_sanitized() ? 12 : 60);
    unsigned seed = (unsigned)probe_env_long("CF_CRASH_SEED", (long)time(NULL));
    srand(seed);
    long next = 1, kills_mid_save = 0, max_temps = 0;
    for (long trial = 0; trial < trials; trial++) {
        atomic_store(&s->started, 0);
        atomic_store(&s->done, 0);
        atomic_store(&s->save_ns, 0);
        s->first = next;
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            _exit(saver(s));
        /* Wait for one complete save, to know how long a save takes. */
        double deadline = probe_now() + 60;
        while (atomic_load(&s->done) == 0 && probe_now() < deadline && kill(pid, 0) == 0)
            usleep(200);
        long done = atomic_load(&s->done);
        double mean = done ? atomic_load(&s->save_ns) * 1e-9 / (double)(done - s->first + 1) : 0;
        useconds_t delay = (useconds_t)(3e6 * mean * ((double)rand() / RAND_MAX));
        usleep(delay);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        ck_assert_msg(done > 0, "trial %ld (seed %u): the saving child never finished a save",
                      trial, seed);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                      "trial %ld (seed %u): the saving child stopped by itself (status %d)", trial,
                      seed, status);
        kills_mid_save += atomic_load(&s->started) != atomic_load(&s->done);

        int code;
        probe_end e = probe_run(checker, s, 60, &code);
        ck_assert_msg(e == PROBE_EXITED && code == 0, "trial %ld (seed %u): loading crashed", trial,
                      seed);
        ck_assert_msg(s->model_gen >= 0 && s->optim_gen >= 0,
                      "trial %ld (seed %u): the checkpoint does not load (model %ld, "
                      "optimizer %ld): %s",
                      trial, seed, s->model_gen, s->optim_gen, s->msg);
        ck_assert_msg(allowed(s->model_gen, s) && allowed(s->optim_gen, s),
                      "trial %ld (seed %u): the files hold generations %ld and %ld; "
                      "expected %ld (saved) or %ld (being saved)",
                      trial, seed, s->model_gen, s->optim_gen, (long)atomic_load(&s->done),
                      (long)atomic_load(&s->started));
        long temps = probe_count_files(dir, ".tmp");
        max_temps = temps > max_temps ? temps : max_temps;
        ck_assert_msg(temps <= 1,
                      "trial %ld (seed %u): %ld temporary files accumulated (only "
                      "the killed save's may be left)",
                      trial, seed, temps);
        next = atomic_load(&s->started) + 1;
    }
    printf("crash during save: %ld kills (%ld during a save), at most %ld temporary files left, "
           "seed %u\n",
           trials, kills_mid_save, max_temps, seed);
    fflush(stdout);
    probe_unshare(s, sizeof *s);
}
END_TEST
