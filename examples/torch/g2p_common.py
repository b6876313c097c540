"""What the PyTorch G2P scripts share: the data, batches, schedule, metrics
and the training run, the same as examples/common/{cmudict,g2p}.c.

Data: Festival's CMU dictionary 0.4 (Debian package festlex-cmu), words of
letters a-z only after lowercasing, the first line of each, phones
flattened (syllables and stress dropped); split by zlib.crc32(word) % 100:
below 5 test, 5 dev, the rest train. Tokens: pad 0, bos 1, eos 2, letters
and phones from 3 (phones in alphabetical order of Festival's names).

The run: length-bucketed batches (shuffle, sort runs of `bucket` batches
by length, shuffle the batches), AdamW (weight decay on matrices only)
with a linear warm-up and a cosine decay to min_lr that ends with the run
(the last epoch, or the time budget projected from the pace of the steps
and evaluations so far, keeping back the time of the final decoding),
gradient clipping, greedy dev scores after every epoch, greedy and beam
test scores at the end, one JSON line. The random streams are PyTorch's,
so the numbers are not cformer's bit for bit; the recipe is the same.
"""
import argparse
import json
import math
import os
import re
import shlex
import sys
import time
import zlib

PATH = "/usr/share/festival/dicts/cmu/cmudict-0.4.out"
PHONES = ["aa", "ae", "ah", "ao", "aw", "ax", "ay", "b", "ch", "d", "dh", "eh", "er", "ey",
          "f", "g", "hh", "ih", "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p",
          "r", "s", "sh", "t", "th", "uh", "uw", "v", "w", "y", "z", "zh"]
PAD, BOS, EOS, FIRST = 0, 1, 2, 3
SRC_VOCAB, TGT_VOCAB = FIRST + 26, FIRST + len(PHONES)
MAX_LEN = 32
MAX_OUT = MAX_LEN + 2
QUICK_TRAIN, QUICK_EVAL, QUICK_EPOCHS = 2000, 100, 2
BEAM_PROBE = 64

LINE = re.compile(r'^\("([^"]+)" (\S+) \((.*)\)\)\s*$')


def load(path):
    """Returns [(word, [phone ids], split)] in file order (split 0 train,
    1 dev, 2 test)."""
    try:
        f = open(path, encoding="latin-1")
    except FileNotFoundError:
        sys.exit(f"{path}: not found (it comes with the Debian package festlex-cmu: "
                 "apt-get install festlex-cmu; or pass --data FILE)")
    index = {p: i for i, p in enumerate(PHONES)}
    seen, out = set(), []
    with f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or (n == 1 and line == "MNCL"):
                continue
            m = LINE.match(line)
            if not m:
                sys.exit(f"{path}: line {n}: not an entry")
            word = m.group(1).lower()
            if not re.fullmatch(r"[a-z]+", word) or word in seen:
                continue
            phones = re.sub(r"[()0-9]", " ", m.group(3)).split()
            if len(word) > MAX_LEN or len(phones) > MAX_LEN:
                continue
            seen.add(word)
            c = zlib.crc32(word.encode()) % 100
            out.append((word, [index[p] for p in phones], 2 if c < 5 else 1 if c == 5 else 0))
    return out


def edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        diag, row[0] = row[0], i
        for j in range(1, len(b) + 1):
            up = row[j]
            row[j] = min(diag + (a[i - 1] != b[j - 1]), up + 1, row[j - 1] + 1)
            diag = up
    return row[len(b)]


def lr_cosine(step, warmup, total, base, min_lr):
    """cf_lr_cosine: linear warm-up reaching base at step warmup - 1, then
    a cosine to min_lr at total."""
    peak = warmup - 1 if warmup > 1 else 0
    if step < peak:
        return base * (step + 1) / warmup
    if step >= total:
        return min_lr
    p = (step - peak) / (total - peak)
    return min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * p))


