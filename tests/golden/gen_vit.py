#!/usr/bin/python3
"""Writes vit.safetensors, the golden fixture of tests/test_vit.c.

    cd tests/golden && /usr/bin/python3 gen_vit.py

The reference is a Vision Transformer written in plain PyTorch after timm's
VisionTransformer (timm/models/vision_transformer.py: PatchEmbed with a
Conv2d, Attention with qkv and proj, Mlp with fc1 and fc2, Block, pre-norm,
exact GELU, LayerNorm eps 1e-6, the classifier on the CLS token after the
final norm), so its state_dict has timm's names. Dropout is 0.

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
import torch.nn as nn
import torch.nn.functional as F

from goldlib import save

torch.manual_seed(0)


class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, embed_dim):
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, D]


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(0.0)
        self.map = None

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        self.map = attn
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(0.0)

    def forward(self, x):
        return self.drop2(self.fc2(self.act(self.fc1(x))))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, num_classes, embed_dim, depth,
                 num_heads, mlp_ratio):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, embed_dim))
        self.pos_drop = nn.Dropout(0.0)
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.pos_drop(x + self.pos_embed)
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


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
    model = VisionTransformer(**cfg)
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
