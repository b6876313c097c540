"""Shared helpers for the golden-fixture scripts: the safetensors writer.

Run the scripts with /usr/bin/python3 (Debian's python3-torch, PyTorch 1.13).
"""
import json
import struct

import torch

DTYPES = {torch.float32: "F32", torch.int32: "I32", torch.bool: "BOOL", torch.int64: "I64"}


def save(path, tensors, metadata=None, keep_int64=False):
    """Writes {name: tensor} as safetensors (row-major, little-endian);
    int64 tensors become int32 unless keep_int64."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
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