def arg_parser(doc, out):
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default=PATH)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-5)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--wd", type=float, default=0.01)
    p.add_argument("--beta2", type=float, default=0.98)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--smoothing", type=float, default=0.1)
    p.add_argument("--bucket", type=int, default=50)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--alpha", type=float, default=0.6)
    p.add_argument("--eval-batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=0, help="0: all cores")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default=out)
    p.add_argument("--quick", action="store_true")
    return p


def batch(torch, entries, ids):
    """src [b, S] letters and tgt [b, T] = bos, phones, eos, pad."""
    S = max(len(entries[i][0]) for i in ids)
    T = max(len(entries[i][1]) for i in ids) + 2
    src = torch.zeros(len(ids), S, dtype=torch.long)
    tgt = torch.zeros(len(ids), T, dtype=torch.long)
    for r, i in enumerate(ids):
        w, p, _ = entries[i]
        src[r, :len(w)] = torch.tensor([FIRST + ord(c) - ord("a") for c in w])
        tgt[r, :len(p) + 2] = torch.tensor([BOS] + [FIRST + x for x in p] + [EOS])
    return src, tgt


def beam_search(step, beam, alpha, max_len):
    """nn/decode.c's cf_beam_search for one word: step(tokens, rows) gives
    log-probabilities [n, V] of the n live hypotheses after `tokens` (the
    full prefixes) with the state of rows `rows` of the previous call."""
    penalty = lambda n: ((5 + n) / 6) ** alpha  # noqa: E731
    seqs, scores = [[]], [0.0]
    best, best_score = [], -math.inf
    rows = [0]
    for t in range(max_len):
        logp = step(seqs, rows)
        V = logp.shape[1]
        flat = (logp + logp.new_tensor(scores)[:, None]).reshape(-1)
        k = min(2 * beam, flat.numel())
        top = flat.topk(k)
        next_seqs, next_scores, rows = [], [], []
        for s, c in zip(top.values.tolist(), top.indices.tolist()):
            if len(next_seqs) == beam:
                break
            i, v = divmod(c, V)
            if v == EOS or t == max_len - 1:
                if s / penalty(t + 1) > best_score:
                    best_score, best = s / penalty(t + 1), seqs[i] + [v]
                continue
            next_seqs.append(seqs[i] + [v])
            next_scores.append(s)
            rows.append(i)
        bound = next_scores[0] / penalty(max_len if alpha >= 0 else t + 1) if next_seqs \
            else -math.inf
        if not next_seqs or (best and bound <= best_score):
            break
        seqs, scores = next_seqs, next_scores
    return best


class Run:
    """The training run around a model given by
    loss(src, tgt, smoothing), greedy(src) -> [b, MAX_OUT] tokens and
    beam(src [1, S], beam, alpha) -> token list."""

    def __init__(self, torch, args, name):
        self.torch, self.a, self.name = torch, args, name
        self.t_start = time.monotonic()
        if args.threads:
            torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)
        self.entries = load(args.data)
        self.split = [[], [], []]
        for i, e in enumerate(self.entries):
            cap = 0 if not args.quick else QUICK_TRAIN if e[2] == 0 else QUICK_EVAL
            if not cap or len(self.split[e[2]]) < cap:
                self.split[e[2]].append(i)
        os.makedirs(args.out, exist_ok=True)

    def length(self, i):
        return (len(self.entries[i][0]), len(self.entries[i][1]), i)

    def plan_epoch(self, gen):
        torch, B = self.torch, self.a.batch
        train = self.split[0]
        order = [train[i] for i in torch.randperm(len(train), generator=gen).tolist()]
        chunk = B * self.a.bucket
        for s in range(0, len(order), chunk):
            order[s:s + chunk] = sorted(order[s:s + chunk], key=self.length)
        batches = [order[s:s + B] for s in range(0, len(order), B)]
        return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]

    def evaluate(self, model, decode, split, limit=0, beam=1):
        torch = self.torch
        ids = sorted(self.split[split][:limit] if limit else self.split[split], key=self.length)
        words = wrong = edits = ref_len = 0
        model.eval()
        with torch.no_grad():
            for s in range(0, len(ids), self.a.eval_batch):
                part = ids[s:s + self.a.eval_batch]
                src, _ = batch(torch, self.entries, part)
                if beam > 1:
                    hyps = [decode["beam"](src[r:r + 1, :len(self.entries[i][0])], beam,
                                           self.a.alpha) for r, i in enumerate(part)]
                else:
                    hyps = decode["greedy"](src).tolist()
                for h, i in zip(hyps, part):
                    h = h[:h.index(EOS)] if EOS in h else h
                    h = h[:h.index(PAD)] if PAD in h else h
                    ref = [FIRST + p for p in self.entries[i][1]]
                    d = edit_distance(h, ref)
                    words += 1
                    wrong += d > 0
                    edits += d
                    ref_len += len(ref)
        model.train()
        return wrong / words, edits / ref_len, words

    def train(self, model, decode, loss_fn):
        torch, a = self.torch, self.a
        epochs = min(a.epochs, QUICK_EPOCHS) if a.quick else a.epochs
        budget = 0 if a.quick else a.minutes * 60
        decay = [p for p in model.parameters() if p.dim() >= 2]
        rest = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                                 {"params": rest, "weight_decay": 0.0}],
                                lr=a.lr, betas=(0.9, a.beta2), eps=1e-9)
        gen = torch.Generator().manual_seed(a.seed)
        nb = (len(self.split[0]) + a.batch - 1) // a.batch
        total = epochs * nb
        nparams = sum(p.numel() for p in model.parameters())
        print(f"CMU dictionary {a.data}: {len(self.entries)} words; split by crc32: "
              f"{len(self.split[0])} train, {len(self.split[1])} dev, {len(self.split[2])} test"
              f"{' (quick: slices)' if a.quick else ''}")
        print(f"{self.name} (PyTorch {torch.__version__}): {nparams} parameters; threads "
              f"{torch.get_num_threads()}")
        sys.stdout.flush()
        step, steps_here, eval_secs, final_est = 0, 0, -1.0, -1.0
        t_train, eval_total = time.monotonic(), 0.0
        losses, dev_hist = [], []
        out_of_time = False
        for epoch in range(1, epochs + 1):
            t_line = time.monotonic()
            for s, ids in enumerate(self.plan_epoch(gen)):
                t = time.monotonic()
                elapsed = t - self.t_start
                reserve = 5 + (final_est if final_est >= 0 else 0.1 * budget)
                left = budget - elapsed - reserve
                if budget > 0 and left <= 0:
                    out_of_time = True
                    break
                planned = total
                train_secs = t - t_train - eval_total
                if budget > 0 and steps_here >= 10 and train_secs > 0:
                    per = train_secs / steps_here + max(eval_secs, 0) / nb
                    planned = min(total, int(step + max(left / per, 0)))
                warm = a.warmup if a.warmup < planned else planned // 10
                lr = lr_cosine(step, warm, max(planned, warm + 1), a.lr, a.min_lr)
                for g in opt.param_groups:
                    g["lr"] = lr
                src, tgt = batch(torch, self.entries, ids)
                loss = loss_fn(src, tgt, a.smoothing)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
                opt.step()
                losses.append(loss.item())
                step += 1
                steps_here += 1
                if time.monotonic() - t_line > 30 or s + 1 == nb:
                    print(f"epoch {epoch}/{epochs}  step {s + 1}/{nb}  loss "
                          f"{sum(losses[-50:]) / len(losses[-50:]):.4f}  lr {lr:.2e}  "
                          f"elapsed {time.monotonic() - self.t_start:.0f} s  planned {planned}")
                    sys.stdout.flush()
                    t_line = time.monotonic()
                if step >= planned:
                    out_of_time = budget > 0 and s + 1 < nb
                    break
            if out_of_time:
                break
            t = time.monotonic()
            wer, per, _ = self.evaluate(model, decode, 1)
            eval_secs = time.monotonic() - t
            if final_est < 0:
                tb = time.monotonic()
                n = min(BEAM_PROBE, len(self.split[1]))
                self.evaluate(model, decode, 1, n, a.beam)
                final_est = len(self.split[2]) * (eval_secs / len(self.split[1]) +
                                                  (time.monotonic() - tb) / n)
            eval_total += time.monotonic() - t
            dev_hist.append((wer, per))
            print(f"epoch {epoch}  dev WER {100 * wer:.2f}%  PER {100 * per:.2f}%  (greedy, "
                  f"{eval_secs:.1f} s)  elapsed {time.monotonic() - self.t_start:.0f} s")
            sys.stdout.flush()
            if step >= total:
                break
        train_secs = time.monotonic() - self.t_start
        print(f"trained {step} steps ({step / nb:.2f} epochs) in {train_secs:.0f} s"
              f"{', stopped by the time budget' if out_of_time else ''}")
        dev_wer, dev_per, _ = self.evaluate(model, decode, 1)
        t = time.monotonic()
        test_wer_g, test_per_g, nw = self.evaluate(model, decode, 2)
        tg = time.monotonic() - t
        test_wer_b, test_per_b, _ = self.evaluate(model, decode, 2, 0, a.beam)
        tb = time.monotonic() - t - tg
        print(f"dev   greedy: WER {100 * dev_wer:.2f}%  PER {100 * dev_per:.2f}%")
        print(f"test  greedy: WER {100 * test_wer_g:.2f}%  PER {100 * test_per_g:.2f}%  "
              f"({nw} words, {tg:.1f} s)")
        print(f"test  beam {a.beam}: WER {100 * test_wer_b:.2f}%  PER {100 * test_per_b:.2f}%  "
              f"(alpha {a.alpha}, {tb:.1f} s)")
        torch.save(model.state_dict(), os.path.join(a.out, "model.pt"))
        status = 0
        if a.quick:
            q = max(len(losses) // 4, 1)
            first, last = sum(losses[:q]) / q, sum(losses[-q:]) / q
            print(f"quick run: mean loss {first:.4f} over the first quarter, {last:.4f} over "
                  "the last")
            status = 0 if last < first else 1
        report = {"example": self.name,
                  "metrics": {"test_wer": test_wer_b, "test_per": test_per_b,
                              "test_wer_greedy": test_wer_g, "test_per_greedy": test_per_g,
                              "dev_wer_greedy": dev_wer, "dev_per_greedy": dev_per,
                              "beam": a.beam, "test_words": nw, "epochs": step / nb,
                              "steps": step, "train_seconds": train_secs,
                              "final_loss": losses[-1] if losses else None},
                  "wall_seconds": round(time.monotonic() - self.t_start, 2),
                  "threads": torch.get_num_threads(), "parameters": nparams,
                  "command": " ".join(shlex.quote(x) for x in sys.argv),
                  "framework": f"pytorch {torch.__version__}"}
        print(json.dumps(report))
        return status
