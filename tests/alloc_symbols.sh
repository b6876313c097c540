#!/bin/sh
# Every allocation of libcformer goes through cf_set_allocator's hook: no
# object of the library but tensor/alloc.c's calls the C allocator itself.
# Skipped (77) when the objects or nm are missing.
command -v nm >/dev/null 2>&1 || exit 77
objs=$(ls ./*/libcformer_la-*.o ./*/.libs/libcformer_la-*.o 2>/dev/null)
[ -n "$objs" ] || exit 77
bad=$(for o in $objs; do
    case $o in *libcformer_la-alloc.o) continue ;; esac
    nm -u "$o" | awk -v o="$o" '$2 ~ /^(malloc|calloc|realloc|free|strdup|strndup|aligned_alloc|posix_memalign|memalign|valloc|reallocarray)$/ { print o ": " $2 }'
done)
if [ -n "$bad" ]; then
    echo "these objects allocate around cf_set_allocator (use cf_malloc, cf_free, cf__strdup, ...):"
    echo "$bad"
    exit 1
fi
echo "$(echo "$objs" | wc -l) objects: only tensor/alloc.c calls the C allocator"
