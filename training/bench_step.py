"""Time one training step (forward + backward of the joint loss) of the configured
model on a synthetic batch, so that changes to the recipe's speed can be measured
before and after: `python training/bench_step.py [--config configs/default.yaml]`.

The batch is random features and tokens of a fixed shape (default 16 utterances
of 10 s, 60 tokens each, about what `batch_seconds: 160` gives), so the number is
the model's cost alone, without data loading. Stop other heavy jobs first: the
machine's two cores are the measurement.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lasr_train.config import load_config  # noqa: E402
from lasr_train.model import LasrModel, ModelArgs  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=None)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--tokens", type=int, default=60)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    cfg = load_config(a.config) if a.config else load_config()
    vocab = int(cfg["vocabulary"]["size"])
    model = LasrModel(ModelArgs.from_config(cfg, vocab)).train()
    torch.manual_seed(0)
    frames = int(a.seconds * 100)
    x = torch.randn(a.batch, frames, cfg["features"]["n_mels"])
    lengths = torch.full((a.batch,), frames)
    y = torch.randint(3, vocab, (a.batch, a.tokens))
    yl = torch.full((a.batch,), a.tokens)
    times = []
    for i in range(a.steps + 1):
        t = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss, *_ = model.forward_loss(x, lengths, y, yl, cfg["training"]["ctc_weight"], 0.1)
        loss.backward()
        if i:   # the first step warms up allocators and kernels
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(f"{a.batch} × {a.seconds:g} s, {a.tokens} tokens, {a.threads} threads: "
          f"median {med:.3f} s a step over {a.steps} ({a.batch * a.seconds / med:.0f} s of audio a second)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
