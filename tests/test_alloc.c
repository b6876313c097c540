/* Allocation failure: a small Transformer trained for two steps, saved with
 * its optimizer, loaded into a second model and optimizer and trained one
 * more step, with the Nth allocation failing, for every N the program
 * makes. Each trial runs in its own process under a timeout and must end
 * either in an error return (CF_ERR_NOMEM, with a message) or, when the
 * library recovered from the failure, in exactly the results of a run
 * without failure; it must not crash or hang, leave an allocation unfreed
 * (counted through cf_set_allocator) or leave a temporary file. A second
 * sweep fails every allocation from the Nth on, so that the error paths
 * themselves run out of memory. CF_ALLOC_STRIDE=k tries every k-th N only
 * (the default under AddressSanitizer is 3). */
#include "cformer/zoo.h"
#include "tests/probe.h"
#include "tests/util.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- A counting allocator that fails on request ---- */

typedef struct {
    atomic_long calls;  /* malloc_fn and realloc_fn calls so far */
    atomic_long live;   /* blocks handed out and not yet freed */
    atomic_long failed; /* calls made to fail */
    long fail_at;       /* the first call to fail (1-based); 0: none */
    bool fail_after;    /* fail every call from fail_at on, not just that one */
} counter;

static bool should_fail(counter *c)
{
    long n = atomic_fetch_add(&c->calls, 1) + 1;
    bool fail = c->fail_at > 0 && (c->fail_after ? n >= c->fail_at : n == c->fail_at);
    if (fail)
        atomic_fetch_add(&c->failed, 1);
    return fail;
}

static void *count_malloc(size_t size, void *ud)
{
    counter *c = ud;
    if (should_fail(c))
        return NULL;
    void *p = malloc(size);
    if (p)
        atomic_fetch_add(&c->live, 1);
    return p;
}

static void *count_realloc(void *p, size_t size, void *ud)
{
    counter *c = ud;
    if (should_fail(c))
        return NULL;
    void *q = realloc(p, size);
    if (q && !p)
        atomic_fetch_add(&c->live, 1);
    return q;
}

static void count_free(void *p, void *ud)
{
    counter *c = ud;
    atomic_fetch_sub(&c->live, 1);
    free(p);
}

/* ---- The program under test ---- */

enum { B = 2, S = 5, T = 4, SRC_V = 11, TGT_V = 13 };
#define NDIGEST 5

static cf_transformer_config tiny_config(void)
{
    cf_transformer_config c = cf_transformer_small(SRC_V, TGT_V);
    c.d_model = 16;
    c.heads = 2;
    c.enc_layers = c.dec_layers = 1;
    c.ff = 32;
    c.max_len = 8;
    c.dropout = 0.1f; /* so that generator state is saved and restored */
    return c;
}

/* One training step of m with o; the loss, or NAN with the error recorded. */
static float train_step(cf_transformer *m, cf_optim *o)
{
    static const int32_t src[B * S] = {3, 4, 5, 6, 2, 7, 8, 9, 2, 0};
    static const int32_t tgt_in[B * T] = {1, 5, 6, 7, 1, 9, 10, 0};
    static const int32_t tgt_out[B * T] = {5, 6, 7, 2, 9, 10, 2, 0};
    cf_tensor *logits = cf_transformer_forward(m, cf_from_ints(src, CF_SHAPE(B, S)),
                                               cf_from_ints(tgt_in, CF_SHAPE(B, T)), NULL);
    cf_tensor *loss = cf_cross_entropy(cf_reshape(logits, CF_SHAPE(B * T, TGT_V)),
                                       cf_from_ints(tgt_out, CF_SHAPE(B * T)),
                                       &(cf_loss_opts){.label_smoothing = 0.1f, .ignore = true});
    if (!loss)
        return NAN;
    float v = cf_item(loss);
    cf_optim_zero_grad(o);
    if (cf_backward(loss) != CF_OK)
        return NAN;
    cf_optim_step(o);
    return cf_error() == CF_OK ? v : NAN;
}

typedef struct {
    const char *dir;
    counter *counter; /* shared with the parent */
    /* Filled by the child. */
    cf_status status; /* the first failing call's error; CF_OK when none failed */
    cf_status recorded;
    char msg[200];
    float digest[NDIGEST];
    long calls, live, failed, temps;
} trial;

/* The whole program; returns CF_OK or the status of the first call that
 * failed, with t->digest filled on success. */
