#!/usr/bin/python3
"""Writes tests/golden/nn.safetensors, read by tests/test_nn.c.

    cd tests/golden && /usr/bin/python3 gen_nn.py

Each case builds a torch.nn module (or, for the feed-forward block and the
additive attention, a reference module written here with the parameter
names cformer uses), perturbs parameters that PyTorch initialises to
constants so that every gradient is informative, runs it in float64 on
float32 inputs and rounds the results once. For case <c> the file holds

    <c>.<name>        every parameter, by its state_dict name
    <c>.<input>       the inputs (float32 leaves, int32 indices, masks)
    <c>.<output>      the outputs (out, weights, h_n)
    <c>.d<output>     a random upstream gradient for each differentiated one
    <c>.grad_<input>  d(sum of output * upstream) / d(input), float inputs
    <c>.grad.<name>   the same for every parameter

and the metadata key <c> lists the state_dict names in order, joined with
commas, so that the C test can check that its module has exactly these
parameters in this order. sin_<c>.out holds a sinusoidal encoding table. The
cases must match the tables in test_nn.c.
"""
import copy
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

import models
from goldlib import save

HERE = os.path.dirname(os.path.abspath(__file__))


class FeedForward(nn.Module):
    """linear2(dropout(act(linear1(x)))), named as in TransformerEncoderLayer."""

    def __init__(self, dim, hidden, act):
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.dropout = nn.Dropout(0.0)
        self.linear2 = nn.Linear(hidden, dim)
        self.act = act

    def forward(self, x):
        return self.linear2(self.dropout(self.act(self.linear1(x))))


class AdditiveAttention(nn.Module):
    """Bahdanau: score_j = v^T tanh(W_q q + W_k k_j + b_k)."""

    def __init__(self, query_dim, key_dim, attn_dim):
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, query, keys, mask=None):
        e = self.v(torch.tanh(self.key_proj(keys) + self.query_proj(query)[:, None]))
        e = e.squeeze(-1)
        if mask is not None:
            e = e.masked_fill(mask, float("-inf"))
        a = torch.softmax(e, -1)
        return torch.bmm(a[:, None], keys).squeeze(1), a


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def perturb(module):
    """Moves every parameter off its constant initial value (ones, zeros)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))


def case(out, meta, name, module, inputs, run, diff=("out",)):
    """inputs: {name: tensor}; run(module, inputs) -> {output name: tensor}.
    The outputs named in diff are differentiated."""
    names = [n for n, _ in module.named_parameters()]
    meta[name] = ",".join(names)
    for n, p in module.named_parameters():
        out[f"{name}.{n}"] = p.detach().clone()
    wide_module = copy.deepcopy(module).double()
    wide = {}
    for n, t in inputs.items():
        out[f"{name}.{n}"] = t
        if not t.is_floating_point():
            wide[n] = t
        elif n == "mask":  # a float attention mask is an input without a gradient
            wide[n] = t.double()
        else:
            wide[n] = t.double().requires_grad_()
    results = run(wide_module, wide)
    loss = 0
    for n in diff:
        d = rand(*results[n].shape)
        out[f"{name}.d{n}"] = d
        loss = loss + (results[n] * d.double()).sum()
    loss.backward()
    for n, t in results.items():
        out[f"{name}.{n}"] = t.detach().float()
    for n, t in wide.items():
        if t.requires_grad:
            out[f"{name}.grad_{n}"] = t.grad.float()
    for n, p in wide_module.named_parameters():
        out[f"{name}.grad.{n}"] = p.grad.float()


def mha(embed_dim, heads, bias=True):
    m = nn.MultiheadAttention(embed_dim, heads, dropout=0.0, bias=bias, batch_first=True)
    perturb(m)
    return m


def mha_run(query, key, value, kpm=None, mask=None, average=True, need_weights=True):
    """run() for nn.MultiheadAttention; the names pick the inputs. A per-head
    attn_mask is stored as [B, H, L, S] for cformer and reshaped to
    PyTorch's [B * H, L, S]."""

    def run(m, t):
        am = None
        if mask is not None:
            am = t[mask]
            if am.dim() == 4:
                am = am.reshape(-1, am.shape[2], am.shape[3])
        o, w = m(t[query], t[key], t[value], key_padding_mask=t[kpm] if kpm else None,
                 need_weights=need_weights, attn_mask=am, average_attn_weights=average)
        return {"out": o, "weights": w} if need_weights else {"out": o}

    return run


def padding(B, S, pads):
    """bool [B, S], true at the listed (b, s) positions."""
    m = torch.zeros(B, S, dtype=torch.bool)
    for b, s in pads:
        m[b, s] = True
    return m


def gru_run(with_h0):
    def run(m, t):
        o, h = m(t["x"], t["h0"]) if with_h0 else m(t["x"])
        return {"out": o, "h_n": h}

    return run


