/* libcformer_dist under mpirun (tests/mpi/run-tests runs it with -np 2 and
 * -np 3): gradient averaging against one-process references, broadcasts,
 * metrics, the sampler and checkpoints. Every rank runs every test in the
 * same order; check runs them in this process (no fork: MPI forbids it).
 *
 * Tolerance against one process on the whole batch: the two differ only in
 * how float sums are associated (a matrix product over G rows against
 * products over G/N rows added afterwards), so each gradient element may
 * differ by a few ulps of the largest terms summed into it; we allow
 * 1e-6 of the largest gradient magnitude, and print what we saw. */
#include "cformer/dist.h"
#include "tests/mpi/toy.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define G       12 /* global batch: 12 = 6 + 6 = 4 + 4 + 4 */
#define REL_TOL 1e-6

static cf_dist *dist;
static cf_arena *arena;
static int rank, size;

static void setup(void)
{
    cf_error_clear();
    arena = cf_arena_new(1 << 22);
    cf_arena_use(arena);
}

static void teardown(void)
{
    cf_status s = cf_error();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", cf_error_message());
    cf_error_clear();
    cf_arena_free(arena);
    ck_assert_msg(s == CF_OK, "rank %d: error left recorded: %s", rank, msg);
}

/* The first global batch of the shuffled data set. */
static void global_batch(int64_t *idx)
{
    cf_dist_sampler *s = cf_dist_sampler_new_for(0, 1, TOY_SAMPLES, G, 7, true);
    ck_assert_int_eq(cf_dist_sampler_next(s, idx), G);
    cf_dist_sampler_free(s);
}

/* This rank's averaged gradient of the global batch through cf_ddp. */
static float *ddp_grads(cf_transformer *m, const cf_ddp_opts *o, int64_t gb, int64_t *n)
{
    cf_module *mod = cf_transformer_module(m);
    cf_ddp *ddp = cf_ddp_new(dist, mod, o);
    ck_assert_ptr_nonnull(ddp);
    int64_t idx[G];
    global_batch(idx);
    int64_t lo = gb * rank / size, hi = gb * (rank + 1) / size;
    cf_module_zero_grad(mod);
    cf_ddp_set_weight(ddp, (float)(hi - lo) / (float)gb);
    if (hi > lo)
        ck_assert_int_eq(cf_backward(toy_loss(m, idx + lo, hi - lo)), CF_OK);
    ck_assert_msg(cf_ddp_finish(ddp) == CF_OK, "%s", cf_error_message());
    cf_ddp_free(ddp);
    return toy_grads(mod, n);
}

/* Largest |a - b| over the largest |b|. */
static double rel_diff(const float *a, const float *b, int64_t n)
{
    double d = 0, big = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        big = fmax(big, fabs((double)b[i]));
    }
    return d / big;
}

/* The one-process gradient of the whole batch at once. */
static float *whole_batch_grads(cf_transformer *m, int64_t gb, int64_t *n)
{
    int64_t idx[G];
    global_batch(idx);
    cf_module_zero_grad(cf_transformer_module(m));
    ck_assert_int_eq(cf_backward(toy_loss(m, idx, gb)), CF_OK);
    return toy_grads(cf_transformer_module(m), n);
}

START_TEST(ordered_average_equals_the_rank_order_sum_of_shard_gradients_bit_for_bit)
{
    cf_transformer *m = toy_model(1, 0);
    /* Small buckets: many messages in flight during backward. */
    cf_ddp_opts o = {.bucket_bytes = 8192};
    int64_t n, nref;
    float *got = ddp_grads(m, &o, G, &n);
    int64_t idx[G];
    global_batch(idx);
    float *want = toy_fold(m, idx, G, size);
    toy_grads(cf_transformer_module(m), &nref);
    ck_assert_int_eq(n, nref);
    ck_assert_msg(memcmp(got, want, sizeof(float) * (size_t)n) == 0,
                  "rank %d: differs from the rank-order sum by %g (relative)", rank,
                  rel_diff(got, want, n));
    free(got);
    free(want);
    cf_module_free(cf_transformer_module(m));
}
END_TEST

