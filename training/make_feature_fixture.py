"""Writes Tests/LasrTests/Fixtures/features.safetensors: a waveform and the
reference log-mel features of it, which the Swift extractor must reproduce
within 1e-3 (FeatureTests.matchesThePythonReference).

    .venv/bin/python training/make_feature_fixture.py
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lasr_train.features import FeatureConfig, log_mel  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "Tests/LasrTests/Fixtures/features.safetensors"


def waveform(cfg: FeatureConfig, seconds: float = 1.0) -> np.ndarray:
    """A chirp, two steady tones, seeded noise and a stretch of digital silence."""
    n = int(cfg.sample_rate * seconds)
    t = np.arange(n) / cfg.sample_rate
    chirp = 0.3 * np.sin(2 * np.pi * (100 * t + 0.5 * 3000 * t**2))
    tones = 0.2 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 5200 * t)
    noise = 0.02 * np.random.default_rng(1234).standard_normal(n)
    x = chirp + tones + noise
    x[int(0.8 * n):int(0.85 * n)] = 0.0
    return (0.9 * x / np.max(np.abs(x))).astype(np.float32)


def main() -> None:
    cfg = FeatureConfig()
    x = waveform(cfg)
    feats = log_mel(x, cfg)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_file({"waveform": x, "features": feats}, str(OUT),
              metadata={"feature_config": json.dumps(asdict(cfg)), "source": "training/make_feature_fixture.py"})
    print(f"wrote {OUT} ({feats.shape[0]} frames)")


if __name__ == "__main__":
    main()
