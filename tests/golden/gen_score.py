#!/usr/bin/python3
"""Writes score.safetensors, the PyTorch (1.13) references for the additive
attention score of autograd/score.c, read by tests/test_score.c:

    cd tests/golden && /usr/bin/python3 gen_score.py

The file has the layout of math.safetensors: for each case <name>,
<name>.in<i> (the leaves, contiguous), <name>.out, <name>.dout (a random
upstream gradient) and <name>.grad<i>, d(sum(out * dout)) / d(in<i>).
Views are applied inside the case to the stored leaves, and the C test
applies the same views. References are computed in float64 from the
float32 inputs.

The score is what nn.AdditiveAttention computes before its mask and
softmax: Linear(A, 1, bias=False)(tanh(k + q[:, None])) squeezed, with
v the Linear's weight row.
"""
import os
import sys
from functools import partial

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import goldlib  # noqa: E402
from goldlib import save, uniform  # noqa: E402

torch.manual_seed(0)
OUT = {}
case = partial(goldlib.case, OUT)  # case(name, fn, *inputs) adds to OUT


def score(k, q, v):
    return torch.tanh(k + q[:, None, :]) @ v


case("additive_score.rows", score, uniform(-2, 2, 3, 5, 16), uniform(-2, 2, 3, 16),
     uniform(-1, 1, 16))
# A width that is no multiple of the eight partial sums.
case("additive_score.odd_width", score, uniform(-2, 2, 2, 4, 13), uniform(-2, 2, 2, 13),
     uniform(-1, 1, 13))
# Keys stored [B, A, S] and transposed; saturated tanh (|k + q| up to 10).
case("additive_score.transposed_keys", lambda k, q, v: score(k.transpose(1, 2), q, v),
     uniform(-5, 5, 2, 9, 6), uniform(-5, 5, 2, 9), uniform(-1, 1, 9))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "score.safetensors")
save(path, OUT)
print("%s: %d tensors, %d bytes" % (path, len(OUT), os.path.getsize(path)))