def main():
    torch.manual_seed(0)
    out, meta = {}, {}

    # ---- Linear, Embedding, LayerNorm ----
    m = nn.Linear(5, 7)
    case(out, meta, "linear", m, {"x": rand(2, 3, 5)}, lambda m, t: {"out": m(t["x"])})
    m = nn.Linear(4, 3, bias=False)
    case(out, meta, "linear_vec", m, {"x": rand(4)}, lambda m, t: {"out": m(t["x"])})

    m = nn.Embedding(10, 4, padding_idx=2)
    idx = torch.tensor([[1, 2, 7, 1, 9], [2, 0, 1, 1, 5], [3, 3, 2, 8, 0]], dtype=torch.int32)
    case(out, meta, "embedding", m, {"x": idx}, lambda m, t: {"out": m(t["x"].long())})

    m = nn.LayerNorm(7)
    perturb(m)
    case(out, meta, "layernorm", m, {"x": rand(2, 3, 7) * 2 + 0.5},
         lambda m, t: {"out": m(t["x"])})
    m = nn.LayerNorm(5, eps=1e-6, elementwise_affine=False)
    case(out, meta, "layernorm_plain", m, {"x": rand(4, 5)}, lambda m, t: {"out": m(t["x"])})

    # ---- MultiheadAttention ----
    case(out, meta, "mha_self_kpm", mha(8, 2),
         {"x": rand(2, 5, 8), "kpm": padding(2, 5, [(0, 3), (0, 4), (1, 1)])},
         mha_run("x", "x", "x", kpm="kpm"))
    case(out, meta, "mha_cross", mha(8, 2),
         {"q": rand(2, 3, 8), "kv": rand(2, 6, 8), "kpm": padding(2, 6, [(0, 5), (1, 0)])},
         mha_run("q", "kv", "kv", kpm="kpm", average=False))
    case(out, meta, "mha_cross_kv", mha(8, 4),
         {"q": rand(3, 2, 8), "k": rand(3, 4, 8), "v": rand(3, 4, 8)},
         mha_run("q", "k", "v", need_weights=False))
    bool_mask = torch.rand(5, 5) < 0.4
    bool_mask.fill_diagonal_(False)  # no row fully masked
    case(out, meta, "mha_bool_mask", mha(8, 2), {"x": rand(2, 5, 8), "mask": bool_mask},
         mha_run("x", "x", "x", mask="mask", average=False))
    case(out, meta, "mha_float_mask", mha(8, 2),
         {"x": rand(2, 5, 8), "mask": rand(5, 5), "kpm": padding(2, 5, [(1, 2)])},
         mha_run("x", "x", "x", kpm="kpm", mask="mask"))
    causal = torch.full((6, 6), float("-inf")).triu(1)
    case(out, meta, "mha_causal", mha(8, 2), {"x": rand(2, 6, 8), "mask": causal},
         mha_run("x", "x", "x", mask="mask"))
    case(out, meta, "mha_head_mask", mha(6, 3),
         {"q": rand(2, 4, 6), "kv": rand(2, 3, 6), "mask": rand(2, 3, 4, 3)},
         mha_run("q", "kv", "kv", mask="mask", average=False))
    case(out, meta, "mha_nobias", mha(6, 3, bias=False),
         {"q": rand(3, 1, 6), "kv": rand(3, 7, 6)}, mha_run("q", "kv", "kv"))

    # ---- Feed-forward block ----
    m = FeedForward(6, 10, F.relu)
    case(out, meta, "ffn_relu", m, {"x": rand(2, 3, 6)}, lambda m, t: {"out": m(t["x"])})
    m = FeedForward(5, 7, F.gelu)
    case(out, meta, "ffn_gelu", m, {"x": rand(1, 4, 5)}, lambda m, t: {"out": m(t["x"])})

    # ---- Recurrent layers ----
    m = nn.GRUCell(5, 7)
    case(out, meta, "gru_cell", m, {"x": rand(3, 5), "h": rand(3, 7)},
         lambda m, t: {"out": m(t["x"], t["h"])})
    m = nn.GRUCell(5, 7)
    case(out, meta, "gru_cell_no_h", m, {"x": rand(3, 5)}, lambda m, t: {"out": m(t["x"])})
    m = nn.GRU(5, 4, num_layers=2, bidirectional=True, batch_first=True)
    case(out, meta, "gru_bi2_h0", m, {"x": rand(3, 6, 5), "h0": rand(4, 3, 4)}, gru_run(True),
         diff=("out", "h_n"))
    m = nn.GRU(5, 4, num_layers=2, bidirectional=True, batch_first=True)
    case(out, meta, "gru_bi2", m, {"x": rand(2, 7, 5)}, gru_run(False), diff=("out", "h_n"))
    m = nn.GRU(3, 5, bias=False, batch_first=True)
    case(out, meta, "gru_nobias", m, {"x": rand(2, 4, 3)}, gru_run(False), diff=("out", "h_n"))

    # ---- Additive attention ----
    m = AdditiveAttention(6, 5, 4)
    case(out, meta, "additive", m,
         {"q": rand(2, 6), "keys": rand(2, 7, 5), "kpm": padding(2, 7, [(0, 6), (1, 0), (1, 4)])},
         lambda m, t: dict(zip(("out", "weights"), m(t["q"], t["keys"], t["kpm"]))),
         diff=("out", "weights"))
    m = AdditiveAttention(3, 2, 5)
    case(out, meta, "additive_nomask", m, {"q": rand(1, 3), "keys": rand(1, 4, 2)},
         lambda m, t: dict(zip(("out", "weights"), m(t["q"], t["keys"]))))

    # ---- Sinusoidal encoding, as the PyTorch tutorial computes it ----
    for name, start, T, d in (("small", 3, 9, 16), ("long", 0, 64, 32), ("two", 5, 2, 2),
                               ("far", 900, 10, 18)):
        out[f"sin_{name}.out"] = models.sinusoid(T, d, start)

    save(os.path.join(HERE, "nn.safetensors"), out, metadata=meta)


if __name__ == "__main__":
    main()
