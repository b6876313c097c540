#!/usr/bin/python3
"""The ops of bench/ops.c in PyTorch, for comparison.

    /usr/bin/python3 bench/ops_torch.py [--threads N]

bench/ops runs this script itself and puts its times next to cformer's; run
by hand it prints the same machine-readable lines:

    # a comment (versions, thread count)
    <op> <shape> <pass> <milliseconds per call>

with the op, shape and pass spelled as in bench/ops.c, so the two sides
match by name. --only OP SHAPE times that one workload: bench/ops runs the
script once per workload, just before timing it itself, so that both sides
of a row see about the same load on a shared machine.

Passes: "fwd" is the forward under torch.no_grad(); "fwd+bwd" is the
forward with recording on, then torch.autograd.grad of the output with a
fixed upstream gradient (of the scalar loss for cross_entropy) with respect
to every input, as a training step computes it. autograd.grad returns fresh
gradients, as .backward() after zero_grad(set_to_none=True) makes them,
where cformer adds into gradients its heap inputs keep.

Method, as in bench/ops.c (bench/torch_harness.py): a warm-up, then the
median of REPS repetitions, each as many calls as fill about TARGET_SECONDS.

PyTorch 1.13 has no F.scaled_dot_product_attention, so attention is written
out as softmax(q @ k^T * scale + mask) @ v, the causal mask an additive
[T, T] float mask of -inf above the diagonal, built once outside the timing.

The thread count defaults to what cformer uses (bench/torch_harness.py).
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_harness  # noqa: E402
from torch_harness import REPS  # noqa: E402

TARGET_SECONDS = 0.3  # per repetition
WARMUP_SECONDS = 0.1


def workloads(torch):
    """(op, shape, passes, make) per workload of bench/ops.c; make() returns
    the float inputs and forward, where forward(*inputs) is the output and
    the fwd+bwd pass differentiates it with respect to every input. Inputs
    are made only for the workloads that run."""
    F = torch.nn.functional
    randn = torch.randn

    def attention(causal, shape):
        scale = 1 / math.sqrt(shape[-1])
        t = shape[-2]
        mask = torch.full((t, t), -math.inf).triu(1) if causal else None

        def forward(q, k, v):
            s = q @ k.transpose(-2, -1) * scale
            if mask is not None:
                s = s + mask
            return torch.softmax(s, -1) @ v
        return [randn(*shape) for _ in range(3)], forward

    def cross_entropy():
        target = torch.randint(0, 8192, (4096,))
        return [randn(4096, 8192)], lambda x: F.cross_entropy(x, target)

    both, fwd = ("fwd", "fwd+bwd"), ("fwd",)
    yield ("softmax", "[8192,1024]", both,
           lambda: ([randn(8192, 1024)], lambda x: torch.softmax(x, -1)))
    yield ("softmax", "[32768,128]", both,
           lambda: ([randn(32 * 8 * 128, 128)], lambda x: torch.softmax(x, -1)))
    yield ("layer_norm", "[8192,768]", both,
           lambda: ([randn(8192, 768), randn(768), randn(768)],
                    lambda x, w, b: F.layer_norm(x, (768,), w, b, 1e-5)))
    yield ("cross_entropy", "[4096,8192]", both, cross_entropy)
    for shape, passes in (((32, 8, 128, 64), both), ((4, 8, 1024, 64), fwd)):
        name = "[" + ",".join(map(str, shape)) + "]"
        for op, causal in (("attention", False), ("attention_causal", True)):
            yield (op, name, passes,
                   lambda causal=causal, shape=shape: attention(causal, shape))
    # The zoo's small heads: the ViT's (16 patches + CLS) and a G2P decoder's.
    for op, causal, shape in (("attention", False, (128, 4, 17, 32)),
                              ("attention_causal", True, (128, 4, 10, 32))):
        name = "[" + ",".join(map(str, shape)) + "]"
        yield (op, name, both, lambda causal=causal, shape=shape: attention(causal, shape))


def main():
    p = torch_harness.arg_parser(__doc__)
    p.add_argument("--only", nargs=2, metavar=("OP", "SHAPE"),
                   help="time this workload only, e.g. softmax [8192,1024]")
    torch, args = torch_harness.import_torch(p)
    torch.manual_seed(1234)

    print(f"# PyTorch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {REPS} repetitions of ~{TARGET_SECONDS} s", flush=True)
    for op, shape, passes, make in workloads(torch):
        if args.only and [op, shape] != args.only:
            continue
        inputs, forward = make()
        dout = None
        for ps in passes:
            if ps == "fwd":
                def run():
                    with torch.no_grad():
                        forward(*inputs)
            else:
                leaves = [x.requires_grad_() for x in inputs]
                if dout is None:
                    with torch.no_grad():
                        y = forward(*inputs)
                    dout = torch.randn(y.shape) if y.dim() else None

                def run():
                    y = forward(*leaves)
                    torch.autograd.grad(y, leaves, dout)
            ms = 1e3 * torch_harness.seconds_per_call(run, WARMUP_SECONDS, TARGET_SECONDS)
            print(f"{op} {shape} {ps} {ms:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
