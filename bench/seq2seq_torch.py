#!/usr/bin/python3
"""bench/seq2seq in PyTorch: the same GRU seq2seq with additive attention.

    /usr/bin/python3 bench/seq2seq_torch.py [--threads N]
    /usr/bin/python3 bench/seq2seq_torch.py --worker train|greedy

Same model, batch, steps, method and output as bench/seq2seq: vocabularies
60 and 50, emb 64, hidden 128, attn 64, 2 bidirectional encoder layers,
dropout 0, batch 64, sources of 20 tokens and targets of bos + 20 tokens,
sequence i shorter by i % 5 and padded; train = teacher-forced forward,
mean cross entropy (ignore_index pad), zero_grad, backward, Adam (lr 1e-3);
greedy = eval mode under torch.no_grad(), up to 20 tokens, stopping when
every sequence has produced eos. The median of 7 repetitions of about 3 s
in all, after a warm-up. The model is tests/golden/models.py's Seq2Seq
(nn.GRU over each source packed to its length, a GRUCell decoder step by
step, as zoo/seq2seq.c).

Threads and timing: bench/torch_harness.py; the thread count defaults to
what cformer uses.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "tests", "golden")]
import torch_harness  # noqa: E402
from torch_harness import REPS  # noqa: E402

TARGET_SECONDS = 3.0
WARMUP_SECONDS = 0.5
BATCH = 64
LEN = 20
SRC_VOCAB, TGT_VOCAB, EMB, HIDDEN, ATTN, LAYERS = 60, 50, 64, 128, 64, 2
PAD, BOS, EOS = 0, 1, 2


def token(i, t, vocab):
    """The token of sequence i at position t, as bench/seq2seq.c."""
    if t >= LEN - i % 5:
        return PAD
    return 3 + (i * 31 + t * 17 + (i * t) % 7) % (vocab - 3)


def ms_per_step(step):
    return 1e3 * torch_harness.seconds_per_call(step, WARMUP_SECONDS, TARGET_SECONDS / REPS)


def main():
    torch, args = torch_harness.import_torch(torch_harness.arg_parser(__doc__))
    if args.worker not in (None, "train", "greedy"):
        print(f"no workload '{args.worker}' (train, greedy)", file=sys.stderr)
        return 2
    import models
    torch.manual_seed(1234)
    model = models.Seq2Seq(SRC_VOCAB, TGT_VOCAB, EMB, HIDDEN, ATTN, LAYERS, pad=PAD)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    src = torch.tensor([[token(i, t, SRC_VOCAB) for t in range(LEN)] for i in range(BATCH)])
    labels = torch.tensor([[token(i + 1, t, TGT_VOCAB) for t in range(LEN)]
                           for i in range(BATCH)])
    tgt = torch.cat((torch.full((BATCH, 1), BOS), labels), dim=1)

    def train():
        logits, _ = model(src, tgt)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, TGT_VOCAB),
                                                 labels.reshape(-1), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def greedy():
        model.eval()
        with torch.no_grad():
            model.greedy(src, LEN, BOS, EOS)
        model.train()

    if args.worker:
        model.train()
        return torch_harness.serve(train if args.worker == "train" else greedy, WARMUP_SECONDS)
    print(f"threads: {torch.get_num_threads()} (torch.set_num_threads, BLIS_NUM_THREADS)")
    nparams = sum(p.numel() for p in model.parameters())
    print(f"seq2seq GRU + additive attention, emb 64, hidden 128, attn 64, 2 encoder layers, "
          f"vocab 60/50, batch {BATCH}, length {LEN}; {nparams} parameters; "
          f"PyTorch {torch.__version__}, median of {REPS} repetitions")
    model.train()
    t_train = ms_per_step(train)
    t_greedy = ms_per_step(greedy)
    print(f"{'train (fwd + bwd + Adam)':<36s} {t_train:10.2f} ms/step")
    print(f"{'greedy decoding (20 tokens)':<36s} {t_greedy:10.2f} ms/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
