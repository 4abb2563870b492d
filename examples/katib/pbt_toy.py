#!/usr/bin/env python3
"""A toy where the learning-rate schedule matters, for Population Based
Training (the shape of Katib's simple-pbt trial program, --lr --epochs
--checkpoint): accuracy grows fastest when lr is near an optimum that decays
from 0.01 to 0.0001 as accuracy rises, and falls when lr exceeds it by more
than 3x. A fixed lr stalls halfway (about 0.47); a schedule that follows the
optimum climbs further. The checkpoint (accuracy, step) is resumed from and
saved to --checkpoint, so a trial continues its parent's training. The noise
is seeded by (lr, step, accuracy): the same inputs give the same run."""
import argparse
import json
import os
import random


def optimal_lr(acc):
    return 0.01 * 0.01 ** (acc / 100)


def step(acc, lr, rng):
    opt = optimal_lr(acc)
    q = max(lr, opt) / min(lr, opt)
    if q < 3:
        acc += 3.0 / q * rng.random()
    elif lr > opt:
        acc -= (q - 3) * rng.random()
    acc += 0.3 * rng.gauss(0, 1)
    return max(0.0, min(100.0, acc))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--checkpoint", required=True, help="directory: resumed from and saved to")
    a = ap.parse_args()
    ckpt = os.path.join(a.checkpoint, "training.json")
    acc, at = 0.0, 0
    if os.path.exists(ckpt):
        with open(ckpt) as f:
            saved = json.load(f)
        acc, at = saved["accuracy"], saved["step"]
    for _ in range(a.epochs):
        rng = random.Random(f"{a.lr:.8f}:{at}:{acc:.6f}")
        acc = step(acc, a.lr, rng)
        at += 1
        print(f"epoch={at} lr={a.lr:.6f} Validation-accuracy={acc / 100:.6f}", flush=True)
    os.makedirs(a.checkpoint, exist_ok=True)
    with open(ckpt + ".tmp", "w") as f:
        json.dump({"accuracy": acc, "step": at}, f)
    os.replace(ckpt + ".tmp", ckpt)


if __name__ == "__main__":
    main()
