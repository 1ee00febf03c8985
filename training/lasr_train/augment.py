"""Channel augmentation on the fly, in the log-mel domain of the feature caches.

The caches hold natural-log mel power (the native front end: log base e, no offset,
no scale), so a linear channel is an addition and a second source is a sum of powers:

- real noise: a clip of `noise.jsonl` (its own feature cache) added at a random SNR
  by `data.add_noise`, which adds the synthetic coloured noises too;
- reverberation: each band's power smeared by an exponential tail, P'[t] = P[t] +
  w·Σ_{k≥1} d^k·P[t−k], with d the per-frame decay of a room of reverberation time
  RT60 (60 dB in RT60 seconds) and w setting the tail's energy against the direct
  sound (a direct-to-reverberant ratio). This is the statistical late-reverberation
  model of Polack (1988), used by Lebart et al. (2001) for dereverberation; the early
  reflections it leaves out mostly colour the spectrum, which the next step does;
- microphone colouring: a smooth random gain curve over the mel bands (a tilt plus a
  few cosines, within ±`colour_db`);
- telephone band: 300–3400 Hz kept, 24 dB per octave down outside, to a floor.

Each runs with its own probability; all are off (probability 0) in the default config.

One more, of the speaker rather than the channel: vocal tract length perturbation
(`FrequencyWarp`, Jaitly & Hinton 2013), which stretches the spectrum's frequency axis
by a random factor as a longer or shorter vocal tract would. Speed perturbation scales
pitch, formants and tempo together in three fixed steps; the warp moves the formants
alone, by a continuous factor, so the few training speakers stand for more voices.
"""
from __future__ import annotations

import math

import numpy as np

from .data import add_noise
from .features import FeatureConfig, hz_to_mel, mel_to_hz

DB = math.log(10.0) / 10.0   # one decibel of power in natural-log units


def check_log_domain(fcfg: FeatureConfig) -> None:
    """The augmentations assume the native front end's plain natural log."""
    if fcfg.log_base != "e" or fcfg.offset != 0 or fcfg.scale != 1 or fcfg.dynamic_range is not None:
        raise ValueError("channel augmentation needs natural-log mel power features (log_base e, offset 0, scale 1, "
                         "no dynamic range)")


def band_centres(fcfg: FeatureConfig) -> np.ndarray:
    """The centre frequency in Hz of each mel band."""
    lo, hi = hz_to_mel(fcfg.f_min, fcfg.mel_scale), hz_to_mel(fcfg.f_max, fcfg.mel_scale)
    edges = np.linspace(lo, hi, fcfg.n_mels + 2)
    return np.asarray(mel_to_hz(edges[1:-1], fcfg.mel_scale), dtype=np.float64)


def reverberate(feats: np.ndarray, rt60: float, drr_db: float, frame_shift: float) -> np.ndarray:
    """The exponential late tail of a room with `rt60` seconds, `drr_db` below the direct sound."""
    d = 10.0 ** (-6.0 * frame_shift / rt60)
    # Σ_{k≥1} d^k = d/(1−d): w makes the tail's energy drr_db under the direct sound's.
    w = (1.0 - d) / d * 10.0 ** (-drr_db / 10.0)
    power = np.exp(feats.astype(np.float64))
    tail = np.zeros_like(power)
    acc = np.zeros(power.shape[1])
    for t in range(1, len(power)):
        acc = d * (acc + power[t - 1])
        tail[t] = acc
    return np.log(power + w * tail).astype(np.float32)


def colour_curve(centres: np.ndarray, rng: np.random.Generator, max_db: float) -> np.ndarray:
    """A smooth gain in dB over the bands: a tilt plus four cosines, clipped to ±max_db."""
    m = np.linspace(0.0, 1.0, len(centres))
    gain = rng.uniform(-max_db, max_db) * (m - 0.5)
    for j in range(1, 5):
        gain += rng.uniform(-1, 1) * max_db / (2 * j) * np.cos(math.pi * j * m + rng.uniform(0, 2 * math.pi))
    return np.clip(gain, -max_db, max_db)


def telephone_curve(centres: np.ndarray, low: float = 300.0, high: float = 3400.0, slope_db: float = 24.0,
                    floor_db: float = -45.0) -> np.ndarray:
    """Gain in dB of a telephone channel: flat inside [low, high], `slope_db` per octave outside."""
    f = np.maximum(centres, 1.0)
    below = np.where(f < low, slope_db * np.log2(f / low), 0.0)
    above = np.where(f > high, -slope_db * np.log2(f / high), 0.0)
    return np.maximum(below + above, floor_db)


