/* LSTM and LSTMCell with the equations and parameter names of
 * torch.nn.LSTM.
 *
 * B = batch, T = steps, H = hidden size; the gates i, f, g, o are the four
 * H-wide blocks of the [B, 4H] pre-activations, in that order. */
#include "nn/internal.h"

/* x W^T + b, or without b. */
static cf_tensor *affine(cf_tensor *x, cf_tensor *w, cf_tensor *b)
{
    cf_tensor *y = cf_matmul(x, cf_transpose(w, 0, 1));
    return b ? cf_add(y, b) : y;
}

/* One step from the input projection gi = x W_ih^T + b_ih [B, 4H]:
 *   c' = f * c + i * g,  h' = o * tanh(c'). */
static cf_tensor *step(cf_tensor *gi, cf_tensor *h, cf_tensor *c, cf_tensor *const *w, int64_t H,
                       cf_tensor **c_new)
{
    cf_tensor *gates = cf_add(gi, affine(h, w[1], w[3])); /* [B, 4H] */
    cf_tensor *i = cf_sigmoid(cf_slice(gates, -1, 0, H, 1));
    cf_tensor *f = cf_sigmoid(cf_slice(gates, -1, H, 2 * H, 1));
    cf_tensor *g = cf_tanh(cf_slice(gates, -1, 2 * H, 3 * H, 1));
    cf_tensor *o = cf_sigmoid(cf_slice(gates, -1, 3 * H, 4 * H, 1));
    *c_new = cf_add(cf_mul(f, c), cf_mul(i, g));
    return cf_mul(o, cf_tanh(*c_new));
}

cf_lstm_cell *cf_lstm_cell_new(cf_module *parent, const char *name, int input, int hidden,
                               bool bias, cf_rng *g)
{
    if (input < 1 || hidden < 1) {
        cf__error(CF_ERR_ARG, "LSTMCell \"%s\": sizes (input %d, hidden %d) must be positive",
                  name ? name : "", input, hidden);
        return NULL;
    }
    cf_lstm_cell *m = nn__new(sizeof *m, "LSTMCell", parent, name);
    if (!m)
        return NULL;
    m->input = input;
    m->hidden = hidden;
    cf_tensor *w[4];
    if (!nn__rnn_cell(&m->base, "", 4, input, hidden, bias, g, w)) {
        cf_module_free(&m->base);
        return NULL;
    }
    m->weight_ih = w[0], m->weight_hh = w[1], m->bias_ih = w[2], m->bias_hh = w[3];
    return m;
}

cf_tensor *cf_lstm_cell_forward(cf_lstm_cell *m, cf_tensor *x, cf_tensor *h, cf_tensor *c,
                                cf_tensor **c_new)
{
    if (!cf__nonnull("LSTMCell", m, "module") || !cf__check("LSTMCell", 1, &x) ||
        !nn__rnn_input("LSTMCell", m->base.name, x, 2, m->input))
        return NULL;
    int64_t B = x->shape[0], H = m->hidden;
    if (!nn__rnn_state("LSTMCell", m->base.name, "h", h, 0, B, H) ||
        !nn__rnn_state("LSTMCell", m->base.name, "c", c, 0, B, H))
        return NULL;
    if (!h)
        h = cf_zeros(CF_SHAPE(B, H));
    if (!c)
        c = cf_zeros(CF_SHAPE(B, H));
    cf_tensor *w[4] = {m->weight_ih, m->weight_hh, m->bias_ih, m->bias_hh};
    cf_tensor *cn = NULL;
    cf_tensor *hn = step(affine(x, w[0], w[2]), h, c, w, H, &cn);
    if (c_new)
        *c_new = cn;
    return hn;
}

cf_lstm *cf_lstm_new(cf_module *parent, const char *name, int input, int hidden, int layers,
                     bool bidirectional, bool batch_first, float dropout, bool bias, cf_rng *g)
{
    int dirs = bidirectional ? 2 : 1;
    if (!nn__rnn_check("LSTM", name, input, hidden, layers, dirs, dropout, bias))
        return NULL;
    cf_lstm *m = nn__new(sizeof *m, "LSTM", parent, name);
    if (!m)
        return NULL;
    m->input = input;
    m->hidden = hidden;
    m->layers = layers;
    m->bidirectional = bidirectional;
    m->batch_first = batch_first;
    m->dropout = dropout;
    cf_rng_init(&m->rng, nn__seed(g));
    m->base.rng = &m->rng;
    if (!nn__rnn_cells(&m->base, 4, input, hidden, layers, dirs, bias, g, m->w)) {
        cf_module_free(&m->base);
        return NULL;
    }
    return m;
}

