/* A GRU encoder-decoder with additive attention (Bahdanau et al. 2015),
 * written with the public API only; an LSTM and multiplicative (Luong)
 * scores as knobs.
 *
 * B = batch, S = source length, T = target steps, E = embedding size,
 * H = recurrent hidden size (each encoder direction), Hd = decoder state
 * size (H, or 2H with dot scores), V = target vocabulary. */
#include "cformer/zoo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cf_seq2seq {
    cf_module base;
    cf_seq2seq_config cfg;
    int dec_hidden; /* Hd */
    cf_embedding_mod *src_embed, *tgt_embed;
    cf_gru *enc_gru; /* one of the two encoders */
    cf_lstm *enc_lstm;
    cf_linear *bridge;
    cf_additive_attention *additive; /* one of the two attentions */
    cf_luong_attention *luong;
    cf_gru_cell *dec_gru; /* one of the two decoder cells */
    cf_lstm_cell *dec_lstm;
    cf_linear *out;
    cf_dropout_mod *dropout;
};

static const char *const cell_names[] = {"gru", "lstm"};
static const char *const score_names[] = {"additive", "dot", "general"};

static void seq2seq_settings(const cf_module *base, cf_setting_fn fn, void *ud)
{
    const cf_seq2seq_config *c = &((const cf_seq2seq *)base)->cfg;
    fn(ud, "cell", cell_names[c->cell], "gru");
    fn(ud, "attention", score_names[c->score], "additive");
}

cf_module *cf_seq2seq_module(cf_seq2seq *m) { return m ? &m->base : NULL; }

/* Names the first invalid field of c in *bad (a buffer of n bytes). */
static bool config_ok(const cf_seq2seq_config *c, char *bad, size_t n)
{
    const struct {
        const char *name;
        int value, lo, hi; /* valid: lo <= value < hi */
    } fields[] = {
        {"src_vocab", c->src_vocab, 1, INT32_MAX},
        {"tgt_vocab", c->tgt_vocab, 1, INT32_MAX},
        {"emb", c->emb, 1, INT32_MAX},
        {"hidden", c->hidden, 1, INT32_MAX},
        {"attn", c->attn, 1, INT32_MAX},
        {"enc_layers", c->enc_layers, 1, INT32_MAX},
        /* pad_id is a token of both vocabularies. */
        {"pad_id", c->pad_id, 0, c->src_vocab < c->tgt_vocab ? c->src_vocab : c->tgt_vocab},
        {"bos_id", c->bos_id, 0, c->tgt_vocab},
        {"eos_id", c->eos_id, 0, c->tgt_vocab},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (fields[i].value < fields[i].lo || fields[i].value >= fields[i].hi) {
            snprintf(bad, n, "%s %d", fields[i].name, fields[i].value);
            return false;
        }
    }
    if (!(c->dropout >= 0 && c->dropout <= 1)) {
        snprintf(bad, n, "dropout %g outside [0, 1]", c->dropout);
        return false;
    }
    if ((unsigned)c->cell > CF_CELL_LSTM || (unsigned)c->score > CF_SCORE_GENERAL) {
        snprintf(bad, n, "%s %d", (unsigned)c->cell > CF_CELL_LSTM ? "cell" : "score",
                 (unsigned)c->cell > CF_CELL_LSTM ? (int)c->cell : (int)c->score);
        return false;
    }
    return true;
}

