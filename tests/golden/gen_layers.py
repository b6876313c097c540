#!/usr/bin/python3
"""Writes tests/golden/layers.safetensors, read by tests/test_layers.c.

    cd tests/golden && /usr/bin/python3 gen_layers.py

Each case is a torch.nn module, or a reference written here with the names
cformer uses (RMSNorm, which PyTorch 1.13 lacks; Luong attention), run in
float64 on float32 inputs; the results are rounded once. For case <c> the
file holds

    <c>.<name>          every state_dict entry (parameters and buffers)
                        before the run; num_batches_tracked stays int64, as
                        PyTorch saves it
    <c>.<input>         the inputs (float32, int32 lengths, bool masks)
    <c>.<output>        the outputs
    <c>.d<output>       a random upstream gradient for each output
    <c>.grad_<input>    d(sum of output * upstream) / d(input), float inputs
    <c>.grad.<name>     the same for every parameter
    <c>.after.<buffer>  every buffer after the run (BatchNorm's running
                        statistics)

and the metadata key <c> lists the state_dict names in order, joined with
commas; int64_too_big is an int64 scalar 2^40. The cases must match the
tables in test_layers.c.
"""
import copy
import os

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from goldlib import save

HERE = os.path.dirname(os.path.abspath(__file__))


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def perturb(module):
    """Moves every floating parameter and buffer off its constant initial
    value (ones, zeros), so every gradient and statistic is informative."""
    with torch.no_grad():
        for t in module.state_dict().values():
            if t.is_floating_point():
                t.add_(0.1 * torch.randn_like(t))


def case(out, meta, name, module, inputs, run, training=True):
    """inputs: {name: tensor}; run(module, inputs) -> {output name: tensor},
    names distinct from the inputs'; every output is differentiated."""
    module.train(training)
    meta[name] = ",".join(module.state_dict().keys())
    for n, t in module.state_dict().items():
        out[f"{name}.{n}"] = t.detach().clone()
    wide_module = copy.deepcopy(module).double()
    wide = {}
    for n, t in inputs.items():
        out[f"{name}.{n}"] = t
        wide[n] = t.double().requires_grad_() if t.is_floating_point() else t
    results = run(wide_module, wide)
    assert not set(results) & set(inputs), "an output would overwrite an input"
    loss = 0
    for n, r in results.items():
        d = rand(*r.shape)
        out[f"{name}.d{n}"] = d
        out[f"{name}.{n}"] = r.detach().float()
        loss = loss + (r * d.double()).sum()
    loss.backward()
    for n, t in wide.items():
        if t.requires_grad:
            out[f"{name}.grad_{n}"] = t.grad.float()
    for n, p in wide_module.named_parameters():
        out[f"{name}.grad.{n}"] = p.grad.float()
    for n, b in wide_module.named_buffers():
        out[f"{name}.after.{n}"] = b.detach().float() if b.is_floating_point() else b.int()


def unary(m, t):
    return {"out": m(t["x"])}


