"""Small audio helpers: reading any file as 16 kHz mono float32, band-limited resampling."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def resample(x: np.ndarray, n_out: int) -> np.ndarray:
    """Band-limited resampling of a whole signal to exactly `n_out` samples (FFT method).

    Used both to convert TTS output (e.g. 22050 Hz) to 16 kHz and for speed
    perturbation (a signal of N samples resampled to N/speed samples and read
    at the original rate plays `speed` times faster, pitch shifted).
    """
    x = np.asarray(x, dtype=np.float64)
    n_in = len(x)
    if n_out == n_in or n_in == 0:
        return x.astype(np.float32)
    spec = np.fft.rfft(x)
    n_bins = n_out // 2 + 1
    out = np.zeros(n_bins, dtype=np.complex128)
    k = min(len(spec), n_bins)
    out[:k] = spec[:k]
    if n_out < n_in and n_out % 2 == 0:
        out[-1] = out[-1].real  # Nyquist bin of the shorter signal must be real
    y = np.fft.irfft(out, n=n_out) * (n_out / n_in)
    return y.astype(np.float32)


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Read a file (opus, flac, wav...) as mono float32 at `sample_rate`."""
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != sample_rate:
        x = resample(x, int(round(len(x) * sample_rate / sr)))
    return x.astype(np.float32)