/* One direction of one layer over x [B, T, in]: outputs [B, T, H]; the
 * final states go to *h_last and *c_last. With a packing p, a row's steps
 * past its length leave both states alone and output zeros (see
 * nn/gru.c). */
static cf_tensor *run(cf_tensor *x, cf_tensor *h, cf_tensor *c, cf_tensor *const *w, int64_t H,
                      bool reverse, const nn__packing *p, cf_tensor **h_last, cf_tensor **c_last)
{
    int64_t T = x->shape[1];
    cf_tensor *gi = affine(x, w[0], w[2]); /* [B, T, 4H], one matmul for all steps */
    cf_tensor **outs = cf__arena_alloc("LSTM", sizeof(cf_tensor *) * (T > 0 ? T : 1));
    if (!gi || !outs)
        return NULL;
    for (int64_t s = 0; s < T; s++) {
        int64_t t = reverse ? T - 1 - s : s;
        cf_tensor *c_new = NULL;
        cf_tensor *h_new = step(cf_squeeze(cf_slice(gi, 1, t, t + 1, 1), 1), h, c, w, H, &c_new);
        if (p && t >= p->shortest) {
            cf_tensor *real = cf_slice(p->real, 1, t, t + 1, 1); /* [B, 1] */
            h = cf_where(real, h_new, h);
            c = cf_where(real, c_new, c);
            outs[t] = cf_masked_fill(h_new, cf_slice(p->pad, 1, t, t + 1, 1), 0);
        } else {
            outs[t] = h = h_new;
            c = c_new;
        }
    }
    *h_last = h;
    *c_last = c;
    return cf_stack((int)T, outs, 1);
}

static cf_tensor *forward(cf_lstm *m, cf_tensor *x, cf_tensor *lengths, cf_tensor *h0,
                          cf_tensor *c0, cf_tensor **h_n, cf_tensor **c_n)
{
    cf_tensor *in[2] = {x, lengths};
    if (!cf__nonnull("LSTM", m, "module") || !cf__check("LSTM", lengths ? 2 : 1, in) ||
        !nn__rnn_input("LSTM", m->base.name, x, 3, m->input))
        return NULL;
    if (!m->batch_first)
        x = cf_transpose(x, 0, 1); /* [T, B, in] -> [B, T, in] */
    int dirs = m->bidirectional ? 2 : 1;
    int64_t B = x->shape[0], H = m->hidden;
    if (!nn__rnn_state("LSTM", m->base.name, "h0", h0, m->layers * dirs, B, H) ||
        !nn__rnn_state("LSTM", m->base.name, "c0", c0, m->layers * dirs, B, H))
        return NULL;
    nn__packing p;
    if (lengths && !nn__pack("LSTM", m->base.name, x, lengths, &p))
        return NULL;
    cf_tensor *hs[CF_MODULE_MAX_PARAMS / 2], *cs[CF_MODULE_MAX_PARAMS / 2];
    for (int l = 0; l < m->layers; l++) {
        cf_tensor *outs[2];
        for (int d = 0; d < dirs; d++) {
            int k = l * dirs + d;
            cf_tensor *h =
                h0 ? cf_squeeze(cf_slice(h0, 0, k, k + 1, 1), 0) : cf_zeros(CF_SHAPE(B, H));
            cf_tensor *c =
                c0 ? cf_squeeze(cf_slice(c0, 0, k, k + 1, 1), 0) : cf_zeros(CF_SHAPE(B, H));
            outs[d] = run(x, h, c, m->w[k], H, d == 1, lengths ? &p : NULL, &hs[k], &cs[k]);
        }
        x = dirs == 2 ? cf_cat(2, outs, 2) : outs[0];
        if (l + 1 < m->layers)
            x = cf_dropout(x, m->dropout, m->base.training, &m->rng);
        if (!x)
            return NULL;
    }
    if (h_n)
        *h_n = cf_stack(m->layers * dirs, hs, 0);
    if (c_n)
        *c_n = cf_stack(m->layers * dirs, cs, 0);
    return m->batch_first ? x : cf_transpose(x, 0, 1);
}

cf_tensor *cf_lstm_forward(cf_lstm *m, cf_tensor *x, cf_tensor *h0, cf_tensor *c0, cf_tensor **h_n,
                           cf_tensor **c_n)
{
    return forward(m, x, NULL, h0, c0, h_n, c_n);
}

cf_tensor *cf_lstm_forward_packed(cf_lstm *m, cf_tensor *x, cf_tensor *lengths, cf_tensor *h0,
                                  cf_tensor *c0, cf_tensor **h_n, cf_tensor **c_n)
{
    if (!lengths) {
        cf__error(CF_ERR_ARG, "LSTM \"%s\": lengths is NULL", m ? m->base.name : "");
        return NULL;
    }
    return forward(m, x, lengths, h0, c0, h_n, c_n);
}
