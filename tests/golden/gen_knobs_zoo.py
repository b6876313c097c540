#!/usr/bin/python3
"""Writes knobs_zoo.safetensors, read by tests/test_knobs.c: the zoo's
models with their research knobs turned, written in plain PyTorch.

    cd tests/golden && /usr/bin/python3 gen_knobs_zoo.py

Transformers (d_model 32, 4 heads, 2 + 2 layers, ff 64, ReLU, dropout 0,
max_len 16, vocabularies 13 and 11, separate tables, pad 0, bos 1, eos 2),
layer by layer as cf_transformer computes them, under torch.nn.Transformer's
parameter names:

    tb    norm batch, no positions, post-norm: BatchNorm1d(32, eps 1e-5,
          momentum 0.1) over the token rows [B * n, 32]; in training the
          statistics are over the real tokens only (padding rows are taken
          out, normalised rows put back, padding rows zero)
    tr    norm rms (weight * x / sqrt(mean(x^2) + 1e-5)), learned positions
          (src_pos.weight, tgt_pos.weight [16, 32]), attention scores not
          divided by sqrt(d_k), pre-norm, no residual connections

With every knob at its default the same code is checked here against
torch.nn.Transformer (the script stops if they differ by more than 1e-5).

Seq2seq models (models.Seq2Seq, with gen_seq2seq.py's sizes and inputs):

    lstm      LSTM encoder (packed) and LSTMCell decoder, additive attention
    dot       GRU, dot-product scores s . k (decoder state 2H)
    general   LSTM, general scores s^T W_a k (W_a = key_proj.weight [H, 2H])

For a case NAME the file holds NAME.<parameter> (and buffers), NAME.logits
(teacher forcing, training mode), NAME.loss (cross entropy, pad ignored),
NAME.grad.<parameter>, NAME.greedy (eval mode, int32 [B, MAX_LEN]) and, for
the seq2seq cases, NAME.weights and NAME.greedy_weights; tb also holds
NAME.after.<buffer>, the running statistics after that one training
forward. Shared inputs: t.src, t.tgt, t.labels for the Transformers, s.src,
s.tgt for the seq2seq models. Parameters are float32; the references run
in float64 on them and are rounded once. The Transformers are trained for a
few hundred steps on reversing the source first so that greedy decoding is
varied and decided by clear margins (checked)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import models
from goldlib import save
from models import Seq2Seq

PAD, BOS, EOS = 0, 1, 2
MAX_LEN = 8
MARGIN = 1e-3

# ---- Transformer ----

D, HEADS, LAYERS, FF, TMAX = 32, 4, 2, 64, 16
SRC_V, TGT_V = 13, 11
B, S, T = 3, 7, 6


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Knobs:
    def __init__(self, norm="layer", pos="sinusoidal", pre_norm=False, unscaled=False,
                 residual=True):
        self.norm, self.pos, self.pre_norm = norm, pos, pre_norm
        self.unscaled, self.residual = unscaled, residual


def make_norm(k):
    if k.norm == "layer":
        return nn.LayerNorm(D, eps=1e-5)
    if k.norm == "batch":
        return nn.BatchNorm1d(D, eps=1e-5, momentum=0.1)
    if k.norm == "rms":
        return RMSNorm(D, 1e-5)
    return None


def apply_norm(k, mod, x, pad):
    """x [B, n, D]; pad bool [B, n] (True at padding) or None."""
    if mod is None:
        return x
    if k.norm != "batch":
        return mod(x)
    rows = x.reshape(-1, D)
    if mod.training and pad is not None and bool(pad.any()):
        real = ~pad.reshape(-1)
        y = torch.zeros_like(rows)
        y[real] = mod(rows[real])
        return y.reshape(x.shape)
    return mod(rows).reshape(x.shape)


class MHA(nn.Module):
    """nn.MultiheadAttention's parameters, scores scaled as asked."""

    def __init__(self):
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.empty(3 * D, D))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * D))
        self.out_proj = nn.Linear(D, D)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, q_in, kv_in, key_pad, causal, scale):
        w, b = self.in_proj_weight, self.in_proj_bias
        q = q_in @ w[:D].T + b[:D]
        k = kv_in @ w[D:2 * D].T + b[D:2 * D]
        v = kv_in @ w[2 * D:].T + b[2 * D:]

        def heads(x):
            return x.reshape(x.shape[0], x.shape[1], HEADS, D // HEADS).transpose(1, 2)

        q, k, v = heads(q), heads(k), heads(v)
        s = q @ k.transpose(-1, -2) * scale
        if key_pad is not None:
            s = s.masked_fill(key_pad[:, None, None, :], float("-inf"))
        if causal:
            L, Sk = s.shape[-2], s.shape[-1]
            s = s.masked_fill(torch.triu(torch.ones(L, Sk, dtype=torch.bool), 1), float("-inf"))
        a = torch.softmax(s, -1) @ v
        return self.out_proj(a.transpose(1, 2).reshape(q_in.shape[0], q_in.shape[1], D))


class Layer(nn.Module):
    def __init__(self, k, decoder):
        super().__init__()
        self.k, self.decoder = k, decoder
        self.self_attn = MHA()
        if decoder:
            self.multihead_attn = MHA()
        self.linear1 = nn.Linear(D, FF)
        self.linear2 = nn.Linear(FF, D)
        n = 3 if decoder else 2
        self.norms = [make_norm(k) for _ in range(n)]
        for i, m in enumerate(self.norms):
            if m is not None:
                self.add_module(f"norm{i + 1}", m)
        for lin in (self.linear1, self.linear2):
            nn.init.xavier_uniform_(lin.weight)

    def sub(self, i, x, f, pad):
        k = self.k
        h = apply_norm(k, self.norms[i], x, pad) if k.pre_norm else x
        y = f(h)
        x = x + y if k.residual else y
        return x if k.pre_norm else apply_norm(k, self.norms[i], x, pad)

    def forward(self, x, pad, memory=None, mem_pad=None):
        scale = 1.0 if self.k.unscaled else 1 / math.sqrt(D // HEADS)
        x = self.sub(0, x, lambda h: self.self_attn(h, h, pad, self.decoder, scale), pad)
        if self.decoder:
            x = self.sub(1, x, lambda h: self.multihead_attn(h, memory, mem_pad, False, scale),
                         pad)
        return self.sub(len(self.norms) - 1, x,
                        lambda h: self.linear2(F.relu(self.linear1(h))), pad)


class Part(nn.Module):
    def __init__(self, k, decoder):
        super().__init__()
        self.k = k
        self.layers = nn.ModuleList([Layer(k, decoder) for _ in range(LAYERS)])
        self.norm = make_norm(k)


class Transformer(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k
        self.src_embed = nn.Embedding(SRC_V, D, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(TGT_V, D, padding_idx=PAD)
        if k.pos == "learned":
            self.src_pos = nn.Embedding(TMAX, D)
            self.tgt_pos = nn.Embedding(TMAX, D)
        self.encoder = Part(k, False)
        self.decoder = Part(k, True)
        self.generator = nn.Linear(D, TGT_V)

    def embed(self, table, pos, tokens):
        x = table(tokens) * math.sqrt(D)
        n = tokens.shape[1]
        if self.k.pos == "sinusoidal":
            x = x + models.sinusoid(n, D).to(x.dtype)
        elif self.k.pos == "learned":
            x = x + pos.weight[:n]
        return x

    def encode(self, src):
        pad = src == PAD
        x = self.embed(self.src_embed, getattr(self, "src_pos", None), src)
        for l in self.encoder.layers:
            x = l(x, pad)
        return apply_norm(self.k, self.encoder.norm, x, pad)

    def decode(self, tgt, memory, src):
        pad = tgt == PAD
        x = self.embed(self.tgt_embed, getattr(self, "tgt_pos", None), tgt)
        for l in self.decoder.layers:
            x = l(x, pad, memory, src == PAD)
        return self.generator(apply_norm(self.k, self.decoder.norm, x, pad))

    def greedy(self, src):
        memory = self.encode(src)
        ys = torch.full((src.shape[0], 1), BOS, dtype=torch.long)
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        out, margin = [], math.inf
        for _ in range(MAX_LEN):
            logits = self.decode(ys, memory, src)[:, -1].clone()
            logits[:, PAD] = -math.inf
            top = logits.topk(2, -1).values
            gap = (top[:, 0] - top[:, 1])[~done]
            if gap.numel():
                margin = min(margin, gap.min().item())
            tok = torch.where(done, torch.full_like(done, PAD, dtype=torch.long),
                              logits.argmax(-1))
            out.append(tok)
            done |= tok == EOS
            ys = torch.cat([ys, tok[:, None]], 1)
        assert margin > MARGIN, f"greedy decided by {margin}"
        return torch.stack(out, 1)


def transformer_inputs():
    g = torch.Generator().manual_seed(7)
    src = torch.randint(3, TGT_V, (B, S), generator=g)
    for b, n in enumerate([S, 4, 1]):
        src[b, n:] = PAD
    full = torch.randint(3, TGT_V, (B, T + 1), generator=g)
    full[:, 0] = BOS
    for b, n in enumerate([T + 1, 5, 3]):
        full[b, n - 1] = EOS
        full[b, n:] = PAD
    return src, full[:, :-1].contiguous(), full[:, 1:].contiguous()


def check_against_torch():
    """The default knobs are models.Transformer (torch.nn.Transformer)."""
    torch.manual_seed(3)
    m = Transformer(Knobs()).double()
    ref = models.Transformer(SRC_V, TGT_V, D, HEADS, LAYERS, LAYERS, FF, pad=PAD,
                             max_len=TMAX).double()
    mine = dict(m.named_parameters())
    with torch.no_grad():
        for name, p in ref.named().items():
            p.copy_(mine[name])
    src, tgt, _ = transformer_inputs()
    err = (m.decode(tgt, m.encode(src), src) - ref(src, tgt)).abs().max().item()
    assert err < 1e-5, f"default knobs differ from nn.Transformer by {err}"


def train_transformer(m, lr):
    g = torch.Generator().manual_seed(11)
    opt = torch.optim.Adam(m.parameters(), lr=lr)
    for _ in range(300):
        lens = torch.randint(1, S + 1, (32,), generator=g)
        src = torch.randint(3, TGT_V, (32, S), generator=g)
        tgt = torch.full((32, S + 2), PAD, dtype=torch.long)
        tgt[:, 0] = BOS
        for b, n in enumerate(lens.tolist()):
            src[b, n:] = PAD
            tgt[b, 1:n + 1] = src[b, :n].flip(0)
            tgt[b, n + 1] = EOS
        logits = m.decode(tgt[:, :-1], m.encode(src), src)
        loss = F.cross_entropy(logits.reshape(-1, TGT_V), tgt[:, 1:].reshape(-1),
                               ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def run_transformer(name, seed, k, lr, out):
    torch.manual_seed(seed)
    # Trained in float64 (see main for the learning rates): the float32
    # rounding of PyTorch's kernels differs between processors (AVX2,
    # AVX-512) and 300 Adam steps amplify it into different weights.
    m = Transformer(k).double()
    print(name, "loss after training: %.4f" % train_transformer(m, lr))
    m = m.float()
    for key, v in m.state_dict().items():
        out[f"{name}.{key}"] = v.clone()
    m.zero_grad(set_to_none=True)
    m = m.double()
    m.train()
    src, tgt, labels = transformer_inputs()
    logits = m.decode(tgt, m.encode(src), src)
    loss = F.cross_entropy(logits.reshape(-1, TGT_V), labels.reshape(-1), ignore_index=PAD)
    loss.backward()
    out[f"{name}.logits"] = logits.detach().float()
    out[f"{name}.loss"] = loss.detach().float()
    for key, p in m.named_parameters():
        out[f"{name}.grad.{key}"] = p.grad.float()
    for key, v in m.named_buffers():
        out[f"{name}.after.{key}"] = v.float() if v.is_floating_point() else v
    m.eval()
    with torch.no_grad():
        greedy = m.greedy(src)
    out[f"{name}.greedy"] = greedy.int()
    print(name, "greedy:", greedy.tolist())


# ---- Seq2seq ----

S_SRC_V, S_TGT_V, EMB, HID, ATTN, S_LAYERS = 11, 13, 8, 12, 10, 2


def greedy(m, src):
    """Tokens [B, MAX_LEN] from bos (pad after eos) and their attention
    weights, zero once a row has finished; each choice of a running row is
    checked to be clear."""
    enc = m.encode(src)
    state = enc[3]
    y = torch.full((src.shape[0],), BOS, dtype=torch.long)
    done = torch.zeros(src.shape[0], dtype=torch.bool)
    tokens, weights = [], []
    for _ in range(MAX_LEN):
        out, state, a = m.step(y, state, enc)
        top = out.topk(2, dim=-1).values
        lead = (top[:, 0] - top[:, 1])[~done]
        assert lead.numel() == 0 or lead.min().item() > MARGIN, "greedy step too close"
        weights.append(a.masked_fill(done.unsqueeze(1), 0))
        y = out.argmax(-1).masked_fill(done, PAD)
        done |= y == EOS
        tokens.append(y)
    return torch.stack(tokens, 1), torch.stack(weights, 1)


def run_seq2seq(name, seed, cell, score, out):
    torch.manual_seed(seed)
    m = Seq2Seq(S_SRC_V, S_TGT_V, EMB, HID, ATTN, S_LAYERS, pad=PAD, cell=cell, score=score)
    with torch.no_grad():
        m.decoder.out.weight.mul_(3)
        if score == "additive":
            m.decoder.attention.v.weight.mul_(4)
    src = torch.tensor([[3, 5, 7, 9, 4, 6, 2],
                        [8, 4, 10, 2, PAD, PAD, PAD],
                        [5, 5, 3, 6, 2, PAD, PAD]])
    tgt = torch.tensor([[BOS, 4, 6, 8, 10, 12, EOS],
                        [BOS, 7, 3, EOS, PAD, PAD, PAD],
                        [BOS, 11, 5, 9, EOS, PAD, PAD]])
    out["s.src"], out["s.tgt"] = src.int(), tgt.int()
    for key, p in m.state_dict().items():
        out[f"{name}.{key}"] = p.clone()
    m = m.double()
    logits, weights = m(src, tgt)
    loss = F.cross_entropy(logits.reshape(-1, S_TGT_V), tgt[:, 1:].reshape(-1), ignore_index=PAD)
    loss.backward()
    out[f"{name}.logits"] = logits.detach().float()
    out[f"{name}.weights"] = weights.detach().float()
    out[f"{name}.loss"] = loss.detach().float()
    for key, p in m.named_parameters():
        out[f"{name}.grad.{key}"] = p.grad.float()
    with torch.no_grad():
        tokens, gw = greedy(m, src)
    out[f"{name}.greedy"] = tokens.int()
    out[f"{name}.greedy_weights"] = gw.float()
    print(name, "greedy:", tokens.tolist())


def main():
    check_against_torch()
    out = {}
    src, tgt, labels = transformer_inputs()
    out["t.src"], out["t.tgt"], out["t.labels"] = src.int(), tgt.int(), labels.int()
    # Small learning rates: at 1e-3 (tb) or 3e-4 (tr) training is chaotic
    # enough that a float64 ulp of difference between processors grows to a
    # difference in the fixture's fourth digit within the 300 steps.
    run_transformer("tb", 1, Knobs(norm="batch", pos="none"), 5e-4, out)
    run_transformer("tr", 2, Knobs(norm="rms", pos="learned", pre_norm=True, unscaled=True,
                                   residual=False), 3e-4, out)
    run_seq2seq("lstm", 5, "lstm", "additive", out)
    run_seq2seq("dot", 6, "gru", "dot", out)
    run_seq2seq("general", 7, "lstm", "general", out)
    save("knobs_zoo.safetensors", out)


if __name__ == "__main__":
    main()
