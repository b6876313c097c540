#!/usr/bin/python3
"""Writes tests/golden/optim.safetensors, read by tests/test_optim.c.

    cd tests/golden && /usr/bin/python3 gen_optim.py

Optimizers. Three float32 parameters w [3, 5], b [7] and u [2, 2] start from
init.NAME and take STEPS updates from fixed gradients: grad.NAME [STEPS, ...]
holds the gradient of each step. u has no gradient (p.grad is None, so torch
skips it and its per-parameter state) at the steps where present.u is false.
For each optimizer case C the file holds

    C.NAME       [STEPS, ...]  the parameter after each step
    C.NAME.STATE               the final state (momentum_buffer, exp_avg,
                               exp_avg_sq), as torch's state_dict holds it
    C.NAME.step  int32 [1]     Adam's per-parameter step count
    C.lr         [STEPS]       the learning rate of each step (set before it)

The references come from torch.optim's own float32 updates (foreach off, the
single-tensor code), so they are what a PyTorch user sees.

train.*: a two-layer tanh MLP (fc1: Linear(5, 7), fc2: Linear(7, 3)) fitted
to a fixed batch with mse and Adam(lr 0.02): the initial weights
train.init.fc1.weight, ..., the batch train.x, train.y, the loss before each
step train.loss [STEPS] and the final weights train.final.fc1.weight, ...

Schedules: the learning rate after k scheduler steps, k = 0 .. SCHED_STEPS-1,
of an SGD optimizer driven by

    sched.transformer  LambdaLR(base 1, the paper's formula with step
                       max(k, 1), d_model 16, warmup 8)
    sched.step         StepLR(base 0.1, step_size 7, gamma 0.5)
    sched.step_small   StepLR(base 0.3, step_size 3, gamma 0.9)
    sched.cosine       LambdaLR(base 0.1, linear warm-up (k + 1) / 5 over 5
                       steps, then cosine to 0.001 at step 25, constant after)
    sched.cosine_seq   SequentialLR(LinearLR(start_factor 1/5, total_iters
                       4), CosineAnnealingLR(T_max 21, eta_min 0.001),
                       milestones [4]): equal to the above up to step 25
                       (CosineAnnealingLR rises again after T_max), so only
                       that part is stored

Clipping: clip.CASE.NAME the gradients before, clip.CASE.NAME.clipped after
torch.nn.utils.clip_grad_norm_(params, clip.CASE.max_norm), and clip.CASE.norm
the norm it returned. In clip.absent, u has no gradient; in clip.inf and
clip.nan, b's gradient holds an inf or a NaN (torch then scales every
gradient by 0 or by NaN).
"""
import math
import warnings

import torch

from goldlib import save

STEPS = 20
SCHED_STEPS = 32
SHAPES = {"w": (3, 5), "b": (7,), "u": (2, 2)}
U_ABSENT = {0, 1, 2, 7, 8, 13}

# name: (class, keyword arguments, lr schedule or None)
CASES = {
    "sgd.plain": (torch.optim.SGD, dict(lr=0.1), None),
    "sgd.momentum": (torch.optim.SGD, dict(lr=0.1, momentum=0.9), None),
    "sgd.dampening": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1), None),
    "sgd.nesterov": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True), None),
    "sgd.weight_decay": (torch.optim.SGD, dict(lr=0.1, weight_decay=0.05), None),
    "sgd.momentum_decay": (torch.optim.SGD,
                           dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.05), None),
    "adam.default": (torch.optim.Adam, dict(lr=1e-3), None),
    "adam.lr": (torch.optim.Adam, dict(lr=0.05), None),
    "adam.weight_decay": (torch.optim.Adam, dict(lr=0.05, weight_decay=0.1), None),
    "adam.betas": (torch.optim.Adam, dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6), None),
    "adamw.default": (torch.optim.AdamW, dict(lr=0.05), None),
    "adamw.decay": (torch.optim.AdamW, dict(lr=0.05, weight_decay=0.1), None),
    "adamw.scheduled": (torch.optim.AdamW, dict(lr=0.05, weight_decay=0.1),
                        lambda k: 0.05 * (k + 1) / STEPS),
}

STATE = {torch.optim.SGD: ["momentum_buffer"],
         torch.optim.Adam: ["exp_avg", "exp_avg_sq"],
         torch.optim.AdamW: ["exp_avg", "exp_avg_sq"]}


