#!/usr/bin/python3
"""examples/g2p_seq2seq in PyTorch 1.13: the same model, data, split,
recipe and budget, for results side by side (docs/results.md).

    /usr/bin/python3 examples/torch/g2p_seq2seq.py --threads 1 --minutes 60

Model (cf_seq2seq: tests/golden/models.py's Seq2Seq): embeddings
(128, padding row zero) with dropout, a bidirectional GRU encoder (hidden
256, over pack_padded_sequence), a bridge tanh(Linear(2H -> H)) of the last
forward and backward states, and a decoder step that attends from the
previous state (additive attention, size 256), runs a GRUCell over
[emb ; context] and predicts from [state ; context ; emb]. Teacher forcing.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..", "tests", "golden")]
import g2p_common as gc  # noqa: E402


def main():
    p = gc.arg_parser(__doc__, "g2p_seq2seq_torch_out")
    p.add_argument("--emb", type=int, default=128)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--attn", type=int, default=256)
    p.add_argument("--enc-layers", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.1)
    a = p.parse_args()
    import torch
    F = torch.nn.functional
    run = gc.Run(torch, a, "g2p_seq2seq_torch")
    import models
    model = models.Seq2Seq(gc.SRC_VOCAB, gc.TGT_VOCAB, a.emb, a.hidden, a.attn, a.enc_layers,
                           dropout=a.dropout, pad=gc.PAD)

    def loss_fn(src, tgt, smoothing):
        logits, _ = model(src, tgt)
        return F.cross_entropy(logits.reshape(-1, gc.TGT_VOCAB), tgt[:, 1:].reshape(-1),
                               ignore_index=gc.PAD, label_smoothing=smoothing)

    def greedy(src):
        return model.greedy(src, gc.MAX_OUT, gc.BOS, gc.EOS)

    def beam(src, width, alpha):
        enc = model.encode(src)
        state = {"s": enc[3]}

        def step(seqs, rows):
            n = len(seqs)
            y = torch.tensor([s[-1] if s else gc.BOS for s in seqs])
            e = tuple(t.expand(n, *t.shape[1:]) for t in enc[:3])
            logits, state["s"], _ = model.step(y, state["s"][rows], e)
            return torch.log_softmax(logits, -1)

        return gc.beam_search(step, width, alpha, gc.MAX_OUT)

    return run.train(model, {"greedy": greedy, "beam": beam}, loss_fn)


if __name__ == "__main__":
    sys.exit(main())
