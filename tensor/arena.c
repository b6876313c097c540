/* Arenas: bump allocation in chunks, freed all at once.
 *
 * A step that outgrows its chunk gets another; at the next reset the chunks
 * are merged into one of the high-water size, so a training loop allocates
 * from the system only during its first step.
 *
 * Blocks the library knows to be dead before the reset (the gradient of an
 * intermediate result once backward has used it) are released into free
 * lists binned by size, and a later request of exactly that size takes one
 * back: a step repeats the same shapes, so backward's gradients mostly reuse
 * each other's memory instead of growing the arena. */
#include "tensor/internal.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN         64
#define DEFAULT_CHUNK ((size_t)64 << 20)
#define NBINS         61 /* free lists, by size in ALIGN units modulo NBINS */

/* A released block; the lists live inside the blocks themselves. */
typedef struct freed {
    struct freed *next;
    size_t size;
} freed;

typedef struct chunk {
    struct chunk *next;
    void *block; /* from cf_malloc; the chunk starts at its first aligned byte */
    size_t size; /* usable bytes after the header */
    size_t used;
} chunk;

struct cf_arena {
    chunk *head; /* the chunk being filled; older chunks follow */
    size_t chunk_bytes;
    size_t used;       /* bytes handed out since the reset, with padding */
    size_t high_water; /* largest `used` ever seen */
    size_t capacity;
    freed *bins[NBINS]; /* released blocks, by size */
};

static _Thread_local cf_arena *current;

static size_t round_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

static chunk *chunk_new(size_t size)
{
    if (size > SIZE_MAX / 2)
        return NULL;
    size = round_up(size);
    void *block = cf_malloc(ALIGN - 1 + round_up(sizeof(chunk)) + size);
    if (!block)
        return NULL;
    chunk *c = (chunk *)round_up((uintptr_t)block);
    c->block = block;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

static char *chunk_base(chunk *c) { return (char *)c + round_up(sizeof(chunk)); }

cf_arena *cf_arena_new(size_t chunk_bytes)
{
    cf_arena *a = cf_calloc(1, sizeof *a);
    if (!a) {
        cf__error(CF_ERR_NOMEM, "cf_arena_new: out of memory");
        return NULL;
    }
    a->chunk_bytes = chunk_bytes ? chunk_bytes : DEFAULT_CHUNK;
    return a;
}

static void free_chunks(chunk *c)
{
    while (c) {
        chunk *next = c->next;
        cf_free(c->block);
        c = next;
    }
}

void cf_arena_free(cf_arena *a)
{
    if (!a)
        return;
    if (current == a)
        current = NULL;
    free_chunks(a->head);
    cf_free(a);
}

void cf_arena_reset(cf_arena *a)
{
    if (!a)
        return;
    if (a->head && a->head->next) {
        size_t want = a->high_water > a->chunk_bytes ? a->high_water : a->chunk_bytes;
        free_chunks(a->head);
        a->head = chunk_new(want);
        a->capacity = a->head ? a->head->size : 0;
    }
    if (a->head)
        a->head->used = 0;
    a->used = 0;
    memset(a->bins, 0, sizeof a->bins);
}

cf_arena *cf_arena_use(cf_arena *a)
{
    cf_arena *prev = current;
    current = a;
    return prev;
}

cf_arena *cf_arena_current(void) { return current; }

size_t cf_arena_used(const cf_arena *a) { return a ? a->used : 0; }
size_t cf_arena_high_water(const cf_arena *a) { return a ? a->high_water : 0; }
size_t cf_arena_capacity(const cf_arena *a) { return a ? a->capacity : 0; }

void *cf__arena_alloc(const char *op, size_t size)
{
    cf_arena *a = current;
    if (!a) {
        cf__error(CF_ERR_NO_ARENA, "%s: no arena in use (call cf_arena_use)", op);
        return NULL;
    }
    if (cf__profiling)
        cf__prof_alloc();
    size = round_up(size ? size : 1);
    for (freed **f = &a->bins[(size / ALIGN) % NBINS]; *f; f = &(*f)->next) {
        if ((*f)->size == size) {
            void *p = *f;
            *f = (*f)->next;
            return p;
        }
    }
    chunk *c = a->head;
    if (!c || c->size - c->used < size) {
        chunk *n = chunk_new(size > a->chunk_bytes ? size : a->chunk_bytes);
        if (!n) {
            cf__error(CF_ERR_NOMEM,
                      "%s: out of memory growing the arena by %zu bytes "
                      "(%zu in use)",
                      op, size > a->chunk_bytes ? size : a->chunk_bytes, a->used);
            return NULL;
        }
        n->next = c;
        a->head = c = n;
        a->capacity += n->size;
    }
    void *p = chunk_base(c) + c->used;
    c->used += size;
    a->used += size;
    if (a->used > a->high_water)
        a->high_water = a->used;
    return p;
}

void cf__arena_release(void *p, size_t size)
{
    cf_arena *a = current;
    size = round_up(size ? size : 1);
    if (!a || !p)
        return;
    /* Only a block of this arena's chunks may be reused by it. */
    chunk *c = a->head;
    while (c && !((char *)p >= chunk_base(c) && (char *)p + size <= chunk_base(c) + c->used))
        c = c->next;
    if (!c)
        return;
    freed *f = p;
    f->size = size;
    f->next = a->bins[(size / ALIGN) % NBINS];
    a->bins[(size / ALIGN) % NBINS] = f;
}

void *cf_arena_alloc(size_t size) { return cf__arena_alloc("cf_arena_alloc", size); }