def optimizers(gen, out):
    init = {k: torch.randn(s, generator=gen) for k, s in SHAPES.items()}
    grads = {k: torch.randn((STEPS,) + s, generator=gen) for k, s in SHAPES.items()}
    present = torch.tensor([k not in U_ABSENT for k in range(STEPS)])
    for k in SHAPES:
        out["init." + k] = init[k]
        out["grad." + k] = grads[k]
    out["present.u"] = present

    for case, (cls, kw, schedule) in CASES.items():
        params = {k: torch.nn.Parameter(v.clone()) for k, v in init.items()}
        opt = cls(list(params.values()), foreach=False, **kw)
        traj = {k: [] for k in SHAPES}
        lrs = []
        for step in range(STEPS):
            if schedule:
                opt.param_groups[0]["lr"] = schedule(step)
            lrs.append(opt.param_groups[0]["lr"])
            for k, p in params.items():
                p.grad = grads[k][step].clone()
            if not present[step]:
                params["u"].grad = None
            opt.step()
            for k, p in params.items():
                traj[k].append(p.detach().clone())
        out[case + ".lr"] = torch.tensor(lrs, dtype=torch.float32)
        for k, p in params.items():
            out[case + "." + k] = torch.stack(traj[k])
            state = opt.state[p]
            for s in STATE[cls]:
                if state.get(s) is not None:
                    out[case + "." + k + "." + s] = state[s]
            if "step" in state:
                out[case + "." + k + ".step"] = torch.tensor([int(state["step"])],
                                                             dtype=torch.int32)


def train(gen, out):
    torch.manual_seed(5)
    net = torch.nn.ModuleDict({"fc1": torch.nn.Linear(5, 7), "fc2": torch.nn.Linear(7, 3)})
    x = torch.randn(9, 5, generator=gen)
    y = torch.randn(9, 3, generator=gen)
    for k, v in net.state_dict().items():
        out["train.init." + k] = v.clone()
    out["train.x"], out["train.y"] = x, y
    opt = torch.optim.Adam(net.parameters(), lr=0.02, foreach=False)
    losses = []
    for _ in range(STEPS):
        loss = torch.nn.functional.mse_loss(net["fc2"](torch.tanh(net["fc1"](x))), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    out["train.loss"] = torch.tensor(losses, dtype=torch.float32)
    for k, v in net.state_dict().items():
        out["train.final." + k] = v.clone()


def lrs(opt, sched, n):
    got = []
    for _ in range(n):
        got.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return torch.tensor(got, dtype=torch.float32)


def schedules(out):
    S = torch.optim.lr_scheduler

    def sgd(lr):
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)

    d, w = 16, 8

    def paper(k):
        k = max(k, 1)
        return d ** -0.5 * min(k ** -0.5, k * w ** -1.5)

    o = sgd(1.0)
    out["sched.transformer"] = lrs(o, S.LambdaLR(o, paper), SCHED_STEPS)
    o = sgd(0.1)
    out["sched.step"] = lrs(o, S.StepLR(o, step_size=7, gamma=0.5), SCHED_STEPS)
    o = sgd(0.3)
    out["sched.step_small"] = lrs(o, S.StepLR(o, step_size=3, gamma=0.9), SCHED_STEPS)

    base, min_lr, warm, total = 0.1, 0.001, 5, 25

    def cosine(k):
        if k < warm - 1:
            return (k + 1) / warm
        if k >= total:
            return min_lr / base
        p = (k - warm + 1) / (total - warm + 1)
        return (min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * p))) / base

    o = sgd(base)
    out["sched.cosine"] = lrs(o, S.LambdaLR(o, cosine), SCHED_STEPS)
    o = sgd(base)
    with warnings.catch_warnings():  # SequentialLR steps LinearLR with an epoch
        warnings.simplefilter("ignore")
        seq = S.SequentialLR(o, [S.LinearLR(o, start_factor=1 / warm, total_iters=warm - 1),
                                 S.CosineAnnealingLR(o, T_max=total - warm + 1, eta_min=min_lr)],
                             milestones=[warm - 1])
        out["sched.cosine_seq"] = lrs(o, seq, total + 1)


def clipping(gen, out):
    # name: (max_norm, gradient scale, which params have a gradient, a
    # non-finite value put into b's gradient or None)
    cases = {
        "above": (1.0, 1.0, ["w", "b", "u"], None),
        "below": (100.0, 1.0, ["w", "b", "u"], None),
        "absent": (0.5, 1.0, ["w", "b"], None),
        "tiny": (1e-3, 3.0, ["w", "b", "u"], None),
        "inf": (1.0, 1.0, ["w", "b", "u"], math.inf),
        "nan": (1.0, 1.0, ["w", "b", "u"], math.nan),
    }
    for case, (max_norm, scale, have, bad) in cases.items():
        params = {k: torch.nn.Parameter(torch.zeros(s)) for k, s in SHAPES.items()}
        for k in have:
            params[k].grad = torch.randn(SHAPES[k], generator=gen) * scale
        if bad is not None:
            params["b"].grad[3] = bad
        name = "clip." + case
        for k in have:
            out[name + "." + k] = params[k].grad.clone()
        norm = torch.nn.utils.clip_grad_norm_(params.values(), max_norm)
        for k in have:
            out[name + "." + k + ".clipped"] = params[k].grad.clone()
        out[name + ".norm"] = norm.reshape(1).float()
        out[name + ".max_norm"] = torch.tensor([max_norm])


def main():
    gen = torch.Generator().manual_seed(20240612)
    out = {}
    optimizers(gen, out)
    train(gen, out)
    schedules(out)
    clipping(gen, out)
    save("optim.safetensors", out, {"generator": "gen_optim.py", "torch": torch.__version__})


if __name__ == "__main__":
    main()
