#!/usr/bin/python3
"""Writes vit.safetensors, the golden fixture of tests/test_vit.c.

    cd tests/golden && /usr/bin/python3 gen_vit.py

The reference is models.ViT, a Vision Transformer written in plain PyTorch
after timm's VisionTransformer (timm/models/vision_transformer.py:
PatchEmbed with a Conv2d, Attention with qkv and proj, Mlp with fc1 and
fc2, Block, pre-norm, exact GELU, LayerNorm eps 1e-6, the classifier on the
CLS token after the final norm), so its state_dict has timm's names.
Dropout is 0.

Parameters are drawn at random (not with timm's small initialisation, which
would leave attention nearly uniform) and stored as float32; the reference
then runs in float64 on those values and each result is rounded once.

For a case <c> the file holds
    <c>.<name>           every parameter, by its state_dict name
    <c>.images           the input batch [B, C, S, S]
    <c>.labels           int32 class labels [B]
    <c>.logits           [B, classes]
    <c>.map<i>           layer i's attention weights [B, H, N+1, N+1]
    <c>.rollout          attention rollout of the CLS token [B, N]
    <c>.loss             mean cross entropy of the logits against the labels
    <c>.grad.<name>      d(loss)/d(parameter) for every parameter
    <c>.grad_images      d(loss)/d(images)
"""
import torch
import torch.nn.functional as F

from goldlib import save
from models import ViT

torch.manual_seed(0)


def rollout(maps):
    """Abnar & Zuidema (2020): per layer, heads averaged, identity added,
    rows renormalised; the layers multiplied; the CLS row over patches."""
    r = None
    for a in maps:
        a = a.mean(dim=1)
        a = a + torch.eye(a.shape[-1], dtype=a.dtype)
        a = a / a.sum(dim=-1, keepdim=True)
        r = a if r is None else a @ r
    return r[:, 0, 1:]


def case(out, c, batch, **cfg):
    model = ViT(**cfg)
    model.keep_maps()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or \
                    name == "norm.weight":
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif name in ("cls_token", "pos_embed"):
                p.copy_(0.5 * torch.randn_like(p))
            elif name.endswith("qkv.weight"):
                p.mul_(3)  # sharper attention than the default gives
            # other weights keep PyTorch's default initialisation
    s = cfg["img_size"]
    images = torch.randn(batch, cfg["in_chans"], s, s)
    labels = torch.randint(0, cfg["num_classes"], (batch,))
    for name, p in model.state_dict().items():
        out[f"{c}.{name}"] = p
    out[f"{c}.images"] = images
    out[f"{c}.labels"] = labels.to(torch.int32)

    model = model.double()
    x = images.double().requires_grad_()
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    maps = [b.attn.map.detach() for b in model.blocks]
    out[f"{c}.logits"] = logits.float()
    out[f"{c}.loss"] = loss.float()
    for i, m in enumerate(maps):
        out[f"{c}.map{i}"] = m.float()
    out[f"{c}.rollout"] = rollout(maps).float()
    for name, p in model.named_parameters():
        out[f"{c}.grad.{name}"] = p.grad.float()
    out[f"{c}.grad_images"] = x.grad.float()


def main():
    out = {}
    # Fashion-MNIST-like: one channel, 16 patches, four heads.
    case(out, "gray", 3, img_size=16, patch_size=4, in_chans=1, num_classes=10, embed_dim=32,
         depth=2, num_heads=4, mlp_ratio=2.0)
    # Three channels (the patch order c, i, j matters), 9 patches, a
    # fractional mlp_ratio.
    case(out, "rgb", 2, img_size=12, patch_size=4, in_chans=3, num_classes=5, embed_dim=24,
         depth=1, num_heads=3, mlp_ratio=1.5)
    save("vit.safetensors", out)


if __name__ == "__main__":
    main()
