/* Arenas: bump allocation in chunks, freed all at once.
 *
 * A step that outgrows its chunk gets another, at the end of the list. A
 * reset rewinds to the first chunk and keeps them all, so that the next step
 * of the same shapes fills the same memory in the same order: a training
 * loop allocates and touches new memory only during its first step. Only
 * when the chunks hold more than twice the high water (steps of changing
 * shapes) are they merged into one of the high-water size.
 *
 * Blocks the library knows to be dead before the reset (the gradient of an
 * intermediate result once backward has used it) are released into free
 * lists binned by size; a later request takes one of exactly its size, or
 * else the end of the smallest larger one. A step repeats the same shapes,
 * so backward's gradients mostly reuse each other's memory instead of
 * growing the arena. */
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
    struct chunk *next; /* the chunk made after this one */
    void *block;        /* from cf_malloc; the chunk starts at its first aligned byte */
    size_t size;        /* usable bytes after the header */
    size_t used;
} chunk;

struct cf_arena {
    chunk *first, *last; /* all chunks, oldest first */
    chunk *head;         /* the chunk being filled */
    size_t chunk_bytes;
    size_t used;       /* bytes handed out since the reset, with padding */
    size_t high_water; /* largest `used` ever seen */
    size_t capacity;
    freed *bins[NBINS]; /* released blocks, by size */
    size_t nfreed;      /* blocks in the bins */
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
    free_chunks(a->first);
    cf_free(a);
}

void cf_arena_reset(cf_arena *a)
{
    if (!a)
        return;
    size_t want = a->high_water > a->chunk_bytes ? a->high_water : a->chunk_bytes;
    if (a->first && a->first->next && a->capacity > 2 * want) {
        free_chunks(a->first);
        a->first = a->last = chunk_new(want);
        a->capacity = a->first ? a->first->size : 0;
    }
    for (chunk *c = a->first; c; c = c->next)
        c->used = 0;
    a->head = a->first;
    a->used = 0;
    memset(a->bins, 0, sizeof a->bins);
    a->nfreed = 0;
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

static void push_freed(cf_arena *a, void *p, size_t size)
{
    freed *f = p;
    f->size = size;
    f->next = a->bins[(size / ALIGN) % NBINS];
    a->bins[(size / ALIGN) % NBINS] = f;
    a->nfreed++;
}

/* A released block of exactly size bytes, else the end of the smallest
 * larger one (its head stays free), else NULL. */
static void *reuse(cf_arena *a, size_t size)
{
    for (freed **f = &a->bins[(size / ALIGN) % NBINS]; *f; f = &(*f)->next) {
        if ((*f)->size == size) {
            void *p = *f;
            *f = (*f)->next;
            a->nfreed--;
            return p;
        }
    }
    freed **best = NULL;
    for (int i = 0; i < NBINS; i++)
        for (freed **f = &a->bins[i]; *f; f = &(*f)->next)
            if ((*f)->size > size && (!best || (*f)->size < (*best)->size))
                best = f;
    if (!best)
        return NULL;
    freed *b = *best;
    size_t rest = b->size - size;
    *best = b->next;
    a->nfreed--;
    push_freed(a, b, rest);
    return (char *)b + rest;
}

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
    if (a->nfreed) {
        void *p = reuse(a, size);
        if (p)
            return p;
    }
    chunk *c = a->head;
    while (c && c->size - c->used < size)
        c = c->next;
    if (!c) {
        chunk *n = chunk_new(size > a->chunk_bytes ? size : a->chunk_bytes);
        if (!n) {
            cf__error(CF_ERR_NOMEM,
                      "%s: out of memory growing the arena by %zu bytes "
                      "(%zu in use)",
                      op, size > a->chunk_bytes ? size : a->chunk_bytes, a->used);
            return NULL;
        }
        if (a->last)
            a->last->next = n;
        else
            a->first = n;
        a->last = c = n;
        a->capacity += n->size;
    }
    a->head = c;
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
    chunk *c = a->first;
    while (c && !((char *)p >= chunk_base(c) && (char *)p + size <= chunk_base(c) + c->used))
        c = c->next;
    if (!c)
        return;
    push_freed(a, p, size);
}

void *cf_arena_alloc(size_t size) { return cf__arena_alloc("cf_arena_alloc", size); }
