#!/usr/bin/python3
"""Writes math.safetensors, the PyTorch (1.13) references for the pointwise
functions of autograd/math.c, read by tests/test_math.c:

    cd tests/golden && /usr/bin/python3 gen_math.py

For each case <name> the file holds <name>.in<i> (the leaves, contiguous),
<name>.out, and for differentiable cases <name>.dout (a random upstream
gradient) and <name>.grad<i>, d(sum(out * dout)) / d(in<i>) for each float
input. Views (transposes, slices) are applied inside the case to the stored
leaves, and the C test applies the same views. References are computed in
float64 from the float32 inputs and rounded once, so they are the correctly
rounded answers.

The cases put values exactly on the kinks (abs at 0, clamp at its bounds,
maximum/minimum ties, pow with a zero base or exponent), since PyTorch's
conventions there are what models ported from it rely on; those cases say
so in <name>.kink, and the C test checks every other case by finite
differences too.
"""
import os
import sys
from functools import partial

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import goldlib  # noqa: E402
from goldlib import save, uniform  # noqa: E402

torch.manual_seed(0)
OUT = {}
case = partial(goldlib.case, OUT)  # case(name, fn, *inputs) adds to OUT


def ints(lo, hi, *shape):
    """Small integers as floats, so that ties and exact bounds occur."""
    return torch.randint(lo, hi, shape).float()


# pow: a [3, 4] to the power of b [4] (broadcast); then zero bases and
# exponents and negative bases (NaN where log(a) is taken of a < 0).
case("pow.broadcast", torch.pow, uniform(0.5, 2, 3, 4), uniform(-2, 2, 4))
case("pow.special", torch.pow, torch.tensor([0.0, 0.0, 0.0, 2.0, -2.0, -2.0, 1.5]),
     torch.tensor([0.0, 1.0, 2.0, 0.0, 2.0, 0.0, 3.0]),
     kink="zero bases, and negative ones whose exponent gradient is NaN")
case("pow.transposed", lambda a, b: torch.pow(a.t(), b), uniform(0.2, 3, 5, 3),
     uniform(-1, 2, 3, 1))

for p in (2.0, 0.5, -1.5, 3.0, 0.0):
    case(f"pow_scalar.p{p:g}", lambda a: torch.pow(a.t(), p), uniform(0.1, 3, 4, 7))
case("pow_scalar.zero_base", lambda a: torch.pow(a, 1.0), torch.tensor([0.0, 1.0, -2.0]))

case("sqrt", lambda a: torch.sqrt(a.t()), uniform(0.05, 4, 3, 5))
case("rsqrt", lambda a: torch.rsqrt(a[:, ::2]), uniform(0.05, 4, 3, 7))

case("abs", torch.abs, torch.tensor([-2.0, -0.0, 0.0, 1.5, -1e-3, 3.0]), kink="abs at 0")
case("abs.transposed", lambda a: torch.abs(a.t()), ints(-2, 3, 4, 5), kink="abs at 0")

case("clamp.bounds", lambda a: torch.clamp(a, -1.0, 2.0), ints(-3, 4, 13),
     kink="values on the bounds")
case("clamp.transposed", lambda a: torch.clamp(a.t(), -0.5, 0.5), uniform(-1, 1, 6, 5))
case("clamp.min_only", lambda a: torch.clamp(a, min=0.0), ints(-2, 3, 7),
     kink="values on the bound")
case("clamp.crossed", lambda a: torch.clamp(a, 1.0, -1.0), ints(-2, 3, 5))

case("maximum.ties", torch.maximum, ints(-2, 3, 3, 1), ints(-2, 3, 5), kink="ties")
case("minimum.ties", torch.minimum, ints(-2, 3, 3, 1), ints(-2, 3, 5), kink="ties")
case("maximum.transposed", lambda a, b: torch.maximum(a.t(), b), uniform(-1, 1, 4, 3),
     uniform(-1, 1, 3, 4))
case("minimum.transposed", lambda a, b: torch.minimum(a.t(), b), uniform(-1, 1, 4, 3),
     uniform(-1, 1, 3, 4))

case("where.broadcast", torch.where, torch.rand(3, 1, 5) > 0.5, uniform(-1, 1, 4, 5),
     uniform(-1, 1, 5))
case("where.transposed", lambda c, a, b: torch.where(c, a.t(), b), torch.rand(2, 3) > 0.5,
     uniform(-1, 1, 3, 2), uniform(-1, 1, 1))

case("masked_fill.broadcast", lambda a, m: a.masked_fill(m, 2.5), uniform(-1, 1, 3, 5),
     torch.rand(5) > 0.5)
case("masked_fill.transposed", lambda a, m: a.t().masked_fill(m, -1e4), uniform(-1, 1, 5, 4),
     torch.rand(4, 1) > 0.5)

for name, fn in (("eq", torch.eq), ("lt", torch.lt), ("gt", torch.gt)):
    case(f"{name}.float", fn, ints(-2, 3, 3, 1), ints(-2, 3, 4))
    case(f"{name}.int", fn, torch.randint(-2, 3, (2, 3), dtype=torch.int32),
         torch.randint(-2, 3, (3,), dtype=torch.int32))
case("eq.transposed", lambda a, b: torch.eq(a.t(), b), ints(-1, 2, 3, 2), ints(-1, 2, 2, 3))
case("logical_not", lambda m: torch.logical_not(m.t()), torch.rand(3, 4) > 0.5)

for approx in ("none", "tanh"):
    case(f"gelu.{approx}", lambda a: F.gelu(a.t(), approximate=approx),
         uniform(-6, 6, 7, 11))
    case(f"gelu.{approx}.kinks", lambda a: F.gelu(a, approximate=approx),
         torch.tensor([0.0, -1.0, 1.0, -3.0, 3.0, -10.0, 10.0]))
case("silu", lambda a: F.silu(a.t()), uniform(-8, 8, 5, 7))
case("silu.tails", F.silu, torch.tensor([0.0, -20.0, 20.0, -90.0, 90.0]))

# Added after the cases above, so that their random inputs stay as they were.
case("abs.away_from_zero", torch.abs,
     uniform(0.1, 2, 4, 5) * (torch.randint(0, 2, (4, 5)) * 2 - 1).float())

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "math.safetensors")
save(path, OUT, {"generator": "tests/golden/gen_math.py", "torch": torch.__version__})
print(f"{path}: {len(OUT)} tensors, {os.path.getsize(path)} bytes")