static cf_status program(trial *t)
{
    char model_path[512], optim_path[512];
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", t->dir);
    snprintf(optim_path, sizeof optim_path, "%s/optim.safetensors", t->dir);
    cf_status st = CF_ERR_NOMEM;
    cf_transformer *m = NULL, *m2 = NULL;
    cf_optim *o = NULL, *o2 = NULL;
    /* Small chunks, so that the arena grows and merges its chunks. */
    cf_arena *arena = cf_arena_new(1 << 14);
    if (!arena)
        goto out;
    cf_arena_use(arena);
    cf_transformer_config c = tiny_config();
    cf_rng g;
    cf_rng_init(&g, 7);
    m = cf_transformer_new(&c, &g);
    o = m ? cf_adamw_new(cf_transformer_module(m), &(cf_adamw_opts){.weight_decay = 0.01f}) : NULL;
    if (!o)
        goto out;
    for (int step = 0; step < 2; step++) {
        t->digest[step] = train_step(m, o);
        if (isnan(t->digest[step]))
            goto out;
        cf_arena_reset(arena);
    }
    if ((st = cf_module_save(cf_transformer_module(m), model_path)) != CF_OK ||
        (st = cf_optim_save(o, optim_path)) != CF_OK)
        goto out;
    st = CF_ERR_NOMEM;
    cf_rng_init(&g, 8);
    m2 = cf_transformer_new(&c, &g);
    o2 = m2 ? cf_adamw_new(cf_transformer_module(m2),
                           &(cf_adamw_opts){.lr = 0.5f, .weight_decay = 0.01f})
            : NULL;
    if (!o2)
        goto out;
    if ((st = cf_module_load(cf_transformer_module(m2), model_path, true)) != CF_OK ||
        (st = cf_optim_load(o2, optim_path)) != CF_OK)
        goto out;
    t->digest[2] = train_step(m2, o2);
    t->digest[3] = (float)cf_optim_steps(o2);
    t->digest[4] = cf_optim_lr(o2);
    st = isnan(t->digest[2]) ? CF_ERR_NOMEM : CF_OK;
out:
    if (st != CF_OK)
        st = cf_error() != CF_OK ? cf_error() : st;
    cf_optim_free(o2);
    cf_optim_free(o);
    if (m2)
        cf_module_free(cf_transformer_module(m2));
    if (m)
        cf_module_free(cf_transformer_module(m));
    cf_arena_free(arena);
    return st;
}

static int trial_child(void *ud)
{
    trial *t = ud;
    counter *c = t->counter;
    cf_allocator a = {
        .malloc_fn = count_malloc, .realloc_fn = count_realloc, .free_fn = count_free, .ud = c};
    cf_set_allocator(&a);
    t->status = program(t);
    t->recorded = cf_error();
    snprintf(t->msg, sizeof t->msg, "%s", cf_error_message());
    t->calls = atomic_load(&c->calls);
    t->live = atomic_load(&c->live);
    t->failed = atomic_load(&c->failed);
    t->temps = probe_count_files(t->dir, ".tmp");
    return 0;
}

/* The reference run, without failures; NULL when it fails. */
static trial *reference(void *shared, const char *dir, double *seconds)
{
    trial *ref = shared;
    memset(ref, 0, sizeof *ref * 2 + sizeof(counter));
    ref->dir = dir;
    ref->counter = (counter *)(ref + 2);
    int code;
    double t0 = probe_now();
    probe_end e = probe_run(trial_child, ref, 120, &code);
    *seconds = probe_now() - t0;
    bool ok = e == PROBE_EXITED && code == 0 && ref->status == CF_OK && ref->live == 0;
    return ok ? ref : NULL;
}

/* Why trial t (failing at call n) broke the contract, or NULL. */
static const char *verdict(const trial *t, const trial *ref, probe_end e, int code, char *buf,
                           size_t size)
{
    if (e == PROBE_TIMEOUT)
        snprintf(buf, size, "hangs");
    else if (e == PROBE_SIGNALED)
        snprintf(buf, size, "crashes (signal %d)", code);
    else if (code != 0)
        snprintf(buf, size, "child exits with %d", code);
    else if (t->live != 0)
        snprintf(buf, size, "leaks %ld blocks (status %s)", t->live, cf_status_str(t->status));
    else if (t->temps != 0)
        snprintf(buf, size, "leaves %ld temporary files", t->temps);
    else if (t->status == CF_OK && memcmp(t->digest, ref->digest, sizeof t->digest) != 0)
        snprintf(buf, size, "succeeds with different results");
    else if (t->status == CF_OK && t->recorded != CF_OK)
        snprintf(buf, size, "succeeds with an error recorded: %s", t->msg);
    else if (t->status != CF_OK && (t->status != CF_ERR_NOMEM || !t->msg[0]))
        snprintf(buf, size, "fails with %s: \"%s\"", cf_status_str(t->status), t->msg);
    else
        return NULL;
    return buf;
}