class RMSNorm(nn.Module):
    """torch.nn.RMSNorm of PyTorch 2.4: x * rsqrt(mean(x^2) + eps) * weight."""

    def __init__(self, dim, eps, affine=True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None

    def forward(self, x):
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return y * self.weight if self.weight is not None else y


class LuongAttention(nn.Module):
    """score_j = q . k_j (dot) or q^T W_a k_j (general, W_a = key_proj.weight)."""

    def __init__(self, score, query_dim, key_dim):
        super().__init__()
        self.key_proj = nn.Linear(key_dim, query_dim, bias=False) if score == "general" else None

    def forward(self, query, keys, mask=None):
        proj = self.key_proj(keys) if self.key_proj is not None else keys
        e = torch.bmm(proj, query.unsqueeze(-1)).squeeze(-1)
        if mask is not None:
            e = e.masked_fill(mask, float("-inf"))
        a = torch.softmax(e, -1)
        return torch.bmm(a.unsqueeze(1), keys).squeeze(1), a


def padding(B, S, pads):
    """bool [B, S], true at the listed (b, s) positions."""
    m = torch.zeros(B, S, dtype=torch.bool)
    for b, s in pads:
        m[b, s] = True
    return m


def packed_run(batch_first=True, states=()):
    """An RNN over pack_padded_sequence(x, lengths), padded back to T; the
    names in states are passed as the initial state(s)."""

    def run(m, t):
        x = t["x"]
        packed = pack_padded_sequence(x, t["lengths"].long(), batch_first=batch_first,
                                      enforce_sorted=False)
        init = tuple(t[s] for s in states)
        o, h = m(packed, (init[0] if len(init) == 1 else init) if init else None)
        T = x.shape[1 if batch_first else 0]
        o, _ = pad_packed_sequence(o, batch_first=batch_first, total_length=T)
        if isinstance(h, tuple):
            return {"out": o, "h_n": h[0], "c_n": h[1]}
        return {"out": o, "h_n": h}

    return run


def lstm_run(with_states):
    def run(m, t):
        o, (h, c) = m(t["x"], (t["h0"], t["c0"])) if with_states else m(t["x"])
        return {"out": o, "h_n": h, "c_n": c}

    return run


def main():
    torch.manual_seed(0)
    out, meta = {}, {}

    # ---- GRU over padded sequences ----
    m = nn.GRU(5, 4, num_layers=2, bidirectional=True, batch_first=True)
    case(out, meta, "gru_packed", m,
         {"x": rand(3, 6, 5), "lengths": torch.tensor([6, 2, 4], dtype=torch.int32)},
         packed_run())
    m = nn.GRU(3, 4, num_layers=1, batch_first=True)
    case(out, meta, "gru_packed_h0", m,
         {"x": rand(2, 5, 3), "lengths": torch.tensor([3, 5], dtype=torch.int32),
          "h0": rand(1, 2, 4)},
         packed_run(states=("h0",)))

    # ---- BatchNorm1d ----
    m = nn.BatchNorm1d(4)
    perturb(m)
    case(out, meta, "bn2d", m, {"x": rand(6, 4) * 2 + 1}, unary)
    m = nn.BatchNorm1d(3, eps=1e-3, momentum=0.3)
    perturb(m)
    m.num_batches_tracked.fill_(5)
    case(out, meta, "bn3d", m, {"x": rand(4, 3, 5) - 0.5}, unary)
    m = nn.BatchNorm1d(3, momentum=None)
    perturb(m)
    m.num_batches_tracked.fill_(3)
    case(out, meta, "bn_cumulative", m, {"x": rand(2, 3, 4)}, unary)
    m = nn.BatchNorm1d(4)
    perturb(m)
    case(out, meta, "bn_eval", m, {"x": rand(5, 4, 2)}, unary, training=False)
    m = nn.BatchNorm1d(3, affine=False)
    perturb(m)
    case(out, meta, "bn_plain", m, {"x": rand(5, 3)}, unary)
    m = nn.BatchNorm1d(3, track_running_stats=False)
    perturb(m)
    case(out, meta, "bn_untracked_eval", m, {"x": rand(4, 3, 2)}, unary, training=False)

    # ---- RMSNorm ----
    m = RMSNorm(6, 1e-6)
    perturb(m)
    case(out, meta, "rmsnorm", m, {"x": rand(2, 3, 6)}, unary)
    m = RMSNorm(5, torch.finfo(torch.float32).eps, affine=False)
    case(out, meta, "rmsnorm_plain", m, {"x": rand(4, 5) * 3}, unary)

    # ---- LSTMCell and LSTM ----
    m = nn.LSTMCell(5, 4)
    case(out, meta, "lstm_cell", m, {"x": rand(3, 5), "h0": rand(3, 4), "c0": rand(3, 4)},
         lambda m, t: dict(zip(("h", "c"), m(t["x"], (t["h0"], t["c0"])))))
    m = nn.LSTMCell(3, 2, bias=False)
    case(out, meta, "lstm_cell_zero", m, {"x": rand(2, 3)},
         lambda m, t: dict(zip(("h", "c"), m(t["x"]))))
    m = nn.LSTM(5, 4, num_layers=2, bidirectional=True, batch_first=True)
    case(out, meta, "lstm_bi2", m,
         {"x": rand(3, 6, 5), "h0": rand(4, 3, 4), "c0": rand(4, 3, 4)}, lstm_run(True))
    m = nn.LSTM(3, 5, num_layers=1, batch_first=False)
    case(out, meta, "lstm_time_first", m, {"x": rand(4, 2, 3)}, lstm_run(False))
    m = nn.LSTM(4, 3, num_layers=2, bidirectional=True, batch_first=True)
    case(out, meta, "lstm_packed", m,
         {"x": rand(3, 5, 4), "lengths": torch.tensor([2, 5, 3], dtype=torch.int32)},
         packed_run())

    # ---- Luong attention ----
    m = LuongAttention("dot", 5, 5)
    case(out, meta, "luong_dot", m,
         {"q": rand(2, 5), "keys": rand(2, 6, 5), "kpm": padding(2, 6, [(0, 5), (1, 3), (1, 4)])},
         lambda m, t: dict(zip(("out", "weights"), m(t["q"], t["keys"], t["kpm"]))))
    m = LuongAttention("general", 4, 6)
    case(out, meta, "luong_general", m,
         {"q": rand(3, 4), "keys": rand(3, 5, 6), "kpm": padding(3, 5, [(2, 0), (2, 4)])},
         lambda m, t: dict(zip(("out", "weights"), m(t["q"], t["keys"], t["kpm"]))))
    m = LuongAttention("general", 3, 2)
    case(out, meta, "luong_general_nomask", m, {"q": rand(1, 3), "keys": rand(1, 4, 2)},
         lambda m, t: dict(zip(("out", "weights"), m(t["q"], t["keys"]))))

    # A counter beyond int32, which cformer must refuse to narrow.
    out["int64_too_big"] = torch.tensor(2**40)

    save(os.path.join(HERE, "layers.safetensors"), out, metadata=meta, keep_int64=True)


if __name__ == "__main__":
    main()
