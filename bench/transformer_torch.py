#!/usr/bin/python3
"""bench/transformer in PyTorch: the same small Transformer, for comparison.

    /usr/bin/python3 bench/transformer_torch.py [--threads N]
    /usr/bin/python3 bench/transformer_torch.py --worker train|infer|base-train

Same model, batch, steps, method and output as bench/transformer:
tests/golden/models.py's Transformer (torch.nn.Transformer(d_model=256,
nhead=4, 3 + 3 layers, dim_feedforward=1024, dropout=0.1, batch_first=True)
between two nn.Embedding(8000, 256, padding_idx=0) tables scaled by
sqrt(d_model) plus the sinusoidal encoding and an nn.Linear generator);
source, target and labels are [32, 64] random tokens without padding, and
the key padding and causal masks are passed as cf_transformer builds them.
train = forward, mean cross entropy (ignore_index 0), zero_grad, backward,
AdamW (lr 1e-4, betas 0.9 0.98, eps 1e-9, weight decay 0.01); inference =
eval mode under torch.no_grad(); base-train (worker only) = the train step of
the paper's base model (6+6 layers, d_model 512, 8 heads, ff 2048) at batch
8 x 64. The median of 7 repetitions of about 5 s
in all, after a warm-up.

Threads and timing: bench/torch_harness.py; the thread count defaults to
what cformer uses.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "tests", "golden")]
import torch_harness  # noqa: E402
from torch_harness import REPS  # noqa: E402

TARGET_SECONDS = 5.0
WARMUP_SECONDS = 1.0
BATCH, LEN, VOCAB = 32, 64, 8000
D, HEADS, LAYERS, FF = 256, 4, 3, 1024
BASE = dict(batch=8, d=512, heads=8, layers=6, ff=2048)
PAD = 0


def build(d=D, heads=HEADS, layers=LAYERS, ff=FF):
    import models
    return models.Transformer(VOCAB, VOCAB, d, heads, layers, layers, ff, dropout=0.1, pad=PAD,
                              max_len=LEN)


def ms_per_step(step):
    return 1e3 * torch_harness.seconds_per_call(step, WARMUP_SECONDS, TARGET_SECONDS / REPS)


def main():
    torch, args = torch_harness.import_torch(torch_harness.arg_parser(__doc__))
    if args.worker not in (None, "train", "infer", "base-train"):
        print(f"no workload '{args.worker}' (train, infer, base-train)", file=sys.stderr)
        return 2
    torch.manual_seed(1234)
    batch = BATCH
    if args.worker == "base-train":
        batch = BASE["batch"]
        model = build(BASE["d"], BASE["heads"], BASE["layers"], BASE["ff"])
    else:
        model = build()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9,
                            weight_decay=0.01)
    src, tgt, labels = (torch.randint(3, VOCAB, (batch, LEN)) for _ in range(3))

    def train():
        logits = model(src, tgt)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), labels.reshape(-1),
                                                 ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def infer():
        with torch.no_grad():
            model(src, tgt)

    if args.worker:
        model.train(args.worker != "infer")
        return torch_harness.serve(infer if args.worker == "infer" else train, WARMUP_SECONDS)
    print(f"threads: {torch.get_num_threads()} (torch.set_num_threads, BLIS_NUM_THREADS)")
    nparams = sum(p.numel() for p in model.parameters())
    print(f"Transformer d_model {D}, {HEADS} heads, {LAYERS}+{LAYERS} layers, ff {FF}, "
          f"vocab {VOCAB}, batch {BATCH} x {LEN}; {nparams} parameters; "
          f"PyTorch {torch.__version__}, median of {REPS} repetitions")
    model.train()
    t_train = ms_per_step(train)
    model.eval()
    t_infer = ms_per_step(infer)
    print(f"{'train (fwd + bwd + AdamW)':<36s} {t_train:10.2f} ms/step")
    print(f"{'inference (no grad, eval)':<36s} {t_infer:10.2f} ms/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
