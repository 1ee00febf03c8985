"""Exports an untrained model with the shapes of a config (default: configs/default.yaml)
into a model directory, for measuring the engine's speed before a trained model
exists: the cost of the encoder and of a decoder step depends on the shapes, not on
the weights. Its transcripts are meaningless.

    .venv/bin/python training/make_untrained_model.py --out /tmp/lasr-untrained
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lasr_train.export import export_model  # noqa: E402
from lasr_train.model import LasrModel, ModelArgs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs/default.yaml"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    cfg = yaml.safe_load(Path(a.config).read_text())
    size = int(cfg["vocabulary"]["size"])
    # Placeholder pieces: the specials, then "▁a", "a", "▁b", … — enough to fill the vocabulary.
    pieces = ["<blank>", "<sos/eos>", "<unk>"]
    letters = "abcdefghijklmnopqrstuvwxyz"
    i = 0
    while len(pieces) < size:
        piece = letters[i % 26] * (1 + i // 52)
        pieces.append(("\u2581" + piece) if (i // 26) % 2 == 0 else piece)
        i += 1
    tok_dir = Path(a.out) / "tokens-src"
    tok_dir.mkdir(parents=True, exist_ok=True)
    (tok_dir / "tokens.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    model = LasrModel(ModelArgs.from_config(cfg, size))
    model.eval()
    export_model(model, cfg, tok_dir, a.out, {"note": "UNTRAINED: random weights, for speed measurements only"})
    print(f"untrained model with the shapes of {a.config} in {a.out}")


if __name__ == "__main__":
    main()