cf_seq2seq *cf_seq2seq_new(const cf_seq2seq_config *cfg, cf_rng *g)
{
    const cf_seq2seq_config *c = cfg;
    char bad[64] = "config (NULL)";
    if (!c || !config_ok(c, bad, sizeof bad)) {
        cf_error_set(CF_ERR_ARG, "cf_seq2seq_new: invalid %s", bad);
        return NULL;
    }
    cf_seq2seq *m = cf_calloc(1, sizeof *m);
    if (!m || !cf_module_init(&m->base, "Seq2Seq", NULL, "")) {
        cf_free(m);
        cf_error_set(CF_ERR_NOMEM, "cf_seq2seq_new: out of memory");
        return NULL;
    }
    m->cfg = *c;
    m->base.settings = seq2seq_settings;
    bool lstm = c->cell == CF_CELL_LSTM;
    int H = c->hidden, E = c->emb, Hd = c->score == CF_SCORE_DOT ? 2 * H : H;
    m->dec_hidden = Hd;
    cf_module *enc = cf_module_new("Encoder", &m->base, "encoder");
    cf_module *dec = cf_module_new("Decoder", &m->base, "decoder");
    /* Creation order is the reference's, so the names come out in its
     * state_dict order. */
    if (enc && dec) {
        m->src_embed = cf_embedding_new(enc, "embedding", c->src_vocab, E, c->pad_id, g);
        if (lstm)
            m->enc_lstm =
                cf_lstm_new(enc, "rnn", E, H, c->enc_layers, true, true, c->dropout, true, g);
        else
            m->enc_gru = cf_gru_new(enc, "rnn", E, H, c->enc_layers, true, c->dropout, true, g);
        m->bridge = cf_linear_new(&m->base, "bridge", 2 * H, Hd, true, g);
        m->tgt_embed = cf_embedding_new(dec, "embedding", c->tgt_vocab, E, c->pad_id, g);
        if (c->score == CF_SCORE_ADDITIVE)
            m->additive = cf_additive_attention_new(dec, "attention", Hd, 2 * H, c->attn, g);
        else
            m->luong = cf_luong_attention_new(
                dec, "attention", c->score == CF_SCORE_DOT ? CF_LUONG_DOT : CF_LUONG_GENERAL, Hd,
                2 * H, g);
        if (lstm)
            m->dec_lstm = cf_lstm_cell_new(dec, "rnn", E + 2 * H, Hd, true, g);
        else
            m->dec_gru = cf_gru_cell_new(dec, "rnn", E + 2 * H, Hd, true, g);
        m->out = cf_linear_new(dec, "out", Hd + 2 * H + E, c->tgt_vocab, true, g);
        m->dropout = cf_dropout_new(&m->base, "dropout", c->dropout, g ? g->seed + 3 : 3);
    }
    if (!m->src_embed || !(m->enc_gru || m->enc_lstm) || !m->bridge || !m->tgt_embed ||
        !(m->additive || m->luong) || !(m->dec_gru || m->dec_lstm) || !m->out || !m->dropout) {
        cf_module_free(&m->base);
        return NULL;
    }
    return m;
}

/* The encoder's view of a source batch. */
typedef struct {
    cf_tensor *keys;      /* [B, S, 2H] */
    cf_tensor *proj_keys; /* [B, S, A] */
    cf_tensor *mask;      /* bool [B, S], true at padding */
    cf_tensor *state;     /* initial decoder state [B, Hd] */
    cf_tensor *cell;      /* LSTM: initial decoder cell [B, Hd] (zeros); GRU: NULL */
} encoded;

/* Checks that t holds int32 tokens [B, L] with B >= 1 and L >= min_len;
 * fn and what name the caller and the argument in the error. */
static bool check_tokens(const char *fn, const char *what, const cf_tensor *t, int64_t min_len)
{
    char shape[128];
    if (!t) {
        cf_error_set(CF_ERR_ARG, "%s: %s is NULL", fn, what);
        return false;
    }
    if (t->dtype != CF_I32) {
        cf_error_set(CF_ERR_DTYPE, "%s: %s of dtype %s %s, expected int32 tokens", fn, what,
                     cf_dtype_name(t->dtype), cf_shape_str(t, shape, sizeof shape));
        return false;
    }
    if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < min_len) {
        cf_error_set(CF_ERR_SHAPE, "%s: %s of shape %s, expected [B, L] with B >= 1, L >= %lld", fn,
                     what, cf_shape_str(t, shape, sizeof shape), (long long)min_len);
        return false;
    }
    return true;
}

