/* Writing a file so that readers, and a crash or a kill at any moment, see
 * either the old file or the whole new one: the bytes go to a locked
 * temporary "<target>.tmp-XXXXXX" beside the target, are synced, and the
 * temporary is renamed over the target. A save to a symbolic link writes
 * through to the file it leads to; a replaced file keeps its permissions;
 * temporaries that killed saves of the same target left behind are
 * removed. Internal to the library (safetensors_save.c uses it). */
#ifndef CF_TENSOR_ATOMIC_FILE_H
#define CF_TENSOR_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    int fd;       /* the temporary, open for writing */
    char *target; /* the file replaced at commit */
    char *tmp;    /* the temporary's name */
    char *dir;    /* the directory synced after the rename */
    bool created; /* the temporary exists and is not yet renamed */
    bool nomem;   /* the failure recorded in why was running out of memory */
    char why[160];
} cf__atomic_file;

/* Creates the temporary for a save to path. False when that fails, with
 * the reason in w->why (and w->nomem). Call cf__atomic_end after either. */
bool cf__atomic_begin(cf__atomic_file *w, const char *path);

/* Appends n bytes to the temporary; false with the reason in w->why. */
bool cf__atomic_write(cf__atomic_file *w, const void *p, size_t n);

/* Syncs the temporary, renames it over the target and syncs the
 * directory; false with the reason in w->why. */
bool cf__atomic_commit(cf__atomic_file *w);

/* Removes the temporary unless it was committed, and frees w's resources. */
void cf__atomic_end(cf__atomic_file *w);

#endif