static void sweep(bool fail_after)
{
    size_t size = 3 * sizeof(trial) + sizeof(counter) + 4096;
    void *shared = probe_shared(size);
    ck_assert_ptr_nonnull(shared);
    const char *made = probe_mkdtemp();
    ck_assert_ptr_nonnull(made);
    char dir[512];
    snprintf(dir, sizeof dir, "%s", made);
    double ref_seconds;
    trial *ref = reference(shared, dir, &ref_seconds);
    if (!ref)
        probe_rmdir(dir);
    ck_assert_msg(ref != NULL, "the run without failures failed: %s", ((trial *)shared)->msg);
    trial *t = ref + 1;
    long stride = probe_env_long("CF_ALLOC_STRIDE", probe_sanitized() ? 3 : 1);
    /* A hang is a trial that takes far longer than a whole run. */
    double timeout = 2 + 10 * ref_seconds;
    long trials = 0, failures = 0, errors = 0, recovered = 0;
    char report[2048] = "", why[256];
    for (long n = 1; n <= ref->calls; n += stride) {
        memset(t, 0, sizeof *t + sizeof(counter));
        t->dir = dir;
        t->counter = ref->counter;
        t->counter->fail_at = n;
        t->counter->fail_after = fail_after;
        int code;
        probe_end e = probe_run(trial_child, t, timeout, &code);
        trials++;
        if (verdict(t, ref, e, code, why, sizeof why)) {
            if (failures++ < 12) {
                size_t len = strlen(report);
                snprintf(report + len, sizeof report - len, "\n  allocation %ld: %s", n, why);
            }
        } else if (t->status != CF_OK) {
            errors++;
        } else {
            recovered++;
        }
    }
    printf("alloc sweep (%s): %ld allocations, %ld trials: %ld error returns, %ld recovered, "
           "%ld broke the contract\n",
           fail_after ? "every allocation from the Nth" : "the Nth allocation only", ref->calls,
           trials, errors, recovered, failures);
    fflush(stdout);
    probe_unshare(shared, size);
    probe_rmdir(dir);
    ck_assert_msg(failures == 0, "%ld of %ld trials broke the contract:%s", failures, trials,
                  report);
}

TEST_WITH(failing_one_allocation_ends_in_an_error_or_the_same_result, .scratch = true,
          .timeout = 1800)
{
    sweep(false);
}
END_TEST

TEST_WITH(failing_every_allocation_from_one_on_ends_in_an_error_or_the_same_result, .scratch = true,
          .timeout = 1800)
{
    sweep(true);
}
END_TEST

/* ---- The allocator hook itself ---- */

