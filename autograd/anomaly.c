/* Anomaly mode: names the first op whose output, or whose backward's
 * gradient, holds NaN or infinity.
 *
 * An op's output is checked as the op records itself (cf_op_record, which
 * every op calls, with or without grad mode). NaN is always reported, so
 * that NaN in the data stops the first op that meets it. Infinity is
 * reported only when the op made it: none of its inputs holds one and none
 * of its scalar parameters is one (cf_masked_fill(x, mask, -INFINITY) is
 * meant). In backward every gradient an op's backward added to is checked,
 * and the seed. Off, the cost is one test of a flag per op. */
#include "autograd/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool ag__anomaly;

__attribute__((constructor)) static void anomaly_from_env(void)
{
    const char *env = getenv("CF_ANOMALY");
    ag__anomaly = env && *env && strcmp(env, "0") != 0;
}

bool cf_set_anomaly(bool on)
{
    bool prev = ag__anomaly;
    ag__anomaly = on;
    return prev;
}

bool cf_anomaly_enabled(void) { return ag__anomaly; }

/* What t holds: bit 1 NaN, bit 2 infinity; *first receives the row-major
 * position of the first non-finite element (-1: none). Float tensors only;
 * others hold neither. */
enum { HAS_NAN = 1, HAS_INF = 2 };
static int scan(const cf_tensor *t, int64_t *first)
{
    *first = -1;
    if (!t || t->dtype != CF_F32)
        return 0;
    int64_t n = cf_numel(t), idx[CF_MAX_DIMS] = {0};
    int found = 0;
    const float *base = t->data;
    for (int64_t k = 0; k < n; k++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++)
            off += idx[d] * t->stride[d];
        float v = base[off];
        if (!isfinite(v)) {
            found |= isnan(v) ? HAS_NAN : HAS_INF;
            if (*first < 0)
                *first = k;
            if (found == (HAS_NAN | HAS_INF))
                break;
        }
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d])
                break;
            idx[d] = 0;
        }
    }
    return found;
}

static const char *what(int found) { return found & HAS_NAN ? "NaN" : "infinity"; }

bool ag__anomaly_forward(const cf_tensor *out, const cf_op *op, int nsrc, cf_tensor *const *src)
{
    int64_t at, unused;
    int found = scan(out, &at);
    if (!found)
        return true;
    /* Inputs as "[2, 3] holding NaN, [3]". */
    char ins[4 * CF_SHAPE_BUF] = "", b[CF_SHAPE_BUF];
    int from = 0;
    size_t len = 0;
    for (int i = 0; i < nsrc && len < sizeof ins; i++) {
        int f = scan(src[i], &unused);
        from |= f;
        len += (size_t)snprintf(ins + len, sizeof ins - len, "%s%s%s%s", i ? ", " : "",
                                cf_shape_str(src[i], b, sizeof b), f ? " holding " : "",
                                f ? what(f) : "");
    }
    if (!(found & HAS_NAN)) {
        bool meant = from & HAS_INF;
        for (int i = 0; i < 4; i++)
            meant |= isinf(out->fparam[i]);
        if (meant)
            return true;
    }
    cf__error(CF_ERR_NUMERIC, "anomaly: op '%s' gave %s in its output %s (element %lld) from %s%s",
              op->name, what(found), cf_shape_str(out, b, sizeof b), (long long)at,
              nsrc ? "inputs " : "no inputs", ins);
    return false;
}

cf_status ag__anomaly_backward(const cf_tensor *node)
{
    for (int i = 0; i < node->nsrc; i++) {
        const cf_tensor *s = node->src[i];
        int64_t at;
        int found = s->grad ? scan(s->grad, &at) : 0;
        if (found) {
            char b[CF_SHAPE_BUF], c[CF_SHAPE_BUF];
            cf__error(CF_ERR_NUMERIC,
                      "anomaly: the backward of op '%s' (output %s) gave input %d %s a gradient "
                      "holding %s (element %lld)",
                      node->op->name, cf_shape_str(node, b, sizeof b), i,
                      cf_shape_str(s, c, sizeof c), what(found), (long long)at);
            return CF_ERR_NUMERIC;
        }
    }
    return CF_OK;
}

cf_status ag__anomaly_seed(const cf_tensor *dy)
{
    int64_t at;
    int found = scan(dy, &at);
    if (!found)
        return CF_OK;
    cf__error(CF_ERR_NUMERIC, "anomaly: cf_backward: the output gradient holds %s (element %lld)",
              what(found), (long long)at);
    return CF_ERR_NUMERIC;
}
