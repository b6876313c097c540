#!/usr/bin/python3
"""bench/vit in PyTorch: the same tiny Vision Transformer, for comparison.

    /usr/bin/python3 bench/vit_torch.py [--threads N]
    /usr/bin/python3 bench/vit_torch.py --worker train|infer

Same model, batch, steps, method and output as bench/vit: 28x28x1 images,
patch 4, dim 64, depth 4, heads 4, mlp_ratio 2, 10 classes, dropout 0,
batch 128; train = forward, mean cross entropy, zero_grad, backward, AdamW
(lr 1e-3, weight decay 0.01); inference = eval mode under torch.no_grad().
The median of 7 repetitions of about 3 s in all, after a warm-up. The model
follows timm's VisionTransformer (as tests/golden/gen_vit.py does); the
attention is written out, as timm does without fused attention (PyTorch
1.13 has no F.scaled_dot_product_attention).

Threads and timing: bench/torch_harness.py; the thread count defaults to
what cformer uses.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_harness  # noqa: E402
from torch_harness import REPS  # noqa: E402

TARGET_SECONDS = 3.0
WARMUP_SECONDS = 0.5
BATCH = 128


def build(torch):
    nn = torch.nn

    class Attention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            B, N, C = x.shape
            qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))

    class Block(nn.Module):
        def __init__(self, dim, heads, hidden):
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.attn = Attention(dim, heads)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class ViT(nn.Module):
        def __init__(self, size=28, patch=4, chans=1, dim=64, depth=4, heads=4, ratio=2,
                     classes=10):
            super().__init__()
            n = (size // patch) ** 2
            self.proj = nn.Conv2d(chans, dim, patch, stride=patch)
            self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
            self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
            self.blocks = nn.Sequential(*[Block(dim, heads, int(dim * ratio))
                                          for _ in range(depth)])
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.head = nn.Linear(dim, classes)

        def forward(self, x):
            x = self.proj(x).flatten(2).transpose(1, 2)
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
            x = self.norm(self.blocks(x + self.pos_embed))
            return self.head(x[:, 0])

    return ViT()


def ms_per_step(step):
    return 1e3 * torch_harness.seconds_per_call(step, WARMUP_SECONDS, TARGET_SECONDS / REPS)


def main():
    torch, args = torch_harness.import_torch(torch_harness.arg_parser(__doc__))
    if args.worker not in (None, "train", "infer"):
        print(f"no workload '{args.worker}' (train, infer)", file=sys.stderr)
        return 2
    torch.manual_seed(1234)
    model = build(torch)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.01)
    images = torch.randn(BATCH, 1, 28, 28)
    labels = torch.tensor([(i * 7 + 3) % 10 for i in range(BATCH)])

    def train():
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def infer():
        with torch.no_grad():
            model(images)

    if args.worker:
        model.train(args.worker == "train")
        return torch_harness.serve(train if args.worker == "train" else infer, WARMUP_SECONDS)
    print(f"threads: {torch.get_num_threads()} (torch.set_num_threads, BLIS_NUM_THREADS)")
    nparams = sum(p.numel() for p in model.parameters())
    print(f"ViT 28x28x1 patch 4, dim 64, depth 4, heads 4, mlp 128, batch {BATCH}; "
          f"{nparams} parameters; PyTorch {torch.__version__}, median of {REPS} repetitions")
    model.train()
    t_train = ms_per_step(train)
    model.eval()
    t_infer = ms_per_step(infer)
    print(f"{'train (fwd + bwd + AdamW)':<36s} {t_train:10.2f} ms/step")
    print(f"{'inference (no grad, eval)':<36s} {t_infer:10.2f} ms/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
