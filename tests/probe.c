#include "tests/probe.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PROBE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(PROBE_ASAN)
#define PROBE_ASAN 1
#endif

bool probe_sanitized(void)
{
#ifdef PROBE_ASAN
    return true;
#else
    return false;
#endif
}

long probe_env_long(const char *name, long dflt)
{
    const char *s = getenv(name);
    long v = s ? strtol(s, NULL, 10) : 0;
    return v > 0 ? v : dflt;
}

void *probe_shared(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void probe_unshare(void *p, size_t size)
{
    if (p)
        munmap(p, size);
}

double probe_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

probe_end probe_run(int (*fn)(void *ud), void *ud, double timeout_s, int *code)
{
    /* SIGCHLD stays blocked so that sigtimedwait can wait for it. */
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    pid_t pid = fork();
    if (pid < 0) {
        *code = errno;
        return PROBE_EXITED;
    }
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        _exit(fn(ud));
    }
    double deadline = probe_now() + timeout_s;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        double left = deadline - probe_now();
        if (left <= 0) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            *code = SIGKILL;
            return PROBE_TIMEOUT;
        }
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        sigtimedwait(&chld, NULL, &ts);
    }
    if (WIFSIGNALED(status)) {
        *code = WTERMSIG(status);
        return PROBE_SIGNALED;
    }
    *code = WEXITSTATUS(status);
    return PROBE_EXITED;
}

const char *probe_mkdtemp(void)
{
    static char dir[512];
    const char *tmp = getenv("TMPDIR");
    const char *bases[] = {"/dev/shm", tmp && *tmp ? tmp : "/tmp"};
    for (int i = 0; i < 2; i++) {
        snprintf(dir, sizeof dir, "%s/cformer-probe-XXXXXX", bases[i]);
        if (mkdtemp(dir))
            return dir;
    }
    return NULL;
}

void probe_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    char path[1024];
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

int probe_count_files(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, part) != NULL;
    if (d)
        closedir(d);
    return n;
}
