#!/usr/bin/python3
"""examples/g2p_seq2seq in PyTorch 1.13: the same model, data, split,
recipe and budget, for results side by side (docs/results.md).

    /usr/bin/python3 examples/torch/g2p_seq2seq.py --threads 1 --minutes 60

Model (cf_seq2seq, as tests/golden/gen_seq2seq.py writes it): embeddings
(128, padding row zero) with dropout, a bidirectional GRU encoder (hidden
256, over pack_padded_sequence), a bridge tanh(Linear(2H -> H)) of the last
forward and backward states, and a decoder step that attends from the
previous state (additive attention, size 256), runs a GRUCell over
[emb ; context] and predicts from [state ; context ; emb]. Teacher forcing.
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import g2p_common as gc  # noqa: E402


def build(torch, a):
    nn = torch.nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    E, H, A = a.emb, a.hidden, a.attn

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(gc.SRC_VOCAB, E, padding_idx=gc.PAD)
            self.rnn = nn.GRU(E, H, num_layers=a.enc_layers, bidirectional=True,
                              batch_first=True, dropout=a.dropout if a.enc_layers > 1 else 0)

        def forward(self, src, drop):
            lengths = (src != gc.PAD).sum(1)
            packed = pack_padded_sequence(drop(self.embedding(src)), lengths, batch_first=True,
                                          enforce_sorted=False)
            out, h_n = self.rnn(packed)
            keys, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
            return keys, torch.cat((h_n[-2], h_n[-1]), dim=1)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.query_proj = nn.Linear(H, A, bias=False)
            self.key_proj = nn.Linear(2 * H, A)
            self.v = nn.Linear(A, 1, bias=False)

        def forward(self, query, keys, proj_keys, mask):
            e = self.v(torch.tanh(proj_keys + self.query_proj(query).unsqueeze(1))).squeeze(-1)
            w = torch.softmax(e.masked_fill(mask, float("-inf")), dim=-1)
            return torch.bmm(w.unsqueeze(1), keys).squeeze(1)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(gc.TGT_VOCAB, E, padding_idx=gc.PAD)
            self.attention = Attention()
            self.rnn = nn.GRUCell(E + 2 * H, H)
            self.out = nn.Linear(H + 2 * H + E, gc.TGT_VOCAB)

        def forward(self, y, s, keys, proj_keys, mask, drop):
            emb = drop(self.embedding(y))
            ctx = self.attention(s, keys, proj_keys, mask)
            s = self.rnn(torch.cat((emb, ctx), dim=1), s)
            return self.out(torch.cat((s, ctx, emb), dim=1)), s

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()
            self.bridge = nn.Linear(2 * H, H)
            self.decoder = Decoder()
            self.dropout = nn.Dropout(a.dropout)

        def encode(self, src):
            keys, last = self.encoder(src, self.dropout)
            return (keys, self.decoder.attention.key_proj(keys), src == gc.PAD,
                    torch.tanh(self.bridge(last)))

        def step(self, y, s, enc):
            return self.decoder(y, s, *enc[:3], self.dropout)

        def forward(self, src, tgt):
            enc = self.encode(src)
            s, logits = enc[3], []
            for t in range(tgt.shape[1] - 1):
                out, s = self.step(tgt[:, t], s, enc)
                logits.append(out)
            return torch.stack(logits, 1)

    return Seq2Seq()


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
    model = build(torch, a)

    def loss_fn(src, tgt, smoothing):
        logits = model(src, tgt)
        return F.cross_entropy(logits.reshape(-1, gc.TGT_VOCAB), tgt[:, 1:].reshape(-1),
                               ignore_index=gc.PAD, label_smoothing=smoothing)

    def greedy(src):
        enc = model.encode(src)
        s = enc[3]
        y = torch.full((src.shape[0],), gc.BOS, dtype=torch.long)
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        out = []
        for _ in range(gc.MAX_OUT):
            logits, s = model.step(y, s, enc)
            y = logits.argmax(-1).masked_fill(done, gc.PAD)
            out.append(y)
            done |= y == gc.EOS
            if done.all():
                break
        return torch.stack(out, 1)

    def beam(src, width, alpha):
        enc = model.encode(src)
        state = {"s": enc[3]}

        def step(seqs, rows):
            n = len(seqs)
            y = torch.tensor([s[-1] if s else gc.BOS for s in seqs])
            e = tuple(t.expand(n, *t.shape[1:]) for t in enc[:3])
            logits, state["s"] = model.step(y, state["s"][rows], e)
            return torch.log_softmax(logits, -1)

        return gc.beam_search(step, width, alpha, gc.MAX_OUT)

    return run.train(model, {"greedy": greedy, "beam": beam}, loss_fn)


if __name__ == "__main__":
    sys.exit(main())
