#!/usr/bin/python3
"""torch.matmul on the shapes of bench/matmul.c, for comparison.

    /usr/bin/python3 bench/bench_torch.py [--threads N]

Same cases, method and columns as bench/matmul: forward only under
torch.no_grad(), a warm-up, then the median of 7 repetitions of about 0.3 s
in all; GFLOP/s counts 2 M N K per matrix. The thread count defaults to what
cformer uses: CF_NUM_THREADS, else the cores this process may run on. The
ratio column is torch over BLIS when a run of bench/matmul (its stdout) is
passed with --blis FILE; otherwise it is left out.

Threads and timing: bench/torch_harness.py. A Debian torch does its float
matmuls in the system BLAS (here BLIS through its BLAS interface), which
takes the thread count torch_harness puts in the environment.
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_harness  # noqa: E402
from torch_harness import REPS  # noqa: E402

TARGET_SECONDS = 0.3
WARMUP_SECONDS = 0.05


def cases(torch, gen):
    """(name, flops, a, b) for each case; names match bench/matmul."""
    def rand(*shape):
        return torch.rand(*shape, generator=gen) * 2 - 1

    out = []
    for name, m, k, n in [("512x512x512", 512, 512, 512),
                          ("1024x1024x1024", 1024, 1024, 1024),
                          ("64x512x2048", 64, 512, 2048)]:
        out.append((name, 2 * m * k * n, rand(m, k), rand(k, n)))
    B, H, T, D = 32, 8, 64, 64
    q, k = rand(B, H, T, D), rand(B, H, T, D)
    out.append(("[32,8] 64x64x64 Q@K^T", 2 * B * H * T * D * T, q,
                k.transpose(-2, -1)))  # a view, as in cformer
    M, K, N = 1024, 512, 1024
    at = rand(K, M)
    out.append(("1024x512x1024 A^T@B", 2 * M * K * N, at.t(), rand(K, N)))
    return out


def blis_column(path):
    """BLIS GFLOP/s by case name, read from bench/matmul's output."""
    col = {}
    with open(path) as f:
        for line in f:
            parts = line.rsplit(None, 3)
            if len(parts) == 4:
                try:
                    col[parts[0].strip()] = float(parts[2])
                except ValueError:
                    pass
    return col


def main():
    p = torch_harness.arg_parser(__doc__)
    p.add_argument("--blis", metavar="FILE",
                   help="bench/matmul output, for a torch/BLIS column")
    torch, args = torch_harness.import_torch(p)
    blis = blis_column(args.blis) if args.blis else {}

    print(f"threads: {torch.get_num_threads()} "
          f"(torch.set_num_threads, BLIS_NUM_THREADS)")
    print(f"torch.matmul forward, PyTorch {torch.__version__}, "
          f"median of {REPS} repetitions")
    head = f"{'M x K x N':<26s} {'torch GFLOP/s':>16s}"
    if blis:
        head += f" {'BLIS GFLOP/s':>14s} {'torch/BLIS':>14s}"
    print(head)
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, flops, a, b in cases(torch, gen):
            s = torch_harness.seconds_per_call(functools.partial(torch.matmul, a, b),
                                               WARMUP_SECONDS, TARGET_SECONDS / REPS)
            g = flops / s * 1e-9
            line = f"{name:<26s} {g:16.1f}"
            if name in blis:
                line += f" {blis[name]:14.1f} {g / blis[name]:14.2f}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
