#!/usr/bin/python3
"""Writes attention.safetensors, the golden fixture of tests/test_attention.c.

    cd tests/golden && /usr/bin/python3 gen_attention.py

PyTorch 1.13 has no F.scaled_dot_product_attention, so the reference is the
definition: softmax(q @ k^T * scale + mask) @ v, with masked_fill(-inf) for
bool masks (True: may attend) and for the causal mask (key j > query i,
aligned at the top left when Tq != Tk). Inputs and the upstream gradient are
float32; the reference runs in float64 on those values and is rounded once.

The layout is that of every op fixture (goldlib.case's), plus the weights.
For a case <c> the file holds
    <c>.in0, .in1, .in2    the leaves q, k, v (or <c>.in0 alone, x, for a
                           packed [B, T, 3, H, D] projection whose permuted
                           slices are q, k, v; or k and v of [B, 1, Tk, D]
                           expanded over heads)
    <c>.in3                the mask, when there is one (after q, k, v)
    <c>.out, <c>.weights   the output and the softmax weights
    <c>.dout               a random upstream gradient
    <c>.grad<i>            d(sum(out * dout)) / d(in<i>), for each float input
"""
import math

import torch

from goldlib import save

torch.manual_seed(0)


def attention(q, k, v, mask=None, causal=False, scale=0.0):
    if scale == 0.0:
        scale = 1.0 / math.sqrt(q.shape[-1])
    s = q @ k.transpose(-2, -1) * scale
    if mask is not None:
        if mask.dtype == torch.bool:
            s = s.masked_fill(~mask, float("-inf"))
        else:
            s = s + mask
    if causal:
        tq, tk = s.shape[-2], s.shape[-1]
        upper = torch.ones(tq, tk, dtype=torch.bool).triu(1)
        s = s.masked_fill(upper, float("-inf"))
    w = torch.softmax(s, dim=-1)
    return w @ v, w


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def case(out, name, leaves, build, mask=None, causal=False, scale=0.0):
    """leaves: {name: float32 tensor}; build(leaves) -> (q, k, v)."""
    wide = {n: t.double().requires_grad_() for n, t in leaves.items()}
    wmask = mask
    if mask is not None and mask.dtype != torch.bool:
        wmask = mask.double().requires_grad_()
    q, k, v = build(wide)
    o, w = attention(q, k, v, wmask, causal, scale)
    dout = rand(*o.shape)
    o.backward(dout.double())
    for i, n in enumerate(leaves):
        out[f"{name}.in{i}"] = leaves[n]
        out[f"{name}.grad{i}"] = wide[n].grad.float()
    if mask is not None:
        out[f"{name}.in{len(leaves)}"] = mask
        if mask.dtype != torch.bool:
            out[f"{name}.grad{len(leaves)}"] = wmask.grad.float()
    out[f"{name}.out"] = o.float()
    out[f"{name}.weights"] = w.float()
    out[f"{name}.dout"] = dout


def qkv(B, H, Tq, Tk, D, Dv):
    return {"q": rand(B, H, Tq, D), "k": rand(B, H, Tk, D), "v": rand(B, H, Tk, Dv)}


def direct(t):
    return t["q"], t["k"], t["v"]


def packed(t):
    x = t["x"]  # [B, T, 3, H, D]
    return tuple(x[:, :, i].permute(0, 2, 1, 3) for i in range(3))


def main():
    out = {}
    case(out, "plain", qkv(2, 3, 5, 7, 4, 3), direct)

    pad = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    pad[0, ..., 4:] = False
    pad[1, ..., 0] = False
    pad[1, ..., 3] = False
    case(out, "pad", qkv(2, 2, 4, 6, 8, 8), direct, mask=pad)

    additive = rand(5, 6)
    additive[2, 4] = float("-inf")
    case(out, "additive", qkv(1, 2, 5, 6, 4, 4), direct, mask=additive, scale=0.3)

    case(out, "causal", qkv(2, 2, 6, 6, 4, 4), direct, causal=True)
    case(out, "causal_short", qkv(1, 2, 3, 7, 4, 5), direct, causal=True)

    case(out, "packed", {"x": rand(2, 5, 3, 2, 4)}, packed, causal=True)

    gqa = {"q": rand(2, 3, 4, 4), "k": rand(2, 1, 5, 4), "v": rand(2, 1, 5, 2)}
    case(out, "gqa", gqa,
         lambda t: (t["q"], t["k"].expand(2, 3, 5, 4), t["v"].expand(2, 3, 5, 2)))

    case(out, "t1", qkv(2, 3, 1, 1, 5, 5), direct)
    case(out, "t7", qkv(1, 3, 7, 7, 5, 2), direct)

    save("attention.safetensors", out)


if __name__ == "__main__":
    main()
