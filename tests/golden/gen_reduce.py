#!/usr/bin/python3
"""Writes reduce.safetensors, the PyTorch (1.13) references of tests/test_softmax.c
for softmax, log_softmax, max, min, argmax, var, std and logsumexp.

    cd tests/golden && /usr/bin/python3 gen_reduce.py

For each case NAME below the file holds

    NAME.in         the input (a contiguous leaf, float32)
    NAME.out        the op's value on the view of the input that CASES names
    NAME.idx        for max, min and argmax: the positions (int32)
    NAME.dout       a random upstream gradient (not for argmax)
    NAME.grad       d(sum(out * dout)) / d(in)

The C test builds the same view (transpose, slice, expand) of NAME.in with
cformer's ops. References are computed in float64 from the float32 inputs
and rounded once, so a tolerance only has to cover cformer's own rounding.
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from goldlib import save  # noqa: E402


def normal(shape, scale=1.0):
    return torch.randn(shape) * scale


def uniform(shape, lo, hi):
    return lo + (hi - lo) * torch.rand(shape)


def ties(shape):
    """Small integers, so that most rows hold repeated extremes."""
    return torch.randint(0, 3, shape).float()


def transposed(x):
    return x.transpose(0, 2)


def sliced(x):
    return x[:, 0:10:2]


def expanded(x):
    return x.expand(3, 4)


def same(x):
    return x


def reduce_dims(x, dims):
    return dims if dims else list(range(x.dim()))


# The inputs below and then every dout come from this seed.
torch.manual_seed(20240601)

# (name, input, view, op, args). The names say what the C test must build.
CASES = [
    # softmax / log_softmax along dim 0, 1, -1 of a transposed 3-D input.
    ("softmax.dim0_transposed", normal([5, 4, 3]), transposed, "softmax", 0),
    ("softmax.dim1_transposed", normal([5, 4, 3]), transposed, "softmax", 1),
    ("softmax.dimlast_transposed", normal([5, 4, 3]), transposed, "softmax", -1),
    ("softmax.dimlast", normal([2, 3, 7]), same, "softmax", -1),
    ("softmax.large", uniform([4, 7], -100, 100), same, "softmax", -1),
    ("softmax.large_dim0", uniform([6, 5], -100, 100), same, "softmax", 0),
    ("softmax.rows_of_1", normal([5, 1]), same, "softmax", -1),
    ("softmax.rows_of_13", normal([3, 13]), same, "softmax", -1),
    ("softmax.long_rows", normal([2, 521], 3.0), same, "softmax", 1),
    ("softmax.sliced", normal([3, 10]), sliced, "softmax", -1),
    ("softmax.expanded", normal([3, 1]), expanded, "softmax", 1),
    ("log_softmax.dim0_transposed", normal([5, 4, 3]), transposed, "log_softmax", 0),
    ("log_softmax.dim1_transposed", normal([5, 4, 3]), transposed, "log_softmax", 1),
    ("log_softmax.dimlast_transposed", normal([5, 4, 3]), transposed, "log_softmax", -1),
    ("log_softmax.dimlast", normal([2, 3, 7]), same, "log_softmax", -1),
    ("log_softmax.large", uniform([4, 7], -100, 100), same, "log_softmax", -1),
    ("log_softmax.large_dim0", uniform([6, 5], -100, 100), same, "log_softmax", 0),
    ("log_softmax.rows_of_1", normal([5, 1]), same, "log_softmax", -1),
    ("log_softmax.rows_of_13", normal([3, 13]), same, "log_softmax", -1),
    ("log_softmax.long_rows", normal([2, 521], 3.0), same, "log_softmax", 1),
    ("log_softmax.sliced", normal([3, 10]), sliced, "log_softmax", -1),
    # max / min / argmax: ties pick the first position.
    ("max.dim1", normal([4, 6]), same, "max", (1, False)),
    ("max.ties_dim1", ties([5, 7]), same, "max", (1, False)),
    ("max.ties_dim0_keepdim", ties([7, 5]), same, "max", (0, True)),
    ("max.transposed_dim1", ties([5, 4, 3]), transposed, "max", (1, False)),
    ("max.sliced", normal([3, 10]), sliced, "max", (-1, True)),
    ("min.ties_dimlast", ties([3, 4, 5]), same, "min", (-1, False)),
    ("min.ties_dim0", ties([6, 3]), same, "min", (0, False)),
    ("min.transposed_dim0_keepdim", normal([5, 4, 3]), transposed, "min", (0, True)),
    ("argmax.ties_dim1", ties([5, 7]), same, "argmax", (1, False)),
    ("argmax.transposed_dim2_keepdim", ties([5, 4, 3]), transposed, "argmax", (2, True)),
    # var / std: both corrections, several dims, keepdim.
    ("var.dim1_unbiased", normal([4, 6]), same, "var", ([1], True, False)),
    ("var.dim1_biased", normal([4, 6]), same, "var", ([1], False, False)),
    ("var.dims_0_2_unbiased_keepdim", normal([3, 4, 5]), same, "var", ([0, 2], True, True)),
    ("var.dims_2_0_biased", normal([3, 4, 5]), same, "var", ([2, 0], False, False)),
    ("var.all_unbiased", normal([3, 4, 5]), same, "var", ([], True, False)),
    ("var.transposed_dims_0_1", normal([5, 4, 3]), transposed, "var", ([0, 1], True, False)),
    ("var.offset_mean", normal([4, 6], 0.1) + 50.0, same, "var", ([1], True, False)),
    ("std.dim1_unbiased", normal([4, 6]), same, "std", ([1], True, False)),
    ("std.dim0_biased_keepdim", normal([4, 6]), same, "std", ([0], False, True)),
    ("std.dims_1_2_unbiased", normal([3, 4, 5]), same, "std", ([1, 2], True, False)),
    ("std.all_biased", normal([3, 4, 5]), same, "std", ([], False, False)),
    ("std.transposed_dim2_biased", normal([5, 4, 3]), transposed, "std", ([2], False, False)),
    # logsumexp: large values, several dims.
    ("logsumexp.dim1", normal([4, 6]), same, "logsumexp", ([1], False)),
    ("logsumexp.large_dim1", uniform([4, 6], -100, 100), same, "logsumexp", ([1], False)),
    ("logsumexp.large_dims_0_2_keepdim", uniform([3, 4, 5], -100, 100), same, "logsumexp",
     ([0, 2], True)),
    ("logsumexp.all", normal([3, 4, 5], 10.0), same, "logsumexp", ([], False)),
    ("logsumexp.transposed_dim0", uniform([5, 4, 3], -90, 90), transposed, "logsumexp",
     ([0], False)),
]


def evaluate(op, v, args):
    """Returns (out, idx) for the view v."""
    if op == "softmax":
        return torch.softmax(v, args), None
    if op == "log_softmax":
        return torch.log_softmax(v, args), None
    if op in ("max", "min"):
        dim, keepdim = args
        out, idx = (torch.max if op == "max" else torch.min)(v, dim, keepdim=keepdim)
        return out, idx
    if op == "argmax":
        dim, keepdim = args
        return None, torch.argmax(v, dim, keepdim=keepdim)
    if op in ("var", "std"):
        dims, unbiased, keepdim = args
        fn = torch.var if op == "var" else torch.std
        return fn(v, reduce_dims(v, dims), unbiased=unbiased, keepdim=keepdim), None
    if op == "logsumexp":
        dims, keepdim = args
        return torch.logsumexp(v, reduce_dims(v, dims), keepdim=keepdim), None
    raise ValueError(op)


def first_extreme(v, dim, largest):
    """The first position of the extreme along dim, computed directly, to
    check that PyTorch's indices follow the documented tie rule."""
    best = v.amax(dim, keepdim=True) if largest else v.amin(dim, keepdim=True)
    hit = (v == best).to(torch.int64)
    pos = torch.arange(v.shape[dim]).view([-1 if d == dim % v.dim() else 1
                                           for d in range(v.dim())])
    return torch.where(hit.bool(), pos, v.shape[dim]).amin(dim)


def main():
    tensors = {}
    names = set()
    for name, x, view, op, args in CASES:
        assert name not in names, name
        names.add(name)
        x32 = x.float().contiguous()
        x64 = x32.double().requires_grad_(True)
        out, idx = evaluate(op, view(x64), args)
        tensors[name + ".in"] = x32
        if idx is not None:
            dim = args[0]
            want = first_extreme(view(x64).detach(), dim, op != "min")
            assert torch.equal(idx.reshape(want.shape), want), name
            tensors[name + ".idx"] = idx.to(torch.int32)
        if out is not None:
            dout = torch.randn(out.shape).float()
            out.backward(dout.double())
            tensors[name + ".out"] = out.detach().float()
            tensors[name + ".dout"] = dout
            tensors[name + ".grad"] = x64.grad.float()
    path = os.path.join(HERE, "reduce.safetensors")
    save(path, tensors, {"generator": "tests/golden/gen_reduce.py", "torch": torch.__version__})
    print("%s: %d cases, %d bytes" % (path, len(CASES), os.path.getsize(path)))


if __name__ == "__main__":
    main()
