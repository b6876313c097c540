/* GRU and GRUCell with the equations and parameter names of torch.nn.GRU. */
#include "nn/internal.h"

/* x W^T + b, or without b. */
static cf_tensor *affine(cf_tensor *x, cf_tensor *w, cf_tensor *b) { return cf_affine(x, w, b); }

/* One step from the input projection gi = x W_ih^T + b_ih [B, 3H]. */
static cf_tensor *step(cf_tensor *gi, cf_tensor *h, cf_tensor *const *w)
{
    return cf_gru_gates(gi, affine(h, w[1], w[3]), h);
}

cf_gru_cell *cf_gru_cell_new(cf_module *parent, const char *name, int input, int hidden, bool bias,
                             cf_rng *g)
{
    if (input < 1 || hidden < 1) {
        cf__error(CF_ERR_ARG, "GRUCell \"%s\": sizes (input %d, hidden %d) must be positive",
                  name ? name : "", input, hidden);
        return NULL;
    }
    cf_gru_cell *m = nn__new(sizeof *m, "GRUCell", parent, name);
    if (!m)
        return NULL;
    m->input = input;
    m->hidden = hidden;
    cf_tensor *w[4];
    if (!nn__rnn_cell(&m->base, "", 3, input, hidden, bias, g, w)) {
        cf_module_free(&m->base);
        return NULL;
    }
    m->weight_ih = w[0], m->weight_hh = w[1], m->bias_ih = w[2], m->bias_hh = w[3];
    return m;
}

cf_tensor *cf_gru_cell_forward(cf_gru_cell *m, cf_tensor *x, cf_tensor *h)
{
    if (!cf__nonnull("GRUCell", m, "module") || !cf__check("GRUCell", 1, &x) ||
        !nn__rnn_input("GRUCell", m->base.name, x, 2, m->input))
        return NULL;
    if (!nn__rnn_state("GRUCell", m->base.name, "state", h, 0, x->shape[0], m->hidden))
        return NULL;
    if (!h)
        h = cf_zeros(CF_SHAPE(x->shape[0], m->hidden));
    cf_tensor *w[4] = {m->weight_ih, m->weight_hh, m->bias_ih, m->bias_hh};
    return step(affine(x, w[0], w[2]), h, w);
}

cf_gru *cf_gru_new(cf_module *parent, const char *name, int input, int hidden, int layers,
                   bool bidirectional, float dropout, bool bias, cf_rng *g)
{
    int dirs = bidirectional ? 2 : 1;
    if (!nn__rnn_check("GRU", name, input, hidden, layers, dirs, dropout, bias))
        return NULL;
    cf_gru *m = nn__new(sizeof *m, "GRU", parent, name);
    if (!m)
        return NULL;
    m->input = input;
    m->hidden = hidden;
    m->layers = layers;
    m->bidirectional = bidirectional;
    m->dropout = dropout;
    cf_rng_init(&m->rng, nn__seed(g));
    m->base.rng = &m->rng;
    if (!nn__rnn_cells(&m->base, 3, input, hidden, layers, dirs, bias, g, m->w)) {
        cf_module_free(&m->base);
        return NULL;
    }
    return m;
}

/* One direction of one layer over x [B, T, in]: outputs [B, T, H]. With a
 * packing p, a row's steps past its length leave its state alone and
 * output zeros, so the forward direction stops at the last real token and
 * the reverse one starts there, as over a pack_padded_sequence. */
static cf_tensor *run(cf_tensor *x, cf_tensor *h, cf_tensor *const *w, bool reverse,
                      const nn__packing *p, cf_tensor **h_last)
{
    int64_t T = x->shape[1];
    cf_tensor *gi = affine(x, w[0], w[2]); /* [B, T, 3H], one matmul for all steps */
    cf_tensor **outs = cf__arena_alloc("GRU", sizeof(cf_tensor *) * (T > 0 ? T : 1));
    if (!gi || !outs)
        return NULL;
    for (int64_t s = 0; s < T; s++) {
        int64_t t = reverse ? T - 1 - s : s;
        cf_tensor *h_new = step(cf_squeeze(cf_slice(gi, 1, t, t + 1, 1), 1), h, w);
        if (p && t >= p->shortest) {
            h = cf_where(cf_slice(p->real, 1, t, t + 1, 1), h_new, h);
            outs[t] = cf_masked_fill(h_new, cf_slice(p->pad, 1, t, t + 1, 1), 0);
        } else {
            outs[t] = h = h_new;
        }
    }
    *h_last = h;
    return cf_stack((int)T, outs, 1);
}

static cf_tensor *forward(cf_gru *m, cf_tensor *x, cf_tensor *h0, const nn__packing *p,
                          cf_tensor **h_n)
{
    int dirs = m->bidirectional ? 2 : 1;
    int64_t B = x->shape[0], H = m->hidden;
    if (!nn__rnn_state("GRU", m->base.name, "h0", h0, m->layers * dirs, B, H))
        return NULL;
    cf_tensor *finals[CF_MODULE_MAX_PARAMS / 2];
    for (int l = 0; l < m->layers; l++) {
        cf_tensor *outs[2];
        for (int d = 0; d < dirs; d++) {
            int k = l * dirs + d;
            cf_tensor *h =
                h0 ? cf_squeeze(cf_slice(h0, 0, k, k + 1, 1), 0) : cf_zeros(CF_SHAPE(B, H));
            outs[d] = run(x, h, m->w[k], d == 1, p, &finals[k]);
        }
        x = dirs == 2 ? cf_cat(2, outs, 2) : outs[0];
        if (l + 1 < m->layers)
            x = cf_dropout(x, m->dropout, m->base.training, &m->rng);
        if (!x)
            return NULL;
    }
    if (h_n)
        *h_n = cf_stack(m->layers * dirs, finals, 0);
    return x;
}

cf_tensor *cf_gru_forward(cf_gru *m, cf_tensor *x, cf_tensor *h0, cf_tensor **h_n)
{
    if (!cf__nonnull("GRU", m, "module") || !cf__check("GRU", 1, &x) ||
        !nn__rnn_input("GRU", m->base.name, x, 3, m->input))
        return NULL;
    return forward(m, x, h0, NULL, h_n);
}

cf_tensor *cf_gru_forward_packed(cf_gru *m, cf_tensor *x, cf_tensor *lengths, cf_tensor *h0,
                                 cf_tensor **h_n)
{
    cf_tensor *in[2] = {x, lengths};
    if (!cf__nonnull("GRU", m, "module") || !cf__check("GRU", 2, in) ||
        !nn__rnn_input("GRU", m->base.name, x, 3, m->input))
        return NULL;
    nn__packing p;
    if (!nn__pack("GRU", m->base.name, x, lengths, &p))
        return NULL;
    return forward(m, x, h0, &p, h_n);
}