static void matches_whole_batch(cf_ddp_reduce reduce, size_t bucket_bytes, int64_t gb)
{
    cf_transformer *m = toy_model(2, 0);
    cf_ddp_opts o = {.bucket_bytes = bucket_bytes, .reduce = reduce};
    int64_t n, nref;
    float *got = ddp_grads(m, &o, gb, &n);
    float *want = whole_batch_grads(m, gb, &nref);
    ck_assert_int_eq(n, nref);
    double rd = rel_diff(got, want, n);
    if (rank == 0)
        printf("np %d, %s sum, batch %lld: largest difference from one process on the whole "
               "batch: %.3g of the largest gradient\n",
               size, reduce == CF_DDP_ORDERED ? "ordered" : "MPI", (long long)gb, rd);
    ck_assert_msg(rd <= REL_TOL, "rank %d: relative difference %g", rank, rd);
    free(got);
    free(want);
    cf_module_free(cf_transformer_module(m));
}

START_TEST(ordered_average_matches_one_process_on_the_whole_batch)
{
    matches_whole_batch(CF_DDP_ORDERED, 0, G);
}
END_TEST

START_TEST(mpi_sum_average_matches_one_process_on_the_whole_batch)
{
    matches_whole_batch(CF_DDP_MPI_SUM, 4096, G);
}
END_TEST

START_TEST(unequal_shards_are_weighted_by_their_size)
{
    matches_whole_batch(CF_DDP_ORDERED, 4096, G - 1);
}
END_TEST

START_TEST(a_rank_with_an_empty_shard_still_takes_part)
{
    /* size - 1 samples: rank 0's slice is empty. */
    matches_whole_batch(CF_DDP_ORDERED, 4096, size - 1);
}
END_TEST

START_TEST(ranks_agree_bit_for_bit_after_averaging)
{
    cf_transformer *m = toy_model(3, 0);
    cf_ddp_opts o = {.reduce = CF_DDP_MPI_SUM};
    int64_t n;
    float *got = ddp_grads(m, &o, G, &n);
    uint64_t h = 0xCBF29CE484222325ull;
    const unsigned char *b = (const unsigned char *)got;
    for (size_t i = 0; i < sizeof(float) * (size_t)n; i++)
        h = (h ^ b[i]) * 0x100000001B3ull;
    uint64_t h0 = h;
    ck_assert_int_eq(cf_dist_broadcast(dist, &h0, sizeof h0, 0), CF_OK);
    ck_assert_msg(h == h0, "rank %d's averaged gradients differ from rank 0's", rank);
    free(got);
    cf_module_free(cf_transformer_module(m));
}
END_TEST

START_TEST(a_second_backward_before_finish_is_an_error)
{
    cf_transformer *m = toy_model(4, 0);
    cf_module *mod = cf_transformer_module(m);
    cf_ddp *ddp = cf_ddp_new(dist, mod, NULL);
    int64_t idx[G];
    global_batch(idx);
    ck_assert_int_eq(cf_backward(toy_loss(m, idx, 2)), CF_OK);
    ck_assert_int_eq(cf_backward(toy_loss(m, idx, 2)), CF_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(cf_error_message(), "before cf_ddp_finish"));
    cf_error_clear();
    /* The first backward's buckets are still reduced: the ranks stay in step. */
    ck_assert_int_eq(cf_ddp_finish(ddp), CF_OK);
    cf_ddp_free(ddp);
    cf_module_free(mod);
}
END_TEST

START_TEST(ddp_opts_with_reserved_bytes_are_refused)
{
    cf_transformer *m = toy_model(5, 0);
    cf_module *mod = cf_transformer_module(m);
    cf_ddp_opts o = {.reserved[0] = 1};
    ck_assert_ptr_null(cf_ddp_new(dist, mod, &o));
    ck_assert_int_eq(cf_error(), CF_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(cf_error_message(), "cf_ddp_opts.reserved[0]"));
    cf_error_clear();
    cf_module_free(mod);
}
END_TEST

