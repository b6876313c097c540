/* Printing, truncated like PyTorch's: at most EDGE items at each end of a
 * dim that has more than 2 * EDGE. */
#include "tensor/internal.h"

#define EDGE 3

static void print_dim(FILE *f, const cf_tensor *t, int d, int64_t *idx)
{
    int64_t n = t->shape[d];
    fputc('[', f);
    for (int64_t i = 0; i < n; i++) {
        if (n > 2 * EDGE && i == EDGE) {
            fputs(d == t->ndim - 1 ? "..., " : "...,\n", f);
            i = n - EDGE;
        }
        idx[d] = i;
        if (d == t->ndim - 1) {
            float v = cf_get(t, idx);
            if (t->dtype == CF_F32)
                fprintf(f, "%.4g", v);
            else
                fprintf(f, "%d", (int)v);
        } else {
            print_dim(f, t, d + 1, idx);
        }
        if (i + 1 < n)
            fputs(d == t->ndim - 1 ? ", " : ",\n", f);
    }
    fputc(']', f);
}

void cf_fprint(FILE *f, const cf_tensor *t)
{
    if (!t) {
        fputs("tensor(NULL)\n", f);
        return;
    }
    char b[CF_SHAPE_BUF];
    fprintf(f, "tensor(shape=%s, dtype=%s%s)\n", cf_shape_str(t, b, sizeof b),
            cf_dtype_name(t->dtype), (t->flags & CF_REQUIRES_GRAD) ? ", requires_grad" : "");
    int64_t idx[CF_MAX_DIMS] = {0};
    if (t->ndim == 0)
        fprintf(f, "%.4g", cf_get(t, idx));
    else if (cf_numel(t) > 0)
        print_dim(f, t, 0, idx);
    else
        fputs("[]", f);
    fputc('\n', f);
}

void cf_print(const cf_tensor *t) { cf_fprint(stdout, t); }
