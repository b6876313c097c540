#!/usr/bin/python3
"""examples/g2p_transformer in PyTorch 1.13: the same model, data, split,
recipe and budget, for results side by side (docs/results.md).

    /usr/bin/python3 examples/torch/g2p_transformer.py --threads 1 --minutes 60

Model: tests/golden/models.py's Transformer, the layout of cf_transformer:
torch.nn.Transformer(d_model 128, 4 heads, 3 + 3 layers, ff 512, dropout
0.1, ReLU, post-norm, batch_first) between embedding tables drawn from
N(0, 1/d_model) (padding row zero) scaled by sqrt(d_model) plus the
sinusoidal encoding, dropout after it, and a Linear generator. Loss: cross
entropy of tgt[:, 1:] from tgt[:, :-1], label smoothing, padding ignored. Greedy
decoding and beam search (GNMT length penalty, as cf_beam_search) recompute
the decoder over the prefix at each step (no key/value cache).
"""
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..", "tests", "golden")]
import g2p_common as gc  # noqa: E402


def main():
    p = gc.arg_parser(__doc__, "g2p_transformer_torch_out")
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--enc-layers", type=int, default=3)
    p.add_argument("--dec-layers", type=int, default=3)
    p.add_argument("--ff", type=int, default=512)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--pre-norm", action="store_true")
    a = p.parse_args()
    import torch
    F = torch.nn.functional
    run = gc.Run(torch, a, "g2p_transformer_torch")
    import models
    model = models.Transformer(gc.SRC_VOCAB, gc.TGT_VOCAB, a.d_model, a.heads, a.enc_layers,
                               a.dec_layers, a.ff, dropout=a.dropout, norm_first=a.pre_norm,
                               embed_std=a.d_model ** -0.5, pad=gc.PAD, max_len=gc.MAX_OUT + 1)

    def loss_fn(src, tgt, smoothing):
        logits = model(src, tgt[:, :-1])
        return F.cross_entropy(logits.reshape(-1, gc.TGT_VOCAB), tgt[:, 1:].reshape(-1),
                               ignore_index=gc.PAD, label_smoothing=smoothing)

    def greedy(src):
        memory = model.encode(src)
        ys = torch.full((src.shape[0], 1), gc.BOS, dtype=torch.long)
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        out = []
        for _ in range(gc.MAX_OUT):
            logits = model.decode(ys, memory, src, False)[:, -1]
            logits[:, gc.PAD] = -math.inf
            tok = logits.argmax(-1).masked_fill(done, gc.PAD)
            out.append(tok)
            done |= tok == gc.EOS
            ys = torch.cat([ys, tok[:, None]], 1)
            if done.all():
                break
        return torch.stack(out, 1)

    def beam(src, width, alpha):
        memory = model.encode(src)

        def step(seqs, rows):
            ys = torch.tensor([[gc.BOS] + s for s in seqs])
            n = len(seqs)
            logits = model.decode(ys, memory.expand(n, -1, -1), src.expand(n, -1), False)[:, -1]
            logp = torch.log_softmax(logits, -1)
            logp[:, gc.PAD] = -math.inf
            return logp

        return gc.beam_search(step, width, alpha, gc.MAX_OUT)

    return run.train(model, {"greedy": greedy, "beam": beam}, loss_fn)


if __name__ == "__main__":
    sys.exit(main())