START_TEST(broadcast_module_copies_rank_0s_parameters)
{
    cf_transformer *m = toy_model(100 + (uint64_t)rank, 0);
    cf_transformer *ref = toy_model(100, 0);
    ck_assert_int_eq(cf_dist_broadcast_module(dist, cf_transformer_module(m), 0), CF_OK);
    ck_assert(toy_hash(cf_transformer_module(m)) == toy_hash(cf_transformer_module(ref)));
    cf_module_free(cf_transformer_module(m));
    cf_module_free(cf_transformer_module(ref));
}
END_TEST

START_TEST(broadcast_module_of_different_models_fails_on_every_rank)
{
    cf_module *m = cf_module_new("Net", NULL, NULL);
    cf_linear_new(m, "fc", 4, rank == 1 ? 5 : 3, true, NULL);
    ck_assert_int_eq(cf_dist_broadcast_module(dist, m, 0), CF_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(cf_error_message(), "models differ"));
    cf_error_clear();
    cf_module_free(m);
}
END_TEST

START_TEST(split_rngs_gives_each_rank_its_own_dropout_stream)
{
    cf_transformer *m = toy_model(5, 0.1f);
    cf_module *mod = cf_transformer_module(m);
    cf_dist_split_rngs(dist, mod);
    cf_module_train(mod, true);
    int64_t idx[G];
    global_batch(idx);
    double v = cf_item(toy_loss(m, idx, 4));
    double all = v, mine = v;
    ck_assert_int_eq(cf_dist_broadcast(dist, &all, sizeof all, 0), CF_OK);
    if (rank > 0)
        ck_assert_msg(all != mine, "rank %d drew rank 0's dropout masks", rank);
    cf_module_free(mod);
}
END_TEST

START_TEST(allreduce_sum_adds_in_rank_order_on_every_rank)
{
    double v[3] = {rank + 1, 0.1 * rank, -1};
    ck_assert_int_eq(cf_dist_allreduce_sum(dist, v, 3), CF_OK);
    double want[3] = {1, 0, -1};
    for (int r = 1; r < size; r++) {
        want[0] += r + 1;
        want[1] += 0.1 * r;
        want[2] += -1;
    }
    ck_assert(memcmp(v, want, sizeof v) == 0);
}
END_TEST

START_TEST(sampler_slices_cover_each_global_batch_once_whatever_the_size)
{
    /* 10 samples in batches of 4: 4, 4, 2; every size sees the same batches. */
    for (int n = 1; n <= 3; n++) {
        int64_t seen[10] = {0}, order[12], k = 0;
        cf_dist_sampler *s[3];
        for (int r = 0; r < n; r++)
            s[r] = cf_dist_sampler_new_for(r, n, 10, 4, 11, true);
        ck_assert_int_eq(cf_dist_sampler_batches(s[0]), 3);
        for (int b = 0; b < 3; b++)
            for (int r = 0; r < n; r++) {
                int64_t idx[5], c = cf_dist_sampler_next(s[r], idx);
                ck_assert_int_ge(c, 0);
                for (int64_t i = 0; i < c; i++) {
                    seen[idx[i]]++;
                    order[k++] = idx[i];
                }
            }
        for (int r = 0; r < n; r++) {
            int64_t idx[5];
            ck_assert_int_eq(cf_dist_sampler_next(s[r], idx), -1);
            cf_dist_sampler_free(s[r]);
        }
        for (int i = 0; i < 10; i++)
            ck_assert_int_eq(seen[i], 1);
        static int64_t first[10];
        if (n == 1)
            memcpy(first, order, sizeof first);
        ck_assert(memcmp(first, order, sizeof first) == 0);
    }
}
END_TEST

