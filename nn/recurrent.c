/* What the recurrent layers (GRU, LSTM) share: their cells' parameters,
 * the checks of their arguments, and the sequence lengths of a padded
 * batch, for skipping the padding as PyTorch does over a
 * pack_padded_sequence. */
#include "nn/internal.h"

#include <math.h>
#include <stdio.h>

bool nn__rnn_cell(cf_module *m, const char *suffix, int gates, int input, int hidden, bool bias,
                  cf_rng *g, cf_tensor **w)
{
    static const char *names[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    float bound = 1.0f / sqrtf((float)hidden);
    for (int i = 0; i < 4; i++) {
        char name[CF_NAME_MAX];
        snprintf(name, sizeof name, "%s%s", names[i], suffix);
        w[i] = NULL;
        if (i >= 2 && !bias)
            continue;
        w[i] = i == 0   ? cf_module_param(m, name, CF_SHAPE(gates * hidden, input))
               : i == 1 ? cf_module_param(m, name, CF_SHAPE(gates * hidden, hidden))
                        : cf_module_param(m, name, CF_SHAPE(gates * hidden));
        if (!w[i])
            return false;
        cf_fill_uniform(g, w[i], -bound, bound);
    }
    return true;
}

bool nn__rnn_check(const char *type, const char *name, int input, int hidden, int layers, int dirs,
                   float dropout, bool bias)
{
    if (layers < 1 || input < 1 || hidden < 1 || !(dropout >= 0 && dropout <= 1)) {
        cf__error(CF_ERR_ARG,
                  "%s \"%s\": invalid sizes (input %d, hidden %d, %d layers) or dropout %g", type,
                  name ? name : "", input, hidden, layers, dropout);
        return false;
    }
    /* All cells' tensors are parameters of this one module, as in PyTorch. */
    if (layers * dirs * (bias ? 4 : 2) > CF_MODULE_MAX_PARAMS) {
        cf__error(CF_ERR_ARG,
                  "%s \"%s\": %d layers x %d directions need %d parameter tensors, more than "
                  "the %d a module holds",
                  type, name ? name : "", layers, dirs, layers * dirs * (bias ? 4 : 2),
                  CF_MODULE_MAX_PARAMS);
        return false;
    }
    return true;
}

bool nn__rnn_cells(cf_module *m, int gates, int input, int hidden, int layers, int dirs, bool bias,
                   cf_rng *g, cf_tensor *(*w)[4])
{
    for (int l = 0; l < layers; l++) {
        for (int d = 0; d < dirs; d++) {
            char suffix[32];
            snprintf(suffix, sizeof suffix, "_l%d%s", l, d ? "_reverse" : "");
            if (!nn__rnn_cell(m, suffix, gates, l ? hidden * dirs : input, hidden, bias, g,
                              w[l * dirs + d]))
                return false;
        }
    }
    return true;
}

bool nn__rnn_state(const char *type, const char *name, const char *what, const cf_tensor *s,
                   int lead, int64_t B, int64_t H)
{
    if (!s)
        return true;
    bool ok = s->ndim == (lead ? 3 : 2) && s->shape[s->ndim - 2] == B && s->shape[s->ndim - 1] == H;
    if (ok && lead)
        ok = s->shape[0] == lead;
    if (!ok) {
        char b[CF_SHAPE_BUF], want[64];
        if (lead)
            snprintf(want, sizeof want, "[%d, %lld, %lld]", lead, (long long)B, (long long)H);
        else
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)B, (long long)H);
        cf__error(CF_ERR_SHAPE, "%s \"%s\": %s of shape %s, expected %s", type, name, what,
                  cf_shape_str(s, b, sizeof b), want);
    }
    return ok;
}

bool nn__rnn_input(const char *type, const char *name, const cf_tensor *x, int ndim, int input)
{
    if (x->ndim == ndim && x->shape[ndim - 1] == input)
        return true;
    char b[CF_SHAPE_BUF];
    cf__error(CF_ERR_SHAPE, "%s \"%s\": input of shape %s, expected %d dims ending in %d", type,
              name, cf_shape_str(x, b, sizeof b), ndim, input);
    return false;
}

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
