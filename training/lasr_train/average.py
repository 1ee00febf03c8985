"""Average the weights of several checkpoints of one run into one checkpoint.

The checkpoints may also span a run and the run it started from (`--init-model`): the
shipped model averages a fine-tune's end with the weights that fine-tune began from.

Averaging the parameters of the last few checkpoints is standard practice in
ESPnet's recipes (they average the 10 best by validation accuracy); the average sits
nearer the middle of the region the run wanders through at the end. For this run
the dev WER of single checkpoints swung by several points from one epoch to the
next (training/README.md, "How models/default was trained").

    python -m lasr_train.average --out /work/lasr-runs/default/average.pt \\
        /work/lasr-runs/default/epoch-012.pt /work/lasr-runs/default/epoch-013.pt ...

The result is an ordinary checkpoint (the last input's, with the averaged weights and
an `averaged_steps` entry), so `lasr_train.export` takes it as it is. Checkpoints of
different model shapes are refused.
"""
from __future__ import annotations

import argparse

import torch


def average_checkpoints(paths: list[str]) -> dict:
    if not paths:
        raise SystemExit("no checkpoints to average")
    cks = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    base = cks[-1]
    for p, ck in zip(paths, cks):
        if ck["model_args"] != base["model_args"]:
            raise SystemExit(f"{p}: model {ck['model_args']} differs from {paths[-1]}: {base['model_args']}")
    averaged = {}
    for name, value in base["model"].items():
        if value.is_floating_point():
            averaged[name] = sum(ck["model"][name].double() for ck in cks).div(len(cks)).to(value.dtype)
        else:  # counters such as BatchNorm's num_batches_tracked: keep the last
            averaged[name] = value
    out = dict(base)
    out["model"] = averaged
    out["averaged_steps"] = [ck["step"] for ck in cks]
    # Optimizer moments belong to one trajectory; an average is for export, not for resuming.
    out.pop("optimizer", None)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("checkpoints", nargs="+")
    a = ap.parse_args(argv)
    ck = average_checkpoints(a.checkpoints)
    torch.save(ck, a.out)
    print(f"{a.out}: average of steps {ck['averaged_steps']}")


if __name__ == "__main__":
    main()