class ChannelAugmenter:
    """Applies the channel augmentations of `aug` (the config's `training.augment`)."""

    def __init__(self, aug: dict, fcfg: FeatureConfig, noises: list[np.ndarray] | None = None):
        self.aug = aug
        self.noises = noises or []
        self.frame_shift = fcfg.hop_length / fcfg.sample_rate
        self.centres = band_centres(fcfg)
        self.telephone = telephone_curve(self.centres)
        if self.enabled:
            check_log_domain(fcfg)
        if aug.get("real_noise_prob", 0) > 0 and not self.noises:
            raise ValueError("training.augment.real_noise_prob > 0 needs --noise-cache (a feature cache of noise.jsonl)")

    @property
    def enabled(self) -> bool:
        return any(self.aug.get(k, 0) > 0 for k in ("reverb_prob", "real_noise_prob", "colour_prob", "telephone_prob"))

    def __call__(self, feats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Room, then the noise in it, then the microphone and the line."""
        a = self.aug
        if not self.enabled or len(feats) == 0:
            return feats
        # Every draw is made whatever the probabilities, so one setting does not shift
        # the random stream of another.
        u = rng.random(4)
        rt60, drr = rng.uniform(*a.get("reverb_rt60", [0.2, 0.8])), rng.uniform(*a.get("reverb_drr_db", [-3, 10]))
        snr = rng.uniform(*a.get("real_noise_snr_db", [0, 25]))
        pick = rng.random()
        noise_rng, curve_rng = (np.random.default_rng(rng.integers(2**62)) for _ in range(2))
        if u[0] < a.get("reverb_prob", 0):
            feats = reverberate(feats, rt60, drr, self.frame_shift)
        if u[1] < a.get("real_noise_prob", 0):
            feats = add_noise(feats, self.noises[int(pick * len(self.noises))], snr, noise_rng)
        gain = np.zeros(len(self.centres))
        if u[2] < a.get("colour_prob", 0):
            gain += colour_curve(self.centres, curve_rng, float(a.get("colour_db", 6.0)))
        if u[3] < a.get("telephone_prob", 0):
            gain += self.telephone
        if gain.any():
            feats = (feats + (gain * DB)[None, :]).astype(np.float32)
        return feats


def vtlp_source_hz(target_hz: np.ndarray, alpha: float, f_max: float) -> np.ndarray:
    """Where each `target_hz` comes from under VTLP's piecewise-linear warp by `alpha`.

    The forward warp (Jaitly & Hinton 2013) scales f by alpha up to a boundary
    f_hi·min(alpha, 1)/alpha, then runs linearly to f_max, so the band edge stays put
    and nothing is pushed past it. Being monotone, it is inverted by interpolation.
    f_hi is 0.63·f_max: 4.8 kHz for the native front end, the paper's choice at 16 kHz."""
    f_hi = 0.63 * f_max
    f0 = f_hi * min(alpha, 1.0) / alpha
    src = np.linspace(0.0, f_max, 2049)
    fwd = np.where(src <= f0, src * alpha,
                   f_max - (f_max - f_hi * min(alpha, 1.0)) / (f_max - f0) * (f_max - src))
    return np.interp(target_hz, fwd, src)


class FrequencyWarp:
    """Vocal tract length perturbation of log-mel features, `training.augment.warp_prob`
    of the utterances warped by a factor drawn uniformly from `warp_alpha`.

    Each band takes the log power at its source frequency, interpolated between the two
    nearest bands on the mel scale; sources below the first band's centre take the first
    band (and likewise at the top), as the spectrum outside the filterbank is unknown."""

    def __init__(self, aug: dict, fcfg: FeatureConfig):
        self.prob = float(aug.get("warp_prob", 0.0))
        self.range = tuple(aug.get("warp_alpha", [0.9, 1.1]))
        if not (0 < self.range[0] <= self.range[1]):
            raise ValueError(f"training.augment.warp_alpha {list(self.range)}: needs 0 < low <= high")
        self.centres = band_centres(fcfg)
        self.centre_mels = np.asarray(hz_to_mel(self.centres, fcfg.mel_scale), dtype=np.float64)
        self.f_max = float(fcfg.f_max)
        self.mel_scale = fcfg.mel_scale
        if self.enabled:
            check_log_domain(fcfg)

    @property
    def enabled(self) -> bool:
        return self.prob > 0

    def positions(self, alpha: float) -> np.ndarray:
        """The fractional band index each band reads from, under the warp by `alpha`."""
        src_mel = np.asarray(hz_to_mel(vtlp_source_hz(self.centres, alpha, self.f_max), self.mel_scale))
        return np.interp(src_mel, self.centre_mels, np.arange(len(self.centres), dtype=np.float64))

    def __call__(self, feats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u, alpha = rng.random(), rng.uniform(*self.range)   # both drawn always: a stable stream
        if u >= self.prob or len(feats) == 0:
            return feats
        pos = self.positions(alpha)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, feats.shape[1] - 1)
        w = (pos - lo).astype(np.float32)
        return (feats[:, lo] * (1 - w) + feats[:, hi] * w).astype(np.float32)
