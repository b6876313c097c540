#!/usr/bin/python3
"""Writes tests/golden/layers.safetensors, read by tests/test_layers.c.

    cd tests/golden && /usr/bin/python3 gen_layers.py

The cases follow gen_nn.py (its case() helper, and the file layout it
describes): a torch.nn module, or a reference written here with the names
cformer uses, run in float64 on float32 inputs, with the gradients of
sum(output * upstream) for every float input and parameter.
"""
import os

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from gen_nn import case, rand
from goldlib import save

HERE = os.path.dirname(os.path.abspath(__file__))


def packed_gru_run(with_h0):
    """nn.GRU over pack_padded_sequence(x, lengths), padded back to T."""

    def run(m, t):
        x = t["x"]
        packed = pack_padded_sequence(x, t["lengths"].long(), batch_first=True,
                                      enforce_sorted=False)
        o, h = m(packed, t["h0"]) if with_h0 else m(packed)
        o, _ = pad_packed_sequence(o, batch_first=True, total_length=x.shape[1])
        return {"out": o, "h_n": h}

    return run


def main():
    torch.manual_seed(0)
    out, meta = {}, {}

    # ---- GRU over padded sequences ----
    m = nn.GRU(5, 4, num_layers=2, bidirectional=True, batch_first=True)
    case(out, meta, "gru_packed", m,
         {"x": rand(3, 6, 5), "lengths": torch.tensor([6, 2, 4], dtype=torch.int32)},
         packed_gru_run(False), diff=("out", "h_n"))
    m = nn.GRU(3, 4, num_layers=1, batch_first=True)
    case(out, meta, "gru_packed_h0", m,
         {"x": rand(2, 5, 3), "lengths": torch.tensor([3, 5], dtype=torch.int32),
          "h0": rand(1, 2, 4)},
         packed_gru_run(True), diff=("out", "h_n"))

    save(os.path.join(HERE, "layers.safetensors"), out, metadata=meta)


if __name__ == "__main__":
    main()
