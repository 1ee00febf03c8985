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
    # Keys of other front ends (Whisper's); their defaults are the native definition.
    mel_scale: str = "htk"          # htk | slaney
    mel_norm: str = "none"          # none | slaney (unit-area triangles)
    center: bool = False            # frame t centered on sample t*hop, reflect padding
    log_base: str = "e"             # e | 10
    dynamic_range: float | None = None  # clamp to (max over the call) - this
    offset: float = 0.0             # output = (log + offset) * scale
    scale: float = 1.0

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown feature parameters: {sorted(unknown)}")
        return cls(**d)

    def num_frames(self, num_samples: int) -> int:
        """Frames of a signal: whole windows only, or with `center` one per whole hop."""
        if self.center:
            return num_samples // self.hop_length
        if num_samples < self.win_length:
            return 0
        return 1 + (num_samples - self.win_length) // self.hop_length


def hz_to_mel(f, scale: str = "htk"):
    """HTK mel scale, or Slaney's: linear up to 1 kHz (3 mels per 200 Hz), then 27 mels per factor 6.4."""
    f = np.asarray(f, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    if scale == "slaney":
        return np.where(f < 1000.0, f * 3.0 / 200.0, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) * 27.0 / np.log(6.4))
    raise ValueError(f"unknown mel scale {scale!r}")


def mel_to_hz(m, scale: str = "htk"):
    m = np.asarray(m, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    if scale == "slaney":
        return np.where(m < 15.0, m * 200.0 / 3.0, 1000.0 * np.exp((m - 15.0) * np.log(6.4) / 27.0))
    raise ValueError(f"unknown mel scale {scale!r}")


def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """Triangular filters, shape (n_mels, n_fft // 2 + 1): peak 1, or unit area with mel_norm slaney."""
    n_bins = cfg.n_fft // 2 + 1
    bin_hz = np.arange(n_bins, dtype=np.float64) * cfg.sample_rate / cfg.n_fft
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(cfg.f_min, cfg.mel_scale), hz_to_mel(cfg.f_max, cfg.mel_scale),
                                     cfg.n_mels + 2), cfg.mel_scale)
    fb = np.zeros((cfg.n_mels, n_bins), dtype=np.float64)
    for m in range(cfg.n_mels):
        lo, mid, hi = edges_hz[m], edges_hz[m + 1], edges_hz[m + 2]
        rising = (bin_hz - lo) / (mid - lo)
        falling = (hi - bin_hz) / (hi - mid)
        fb[m] = np.maximum(0.0, np.minimum(rising, falling))
        if cfg.mel_norm == "slaney":
            fb[m] *= 2.0 / (hi - lo)
        elif cfg.mel_norm != "none":
            raise ValueError(f"unknown mel norm {cfg.mel_norm!r}")
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
    start = cfg.hop_length * np.arange(t)[:, None] - (cfg.win_length // 2 if cfg.center else 0)
    idx = np.arange(cfg.win_length)[None, :] + start
    if cfg.center:
        # reflect padding (edge sample not repeated); beyond one reflection reads as zero
        idx = np.where(idx < 0, -idx, idx)
        idx = np.where(idx >= len(x), 2 * (len(x) - 1) - idx, idx)
        valid = (idx >= 0) & (idx < len(x))
        frames = np.where(valid, x[np.clip(idx, 0, len(x) - 1)], 0.0)
    else:
        frames = x[idx]
    frames = frames * hann_window(cfg.win_length)[None, :]
    spec = np.fft.rfft(frames, n=cfg.n_fft, axis=1)
    power = spec.real**2 + spec.imag**2
    mel = np.maximum(power @ mel_filterbank(cfg).T, cfg.log_floor)
    if cfg.log_base == "e":
        out = np.log(mel)
    elif cfg.log_base == "10":
        out = np.log10(mel)
    else:
        raise ValueError(f"unknown log base {cfg.log_base!r}")
    if cfg.dynamic_range is not None:
        out = np.maximum(out, out.max() - cfg.dynamic_range)
    return ((out + cfg.offset) * cfg.scale).astype(np.float32)


def whisper_config(n_mels: int = 80) -> FeatureConfig:
    """Whisper's front end (OpenAI whisper/audio.py) in this module's terms."""
    return FeatureConfig(n_fft=400, win_length=400, hop_length=160, n_mels=n_mels, f_min=0.0, f_max=8000.0,
                         log_floor=1e-10, mel_scale="slaney", mel_norm="slaney", center=True, log_base="10",
                         dynamic_range=8.0, offset=4.0, scale=0.25)