/* Records why the arguments of a decoding call fn are invalid, if they are. */
static bool decode_args_ok(const char *fn, const cf_seq2seq *m, const cf_tensor *src, int beam,
                           int max_len, const int32_t *out)
{
    if (!m || !out) {
        cf_error_set(CF_ERR_ARG, "%s: %s is NULL", fn, !m ? "model" : "out");
        return false;
    }
    if (beam < 1 || max_len < 1) {
        cf_error_set(CF_ERR_ARG, "%s: %s %d must be at least 1", fn, beam < 1 ? "beam" : "max_len",
                     beam < 1 ? beam : max_len);
        return false;
    }
    return check_tokens(fn, "source", src, 1);
}

/* bool [B, S], true at padding. */
static cf_tensor *pad_mask(const cf_seq2seq *m, cf_tensor *src)
{
    return cf_eq(src, cf_from_ints(&(int32_t){m->cfg.pad_id}, 0, NULL));
}

/* Each row's length up to its last token that is not padding, int32 [B],
 * from the padding mask [B, S]; NULL with CF_ERR_ARG naming fn for a row of
 * padding only, which would attend nowhere. */
static cf_tensor *lengths_of(const char *fn, const cf_seq2seq *m, cf_tensor *mask)
{
    int64_t B = mask->shape[0], S = mask->shape[1];
    cf_tensor *len = cf_empty(CF_I32, CF_SHAPE(B));
    if (!len)
        return NULL;
    const uint8_t *pad = mask->data;
    for (int64_t b = 0; b < B; b++) {
        int32_t n = (int32_t)S;
        while (n > 0 && pad[b * S + n - 1])
            n--;
        if (n == 0) {
            cf_error_set(CF_ERR_ARG, "%s: source row %lld holds only padding (pad_id %d)", fn,
                         (long long)b, m->cfg.pad_id);
            return NULL;
        }
        ((int32_t *)len->data)[b] = n;
    }
    return len;
}

/* The attention's view of the keys [B, S, 2H], once per source. */
static cf_tensor *attention_keys(cf_seq2seq *m, cf_tensor *keys)
{
    return m->additive ? cf_additive_attention_keys(m->additive, keys)
                       : cf_luong_attention_keys(m->luong, keys);
}

/* The context [B, 2H] for the state s [B, Hd]. */
static cf_tensor *attend(cf_seq2seq *m, const encoded *e, cf_tensor *s, cf_tensor **weights)
{
    return m->additive
               ? cf_additive_attention_forward(m->additive, s, e->keys, e->proj_keys, e->mask,
                                               weights)
               : cf_luong_attention_forward(m->luong, s, e->keys, e->proj_keys, e->mask, weights);
}

/* Runs the encoder over src, which the caller has checked. The RNN skips
 * each row's trailing padding, as over a pack_padded_sequence, so a row's
 * encoding does not depend on how far its batch pads it. */
static bool encode(const char *fn, cf_seq2seq *m, cf_tensor *src, encoded *e)
{
    cf_tensor *h_n = NULL, *c_n = NULL;
    e->mask = pad_mask(m, src);
    if (!e->mask)
        return false;
    cf_tensor *x = cf_dropout_forward(m->dropout, cf_embedding_forward(m->src_embed, src));
    cf_tensor *lengths = lengths_of(fn, m, e->mask);
    if (!lengths)
        return false;
    e->keys = m->enc_lstm ? cf_lstm_forward_packed(m->enc_lstm, x, lengths, NULL, NULL, &h_n, &c_n)
                          : cf_gru_forward_packed(m->enc_gru, x, lengths, NULL, &h_n);
    /* The last layer's states after each row's last real token: forward,
     * then backward (which ends at position 0). */
    int64_t L = m->cfg.enc_layers;
    cf_tensor *last = cf_slice(h_n, 0, 2 * L - 2, 2 * L, 1);         /* [2, B, H] */
    cf_tensor *both = cf_reshape(cf_permute(last, (int[]){1, 0, 2}), /* [B, 2H] */
                                 CF_SHAPE(src->shape[0], 2 * m->cfg.hidden));
    e->state = cf_tanh(cf_linear_forward(m->bridge, both));
    e->cell = m->dec_lstm ? cf_zeros(CF_SHAPE(src->shape[0], m->dec_hidden)) : NULL;
    e->proj_keys = attention_keys(m, e->keys);
    return e->state && e->proj_keys && (!m->dec_lstm || e->cell);
}