START_TEST(sampler_seek_resumes_the_order_and_epoch)
{
    cf_dist_sampler *a = cf_dist_sampler_new_for(1, 2, 9, 4, 3, true);
    cf_dist_sampler *b = cf_dist_sampler_new_for(1, 2, 9, 4, 3, true);
    int64_t x[4], y[4];
    for (int step = 0; step < 5; step++)
        if (cf_dist_sampler_next(a, x) < 0) {
            cf_dist_sampler_set_epoch(a, cf_dist_sampler_epoch(a) + 1);
            step--;
        }
    cf_dist_sampler_seek(b, 5); /* 3 batches per epoch: epoch 1, batch 2 */
    ck_assert_int_eq(cf_dist_sampler_epoch(b), 1);
    int64_t ca = cf_dist_sampler_next(a, x), cb = cf_dist_sampler_next(b, y);
    ck_assert_int_eq(ca, cb);
    ck_assert(memcmp(x, y, sizeof(int64_t) * (size_t)ca) == 0);
    cf_dist_sampler_free(a);
    cf_dist_sampler_free(b);
}
END_TEST

static char dir[256];

/* A scratch directory made by rank 0 and shared by all. */
static void shared_dir(void)
{
    if (rank == 0) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/cformer-dist-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        ck_assert_ptr_nonnull(mkdtemp(dir));
    }
    ck_assert_int_eq(cf_dist_broadcast(dist, dir, sizeof dir, 0), CF_OK);
}

static void remove_dir(void)
{
    ck_assert_int_eq(cf_dist_barrier(dist), CF_OK);
    if (rank == 0) {
        char p[300];
        snprintf(p, sizeof p, "%s/net.safetensors", dir);
        unlink(p);
        snprintf(p, sizeof p, "%s/opt.safetensors", dir);
        unlink(p);
        rmdir(dir);
    }
}

START_TEST(save_writes_once_and_load_restores_on_every_rank)
{
    shared_dir();
    char mp[300], op[300];
    snprintf(mp, sizeof mp, "%s/net.safetensors", dir);
    snprintf(op, sizeof op, "%s/opt.safetensors", dir);
    cf_transformer *m = toy_model(6, 0);
    cf_optim *o = cf_adam_new(cf_transformer_module(m), NULL);
    ck_assert_int_eq(cf_dist_save(dist, cf_transformer_module(m), mp, o, op), CF_OK);
    ck_assert_int_eq(access(mp, R_OK), 0);
    cf_transformer *m2 = toy_model(7 + (uint64_t)rank, 0);
    cf_optim *o2 = cf_adam_new(cf_transformer_module(m2), NULL);
    ck_assert_int_eq(cf_dist_load(dist, cf_transformer_module(m2), mp, true, o2, op), CF_OK);
    ck_assert(toy_hash(cf_transformer_module(m2)) == toy_hash(cf_transformer_module(m)));
    remove_dir();
    cf_optim_free(o);
    cf_optim_free(o2);
    cf_module_free(cf_transformer_module(m));
    cf_module_free(cf_transformer_module(m2));
}
END_TEST

START_TEST(a_load_failing_on_one_rank_fails_every_rank_naming_it)
{
    shared_dir();
    char mp[300];
    cf_transformer *m = toy_model(8, 0);
    snprintf(mp, sizeof mp, "%s/net.safetensors", dir);
    ck_assert_int_eq(cf_dist_save(dist, cf_transformer_module(m), mp, NULL, NULL), CF_OK);
    if (rank == size - 1)
        snprintf(mp, sizeof mp, "%s/missing.safetensors", dir);
    ck_assert_int_eq(cf_dist_load(dist, cf_transformer_module(m), mp, true, NULL, NULL), CF_ERR_IO);
    char want[64];
    snprintf(want, sizeof want, "cf_dist_load: rank %d:", size - 1);
    ck_assert_msg(strstr(cf_error_message(), want), "got: %s", cf_error_message());
    ck_assert_ptr_nonnull(strstr(cf_error_message(), "missing.safetensors"));
    cf_error_clear();
    remove_dir();
    cf_module_free(cf_transformer_module(m));
}
END_TEST

