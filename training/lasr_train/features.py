"""Reference log-mel features, the definition that docs/features.md writes out.

This module is the Python side of a contract: the Swift extractor
(`Sources/LasrFeatures`) must produce the same numbers within 1e-3, and the
committed fixture under `Tests/LasrTests/Fixtures/` proves it. It uses numpy
only, in float64, so it is the slow, obviously-correct version.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of the log-mel computation; the `features:` block of a model config."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 80
    f_min: float = 20.0
    f_max: float = 7600.0
    log_floor: float = 1e-6

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown feature parameters: {sorted(unknown)}")
        return cls(**d)

    def num_frames(self, num_samples: int) -> int:
        """Frames of a signal: only whole windows count (no padding)."""
        if num_samples < self.win_length:
            return 0
        return 1 + (num_samples - self.win_length) // self.hop_length


def hz_to_mel(f):
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """Triangular filters, shape (n_mels, n_fft // 2 + 1), peak 1, no area normalization."""
    n_bins = cfg.n_fft // 2 + 1
    bin_hz = np.arange(n_bins, dtype=np.float64) * cfg.sample_rate / cfg.n_fft
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2))
    fb = np.zeros((cfg.n_mels, n_bins), dtype=np.float64)
    for m in range(cfg.n_mels):
        lo, mid, hi = edges_hz[m], edges_hz[m + 1], edges_hz[m + 2]
        rising = (bin_hz - lo) / (mid - lo)
        falling = (hi - bin_hz) / (hi - mid)
        fb[m] = np.maximum(0.0, np.minimum(rising, falling))
    return fb


def hann_window(length: int) -> np.ndarray:
    """Periodic Hann window: w[n] = 0.5 - 0.5 cos(2 pi n / length)."""
    n = np.arange(length, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)


def log_mel(samples: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Log-mel features of mono samples at cfg.sample_rate, shape (frames, n_mels), float32."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {x.shape}")
    t = cfg.num_frames(len(x))
    if t == 0:
        return np.zeros((0, cfg.n_mels), dtype=np.float32)
    idx = np.arange(cfg.win_length)[None, :] + cfg.hop_length * np.arange(t)[:, None]
    frames = x[idx] * hann_window(cfg.win_length)[None, :]
    spec = np.fft.rfft(frames, n=cfg.n_fft, axis=1)
    power = spec.real**2 + spec.imag**2
    mel = power @ mel_filterbank(cfg).T
    return np.log(np.maximum(mel, cfg.log_floor)).astype(np.float32)
