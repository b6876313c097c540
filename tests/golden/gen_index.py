#!/usr/bin/python3
"""Writes tests/golden/index.safetensors, read by tests/test_index.c
(embedding, index_select, gather) and tests/test_join.c (cat, stack).

    cd tests/golden && /usr/bin/python3 gen_index.py

For case <c> the file holds the inputs <c>.in0, <c>.in1, ... (float32
leaves, or int32 indices), <c>.out, a random upstream gradient <c>.dout and
<c>.grad<i> for each float input: the gradient of sum(out * dout). An input
the case uses transposed is stored as laid out in memory and transposed in
the expression, as the C test does with cf_transpose. Inputs are float32;
references are computed in float64 from those values and rounded once. The
expressions must match the case functions in test_index.c and test_join.c.
"""
import os

import torch
import torch.nn.functional as F
from goldlib import save

HERE = os.path.dirname(os.path.abspath(__file__))


def idx(*values):
    return torch.tensor(values, dtype=torch.int32)


def cases():
    """name -> (inputs, function of the float64 inputs)."""
    return {
        # Repeated indices, and the padding row 3 picked twice.
        "embedding_padded": (
            [torch.randn(6, 4), idx([1, 3, 1], [0, 5, 3])],
            lambda w, i: F.embedding(i.long(), w, padding_idx=3)),
        "embedding_plain": (
            [torch.randn(5, 3), idx(4, 0, 4, 4, 2, 1, 0)],
            lambda w, i: F.embedding(i.long(), w)),
        "index_select_dim0": (
            [torch.randn(5, 3), idx(4, 0, 4, 2)],
            lambda a, i: a.index_select(0, i.long())),
        "index_select_dim1_of_3d": (
            [torch.randn(2, 5, 3), idx(1, 1, 4)],
            lambda a, i: a.index_select(1, i.long())),
        "gather_dim0": (
            [torch.randn(4, 5), torch.randint(0, 4, (3, 5), dtype=torch.int32)],
            lambda a, i: a.gather(0, i.long())),
        "gather_dim1": (
            [torch.randn(3, 6), torch.randint(0, 6, (3, 4), dtype=torch.int32)],
            lambda a, i: a.gather(1, i.long())),
        # a stored as [6, 3], gathered as its transpose [3, 6].
        "gather_dim1_transposed": (
            [torch.randn(6, 3), torch.randint(0, 6, (2, 5), dtype=torch.int32)],
            lambda a, i: a.t().gather(1, i.long())),
        "cat_dim0": (
            [torch.randn(2, 3), torch.randn(4, 3)],
            lambda a, b: torch.cat([a, b], 0)),
        "cat_dim1": (
            [torch.randn(2, 3), torch.randn(2, 5), torch.randn(2, 1)],
            lambda a, b, c: torch.cat([a, b, c], 1)),
        # b stored as [2, 3], joined as its transpose [3, 2].
        "cat_last_transposed": (
            [torch.randn(3, 4), torch.randn(2, 3)],
            lambda a, b: torch.cat([a, b.t()], -1)),
        "stack_dim1": (
            [torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 3)],
            lambda a, b, c: torch.stack([a, b, c], 1)),
        "stack_last": (
            [torch.randn(4), torch.randn(4)],
            lambda a, b: torch.stack([a, b], -1)),
    }


def main():
    torch.manual_seed(0)
    out = {}
    for name, (inputs, fn) in cases().items():
        leaves = [t.double().requires_grad_() if t.is_floating_point() else t
                  for t in inputs]
        y = fn(*leaves)
        dout = torch.randn(y.shape)
        y.backward(dout.double())
        for i, (t, leaf) in enumerate(zip(inputs, leaves)):
            out[f"{name}.in{i}"] = t
            if t.is_floating_point():
                out[f"{name}.grad{i}"] = leaf.grad.float()
        out[name + ".out"] = y.float()
        out[name + ".dout"] = dout
        if name == "embedding_padded":
            out[name + ".kink"] = "the padding row gets no gradient, by convention"
    save(os.path.join(HERE, "index.safetensors"), out)


if __name__ == "__main__":
    main()