START_TEST(a_silent_rank_is_an_error_after_the_timeout_not_a_hang)
{
    /* Rank 0 waits at most 0.5 s for a barrier the others enter only after
     * rank 0 has given up (its message says so). */
    int token = 1;
    if (rank == 0) {
        const char *env = getenv("CF_DIST_TIMEOUT");
        char old[64] = "";
        if (env)
            snprintf(old, sizeof old, "%s", env);
        setenv("CF_DIST_TIMEOUT", "0.5", 1);
        ck_assert_int_eq(cf_dist_barrier(dist), CF_ERR_IO);
        ck_assert_ptr_nonnull(strstr(cf_error_message(), "cf_dist_barrier: rank 0"));
        ck_assert_ptr_nonnull(strstr(cf_error_message(), "no answer after"));
        cf_error_clear();
        if (*old)
            setenv("CF_DIST_TIMEOUT", old, 1);
        else
            unsetenv("CF_DIST_TIMEOUT");
        for (int r = 1; r < size; r++)
            MPI_Send(&token, 1, MPI_INT, r, 77, MPI_COMM_WORLD);
    } else {
        MPI_Recv(&token, 1, MPI_INT, 0, 77, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        /* The barrier rank 0 left behind still counts it in. */
        ck_assert_int_eq(cf_dist_barrier(dist), CF_OK);
    }
}
END_TEST

int main(int argc, char **argv)
{
    if (cf_dist_init(&argc, &argv, &dist) != CF_OK) {
        fprintf(stderr, "%s\n", cf_error_message());
        return 1;
    }
    rank = cf_dist_rank(dist);
    size = cf_dist_size(dist);
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("gradient_averaging");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ordered_average_equals_the_rank_order_sum_of_shard_gradients_bit_for_bit);
    tcase_add_test(tc, ordered_average_matches_one_process_on_the_whole_batch);
    tcase_add_test(tc, mpi_sum_average_matches_one_process_on_the_whole_batch);
    tcase_add_test(tc, unequal_shards_are_weighted_by_their_size);
    tcase_add_test(tc, a_rank_with_an_empty_shard_still_takes_part);
    tcase_add_test(tc, ranks_agree_bit_for_bit_after_averaging);
    tcase_add_test(tc, a_second_backward_before_finish_is_an_error);
    tcase_add_test(tc, ddp_opts_with_reserved_bytes_are_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("processes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, broadcast_module_copies_rank_0s_parameters);
    tcase_add_test(tc, broadcast_module_of_different_models_fails_on_every_rank);
    tcase_add_test(tc, split_rngs_gives_each_rank_its_own_dropout_stream);
    tcase_add_test(tc, allreduce_sum_adds_in_rank_order_on_every_rank);
    suite_add_tcase(s, tc);
    tc = tcase_create("sampler");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, sampler_slices_cover_each_global_batch_once_whatever_the_size);
    tcase_add_test(tc, sampler_seek_resumes_the_order_and_epoch);
    suite_add_tcase(s, tc);
    tc = tcase_create("checkpoints");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, save_writes_once_and_load_restores_on_every_rank);
    tcase_add_test(tc, a_load_failing_on_one_rank_fails_every_rank_naming_it);
    suite_add_tcase(s, tc);
    tc = tcase_create("failures");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_silent_rank_is_an_error_after_the_timeout_not_a_hang);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    /* Only rank 0 prints the summary; any rank's failure fails the job. */
    srunner_run_all(sr, rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed)
        fprintf(stderr, "rank %d: %d test(s) failed\n", rank, failed);
    cf_dist_barrier(dist);
    cf_dist_finalize(dist);
    return failed ? 1 : 0;
}
