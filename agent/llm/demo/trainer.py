"""The demo's training script: its source text, where it is written and how to re-run it.

``TRAIN_SCRIPT`` is small but real (a pure-Python MLP, no downloads), and it logs like the
Transformers Trainer so the job monitor draws its loss curve and ``agent.llm.demo.outputs``
can read back every number the demo reports.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

STEPS = 4000  # about 15 s of one CPU core for the script below

# Standard library only, so it runs on any machine with python3 and no downloads.
TRAIN_SCRIPT = '''"""Train a small MLP to separate two interleaved spirals, using only the standard library.

Written by the mlintern demo model. Minibatch SGD with momentum, a short warm-up and a cosine
learning-rate decay. Logs one Transformers-Trainer-style dict per logging step (about 40 in
all), evaluates on held-out points four times, and saves metrics.json in --output-dir.
"""

import argparse
import json
import math
import os
import random
import time


def make_spirals(n, noise, rng):
    data = []
    for i in range(n):
        label, r = i % 2, rng.uniform(0.05, 1.0)
        t = 3 * math.pi * r + math.pi * label
        data.append(((r * math.cos(t) + rng.gauss(0, noise), r * math.sin(t) + rng.gauss(0, noise)), label))
    return data


class MLP:
    """2 -> hidden -> hidden -> 1 with tanh hidden layers and a sigmoid output."""

    def __init__(self, hidden, rng):
        def layer(n_in, n_out):
            return [[rng.gauss(0, 1 / math.sqrt(n_in)) for _ in range(n_in)] for _ in range(n_out)], [0.0] * n_out

        self.layers = [layer(2, hidden), layer(hidden, hidden), layer(hidden, 1)]
        self.velocity = [([[0.0] * len(r) for r in w], [0.0] * len(b)) for w, b in self.layers]

    def forward(self, x):
        (w1, b1), (w2, b2), (w3, b3) = self.layers
        h1 = [math.tanh(r[0] * x[0] + r[1] * x[1] + b) for r, b in zip(w1, b1)]
        h2 = [math.tanh(sum(w * h for w, h in zip(r, h1)) + b) for r, b in zip(w2, b2)]
        z = sum(w * h for w, h in zip(w3[0], h2)) + b3[0]
        return h1, h2, 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))

    def train_step(self, batch, lr, momentum=0.9):
        (w1, b1), (w2, b2), (w3, b3) = self.layers
        grads = [([[0.0] * len(r) for r in w], [0.0] * len(b)) for w, b in self.layers]
        (g1, gb1), (g2, gb2), (g3, gb3) = grads
        loss = 0.0
        for x, y in batch:
            h1, h2, p = self.forward(x)
            loss += bce(p, y)
            dz = p - y
            gb3[0] += dz
            d1 = [0.0] * len(h1)
            for j, h in enumerate(h2):
                g3[0][j] += dz * h
                dj = dz * w3[0][j] * (1 - h * h)
                gb2[j] += dj
                row, grow = w2[j], g2[j]
                for i, hi in enumerate(h1):
                    grow[i] += dj * hi
                    d1[i] += dj * row[i]
            for i, hi in enumerate(h1):
                di = d1[i] * (1 - hi * hi)
                gb1[i] += di
                g1[i][0] += di * x[0]
                g1[i][1] += di * x[1]
        norm = 0.0
        for (w, b), (gw, gb), (vw, vb) in zip(self.layers, grads, self.velocity):
            for row, grow, vrow in zip(w + [b], gw + [gb], vw + [vb]):
                for i, g in enumerate(grow):
                    g /= len(batch)
                    norm += g * g
                    vrow[i] = momentum * vrow[i] + g
                    row[i] -= lr * vrow[i]
        return loss / len(batch), math.sqrt(norm)


def bce(p, label):
    return -math.log(max(p if label else 1 - p, 1e-12))


def evaluate(model, data):
    loss = correct = 0
    for x, y in data:
        p = model.forward(x)[2]
        loss += bce(p, y)
        correct += int((p >= 0.5) == bool(y))
    return round(loss / len(data), 4), round(correct / len(data), 4)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=__STEPS__)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.3)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-dir", default="demo_output")
    args = parser.parse_args()
    log_every = max(1, args.steps // 40)
    eval_every = max(log_every, args.steps // 4)

    rng = random.Random(args.seed)
    train, test = make_spirals(2000, 0.04, rng), make_spirals(500, 0.04, rng)
    model = MLP(args.hidden, rng)
    history, running, count, cursor = [], 0.0, 0, len(train)
    warmup = max(1, args.steps // 20)
    start = time.time()
    for step in range(1, args.steps + 1):
        if cursor + args.batch_size > len(train):
            rng.shuffle(train)
            cursor = 0
        batch, cursor = train[cursor:cursor + args.batch_size], cursor + args.batch_size
        lr = args.learning_rate * min(step / warmup, 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        loss, grad_norm = model.train_step(batch, lr)
        running, count = running + loss, count + 1
        if step % log_every == 0 or step == args.steps:
            entry = {"loss": round(running / count, 4), "grad_norm": round(grad_norm, 4),
                     "learning_rate": round(lr, 6), "epoch": round(step * args.batch_size / len(train), 2),
                     "step": step}
            print(entry, flush=True)
            history.append(entry)
            running, count = 0.0, 0
        if step % eval_every == 0 and step != args.steps:
            eval_loss, eval_accuracy = evaluate(model, test)
            print({"eval_loss": eval_loss, "eval_accuracy": eval_accuracy, "step": step}, flush=True)
    runtime = round(time.time() - start, 3)
    print({"train_runtime": runtime, "train_loss": history[-1]["loss"], "epoch": history[-1]["epoch"],
           "step": args.steps}, flush=True)
    eval_loss, eval_accuracy = evaluate(model, test)
    print({"eval_loss": eval_loss, "eval_accuracy": eval_accuracy, "epoch": history[-1]["epoch"],
           "step": args.steps}, flush=True)

    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "metrics.json")
    with open(path, "w") as f:
        json.dump({"steps": args.steps, "seed": args.seed, "train_runtime": runtime,
                   "final_loss": history[-1]["loss"], "eval_loss": eval_loss,
                   "eval_accuracy": eval_accuracy, "log_history": history}, f, indent=1)
    print(f"metrics written to {path}", flush=True)


if __name__ == "__main__":
    main()
'''.replace("__STEPS__", str(STEPS))


# --------------------------------------------------------------------------- paths and commands


def script_path(workspace: Path, first_request: str) -> Path:
    """One script per conversation (named after its first message), kept out of the way."""
    digest = hashlib.sha1(first_request.encode("utf-8", "replace")).hexdigest()[:8]
    return workspace / "mlintern_demo" / f"train_{digest}.py"


def output_dir(script: Path) -> Path:
    return script.with_name(f"{script.stem}_output")


def run_command(script: Path, steps: int) -> str:
    return (f"python3 {shlex.quote(str(script))} --steps {steps} "
            f"--output-dir {shlex.quote(str(output_dir(script)))}")

