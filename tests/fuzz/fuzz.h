/* Helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.c). Each
 * target checks the library's contract on every input and aborts (a crash
 * libFuzzer reports, with the input saved) when it breaks. */
#ifndef CF_FUZZ_H
#define CF_FUZZ_H

#include "cformer/cformer.h"

#include <stddef.h>
#include <stdint.h>

/* Aborts with a message when cond is false. */
#define FUZZ_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                     \
    } while (0)
_Noreturn void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes data to this process's scratch file (in /dev/shm when there is
 * one, removed at exit) and returns its path. */
const char *fuzz_file(const uint8_t *data, size_t size);

/* The contract of a failed call named what that returned st, with the
 * error state cleared before the call: st is an error, it is the one
 * recorded, the message is not empty, and st is one of the n statuses
 * allowed. Clears the error afterwards. */
void fuzz_check_failure(const char *what, cf_status st, int n, const cf_status *allowed);
/* The contract of a call that succeeded: no error recorded. */
void fuzz_check_success(const char *what);

/* A copy of every parameter's values and every module generator's state
 * under m, to show that a failed call changed nothing. */
typedef struct fuzz_snapshot fuzz_snapshot;
fuzz_snapshot *fuzz_snapshot_take(cf_module *m);
/* Aborts naming the first parameter or generator of m that differs from s. */
void fuzz_snapshot_check(const fuzz_snapshot *s, cf_module *m, const char *what);
void fuzz_snapshot_free(fuzz_snapshot *s);

#endif
