#!/usr/bin/python3
"""bench/vit in PyTorch: the same tiny Vision Transformer, for comparison.

    /usr/bin/python3 bench/vit_torch.py [--threads N]
    /usr/bin/python3 bench/vit_torch.py --worker train|infer

Same model, batch, steps, method and output as bench/vit: 28x28x1 images,
patch 4, dim 64, depth 4, heads 4, mlp_ratio 2, 10 classes, dropout 0,
batch 128; train = forward, mean cross entropy, zero_grad, backward, AdamW
(lr 1e-3, weight decay 0.01); inference = eval mode under torch.no_grad().
The median of 7 repetitions of about 3 s in all, after a warm-up. The model is
tests/golden/models.py's ViT, after timm's VisionTransformer; the attention
is written out, as timm does without fused attention (PyTorch 1.13 has no
F.scaled_dot_product_attention).

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
BATCH = 128


def ms_per_step(step):
    return 1e3 * torch_harness.seconds_per_call(step, WARMUP_SECONDS, TARGET_SECONDS / REPS)


def main():
    torch, args = torch_harness.import_torch(torch_harness.arg_parser(__doc__))
    if args.worker not in (None, "train", "infer"):
        print(f"no workload '{args.worker}' (train, infer)", file=sys.stderr)
        return 2
    import models
    torch.manual_seed(1234)
    model = models.ViT(img_size=28, patch_size=4, in_chans=1, num_classes=10, embed_dim=64,
                       depth=4, num_heads=4, mlp_ratio=2.0)
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
