/* The atomic file writer (atomic_file.h). libcformer-viz compiles this
 * file too, so it calls only the public API of libcformer. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* flock, O_CLOEXEC */
#endif

#include "tensor/atomic_file.h"
#include "cformer/tensor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The first n bytes of s (all of it if shorter) as a new string. */
static char *copy_str(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = cf_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* Temporaries are named "<target>.tmp-" and TMP_CHARS random characters,
 * and a save holds an exclusive flock() on its temporary until the rename:
 * so another save can tell the temporary of a save that was killed (which
 * holds no lock) from one in progress. */
#define TMP_CHARS 6
static const char tmp_alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/* Opens a new file path.tmp-XXXXXX for writing and locks it; stores its
 * name in tmp. */
static int open_temp(const char *path, char *tmp, size_t size)
{
    static _Thread_local uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 42 ^
                 (uint64_t)(uintptr_t)&counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        /* splitmix64 */
        uint64_t z = (x += 0x9E3779B97F4A7C15ull) + ++counter;
        z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ z >> 27) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        char suffix[TMP_CHARS + 1];
        for (int i = 0; i < TMP_CHARS; i++, z >>= 6)
            suffix[i] = tmp_alphabet[z % 62];
        suffix[TMP_CHARS] = '\0';
        if ((size_t)snprintf(tmp, size, "%s.tmp-%s", path, suffix) >= size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return -1;
        /* Another save may have taken it for stale and removed it between
         * the open and the lock: then make another. A file system without
         * locks fails flock(), and there no save removes another's file. */
        struct stat sb;
        if (flock(fd, LOCK_EX) != 0 || (fstat(fd, &sb) == 0 && sb.st_nlink > 0))
            return fd;
        close(fd);
    }
    errno = EEXIST;
    return -1;
}

/* The directory part of path ("." when there is none), or NULL. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? copy_str(path, slash == path ? 1 : (size_t)(slash - path)) : copy_str(".", 1);
}

/* Removes the temporaries that saves of target left when they were killed:
 * files named as open_temp names them that no save holds locked. Best
 * effort: a failure here only leaves them for the next save. */
static void remove_stale_temps(const char *target)
{
    char *dir = dir_of(target);
    DIR *d = dir ? opendir(dir) : NULL;
    cf_free(dir);
    if (!d)
        return;
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    size_t bl = strlen(base);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (strncmp(nm, base, bl) != 0 || strncmp(nm + bl, ".tmp-", 5) != 0 ||
            strlen(nm + bl + 5) != TMP_CHARS || strspn(nm + bl + 5, tmp_alphabet) != TMP_CHARS)
            continue;
        int fd = openat(dirfd(d), nm, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat a, b;
        /* Unlinked only while locked here, and only if the name still
         * leads to the file that was locked. */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &a) == 0 && S_ISREG(a.st_mode) &&
            fstatat(dirfd(d), nm, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino)
            unlinkat(dirfd(d), nm, 0);
        close(fd);
    }
    closedir(d);
}

/* The file a save to path replaces: path, or the file a symbolic link at
 * path leads to (written through, as editors do). A new string, or NULL
 * with errno set (ENOENT for a link to nothing). */
static char *save_target(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0 || !S_ISLNK(sb.st_mode))
        return copy_str(path, SIZE_MAX);
    /* Into a buffer: realpath would allocate with malloc, around
     * cf_set_allocator. */
    char real[PATH_MAX];
    return realpath(path, real) ? copy_str(real, SIZE_MAX) : NULL;
}

/* Syncs directory dir, so that a rename in it is durable. File systems
 * that cannot sync directories are not an error. */
static bool sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0 || errno == EINVAL || errno == ENOTSUP;
    int e = errno;
    close(fd);
    errno = e;
    return ok;
}

/* Records errno's meaning as w's failure; returns false. */
static bool failed(cf__atomic_file *w)
{
    w->nomem = errno == ENOMEM;
    snprintf(w->why, sizeof w->why, "%s", strerror(errno));
    return false;
}

bool cf__atomic_begin(cf__atomic_file *w, const char *path)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->target = save_target(path);
    if (!w->target) {
        if (errno == ENOMEM)
            return failed(w);
        snprintf(w->why, sizeof w->why, "a symbolic link whose target cannot be resolved (%s)",
                 strerror(errno));
        return false;
    }
    struct stat old;
    bool exists = stat(w->target, &old) == 0;
    if (!exists && errno != ENOENT)
        return failed(w);
    if (exists && !S_ISREG(old.st_mode)) {
        snprintf(w->why, sizeof w->why, "not a regular file");
        return false;
    }
    remove_stale_temps(w->target);
    size_t tmp_size = strlen(w->target) + TMP_CHARS + 8;
    w->tmp = cf_malloc(tmp_size);
    /* Taken now: once the file is renamed into place, running out of memory
     * could no longer be reported as a failed save. */
    w->dir = dir_of(w->target);
    if (!w->tmp || !w->dir) {
        errno = ENOMEM;
        return failed(w);
    }
    w->fd = open_temp(w->target, w->tmp, tmp_size);
    if (w->fd < 0)
        return failed(w);
    w->created = true;
    /* The file keeps its permissions; a new one gets the umask's. */
    if (exists && fchmod(w->fd, old.st_mode & 0777) != 0)
        return failed(w);
    return true;
}

bool cf__atomic_write(cf__atomic_file *w, const void *p, size_t n)
{
    return write_all(w->fd, p, n) || failed(w);
}

bool cf__atomic_commit(cf__atomic_file *w)
{
    /* fsync reports the write errors; the file stays locked (open) until
     * it has its final name. */
    if (fsync(w->fd) != 0 || rename(w->tmp, w->target) != 0)
        return failed(w);
    w->created = false;
    close(w->fd);
    w->fd = -1;
    return sync_dir(w->dir) || failed(w);
}

void cf__atomic_end(cf__atomic_file *w)
{
    if (w->created)
        unlink(w->tmp);
    if (w->fd >= 0)
        close(w->fd);
    cf_free(w->dir);
    cf_free(w->tmp);
    cf_free(w->target);
    w->fd = -1;
    w->dir = w->tmp = w->target = NULL;
    w->created = false;
}
