/* The allocator every library allocation goes through (cf_set_allocator).
 *
 * Zero-byte requests are rounded up to one byte, so that NULL always means
 * failure, whatever the allocator does with zero. */
#include "tensor/internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *sys_malloc(size_t size, void *ud)
{
    (void)ud;
    return malloc(size);
}

static void *sys_realloc(void *p, size_t size, void *ud)
{
    (void)ud;
    return realloc(p, size);
}

static void sys_free(void *p, void *ud)
{
    (void)ud;
    free(p);
}

static const cf_allocator sys_allocator = {
    .malloc_fn = sys_malloc, .realloc_fn = sys_realloc, .free_fn = sys_free};
static cf_allocator allocator = {
    .malloc_fn = sys_malloc, .realloc_fn = sys_realloc, .free_fn = sys_free};

cf_status cf_set_allocator(const cf_allocator *a)
{
    cf_error_frame fr;
    cf_error_enter(&fr);
    if (a && (!a->malloc_fn || !a->realloc_fn || !a->free_fn))
        cf__error(CF_ERR_ARG, "cf_set_allocator: malloc_fn, realloc_fn and free_fn are needed");
    else if (!a ||
             cf_check_reserved("cf_set_allocator", "cf_allocator", a->reserved, CF_RESERVED_WORDS))
        allocator = a ? *a : sys_allocator;
    return cf_error_leave(&fr, CF_OK);
}

cf_allocator cf_get_allocator(void) { return allocator; }

/* errno is set as malloc sets it, whatever the allocator does. */
static void *checked(void *p)
{
    if (!p)
        errno = ENOMEM;
    return p;
}

void *cf_malloc(size_t size) { return checked(allocator.malloc_fn(size ? size : 1, allocator.ud)); }

void *cf_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = cf_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *cf_realloc(void *p, size_t size)
{
    return checked(allocator.realloc_fn(p, size ? size : 1, allocator.ud));
}

void cf_free(void *p)
{
    if (p)
        allocator.free_fn(p, allocator.ud);
}

char *cf__strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = cf_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *cf__strdup(const char *s) { return cf__strndup(s, SIZE_MAX); }

bool cf__grow(void **p, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 8;
    while (c < need) {
        if (c > SIZE_MAX / 2 / sz)
            return false;
        c *= 2;
    }
    void *q = cf_realloc(*p, c * sz);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}
