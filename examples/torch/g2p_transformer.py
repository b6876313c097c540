#!/usr/bin/python3
"""examples/g2p_transformer in PyTorch 1.13: the same model, data, split,
recipe and budget, for results side by side (docs/results.md).

    /usr/bin/python3 examples/torch/g2p_transformer.py --threads 1 --minutes 60

Model: torch.nn.Transformer(d_model 128, 4 heads, 3 + 3 layers, ff 512,
dropout 0.1, ReLU, post-norm, batch_first) between embedding tables drawn
from N(0, 1/d_model) (padding row zero) scaled by sqrt(d_model) plus the
sinusoidal encoding, dropout after it, and a Linear generator: the layout of
cf_transformer (tests/golden/gen_transformer.py). Loss: cross entropy of
tgt[:, 1:] from tgt[:, :-1], label smoothing, padding ignored. Greedy
decoding and beam search (GNMT length penalty, as cf_beam_search) recompute
the decoder over the prefix at each step (no key/value cache).
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import g2p_common as gc  # noqa: E402


def build(torch, a):
    nn = torch.nn

    def sinusoid(n, d):
        pe = torch.zeros(n, d)
        pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        return pe

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            D = a.d_model
            self.src_embed = nn.Embedding(gc.SRC_VOCAB, D, padding_idx=gc.PAD)
            self.tgt_embed = nn.Embedding(gc.TGT_VOCAB, D, padding_idx=gc.PAD)
            for e in (self.src_embed, self.tgt_embed):
                with torch.no_grad():
                    e.weight.normal_(0, D ** -0.5)
                    e.weight[gc.PAD].zero_()
            self.transformer = nn.Transformer(
                d_model=D, nhead=a.heads, num_encoder_layers=a.enc_layers,
                num_decoder_layers=a.dec_layers, dim_feedforward=a.ff, dropout=a.dropout,
                batch_first=True, norm_first=a.pre_norm)
            self.generator = nn.Linear(D, gc.TGT_VOCAB)
            self.dropout = nn.Dropout(a.dropout)
            self.register_buffer("pe", sinusoid(gc.MAX_OUT + 1, D))

        def embed(self, table, tokens):
            x = table(tokens) * math.sqrt(a.d_model) + self.pe[:tokens.shape[1]]
            return self.dropout(x)

        def encode(self, src):
            return self.transformer.encoder(self.embed(self.src_embed, src),
                                            src_key_padding_mask=src == gc.PAD)

        def decode(self, tgt, memory, src, pad_mask):
            n = tgt.shape[1]
            causal = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
            y = self.transformer.decoder(self.embed(self.tgt_embed, tgt), memory, tgt_mask=causal,
                                         tgt_key_padding_mask=tgt == gc.PAD if pad_mask else None,
                                         memory_key_padding_mask=src == gc.PAD)
            return self.generator(y)

        def forward(self, src, tgt):
            return self.decode(tgt, self.encode(src), src, True)

    return Model()


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
    model = build(torch, a)

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
