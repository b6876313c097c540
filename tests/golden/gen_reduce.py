#!/usr/bin/python3
"""Writes reduce.safetensors, the PyTorch (1.13) references for the
reductions of autograd/reduce.c that ops.safetensors (gen_golden.py) does
not cover: max, min, argmax, var, std and logsumexp; read by
tests/test_reduce.c:

    cd tests/golden && /usr/bin/python3 gen_reduce.py

The layout is goldlib.case's: <name>.in0 (the leaf), <name>.out and, for a
float output, <name>.dout and <name>.grad0; views are applied inside the
case, as the C test applies them. max and min have a second case,
<name>.idx, whose output is the positions (int32). References are computed
in float64 from the float32 inputs and rounded once.
"""
import os
import sys
from functools import partial

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import goldlib  # noqa: E402
from goldlib import normal, save, uniform  # noqa: E402

torch.manual_seed(20240601)
OUT = {}
case = partial(goldlib.case, OUT)  # case(name, fn, *inputs) adds to OUT


def ties(*shape):
    """Small integers, so that most rows hold repeated extremes."""
    return torch.randint(0, 3, shape).float()


def T(x):
    return x.transpose(0, 2)


def first_extreme(v, dim, largest):
    """The first position of the extreme along dim, computed directly, to
    check that PyTorch's indices follow the documented tie rule."""
    best = v.amax(dim, keepdim=True) if largest else v.amin(dim, keepdim=True)
    pos = torch.arange(v.shape[dim]).view([-1 if d == dim % v.dim() else 1
                                           for d in range(v.dim())])
    return torch.where(v == best, pos, v.shape[dim]).amin(dim)


def extreme(name, op, view, x, dim, keepdim, kink=None):
    """max or min: the values case and the positions case <name>.idx."""
    fn = torch.max if op == "max" else torch.min
    idx = fn(view(x), dim, keepdim=keepdim)[1]
    want = first_extreme(view(x), dim, op == "max")
    assert torch.equal(idx.reshape(want.shape), want), name
    case(name, lambda a: fn(view(a), dim, keepdim=keepdim)[0], x, kink=kink)
    case(name + ".idx", lambda a: fn(view(a), dim, keepdim=keepdim)[1], x)


def same(x):
    return x


extreme("max.dim1", "max", same, normal(4, 6), 1, False)
extreme("max.ties_dim1", "max", same, ties(5, 7), 1, False,
        kink="ties: the gradient goes to the first extreme")
extreme("max.ties_dim0_keepdim", "max", same, ties(7, 5), 0, True,
        kink="ties: the gradient goes to the first extreme")
extreme("max.transposed_dim1", "max", T, ties(5, 4, 3), 1, False,
        kink="ties: the gradient goes to the first extreme")
extreme("max.sliced", "max", lambda a: a[:, 0:10:2], normal(3, 10), -1, True)
extreme("min.ties_dimlast", "min", same, ties(3, 4, 5), -1, False,
        kink="ties: the gradient goes to the first extreme")
extreme("min.ties_dim0", "min", same, ties(6, 3), 0, False,
        kink="ties: the gradient goes to the first extreme")
extreme("min.transposed_dim0_keepdim", "min", T, normal(5, 4, 3), 0, True)
x = ties(5, 7)
assert torch.equal(torch.argmax(x, 1), first_extreme(x, 1, True))
case("argmax.ties_dim1", lambda a: torch.argmax(a, 1), x)
x = ties(5, 4, 3)
assert torch.equal(torch.argmax(T(x), 2), first_extreme(T(x), 2, True))
case("argmax.transposed_dim2_keepdim", lambda a: torch.argmax(T(a), 2, keepdim=True), x)

# var / std: both corrections, several dims, keepdim; [] means every dim.
case("var.dim1_unbiased", lambda a: torch.var(a, [1]), normal(4, 6))
case("var.dim1_biased", lambda a: torch.var(a, [1], unbiased=False), normal(4, 6))
case("var.dims_0_2_unbiased_keepdim", lambda a: torch.var(a, [0, 2], keepdim=True),
     normal(3, 4, 5))
case("var.dims_2_0_biased", lambda a: torch.var(a, [2, 0], unbiased=False), normal(3, 4, 5))
case("var.all_unbiased", lambda a: torch.var(a, [0, 1, 2]), normal(3, 4, 5))
case("var.transposed_dims_0_1", lambda a: torch.var(T(a), [0, 1]), normal(5, 4, 3))
case("var.offset_mean", lambda a: torch.var(a, [1]), normal(4, 6, scale=0.1) + 50.0)
case("std.dim1_unbiased", lambda a: torch.std(a, [1]), normal(4, 6))
case("std.dim0_biased_keepdim", lambda a: torch.std(a, [0], unbiased=False, keepdim=True),
     normal(4, 6))
case("std.dims_1_2_unbiased", lambda a: torch.std(a, [1, 2]), normal(3, 4, 5))
case("std.all_biased", lambda a: torch.std(a, [0, 1, 2], unbiased=False), normal(3, 4, 5))
case("std.transposed_dim2_biased", lambda a: torch.std(T(a), [2], unbiased=False),
     normal(5, 4, 3))

# logsumexp: large values, several dims.
case("logsumexp.dim1", lambda a: torch.logsumexp(a, [1]), normal(4, 6))
case("logsumexp.large_dim1", lambda a: torch.logsumexp(a, [1]), uniform(-100, 100, 4, 6))
case("logsumexp.large_dims_0_2_keepdim", lambda a: torch.logsumexp(a, [0, 2], keepdim=True),
     uniform(-100, 100, 3, 4, 5))
case("logsumexp.all", lambda a: torch.logsumexp(a, [0, 1, 2]), normal(3, 4, 5, scale=10.0))
case("logsumexp.transposed_dim0", lambda a: torch.logsumexp(T(a), [0]),
     uniform(-90, 90, 5, 4, 3))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reduce.safetensors")
save(path, OUT, {"generator": "tests/golden/gen_reduce.py", "torch": torch.__version__})
print("%s: %d tensors, %d bytes" % (path, len(OUT), os.path.getsize(path)))
