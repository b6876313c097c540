#!/usr/bin/python3
"""Checkpoint interop with PyTorch 1.13, both ways (tests/test_checkpoint.c).

    cd tests/golden && /usr/bin/python3 gen_checkpoint.py

writes

    torch_net.safetensors   the state_dict of Net below, exactly as PyTorch
                            names it (fc1.weight, fc1.bias, norm.weight,
                            norm.bias, fc2.weight, fc2.bias), with the
                            metadata {"format": "pt"} that safetensors.torch
                            writes; the C test loads it strictly into the
                            same model built from cformer modules
    checkpoint.safetensors  x [5, 4] and y = Net(x) [5, 3] computed by torch

    /usr/bin/python3 gen_checkpoint.py --check MODEL OUT

is the other way: it reads MODEL, a checkpoint cformer wrote of the same
model, with an independent reader (goldlib.load: json + struct, not cformer's),
loads it into Net with load_state_dict(strict=True), and checks that
Net(x) matches y for the x and y that cformer stored in OUT (tolerance
1e-5 + 1e-4*|y|). test_checkpoint runs this when /usr/bin/python3 can import
torch and skips it otherwise.
"""
import sys

import torch
import torch.nn.functional as F

from goldlib import load, save


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 6)
        self.norm = torch.nn.LayerNorm(6)
        self.fc2 = torch.nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(F.gelu(self.norm(self.fc1(x))))


def check(model_path, out_path):
    state, meta = load(model_path)
    net = Net()
    want = set(net.state_dict())
    if set(state) != want:
        sys.exit(f"{model_path}: names {sorted(state)}, want {sorted(want)}")
    for name, t in net.state_dict().items():
        if state[name].shape != t.shape:
            sys.exit(f"{model_path}: {name} has shape {list(state[name].shape)}, "
                     f"want {list(t.shape)}")
    net.load_state_dict(state, strict=True)
    io, _ = load(out_path)
    with torch.no_grad():
        y = net(io["x"])
    err = (y - io["y"]).abs() - (1e-5 + 1e-4 * io["y"].abs())
    if err.max() > 0:
        sys.exit(f"{model_path}: torch's forward differs from cformer's by up to "
                 f"{(y - io['y']).abs().max().item():.3g}")
    print(f"{model_path}: {len(state)} tensors, format {meta.get('format')}: "
          f"torch's forward matches cformer's")


def main():
    torch.manual_seed(20240613)
    net = Net()
    with torch.no_grad():  # LayerNorm starts at ones and zeros: make it visible
        net.norm.weight.uniform_(0.5, 1.5)
        net.norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(5, 4)
    with torch.no_grad():
        y = net(x)
    save("torch_net.safetensors", net.state_dict(), {"format": "pt"})
    save("checkpoint.safetensors", {"x": x, "y": y},
         {"generator": "gen_checkpoint.py", "torch": torch.__version__})


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3])
    else:
        main()
