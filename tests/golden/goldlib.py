"""Shared helpers for the golden-fixture scripts: the safetensors writer and
the per-op case layout of gen_math.py, gen_rnn.py and gen_score.py.

Run the scripts with /usr/bin/python3 (Debian's python3-torch, PyTorch 1.13).
"""
import json
import struct

import torch

DTYPES = {torch.float32: "F32", torch.int32: "I32", torch.bool: "BOOL", torch.int64: "I64"}


def save(path, tensors, metadata=None, keep_int64=False):
    """Writes {name: tensor} as safetensors (row-major, little-endian);
    int64 tensors become int32 unless keep_int64. String values (a case's
    "<name>.kink") go into the metadata."""
    header, blobs, offset = {}, [], 0
    metadata = dict(metadata or {})
    metadata.update({k: v for k, v in tensors.items() if isinstance(v, str)})
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        if isinstance(t, str):
            continue
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.int64 and not keep_int64:
            t = t.to(torch.int32)
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load(path):
    """Reads what save wrote: ({name: tensor}, metadata)."""
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    metadata = header.pop("__metadata__", {})
    names = {v: k for k, v in DTYPES.items()}
    tensors = {}
    for name, v in header.items():
        lo, hi = v["data_offsets"]
        data = bytearray(blob[8 + n + lo:8 + n + hi])
        dtype = names[v["dtype"]]
        t = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(v["shape"])
    return tensors, metadata


def same(path_a, path_b, rtol=1e-4, atol=1e-6):
    """Whether two fixtures hold the same names, metadata, shapes, dtypes and
    integers, and floats equal up to rounding (NaN to NaN): PyTorch's kernels
    and BLIS's blocking round differently from one processor to another."""
    (a, meta_a), (b, meta_b) = load(path_a), load(path_b)
    if meta_a != meta_b or a.keys() != b.keys():
        return False
    for name, x in a.items():
        y = b[name]
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if not (torch.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True)
                if x.is_floating_point()
                else torch.equal(x, y)):
            return False
    return True


def uniform(lo, hi, *shape):
    return torch.empty(*shape).uniform_(lo, hi)


def normal(*shape, scale=1.0):
    return torch.randn(shape) * scale


def case(out, name, fn, *inputs, kink=None):
    """Adds case name to out: fn maps the leaves (float ones in float64,
    requiring gradients) to the output. Stores name.in<i>, name.out and,
    for a float output, a random upstream gradient name.dout and each float
    leaf's gradient name.grad<i> (that of sum(out * dout)), rounded to
    float32; tests/util.c's assert_golden_case reads this layout and
    gradient-checks the case at its inputs, unless kink says why not (the
    inputs sit where the op has no derivative): stored as name.kink."""
    leaves = [t.double().requires_grad_() if t.is_floating_point() else t for t in inputs]
    result = fn(*leaves)
    if kink:
        out[f"{name}.kink"] = kink
    for i, t in enumerate(inputs):
        out[f"{name}.in{i}"] = t
    if not result.requires_grad:
        out[f"{name}.out"] = result
        return
    out[f"{name}.out"] = result.float()
    dout = torch.randn(result.shape)
    result.backward(dout.double())
    out[f"{name}.dout"] = dout
    for i, t in enumerate(leaves):
        if t.is_floating_point():
            out[f"{name}.grad{i}"] = t.grad.float()
