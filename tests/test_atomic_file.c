/* tensor/atomic_file.c, through cf_safetensors_save: a save replaces its
 * target atomically or not at all (failures midway, failed renames,
 * read-only directories, links, directories and FIFOs in the way), keeps
 * the target's permissions and clears stale temporaries. */
#define _POSIX_C_SOURCE 200809L

#include "tests/util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

SCRATCH_TEST(saving_over_a_file_replaces_it)
{
    const char *path = scratch_path("m.safetensors");
    const char *names[] = {"x"};
    cf_tensor *a[] = {cf_full(1, CF_SHAPE(2))}, *b[] = {cf_full(2, CF_SHAPE(3))};
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, a, NULL), CF_OK);
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, b, NULL), CF_OK);
    cf_safetensors *f = open_safetensors(path);
    assert_values(cf_safetensors_get(f, "x"), (float[]){2, 2, 2}, 0, 0);
    cf_safetensors_close(f);
    ck_assert_int_eq(scratch_count(".tmp-"), 0);
}
END_TEST

SCRATCH_TEST(a_save_that_fails_midway_keeps_the_old_file_and_no_temporary)
{
    const char *path = scratch_path("m.safetensors");
    const char *names[] = {"x"};
    cf_tensor *small[] = {cf_full(1, CF_SHAPE(4))};
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, small, NULL), CF_OK);

    /* Limit file size (works as root too), so the write of a 400 kB tensor
     * fails with EFBIG after the temporary file is created. */
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    cf_tensor *big[] = {cf_full(2, CF_SHAPE(100000))};
    cf_status s = cf_safetensors_save(path, 1, names, big, NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);

    ck_assert_int_eq(s, CF_ERR_IO);
    assert_error(CF_ERR_IO, path, strerror(EFBIG), NULL);
    ck_assert_int_eq(scratch_count(".tmp-"), 0);
    cf_safetensors *f = open_safetensors(path);
    assert_values(cf_safetensors_get(f, "x"), (float[]){1, 1, 1, 1}, 0, 0);
    cf_safetensors_close(f);
}
END_TEST

SCRATCH_TEST(a_save_whose_rename_fails_leaves_no_temporary)
{
    const char *path = scratch_path("sub");
    ck_assert_int_eq(mkdir(path, 0700), 0); /* a directory where the file should go */
    const char *names[] = {"x"};
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(2))};
    ck_assert_int_eq(cf_safetensors_save(path, 1, names, ts, NULL), CF_ERR_IO);
    assert_error(CF_ERR_IO, path, NULL);
    ck_assert_int_eq(scratch_count(".tmp-"), 0);
}
END_TEST

SCRATCH_TEST(a_save_into_a_read_only_directory_fails_cleanly)
{
    const char *sub = scratch_path("ro");
    ck_assert_int_eq(mkdir(sub, 0500), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/x.safetensors", sub);
    const char *names[] = {"x"};
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(2))};
    cf_status s = cf_safetensors_save(path, 1, names, ts, NULL);
    if (geteuid() == 0) { /* root writes anyway */
        ck_assert_int_eq(s, CF_OK);
        return;
    }
    ck_assert_int_eq(s, CF_ERR_IO);
    assert_error(CF_ERR_IO, path, strerror(EACCES), NULL);
}
END_TEST

/* The header buffer fails to grow (a 48 MB metadata value under an address
 * space limit): the save must return, not pad the header forever. The limit
 * cannot be used under AddressSanitizer, which reserves terabytes. */
#if defined(__SANITIZE_ADDRESS__)
#define NO_AS_LIMIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_AS_LIMIT 1
#endif
#endif

SCRATCH_TEST(a_save_whose_header_cannot_grow_returns_nomem)
{
#ifdef NO_AS_LIMIT
    return;
#else
    const char *path = scratch_path("big.safetensors");
    size_t n = (size_t)48 << 20;
    char *meta = malloc(n + 16);
    ck_assert_ptr_nonnull(meta);
    strcpy(meta, "{\"k\":\"");
    memset(meta + 6, 'a', n);
    strcpy(meta + 6 + n, "\"}");
    const char *names[] = {"x"};
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(3))};
    long pages = 0;
    FILE *fp = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fscanf(fp, "%ld", &pages), 1);
    fclose(fp);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)100 << 20);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
    cf_status st = cf_safetensors_save(path, 1, names, ts, meta);
    setrlimit(RLIMIT_AS, &old);
    free(meta);
    ck_assert_int_eq(st, CF_ERR_NOMEM);
    assert_error(CF_ERR_NOMEM, path, "out of memory", NULL);
    ck_assert_int_eq(scratch_count("big"), 0);
