#!/usr/bin/python3
"""bench/decode in PyTorch: greedy decoding with the same small Transformer.

    /usr/bin/python3 bench/decode_torch.py [--threads N]
    /usr/bin/python3 bench/decode_torch.py --worker b1|b32

Same model and call as bench/decode: torch.nn.Transformer(d_model=256,
nhead=4, 3 + 3 layers, dim_feedforward=1024, batch_first=True) between two
nn.Embedding(1000, 256, padding_idx=0) tables scaled by sqrt(d_model) plus
the sinusoidal encoding and an nn.Linear generator, in eval mode under
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_harness  # noqa: E402
from torch_harness import REPS  # noqa: E402

TARGET_SECONDS = 3.0
WARMUP_SECONDS = 0.5
SRC_LEN, NEW_TOKENS, VOCAB = 64, 64, 1000
D, HEADS, LAYERS, FF = 256, 4, 3, 1024
PAD, BOS = 0, 1


def build(torch):
    nn = torch.nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed = nn.Embedding(VOCAB, D, padding_idx=PAD)
            self.tgt_embed = nn.Embedding(VOCAB, D, padding_idx=PAD)
            self.transformer = nn.Transformer(
                d_model=D, nhead=HEADS, num_encoder_layers=LAYERS, num_decoder_layers=LAYERS,
                dim_feedforward=FF, dropout=0.1, batch_first=True)
            self.generator = nn.Linear(D, VOCAB)
            n = SRC_LEN + NEW_TOKENS
            pe = torch.zeros(n, D)
            pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)
            div = torch.exp(torch.arange(0, D, 2, dtype=torch.float32) * (-math.log(1e4) / D))
            pe[:, 0::2] = torch.sin(pos * div)
            pe[:, 1::2] = torch.cos(pos * div)
            self.register_buffer("pe", pe)

        def embed(self, table, tokens):
            return table(tokens) * math.sqrt(D) + self.pe[:tokens.shape[1]]

        def greedy(self, src):
            src_pad = src == PAD
            memory = self.transformer.encoder(self.embed(self.src_embed, src),
                                              src_key_padding_mask=src_pad)
            ys = torch.full((src.shape[0], 1), BOS, dtype=torch.long)
            for _ in range(NEW_TOKENS):
                n = ys.shape[1]
                causal = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
                y = self.transformer.decoder(self.embed(self.tgt_embed, ys), memory,
                                             tgt_mask=causal, memory_key_padding_mask=src_pad)
                logits = self.generator(y[:, -1])
                logits[:, PAD] = -math.inf
                ys = torch.cat((ys, logits.argmax(-1, keepdim=True)), dim=1)
            return ys[:, 1:]

    return Model()


def main():
    torch, args = torch_harness.import_torch(torch_harness.arg_parser(__doc__))
    if args.worker not in (None, "b1", "b32"):
        print(f"no workload '{args.worker}' (b1, b32)", file=sys.stderr)
        return 2
    torch.manual_seed(1234)
    model = build(torch)
    model.eval()

    def calls(batch):
        src = torch.randint(3, VOCAB, (batch, SRC_LEN))

        def call():
            with torch.no_grad():
                model.greedy(src)
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
