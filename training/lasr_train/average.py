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

An input may also be an exported model directory (docs/model-format.md), such as
models/default, whose checkpoints may be long gone, or a run's export brought back from
another machine: its float16 weights are read as float32, its architecture from its
config.yaml, as `lasr_train.train --init-model` reads one.

The result is an ordinary checkpoint (the last checkpoint input's, or one made from the
last directory, with the averaged weights and an `averaged_steps` entry), so
`lasr_train.export` takes it as it is. Inputs of different model shapes are refused.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .export import bare_synthetic_line, synthetic_summary


def exported_as_checkpoint(directory: str | Path) -> dict:
    """An exported model directory as a checkpoint without optimizer state: step and epoch 0,
    and its card's checkpoint line, if any, as its name among the averaged steps."""
    import yaml
    from safetensors.torch import load_file

    from .config import load_config
    from .export import card_synthetic_speech
    from .model import ModelArgs
    from .tokenizer import Tokenizer
    from .train import init_model_config

    directory = Path(directory)
    if not (directory / "model.safetensors").is_file() or not (directory / "config.yaml").is_file():
        raise SystemExit(f"{directory}: not a checkpoint file nor a model directory with model.safetensors "
                         "and config.yaml")
    cfg = init_model_config(load_config(), yaml.safe_load((directory / "config.yaml").read_text(encoding="utf-8")), {})
    tok = Tokenizer.load(directory)
    card = directory / "MODEL_CARD.md"
    lines = card.read_text(encoding="utf-8").splitlines() if card.exists() else []
    seen = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("- checkpoint:")), "")
    margs = ModelArgs.from_config(cfg, tok.size).to_dict()
    # An export keeps the engine's settings, not the run's: those would be configs/default.yaml's
    # guesses, so the card says they were not recorded.
    cfg["training"] = None
    return {"model_args": margs, "config": cfg, "tokens": tok.pieces,
            "model": {k: v.float() for k, v in load_file(str(directory / "model.safetensors")).items()},
            "step": 0, "epoch": 0, "audio_seconds": 0.0, "synthetic_speech": card_synthetic_speech(lines),
            "label": f"{directory}" + (f" ({seen})" if seen else "")}


def average_checkpoints(paths: list[str]) -> dict:
    if not paths:
        raise SystemExit("no checkpoints to average")
    cks = [exported_as_checkpoint(p) if Path(p).is_dir() else torch.load(p, map_location="cpu", weights_only=False)
           for p in paths]
    from .model import ModelArgs
    base = cks[-1]
    for p, ck in zip(paths, cks):
        if ModelArgs.architecture(ck["model_args"]) != ModelArgs.architecture(base["model_args"]):
            raise SystemExit(f"{p}: model {ck['model_args']} differs from {paths[-1]}: {base['model_args']}")
    averaged = {}
    for name, value in base["model"].items():
        if value.is_floating_point():
            averaged[name] = sum(ck["model"][name].double() for ck in cks).div(len(cks)).to(value.dtype)
        else:  # counters such as BatchNorm's num_batches_tracked: keep the last
            averaged[name] = value
    out = dict(base)
    out["model"] = averaged
    out["averaged_steps"] = [ck.get("label", ck["step"]) for ck in cks]
    # The synthetic speech that the averaged exports learned from, for the card (lasr_train.export).
    # Each set once, however many inputs learned it; the line of a card not told (None) says nothing.
    synth = [bare_synthetic_line(l) for ck in cks for l in ck.get("synthetic_speech", []) + ck.get("inputs_synthetic_speech", [])]
    out["inputs_synthetic_speech"] = [l for l in dict.fromkeys(synth) if l != synthetic_summary(None)]
    for key in ("label", "synthetic_speech"):
        out.pop(key, None)
    # Optimizer moments belong to one trajectory; an average is for export, not for resuming.
    out.pop("optimizer", None)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("checkpoints", nargs="+", help="checkpoint files or exported model directories")
    a = ap.parse_args(argv)
    ck = average_checkpoints(a.checkpoints)
    torch.save(ck, a.out)
    print(f"{a.out}: average of steps {ck['averaged_steps']}")


if __name__ == "__main__":
    main()
