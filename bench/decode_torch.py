#!/usr/bin/python3
"""bench/decode in PyTorch: greedy decoding with the same small Transformer.

    /usr/bin/python3 bench/decode_torch.py [--threads N]
    /usr/bin/python3 bench/decode_torch.py --worker b1|b32

Same model and call as bench/decode: tests/golden/models.py's Transformer
(torch.nn.Transformer(d_model=256, nhead=4, 3 + 3 layers,
dim_feedforward=1024, batch_first=True) between two nn.Embedding(1000, 256,
padding_idx=0) tables scaled by sqrt(d_model) plus the sinusoidal encoding
and an nn.Linear generator), in eval mode under
torch.no_grad(). A call encodes a batch of B sources of 64 random tokens once,
then makes 64 tokens per sequence, each the argmax (padding excluded) of the
last position after running the decoder over the whole prefix: nn.Transformer
has no key/value cache, so this is how it is used. b1: batch 1; b32: batch
32. The median of 7 repetitions of about 3 s in all, after a warm-up,
reported in tokens per second.

Threads and timing: bench/torch_harness.py; the thread count defaults to
what cformer uses.
"""
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "tests", "golden")]
import torch_harness  # noqa: E402
from torch_harness import REPS  # noqa: E402

TARGET_SECONDS = 3.0
WARMUP_SECONDS = 0.5
SRC_LEN, NEW_TOKENS, VOCAB = 64, 64, 1000
D, HEADS, LAYERS, FF = 256, 4, 3, 1024
PAD, BOS = 0, 1


def greedy(torch, model, src):
    """NEW_TOKENS tokens after BOS, each the argmax (padding excluded) of the
    decoder run over the whole prefix."""
    memory = model.encode(src)
    ys = torch.full((src.shape[0], 1), BOS, dtype=torch.long)
    for _ in range(NEW_TOKENS):
        logits = model.decode(ys, memory, src, pad_mask=False)[:, -1]
        logits[:, PAD] = -math.inf
        ys = torch.cat((ys, logits.argmax(-1, keepdim=True)), dim=1)
    return ys[:, 1:]


def main():
    torch, args = torch_harness.import_torch(torch_harness.arg_parser(__doc__))
    if args.worker not in (None, "b1", "b32"):
        print(f"no workload '{args.worker}' (b1, b32)", file=sys.stderr)
        return 2
    import models
    torch.manual_seed(1234)
    model = models.Transformer(VOCAB, VOCAB, D, HEADS, LAYERS, LAYERS, FF, dropout=0.1, pad=PAD,
                               max_len=SRC_LEN + NEW_TOKENS)
    model.eval()

    def calls(batch):
        src = torch.randint(3, VOCAB, (batch, SRC_LEN))

        def call():
            with torch.no_grad():
                greedy(torch, model, src)
        return call

    if args.worker:
        return torch_harness.serve(calls(32 if args.worker == "b32" else 1), WARMUP_SECONDS)
    print(f"threads: {torch.get_num_threads()} (torch.set_num_threads, BLIS_NUM_THREADS)")
    print(f"greedy decoding without a cache, nn.Transformer d_model {D}, {HEADS} heads, "
          f"{LAYERS}+{LAYERS} layers, ff {FF}, vocab {VOCAB}, source {SRC_LEN}, {NEW_TOKENS} new "
          f"tokens; PyTorch {torch.__version__}, median of {REPS} repetitions")
    for batch in (1, 32):
        s = torch_harness.seconds_per_call(calls(batch), WARMUP_SECONDS, TARGET_SECONDS / REPS)
        print(f"batch {batch:<30d} {batch * NEW_TOKENS / s:10.0f} tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
