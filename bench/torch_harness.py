"""What the PyTorch benchmark scripts in bench/ share: the thread count and
the timing method of bench/harness.c.

A script is run from any directory, so it puts its own directory first on
sys.path before `import torch_harness`. Then:

    p = torch_harness.arg_parser(__doc__)   # --threads N; add options to p
    torch, args = torch_harness.import_torch(p)
    ms = 1e3 * torch_harness.seconds_per_call(step, WARMUP, TARGET / torch_harness.REPS)

With --worker NAME a script serves bench/suite instead (serve(fn, warmup)):
the protocol of bench_serve in bench/harness.h.

The thread count defaults to what cformer uses: CF_NUM_THREADS, else the
cores this process may run on. torch.set_num_threads covers torch's own
kernels only; the system BLAS that a Debian torch calls for its matmuls
(here BLIS) and OpenMP take their counts from the environment when they
load, so those variables are set to the same count before torch is imported.

Method: a warm-up of at least `warmup` seconds (and two calls) measures a
call; then REPS repetitions, each as many calls as fill about `rep_seconds`
(at least one), and the median repetition is the result.
"""
import argparse
import os
import statistics
import sys
import time

REPS = 7  # repetitions per measurement, as bench/harness.h's BENCH_REPS


def default_threads():
    env = os.environ.get("CF_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0))


def arg_parser(doc):
    """A parser described by doc's first line, with --threads N."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--threads", type=int, default=default_threads(),
                   help="threads for torch (default: as cformer)")
    p.add_argument("--worker", metavar="NAME",
                   help="serve bench/suite's requests for workload NAME")
    return p


def import_torch(parser):
    """Parses the command line, sets the thread count, imports torch;
    returns (torch, args)."""
    args = parser.parse_args()
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    for var in ("BLIS_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "OMP_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import warnings
    warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors")
    import torch
    torch.set_num_threads(args.threads)
    return torch, args


def seconds_per_call(fn, warmup, rep_seconds):
    """Seconds per call of fn(), by the method above."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= warmup and n >= 2:
            break
    calls = max(1, int(rep_seconds / (dt / n)))
    times = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


def serve(fn, warmup):
    """Worker mode: warm up, print "ready S 0", then answer each "run N" line
    on stdin with the wall and CPU seconds per call of N calls of fn();
    returns 0 at end of input, 1 on a bad request."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= warmup and n >= 2:
            break
    print(f"ready {dt / n:.9g} 0", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 2 or parts[0] != "run" or not parts[1].isdigit() or int(parts[1]) < 1:
            print(f"error bad request: {line.strip()}", flush=True)
            return 1
        calls = int(parts[1])
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(calls):
            fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"{wall / calls:.9g} {cpu / calls:.9g}", flush=True)
    return 0
