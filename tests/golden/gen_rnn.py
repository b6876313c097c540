#!/usr/bin/python3
"""Writes rnn.safetensors, the PyTorch (1.13) references for the fused
recurrent cells of autograd/rnn.c, read by tests/test_rnn.c:

    cd tests/golden && /usr/bin/python3 gen_rnn.py

The file has the layout of math.safetensors: for each case <name>,
<name>.in<i> (the leaves, contiguous), <name>.out, <name>.dout (a random
upstream gradient) and <name>.grad<i>, d(sum(out * dout)) / d(in<i>).
Views (a time step sliced out, a transpose, a broadcast state) are applied
inside the case to the stored leaves, and the C test applies the same
views. References are computed in float64 from the float32 inputs.

gru_gates is torch.nn.GRU's step written from its projections; the script
checks that against torch.nn.GRUCell before writing anything.
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


def gru_gates(gi, gh, h):
    ir, iz, inn = gi.chunk(3, -1)
    hr, hz, hn = gh.chunk(3, -1)
    r = torch.sigmoid(ir + hr)
    z = torch.sigmoid(iz + hz)
    n = torch.tanh(inn + r * hn)
    return (1 - z) * n + z * h


def check_against_grucell():
    cell = torch.nn.GRUCell(5, 4).double()
    x, h = torch.randn(3, 5).double(), torch.randn(3, 4).double()
    gi = x @ cell.weight_ih.t() + cell.bias_ih
    gh = h @ cell.weight_hh.t() + cell.bias_hh
    assert torch.allclose(gru_gates(gi, gh, h), cell(x, h), atol=1e-12)


check_against_grucell()
# Rows of H = 5: the plain layout of a GRUCell step.
case("gru_gates.rows", gru_gates, uniform(-3, 3, 4, 15), uniform(-3, 3, 4, 15),
     uniform(-1, 1, 4, 5))
# gi as one time step of a [B, T, 3H] projection, as nn/gru.c passes it.
case("gru_gates.time_step", lambda gi, gh, h: gru_gates(gi[:, 2], gh, h),
     uniform(-3, 3, 3, 4, 18), uniform(-3, 3, 3, 18), uniform(-1, 1, 3, 6))
# Leading dims [2, 3]; the state broadcast over the first.
case("gru_gates.broadcast_state", lambda gi, gh, h: gru_gates(gi, gh, h.expand(2, 3, 4)),
     uniform(-3, 3, 2, 3, 12), uniform(-3, 3, 2, 3, 12), uniform(-1, 1, 1, 3, 4))
# Transposed projections (no unit stride along the gates) and saturated
# gates (|pre-activation| up to 12).
case("gru_gates.transposed", lambda gi, gh, h: gru_gates(gi.t(), gh.t(), h),
     uniform(-12, 12, 21, 2), uniform(-12, 12, 21, 2), uniform(-1, 1, 2, 7))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rnn.safetensors")
save(path, OUT)
print("%s: %d tensors, %d bytes" % (path, len(OUT), os.path.getsize(path)))