/* One decoder step from the previous tokens y [B] and state s [B, Hd]
 * (and LSTM cell c, else NULL): returns logits [B, V] and the new state
 * (and cell). */
static cf_tensor *step(cf_seq2seq *m, const encoded *e, cf_tensor *y, cf_tensor *s, cf_tensor *c,
                       cf_tensor **s_new, cf_tensor **c_new, cf_tensor **weights)
{
    cf_tensor *emb = cf_dropout_forward(m->dropout, cf_embedding_forward(m->tgt_embed, y));
    cf_tensor *ctx = attend(m, e, s, weights); /* [B, 2H] */
    cf_tensor *in = cf_cat(2, (cf_tensor *[]){emb, ctx}, 1);
    *s_new = m->dec_lstm ? cf_lstm_cell_forward(m->dec_lstm, in, s, c, c_new)
                         : cf_gru_cell_forward(m->dec_gru, in, s);
    return cf_linear_forward(m->out, cf_cat(3, (cf_tensor *[]){*s_new, ctx, emb}, 1));
}

cf_tensor *cf_seq2seq_forward(cf_seq2seq *m, cf_tensor *src, cf_tensor *tgt, float teacher_forcing,
                              cf_rng *g, cf_tensor **weights)
{
    static const char fn[] = "cf_seq2seq_forward";
    char a[128], b[128];
    if (!m) {
        cf_error_set(CF_ERR_ARG, "%s: model is NULL", fn);
        return NULL;
    }
    if (!check_tokens(fn, "source", src, 1) || !check_tokens(fn, "target", tgt, 2))
        return NULL;
    if (tgt->shape[0] != src->shape[0]) {
        cf_error_set(CF_ERR_SHAPE, "%s: source %s and target %s differ in batch size", fn,
                     cf_shape_str(src, a, sizeof a), cf_shape_str(tgt, b, sizeof b));
        return NULL;
    }
    if (!(teacher_forcing >= 0 && teacher_forcing <= 1)) {
        cf_error_set(CF_ERR_ARG, "%s: teacher_forcing %g outside [0, 1]", fn, teacher_forcing);
        return NULL;
    }
    encoded e;
    if (!encode(fn, m, src, &e))
        return NULL;
    int64_t T = tgt->shape[1] - 1;
    cf_tensor **logits = cf_arena_alloc(sizeof(cf_tensor *) * T);
    cf_tensor **ws = cf_arena_alloc(sizeof(cf_tensor *) * T);
    if (!logits || !ws)
        return NULL;
    cf_tensor *s = e.state, *c = e.cell, *y = NULL;
    for (int64_t t = 0; t < T; t++) {
        bool teach =
            t == 0 || teacher_forcing >= 1 ||
            (teacher_forcing > 0 && cf_item(cf_uniform(g, 0, 1, 0, NULL)) < teacher_forcing);
        if (teach || !y)
            y = cf_squeeze(cf_slice(tgt, 1, t, t + 1, 1), 1);
        logits[t] = step(m, &e, y, s, c, &s, &c, weights ? &ws[t] : NULL);
        if (!logits[t])
            return NULL;
        if (teacher_forcing < 1)
            CF_NO_GRAD { y = cf_argmax(logits[t], -1, false); }
    }
    if (weights)
        *weights = cf_stack((int)T, ws, 1);
    return cf_stack((int)T, logits, 1);
}

