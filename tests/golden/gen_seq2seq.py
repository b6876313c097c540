#!/usr/bin/python3
"""Writes seq2seq.safetensors, the golden fixture of tests/test_seq2seq.c.

    cd tests/golden && /usr/bin/python3 gen_seq2seq.py

The reference is models.Seq2Seq, the model of zoo/seq2seq.c written in
plain PyTorch, so that its state_dict has the names cformer gives its
parameters: a bidirectional GRU encoder (batch-first, each source packed to
its length), a bridge tanh(Linear(2H -> H)) of the last layer's final
forward and backward states (each row's states at its last real token),
and a decoder step that attends from the previous state with additive
attention (score v^T tanh(W_q s + W_k k), padding masked to -inf before the
softmax), runs a GRUCell over [emb ; context] and
predicts from [s_new ; context ; emb]. Dropout is 0.

Parameters are drawn by PyTorch's default initialisation, with v scaled up
for sharper attention and the output layer scaled up so that greedy
decisions are clear (each greedy step's best logit leads the second by a
margin the script checks). They are stored as float32; the reference then
runs in float64 on those values and each result is rounded once.

The file holds, for the one case "s2s",
    s2s.<name>           every parameter, by its state_dict name
    s2s.src              int32 source tokens [B, S]; sequences 1 and 2 are
                         padded to S (lengths 7, 4, 5)
    s2s.tgt              int32 target tokens [B, T + 1], bos first; padded
    s2s.logits           teacher-forced logits [B, T, V]
    s2s.weights          their attention weights [B, T, S]
    s2s.loss             mean cross entropy of logits against tgt[:, 1:],
                         ignore_index = pad
    s2s.grad.<name>      d(loss)/d(parameter) for every parameter
    s2s.free_logits      logits with teacher_forcing 0: after tgt[:, 0],
                         each step reads the previous step's argmax
    s2s.greedy           int32 greedy decoding [B, MAX_LEN] from bos, eos
                         included, then pad
    s2s.greedy_weights   its attention weights [B, MAX_LEN, S], zero once a
                         sequence has finished
"""
import torch
import torch.nn.functional as F

from goldlib import save
from models import Seq2Seq

# Seed 5 gives greedy decodings that stop at step 4 (one) and run to
# MAX_LEN (two).
torch.manual_seed(5)

SRC_VOCAB, TGT_VOCAB, EMB, HIDDEN, ATTN, LAYERS = 11, 13, 8, 12, 10, 2
PAD, BOS, EOS = 0, 1, 2
MAX_LEN = 8
MARGIN = 1e-3  # smallest lead of a greedy step's best logit


def greedy(model, src, max_len):
    """Tokens [B, max_len] from bos (pad after eos) and their attention
    weights, zero once a row has finished; every step's choice is checked
    to be clear."""
    enc = model.encode(src)
    s = enc[3]
    B = src.shape[0]
    y = torch.full((B,), BOS, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    tokens, weights = [], []
    for _ in range(max_len):
        out, s, a = model.step(y, s, enc)
        check_margin(out)
        weights.append(a.masked_fill(done.unsqueeze(1), 0))
        y = out.argmax(-1).masked_fill(done, PAD)
        done |= y == EOS
        tokens.append(y)
    return torch.stack(tokens, 1), torch.stack(weights, 1)


def check_margin(logits):
    """float32 rounding must not be able to flip an argmax."""
    top = logits.topk(2, dim=-1).values
    lead = (top[:, 0] - top[:, 1]).min().item()
    assert lead > MARGIN, f"greedy step decided by {lead}"


def main():
    model = Seq2Seq(SRC_VOCAB, TGT_VOCAB, EMB, HIDDEN, ATTN, LAYERS, pad=PAD)
    with torch.no_grad():
        model.decoder.attention.v.weight.mul_(4)
        model.decoder.out.weight.mul_(3)
    src = torch.tensor([[3, 5, 7, 9, 4, 6, 2],
                        [8, 4, 10, 2, PAD, PAD, PAD],
                        [5, 5, 3, 6, 2, PAD, PAD]])
    tgt = torch.tensor([[BOS, 4, 6, 8, 10, 12, EOS],
                        [BOS, 7, 3, EOS, PAD, PAD, PAD],
                        [BOS, 11, 5, 9, EOS, PAD, PAD]])
    out = {}
    for name, p in model.state_dict().items():
        out[f"s2s.{name}"] = p
    out["s2s.src"] = src.to(torch.int32)
    out["s2s.tgt"] = tgt.to(torch.int32)

    model = model.double()
    logits, weights = model(src, tgt, True)
    loss = F.cross_entropy(logits.reshape(-1, TGT_VOCAB), tgt[:, 1:].reshape(-1),
                           ignore_index=PAD)
    loss.backward()
    out["s2s.logits"] = logits.float()
    out["s2s.weights"] = weights.float()
    out["s2s.loss"] = loss.float()
    for name, p in model.named_parameters():
        out[f"s2s.grad.{name}"] = p.grad.float()
    with torch.no_grad():
        free, _ = model(src, tgt, False)
        for t in range(free.shape[1] - 1):
            check_margin(free[:, t])
        out["s2s.free_logits"] = free.float()
        tokens, greedy_weights = greedy(model, src, MAX_LEN)
        out["s2s.greedy"] = tokens.to(torch.int32)
        out["s2s.greedy_weights"] = greedy_weights.float()
    print("greedy:", tokens.tolist())
    save("seq2seq.safetensors", out)


if __name__ == "__main__":
    main()