#endif
}
END_TEST

SCRATCH_TEST(saving_over_a_file_keeps_its_permissions)
{
    const char *path = save_sample_safetensors("s.safetensors");
    ck_assert_int_eq(chmod(path, 0600), 0);
    save_sample_safetensors("s.safetensors");
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    ck_assert_int_eq(chmod(path, 0640), 0);
    save_sample_safetensors("s.safetensors");
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0640);
}
END_TEST

SCRATCH_TEST(saving_to_a_symbolic_link_writes_through_to_its_target)
{
    const char *target = save_sample_safetensors("real.safetensors");
    const char *link = scratch_path("link.safetensors");
    ck_assert_int_eq(symlink("real.safetensors", link), 0);
    const char *names[] = {"y"};
    cf_tensor *ts[] = {cf_full(5, CF_SHAPE(2))};
    ck_assert_int_eq(cf_safetensors_save(link, 1, names, ts, NULL), CF_OK);
    struct stat sb;
    ck_assert_int_eq(lstat(link, &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
    cf_safetensors *f = open_safetensors(target);
    ck_assert_int_eq(cf_safetensors_count(f), 1);
    assert_values(cf_safetensors_get(f, "y"), (float[]){5, 5}, 0, 0);
    cf_safetensors_close(f);
    ck_assert_int_eq(scratch_count(".tmp-"), 0);
}
END_TEST

SCRATCH_TEST(saving_to_a_link_to_nothing_is_refused_saying_so)
{
    const char *link = scratch_path("dangling.safetensors");
    ck_assert_int_eq(symlink("missing/x.safetensors", link), 0);
    const char *names[] = {"y"};
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(2))};
    ck_assert_int_eq(cf_safetensors_save(link, 1, names, ts, NULL), CF_ERR_IO);
    assert_error(CF_ERR_IO, link, "symbolic link", strerror(ENOENT), NULL);
}
END_TEST

SCRATCH_TEST(saving_over_a_directory_or_a_fifo_is_refused)
{
    const char *names[] = {"y"};
    cf_tensor *ts[] = {cf_ones(CF_SHAPE(2))};
    const char *sub = scratch_path("d.safetensors");
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_eq(cf_safetensors_save(sub, 1, names, ts, NULL), CF_ERR_IO);
    assert_error(CF_ERR_IO, sub, "not a regular file", NULL);
    const char *fifo = scratch_path("p.safetensors");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(cf_safetensors_save(fifo, 1, names, ts, NULL), CF_ERR_IO);
    assert_error(CF_ERR_IO, fifo, "not a regular file", NULL);
    ck_assert_int_eq(scratch_count(".tmp-"), 0);
}
END_TEST

SCRATCH_TEST(a_save_removes_the_stale_temporaries_of_its_target_only)
{
    static const char junk[] = "left by a killed save";
    write_file(scratch_path("m.safetensors.tmp-Ab3xY9"), junk, sizeof junk);
    write_file(scratch_path("m.safetensors.tmp-zzzzzz"), junk, sizeof junk);
    write_file(scratch_path("other.safetensors.tmp-Ab3xY9"), junk, sizeof junk);
    write_file(scratch_path("m.safetensors.tmp-short"), junk, sizeof junk);
    /* One that a live save holds locked stays. */
    const char *live = scratch_path("m.safetensors.tmp-L1ve00");
    write_file(live, junk, sizeof junk);
    FILE *lf = fopen(live, "r");
    ck_assert_int_eq(flock(fileno(lf), LOCK_EX), 0);
    save_sample_safetensors("m.safetensors");
    ck_assert_int_eq(scratch_count("m.safetensors.tmp-"), 2);
    ck_assert_int_eq(access(live, F_OK), 0);
    ck_assert_int_eq(access(scratch_path("m.safetensors.tmp-short"), F_OK), 0);
    ck_assert_int_eq(scratch_count("other.safetensors.tmp-"), 1);
    fclose(lf);
    save_sample_safetensors("m.safetensors");
    ck_assert_int_eq(scratch_count("m.safetensors.tmp-"), 1);
}
END_TEST