TEST(an_allocator_missing_a_function_is_refused)
{
    cf_allocator before = cf_get_allocator();
    cf_allocator a = {
        .malloc_fn = count_malloc, .realloc_fn = NULL, .free_fn = count_free, .ud = NULL};
    ck_assert_int_eq(cf_set_allocator(&a), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_set_allocator", NULL);
    ck_assert(cf_get_allocator().malloc_fn == before.malloc_fn);
}
END_TEST

TEST(tensors_and_arenas_allocate_through_the_allocator)
{
    counter c = {0};
    cf_allocator a = {
        .malloc_fn = count_malloc, .realloc_fn = count_realloc, .free_fn = count_free, .ud = &c};
    ck_assert_int_eq(cf_set_allocator(&a), CF_OK);
    cf_arena *ar = cf_arena_new(1 << 12);
    cf_arena *prev = cf_arena_use(ar);
    cf_tensor *p = cf_tensor_new(CF_F32, CF_SHAPE(3, 4));
    ck_assert_ptr_nonnull(cf_zeros(CF_SHAPE(5)));
    long calls = atomic_load(&c.calls);
    ck_assert_int_eq(atomic_load(&c.live), 4); /* arena, its chunk, p's header and data */
    cf_tensor_free(p);
    cf_arena_use(prev);
    cf_arena_free(ar);
    ck_assert_int_eq(atomic_load(&c.live), 0);
    ck_assert_int_eq(cf_set_allocator(NULL), CF_OK);
    cf_free(cf_malloc(8));
    ck_assert_int_eq(atomic_load(&c.calls), calls);
}
END_TEST

TEST(cf_calloc_refuses_an_overflowing_size) { ck_assert_ptr_null(cf_calloc(SIZE_MAX / 2, 4)); }
END_TEST

TEST(a_failed_arena_chunk_is_out_of_memory)
{
    counter c = {.fail_at = 2};
    cf_allocator a = {
        .malloc_fn = count_malloc, .realloc_fn = count_realloc, .free_fn = count_free, .ud = &c};
    cf_set_allocator(&a);
    cf_arena *ar = cf_arena_new(1 << 12);
    cf_arena *prev = cf_arena_use(ar);
    ck_assert_ptr_null(cf_zeros(CF_SHAPE(5)));
    assert_error(CF_ERR_NOMEM, "cf_zeros", "out of memory", NULL);
    ck_assert_ptr_nonnull(cf_zeros(CF_SHAPE(5)));
    cf_arena_use(prev);
    cf_arena_free(ar);
    cf_set_allocator(NULL);
    ck_assert_int_eq(atomic_load(&c.live), 0);
}
END_TEST

/* ---- Saving ---- */

typedef struct {
    const char *dir;
    counter c;
    cf_status status;
    char msg[200];
    bool kept; /* the file holds the old contents after the save */
    long live, temps;
} save_trial;

/* The value of the one tensor in path, or NAN. */
static float saved_value(const char *path)
{
    cf_safetensors *f;
    if (cf_safetensors_open(path, &f) != CF_OK)
        return NAN;
    cf_tensor *t = cf_safetensors_get(f, "w");
    float v = t ? cf_get(t, CF_IDX(0, 0)) : NAN;
    cf_safetensors_close(f);
    return v;
}

static int save_child(void *ud)
{
    save_trial *t = ud;
    char path[512];
    snprintf(path, sizeof path, "%s/ck.safetensors", t->dir);
    cf_arena *ar = cf_arena_new(0);
    cf_arena_use(ar);
    cf_tensor *w = cf_full(1, CF_SHAPE(3, 4));
    const char *names[] = {"w"};
    if (cf_safetensors_save(path, 1, names, &w, "{\"epoch\": \"1\"}") != CF_OK)
        return 1;
    cf_fill(w, 2);
    cf_allocator a = {
        .malloc_fn = count_malloc, .realloc_fn = count_realloc, .free_fn = count_free, .ud = &t->c};
    cf_set_allocator(&a);
    t->status = cf_safetensors_save(path, 1, names, &w, "{\"epoch\": \"2\"}");
    cf_set_allocator(NULL);
    snprintf(t->msg, sizeof t->msg, "%s", cf_error_message());
    cf_error_clear();
    t->kept = saved_value(path) == 1;
    t->live = atomic_load(&t->c.live);
    t->temps = probe_count_files(t->dir, ".tmp");
    cf_arena_free(ar);
    return 0;
}

/* cf_safetensors_save with its Nth allocation failing, for every N: out of
 * memory and the old file as it was, or (where the save recovers) the new
 * file. Regression: the name of the directory to sync was allocated after
 * the rename, so running out of memory there failed a save that had
 * replaced the file, as an i/o error with whatever errno was left. */
SCRATCH_TEST(a_save_out_of_memory_says_so_and_keeps_the_old_file)
{
    save_trial *t = probe_shared(sizeof *t);
    ck_assert_ptr_nonnull(t);
    const char *dir = scratch_path(NULL);
    for (long n = 1;; n++) {
        memset(t, 0, sizeof *t);
        t->dir = dir;
        t->c.fail_at = n;
        int code;
        probe_end e = probe_run(save_child, t, 30, &code);
        ck_assert_msg(e == PROBE_EXITED && code == 0, "allocation %ld: the save %s", n,
                      e == PROBE_TIMEOUT ? "hangs" : "crashes");
        if (atomic_load(&t->c.failed) == 0) {
            ck_assert_msg(t->status == CF_OK && !t->kept, "the save without failure failed");
            break;
        }
        if (t->status == CF_OK) {
            /* Recovered (removing stale temporaries is best effort). */
            ck_assert_msg(!t->kept, "allocation %ld: a successful save left the old file", n);
        } else {
            ck_assert_msg(t->status == CF_ERR_NOMEM && strstr(t->msg, "cf_safetensors_save"),
                          "allocation %ld: the save gives %s: %s", n, cf_status_str(t->status),
                          t->msg);
            ck_assert_msg(t->kept, "allocation %ld: the old file is gone", n);
        }
        ck_assert_int_eq(t->live, 0);
        ck_assert_int_eq(t->temps, 0);
    }
    probe_unshare(t, sizeof *t);
}
END_TEST