static cf_status seq2seq_greedy(cf_seq2seq *m, cf_tensor *src, int max_len, int32_t *out,
                                cf_tensor **weights)
{
    static const char fn[] = "cf_seq2seq_greedy";
    if (!decode_args_ok(fn, m, src, 1, max_len, out))
        return cf_error();
    bool was_training = m->base.training, grad = cf_set_grad_enabled(false);
    cf_module_train(&m->base, false);
    int64_t B = src->shape[0], S = src->shape[1];
    cf_tensor **ws = weights ? cf_arena_alloc(sizeof(cf_tensor *) * max_len) : NULL;
    bool *done = cf_arena_alloc(sizeof *done * B);
    int32_t *prev = cf_arena_alloc(sizeof *prev * B);
    encoded e;
    bool ok = (!weights || ws) && done && prev && encode(fn, m, src, &e);
    for (int64_t b = 0; ok && b < B; b++) {
        done[b] = false;
        prev[b] = m->cfg.bos_id;
    }
    cf_tensor *s = ok ? e.state : NULL, *c = ok ? e.cell : NULL;
    int64_t live = B;
    int t = 0;
    for (; ok && t < max_len && live > 0; t++) {
        cf_tensor *w = NULL;
        cf_tensor *best = cf_argmax(
            step(m, &e, cf_from_ints(prev, CF_SHAPE(B)), s, c, &s, &c, ws ? &w : NULL), -1, false);
        cf_tensor *alive = weights ? cf_empty(CF_F32, CF_SHAPE(B, 1)) : NULL;
        if (!best || (weights && !alive)) {
            ok = false;
            break;
        }
        for (int64_t b = 0; b < B; b++) {
            if (alive)
                ((float *)alive->data)[b] = done[b] ? 0.0f : 1.0f;
            int32_t tok = done[b] ? m->cfg.pad_id : ((int32_t *)best->data)[b];
            out[b * max_len + t] = tok;
            if (!done[b] && tok == m->cfg.eos_id) {
                done[b] = true;
                live--;
            }
            prev[b] = tok;
        }
        /* A finished sequence attends nowhere. */
        if (ws && !(ws[t] = cf_mul(w, alive)))
            ok = false;
    }
    /* Every sequence has finished: the rest is padding. */
    for (int tt = t; ok && tt < max_len; tt++) {
        for (int64_t b = 0; b < B; b++)
            out[b * max_len + tt] = m->cfg.pad_id;
        if (ws && !(ws[tt] = cf_zeros(CF_SHAPE(B, S))))
            ok = false;
    }
    if (ok && weights)
        ok = (*weights = cf_stack(max_len, ws, 1)) != NULL;
    cf_module_train(&m->base, was_training);
    cf_set_grad_enabled(grad);
    return ok ? CF_OK : cf_error();
}

/* Beam search state for one source sequence. */
typedef struct {
    cf_seq2seq *m;
    encoded e;        /* for one source, expanded to the live hypotheses */
    encoded one;      /* for one source, batch 1 */
    cf_tensor *s, *c; /* decoder state (and LSTM cell) of the live hypotheses [n, Hd] */
    cf_tensor *next, *next_c;
} beam_ctx;

static encoded expand(const encoded *one, int n)
{
    encoded e = *one;
    e.keys = cf_expand(one->keys, CF_SHAPE(n, one->keys->shape[1], one->keys->shape[2]));
    e.proj_keys =
        cf_expand(one->proj_keys, CF_SHAPE(n, one->proj_keys->shape[1], one->proj_keys->shape[2]));
    e.mask = cf_expand(one->mask, CF_SHAPE(n, one->mask->shape[1]));
    return e;
}

