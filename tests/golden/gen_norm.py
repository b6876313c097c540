#!/usr/bin/python3
"""Writes tests/golden/norm.safetensors, read by tests/test_layer_norm.c.

    cd tests/golden && /usr/bin/python3 gen_norm.py

Each case is torch.nn.functional.layer_norm over the last `nnorm` dims of x,
with or without weight and bias, in the layout of every op fixture
(goldlib.case's): the inputs <c>.in0 (x), then the weight and the bias when
used, <c>.out, a random upstream gradient <c>.dout, and <c>.grad<i>, the
gradient of sum(out * dout) for input i. A transposed case stores x as laid
out in memory (<c>.in0 is the [N, R] tensor) and normalises x.t(), as the C
test does with cf_transpose. Inputs are float32; references are computed in float64 from
those values and rounded once. The table must match CASES in test_layer_norm.c.
"""
import os

import torch
from goldlib import save

HERE = os.path.dirname(os.path.abspath(__file__))

# name, stored shape of x, nnorm, weight, bias, eps, transposed
CASES = [
    ("last1_affine", (4, 7), 1, True, True, 1e-5, False),
    ("last1_plain", (3, 5), 1, False, False, 1e-6, False),
    ("last2_affine", (2, 3, 4, 5), 2, True, True, 1e-5, False),
    ("last2_plain", (3, 2, 6), 2, False, False, 1e-6, False),
    ("row_of_one", (5, 1), 1, True, True, 1e-5, False),
    ("weight_only", (2, 11), 1, True, False, 1e-6, False),
    ("bias_only", (3, 13), 1, False, True, 1e-5, False),
    ("transposed", (7, 4), 1, True, True, 1e-5, True),
]


def main():
    torch.manual_seed(0)
    out = {}
    for name, shape, nnorm, has_w, has_b, eps, transposed in CASES:
        x = torch.randn(shape) * 2 + 0.5
        norm_shape = (shape[::-1] if transposed else shape)[-nnorm:]
        w = torch.randn(norm_shape) if has_w else None
        b = torch.randn(norm_shape) if has_b else None
        xd = x.double().requires_grad_()
        wd = w.double().requires_grad_() if has_w else None
        bd = b.double().requires_grad_() if has_b else None
        xin = xd.t() if transposed else xd
        y = torch.nn.functional.layer_norm(xin, norm_shape, wd, bd, eps)
        dout = torch.randn(y.shape)
        y.backward(dout.double())
        out[name + ".out"] = y.float()
        out[name + ".dout"] = dout
        leaves = [(x, xd)] + ([(w, wd)] if has_w else []) + ([(b, bd)] if has_b else [])
        for i, (leaf, leaf64) in enumerate(leaves):
            out[f"{name}.in{i}"] = leaf
            out[f"{name}.grad{i}"] = leaf64.grad.float()
    save(os.path.join(HERE, "norm.safetensors"), out)


if __name__ == "__main__":
    main()
