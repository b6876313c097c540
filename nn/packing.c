/* Sequence lengths of a padded batch, for recurrent layers that skip the
 * padding as PyTorch does over a pack_padded_sequence. */
#include "nn/internal.h"

bool nn__pack(const char *type, const char *name, const cf_tensor *x, cf_tensor *lengths,
              nn__packing *p)
{
    char b[CF_SHAPE_BUF], c[CF_SHAPE_BUF];
    int64_t B = x->shape[0], T = x->shape[1];
    if (lengths->dtype != CF_I32 || lengths->ndim != 1 || lengths->shape[0] != B) {
        cf__error(lengths->dtype != CF_I32 ? CF_ERR_DTYPE : CF_ERR_SHAPE,
                  "%s \"%s\": lengths %s %s for input %s, expected int32 [%lld]", type, name,
                  cf_dtype_name(lengths->dtype), cf_shape_str(lengths, b, sizeof b),
                  cf_shape_str(x, c, sizeof c), (long long)B);
        return false;
    }
    cf_tensor *real = cf__alloc(type, CF_BOOL, CF_SHAPE(B, T));
    if (!real)
        return false;
    p->shortest = T;
    for (int64_t i = 0; i < B; i++) {
        int64_t len = (int64_t)cf_get(lengths, CF_IDX(i));
        if (len < 0 || len > T) {
            cf__error(CF_ERR_INDEX, "%s \"%s\": length %lld of sequence %lld outside [0, %lld]",
                      type, name, (long long)len, (long long)i, (long long)T);
            return false;
        }
        for (int64_t t = 0; t < T; t++)
            ((uint8_t *)real->data)[i * T + t] = t < len;
        if (len < p->shortest)
            p->shortest = len;
    }
    p->real = real;
    p->pad = cf_logical_not(real);
    return p->pad != NULL;
}
