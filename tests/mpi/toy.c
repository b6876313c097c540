#include "tests/mpi/toy.h"

#include <stdlib.h>
#include <string.h>

cf_transformer *toy_model(uint64_t seed, float dropout)
{
    cf_transformer_config c = cf_transformer_small(TOY_VOCAB, TOY_VOCAB);
    c.d_model = 32;
    c.heads = 4;
    c.enc_layers = c.dec_layers = 1;
    c.ff = 64;
    c.dropout = dropout;
    c.max_len = 16;
    c.pad_id = 0;
    c.bos_id = 1;
    c.eos_id = 2;
    cf_rng g;
    cf_rng_init(&g, seed);
    return cf_transformer_new(&c, &g);
}

static int32_t symbol(int64_t sample, int t)
{
    uint64_t x = (uint64_t)sample * 0x9E3779B97F4A7C15ull + (uint64_t)t * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 32;
    return 3 + (int32_t)(x % (TOY_VOCAB - 3));
}

cf_tensor *toy_loss(cf_transformer *m, const int64_t *idx, int64_t n)
{
    /* src: the symbols; tgt in: bos + symbols; labels: symbols + eos. */
    int32_t *src = malloc(sizeof *src * (size_t)(n * TOY_LEN));
    int32_t *tin = malloc(sizeof *tin * (size_t)(n * (TOY_LEN + 1)));
    int32_t *lab = malloc(sizeof *lab * (size_t)(n * (TOY_LEN + 1)));
    cf_tensor *loss = NULL;
    if (src && tin && lab) {
        for (int64_t b = 0; b < n; b++) {
            tin[b * (TOY_LEN + 1)] = 1;
            for (int t = 0; t < TOY_LEN; t++) {
                int32_t s = symbol(idx[b], t);
                src[b * TOY_LEN + t] = s;
                tin[b * (TOY_LEN + 1) + t + 1] = s;
                lab[b * (TOY_LEN + 1) + t] = s;
            }
            lab[b * (TOY_LEN + 1) + TOY_LEN] = 2;
        }
        cf_tensor *logits =
            cf_transformer_forward(m, cf_from_ints(src, CF_SHAPE(n, TOY_LEN)),
                                   cf_from_ints(tin, CF_SHAPE(n, TOY_LEN + 1)), NULL);
        loss = cf_cross_entropy(cf_reshape(logits, CF_SHAPE(-1, TOY_VOCAB)),
                                cf_from_ints(lab, CF_SHAPE(n * (TOY_LEN + 1))), NULL);
    }
    free(src);
    free(tin);
    free(lab);
    return loss;
}

typedef struct {
    uint64_t h;
    int64_t n;
    float *g;
    const float *in;
} visit;

static void hash_one(const char *name, cf_tensor *p, void *ud)
{
    (void)name;
    visit *v = ud;
    const unsigned char *b = p->data;
    for (size_t i = 0; i < sizeof(float) * (size_t)cf_numel(p); i++)
        v->h = (v->h ^ b[i]) * 0x100000001B3ull;
}

uint64_t toy_hash(cf_module *m)
{
    visit v = {.h = 0xCBF29CE484222325ull};
    cf_module_visit(m, hash_one, &v);
    return v.h;
}

static void count_one(const char *name, cf_tensor *p, void *ud)
{
    (void)name;
    ((visit *)ud)->n += cf_numel(p);
}

static void copy_out(const char *name, cf_tensor *p, void *ud)
{
    (void)name;
    visit *v = ud;
    int64_t k = cf_numel(p);
    if (p->grad)
        memcpy(v->g + v->n, p->grad->data, sizeof(float) * (size_t)k);
    else
        memset(v->g + v->n, 0, sizeof(float) * (size_t)k);
    v->n += k;
}

static void copy_in(const char *name, cf_tensor *p, void *ud)
{
    (void)name;
    visit *v = ud;
    int64_t k = cf_numel(p);
    memcpy(cf_grad_for(p)->data, v->in + v->n, sizeof(float) * (size_t)k);
    v->n += k;
}

float *toy_grads(cf_module *m, int64_t *n)
{
    visit v = {0};
    cf_module_visit(m, count_one, &v);
    v.g = malloc(sizeof(float) * (size_t)v.n);
    *n = v.n;
    v.n = 0;
    if (v.g)
        cf_module_visit(m, copy_out, &v);
    return v.g;
}

void toy_set_grads(cf_module *m, const float *g)
{
    visit v = {.in = g};
    cf_module_visit(m, copy_in, &v);
}

float *toy_fold(cf_transformer *m, const int64_t *idx, int64_t G, int N)
{
    cf_module *mod = cf_transformer_module(m);
    float *acc = NULL;
    for (int r = 0; r < N; r++) {
        int64_t lo = G * r / N, hi = G * (r + 1) / N;
        float w = (float)(hi - lo) / (float)G;
        cf_module_zero_grad(mod);
        if (hi > lo) {
            cf_tensor *loss = toy_loss(m, idx + lo, hi - lo);
            if (!loss || cf_backward(loss) != CF_OK) {
                free(acc);
                return NULL;
            }
        }
        int64_t n;
        float *g = toy_grads(mod, &n);
        if (!g) {
            free(acc);
            return NULL;
        }
        if (!acc) {
            acc = g;
            for (int64_t i = 0; i < n; i++)
                acc[i] = w * acc[i];
        } else {
            for (int64_t i = 0; i < n; i++)
                acc[i] += w * g[i];
            free(g);
        }
    }
    toy_set_grads(mod, acc);
    return acc;
}
