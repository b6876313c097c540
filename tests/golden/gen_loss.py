#!/usr/bin/python3
"""Writes tests/golden/loss.safetensors, read by tests/test_loss.c.

    cd tests/golden && /usr/bin/python3 gen_loss.py

Each case below is one call of torch.nn.functional.cross_entropy, nll_loss
or mse_loss, in the layout of every op fixture (goldlib.case's, read by
tests/util.c's assert_golden_case). For a case NAME the file holds

    NAME.in0, NAME.in1           the leaf input and the int32 targets
                                 (mse: the two leaf inputs)
    NAME.out                     the loss
    NAME.dout                    a random upstream gradient of out's shape
    NAME.grad0 (mse: and .grad1) d(sum(out * dout)) / d(leaf)

The leaf is what is stored; the op sees view(leaf): the transposed and
permuted cases give it a class dim that is not contiguous, and the C test
builds the same view. Inputs and dout are float32; the references are
computed in float64 from those values and rounded once, so a tolerance only
has to cover cformer's own float32 rounding.
"""
import warnings

import torch
import torch.nn.functional as F

from goldlib import save

IGN = -100

# name: (leaf shape, view, target shape, ignore_index, label_smoothing,
#        reduction, input scale, whether some targets are ignore_index)
# view: None, ("t",) transpose(0, 1), or ("p", dims) permute(dims).
CE = {
    "ce.mean": ((7, 5), None, (7,), IGN, 0.0, "mean", 1, False),
    "ce.sum": ((7, 5), None, (7,), IGN, 0.0, "sum", 1, False),
    "ce.none": ((7, 5), None, (7,), IGN, 0.0, "none", 1, False),
    "ce.ignore.mean": ((7, 5), None, (7,), IGN, 0.0, "mean", 1, True),
    "ce.ignore.sum": ((7, 5), None, (7,), IGN, 0.0, "sum", 1, True),
    "ce.ignore.none": ((7, 5), None, (7,), IGN, 0.0, "none", 1, True),
    "ce.ignore_class": ((7, 5), None, (7,), 2, 0.0, "mean", 1, True),
    "ce.smooth.mean": ((7, 5), None, (7,), IGN, 0.1, "mean", 1, False),
    "ce.smooth.sum": ((7, 5), None, (7,), IGN, 0.1, "sum", 1, False),
    "ce.smooth.none": ((7, 5), None, (7,), IGN, 0.1, "none", 1, False),
    "ce.smooth_ignore.mean": ((7, 5), None, (7,), IGN, 0.1, "mean", 1, True),
    "ce.smooth_ignore.sum": ((7, 5), None, (7,), IGN, 0.1, "sum", 1, True),
    "ce.smooth_ignore.none": ((7, 5), None, (7,), IGN, 0.1, "none", 1, True),
    "ce.nd": ((3, 5, 4), None, (3, 4), IGN, 0.1, "mean", 1, True),
    "ce.nd_permuted": ((3, 4, 5), ("p", (0, 2, 1)), (3, 4), IGN, 0.1, "none", 1, True),
    "ce.c1": ((6, 1), None, (6,), IGN, 0.1, "mean", 1, True),
    "ce.prime_transposed": ((131, 13), ("t",), (13,), IGN, 0.1, "sum", 1, True),
    "ce.wide": ((3, 1031), None, (3,), IGN, 0.0, "mean", 1, False),
    "ce.sharp": ((5, 37), None, (5,), IGN, 0.1, "mean", 40, False),
}

NLL = {
    "nll.mean": ((7, 5), None, (7,), IGN, "mean"),
    "nll.sum": ((7, 5), None, (7,), IGN, "sum"),
    "nll.none": ((7, 5), None, (7,), IGN, "none"),
    "nll.nd_permuted": ((2, 3, 5), ("p", (0, 2, 1)), (2, 3), IGN, "mean"),
}

# name: (a shape, a view, b shape, reduction)
MSE = {
    "mse.mean": ((4, 1, 3), None, (5, 3), "mean"),
    "mse.sum": ((4, 1, 3), None, (5, 3), "sum"),
    "mse.none": ((4, 1, 3), None, (5, 3), "none"),
    "mse.transposed": ((3, 4), ("t",), (4, 3), "mean"),
}


def view(x, v):
    if v is None:
        return x
    if v[0] == "t":
        return x.t()
    return x.permute(*v[1])


def targets(gen, shape, classes, ignore, with_ignored):
    t = torch.randint(0, classes, shape, generator=gen)
    if with_ignored:
        # Ignore about a third, but never all, of the targets.
        flat = t.view(-1)
        for i in range(0, flat.numel(), 3):
            flat[i] = ignore
    return t


def main():
    gen = torch.Generator().manual_seed(20240611)
    out = {}

    def backward(name, loss, leaves):
        dout = torch.randn(loss.shape, generator=gen).float()
        loss.backward(dout.double())
        out[name + ".out"] = loss.float()
        out[name + ".dout"] = dout
        for key, leaf in leaves.items():
            out[name + "." + key] = leaf.grad.float()

    for name, (shape, v, tshape, ign, ls, red, scale, with_ignored) in CE.items():
        x = (torch.randn(shape, generator=gen) * scale).float()
        xv = view(x, v)
        classes = xv.shape[1]
        t = targets(gen, tshape, classes, ign, with_ignored)
        x64 = x.double().requires_grad_(True)
        loss = F.cross_entropy(view(x64, v), t, ignore_index=ign,
                               label_smoothing=ls, reduction=red)
        out[name + ".in0"] = x
        out[name + ".in1"] = t
        backward(name, loss, {"grad0": x64})

    for name, (shape, v, tshape, ign, red) in NLL.items():
        x = torch.log_softmax(torch.randn(shape, generator=gen), -1).float()
        classes = view(x, v).shape[1]
        t = targets(gen, tshape, classes, ign, True)
        x64 = x.double().requires_grad_(True)
        loss = F.nll_loss(view(x64, v), t, ignore_index=ign, reduction=red)
        out[name + ".in0"] = x
        out[name + ".in1"] = t
        backward(name, loss, {"grad0": x64})

    for name, (ashape, v, bshape, red) in MSE.items():
        a = torch.randn(ashape, generator=gen).float()
        b = torch.randn(bshape, generator=gen).float()
        a64 = a.double().requires_grad_(True)
        b64 = b.double().requires_grad_(True)
        with warnings.catch_warnings():  # the one about broadcasting
            warnings.simplefilter("ignore")
            loss = F.mse_loss(view(a64, v), b64, reduction=red)
        out[name + ".in0"] = a
        out[name + ".in1"] = b
        backward(name, loss, {"grad0": a64, "grad1": b64})

    save("loss.safetensors", out, {"generator": "gen_loss.py", "torch": torch.__version__})


if __name__ == "__main__":
    main()