static cf_status beam_step(void *ud, const int32_t *tokens, int n, float *logp)
{
    beam_ctx *c = ud;
    c->e = expand(&c->one, n);
    cf_tensor *logits = step(c->m, &c->e, cf_from_ints(tokens, CF_SHAPE(n)), c->s, c->c, &c->next,
                             &c->next_c, NULL);
    cf_tensor *lp = cf_log_softmax(logits, -1);
    if (!lp)
        return cf_error();
    cf_copy_to(lp, logp);
    return CF_OK;
}

static cf_status beam_reorder(void *ud, const int *from, int n)
{
    beam_ctx *c = ud;
    cf_tensor *idx = cf_empty(CF_I32, CF_SHAPE(n));
    if (!idx)
        return cf_error();
    for (int i = 0; i < n; i++)
        ((int32_t *)idx->data)[i] = from[i];
    c->s = cf_index_select(c->next, 0, idx);
    c->c = c->next_c ? cf_index_select(c->next_c, 0, idx) : NULL;
    return c->s && (!c->next_c || c->c) ? CF_OK : cf_error();
}

static cf_status seq2seq_beam(cf_seq2seq *m, cf_tensor *src, int beam, float alpha, int max_len,
                              int32_t *out)
{
    static const char fn[] = "cf_seq2seq_beam";
    if (!decode_args_ok(fn, m, src, beam, max_len, out))
        return cf_error();
    if (!isfinite(alpha)) {
        cf_error_set(CF_ERR_ARG, "%s: length penalty alpha %g is not finite", fn, alpha);
        return cf_error();
    }
    /* Rows are encoded one at a time: check them all here, so an error names
     * the row in src. */
    cf_tensor *mask = pad_mask(m, src);
    if (!mask || !lengths_of(fn, m, mask))
        return cf_error();
    bool was_training = m->base.training, grad = cf_set_grad_enabled(false);
    cf_module_train(&m->base, false);
    cf_status st = CF_OK;
    for (int64_t b = 0; b < src->shape[0] && st == CF_OK; b++) {
        beam_ctx c = {.m = m};
        if (!encode(fn, m, cf_slice(src, 0, b, b + 1, 1), &c.one)) {
            st = cf_error();
            break;
        }
        c.s = c.one.state;
        c.c = c.one.cell;
        cf_decoder d = {.step = beam_step,
                        .reorder = beam_reorder,
                        .ud = &c,
                        .vocab = m->cfg.tgt_vocab,
                        .bos = m->cfg.bos_id,
                        .eos = m->cfg.eos_id,
                        .pad = m->cfg.pad_id};
        st = cf_beam_search(&d, beam, alpha, max_len, out + b * max_len);
    }
    cf_module_train(&m->base, was_training);
    cf_set_grad_enabled(grad);
    return st;
}

cf_status cf_seq2seq_greedy(cf_seq2seq *m, cf_tensor *src, int max_len, int32_t *out,
                            cf_tensor **weights)
{
    if (!src) {
        cf_error_set(CF_ERR_ARG,
                     "cf_seq2seq_greedy: src is NULL"); /* or the error that made it NULL */
        return cf_error();
    }
    cf_error_frame saved;
    cf_error_enter(&saved);
    return cf_error_leave(&saved, seq2seq_greedy(m, src, max_len, out, weights));
}

cf_status cf_seq2seq_beam(cf_seq2seq *m, cf_tensor *src, int beam, float alpha, int max_len,
                          int32_t *out)
{
    if (!src) {
        cf_error_set(CF_ERR_ARG,
                     "cf_seq2seq_beam: src is NULL"); /* or the error that made it NULL */
        return cf_error();
    }
    cf_error_frame saved;
    cf_error_enter(&saved);
    return cf_error_leave(&saved, seq2seq_beam(m, src, beam, alpha, max_len, out));
}
