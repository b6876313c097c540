#!/usr/bin/python3
"""Writes softmax.safetensors, the PyTorch (1.13) references for
autograd/softmax.c (softmax, log_softmax), read by tests/test_softmax.c:

    cd tests/golden && /usr/bin/python3 gen_softmax.py

The layout is goldlib.case's: <name>.in0 (the leaf), <name>.out, <name>.dout
and <name>.grad0, with the view (transpose, slice, expand) applied inside
the case, as the C test applies it. References are computed in float64 from
the float32 inputs and rounded once.
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


for op, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
    # along dim 0, 1 and -1 of a transposed 3-D input
    case(f"{op}.dim0_transposed", lambda a: fn(a.transpose(0, 2), 0), normal(5, 4, 3))
    case(f"{op}.dim1_transposed", lambda a: fn(a.transpose(0, 2), 1), normal(5, 4, 3))
    case(f"{op}.dimlast_transposed", lambda a: fn(a.transpose(0, 2), -1), normal(5, 4, 3))
    case(f"{op}.dimlast", lambda a: fn(a, -1), normal(2, 3, 7))
    case(f"{op}.large", lambda a: fn(a, -1), uniform(-100, 100, 4, 7))
    case(f"{op}.large_dim0", lambda a: fn(a, 0), uniform(-100, 100, 6, 5))
    case(f"{op}.rows_of_1", lambda a: fn(a, -1), normal(5, 1))
    case(f"{op}.rows_of_13", lambda a: fn(a, -1), normal(3, 13))
    case(f"{op}.long_rows", lambda a: fn(a, 1), normal(2, 521, scale=3.0))
    case(f"{op}.sliced", lambda a: fn(a[:, 0:10:2], -1), normal(3, 10))
    case(f"{op}.expanded", lambda a: fn(a.expand(3, 4), 1), normal(3, 1))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "softmax.safetensors")
save(path, OUT, {"generator": "tests/golden/gen_softmax.py", "torch": torch.__version__})
print("%s: %d tensors, %d bytes" % (path, len(OUT), os.path.getsize(path)))
