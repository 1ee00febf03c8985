"""Channel augmentation in the log-mel domain (lasr_train.augment)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lasr_train.augment import (DB, ChannelAugmenter, FrequencyWarp, band_centres, colour_curve, reverberate,
                                telephone_curve, vtlp_source_hz)
from lasr_train.features import FeatureConfig, log_mel, whisper_config

FCFG = FeatureConfig()
OFF = {"reverb_prob": 0, "real_noise_prob": 0, "colour_prob": 0, "telephone_prob": 0}


def test_reverb_tail_decays_at_rt60_and_carries_the_asked_energy():
    power = np.full((600, 2), 1e-12)
    power[0] = 1.0   # one impulse frame
    out = np.exp(reverberate(np.log(power).astype(np.float32), rt60=0.5, drr_db=6.0, frame_shift=0.01)) - power
    # 60 dB down after 0.5 s = 50 frames.
    assert out[51, 0] / out[1, 0] == pytest.approx(1e-6, rel=1e-3)
    # The whole tail is 6 dB under the direct frame.
    assert out[1:, 0].sum() == pytest.approx(10 ** -0.6, rel=1e-3)
    assert (out[0] == 0).all()   # nothing before the sound


def test_telephone_keeps_the_voice_band_and_cuts_outside():
    centres = band_centres(FCFG)
    assert centres[0] > FCFG.f_min and centres[-1] < FCFG.f_max and (np.diff(centres) > 0).all()
    gain = telephone_curve(centres)
    inside = (centres >= 300) & (centres <= 3400)
    assert (gain[inside] == 0).all()
    assert gain[centres < 150].max() <= -24 and gain[centres > 6800].max() <= -24
    assert gain.min() == -45


def test_colour_is_smooth_and_bounded():
    centres = band_centres(FCFG)
    curves = [colour_curve(centres, np.random.default_rng(s), 6.0) for s in range(50)]
    for c in curves:
        assert np.abs(c).max() <= 6.0
        assert np.abs(np.diff(c)).max() < 1.5   # no band jumps: a response, not noise
    assert np.std([c[0] for c in curves]) > 1.0   # and it does vary


def test_real_noise_clip_is_added_within_the_snr_range():
    rng = np.random.default_rng(0)
    speech = log_mel(rng.standard_normal(16000) * 0.1, FCFG)
    clip = log_mel(rng.standard_normal(8000) * 0.3, FCFG)
    noisy = ChannelAugmenter({**OFF, "real_noise_prob": 1, "real_noise_snr_db": [10, 10]}, FCFG, [clip])
    added = np.exp(noisy(speech, np.random.default_rng(5)).astype(np.float64)) - np.exp(speech.astype(np.float64))
    # The noise, at 10 dB under the speech's mean power.
    assert np.exp(speech.astype(np.float64)).mean() / added.mean() == pytest.approx(10.0, rel=1e-3)


def test_augmenter_is_off_by_default_and_each_part_draws_its_own_stream():
    feats = log_mel(np.random.default_rng(1).standard_normal(32000) * 0.1, FCFG)
    off = ChannelAugmenter(OFF, FCFG)
    assert not off.enabled and off(feats, np.random.default_rng(0)) is feats
    with pytest.raises(ValueError):
        ChannelAugmenter({**OFF, "real_noise_prob": 0.5}, FCFG)
    with pytest.raises(ValueError):   # Whisper's log10 with offset and scale is not a power log
        ChannelAugmenter({**OFF, "colour_prob": 1}, whisper_config())
    reverb = ChannelAugmenter({**OFF, "reverb_prob": 1}, FCFG)
    both = ChannelAugmenter({**OFF, "reverb_prob": 1, "colour_prob": 1}, FCFG)
    a, b = reverb(feats, np.random.default_rng(7)), both(feats, np.random.default_rng(7))
    # The same room in both; the colouring adds one gain curve on top, equal in every frame.
    diff = b.astype(np.float64) - a
    assert np.allclose(diff, diff[0], atol=1e-5) and np.abs(diff[0]).max() > 0.05
    assert np.abs(diff[0] / DB).max() <= 6.0 + 1e-3
    # Seeded: the same stream, the same result.
    assert np.array_equal(both(feats, np.random.default_rng(7)), b)
    phone = ChannelAugmenter({**OFF, "telephone_prob": 1}, FCFG)(feats, np.random.default_rng(3))
    assert np.allclose((phone - feats) / DB, telephone_curve(band_centres(FCFG))[None, :], atol=1e-3)
    assert math.isfinite(float(phone.sum()))


def sine_feats(hz: float) -> np.ndarray:
    t = np.arange(16000) / 16000
    return log_mel(0.1 * np.sin(2 * np.pi * hz * t) + 1e-4 * np.random.default_rng(0).standard_normal(16000), FCFG)


def test_warp_moves_a_formant_as_a_longer_vocal_tract_would():
    warp = FrequencyWarp({"warp_prob": 1.0, "warp_alpha": [1.1, 1.1]}, FCFG)
    # A 1 kHz tone warped by 1.1 peaks in the band where a 1.1 kHz tone peaks, and the
    # warped spectrum is close to the real 1.1 kHz one around that peak.
    warped = warp(sine_feats(1000.0), np.random.default_rng(0))
    real = sine_feats(1100.0)
    peak = int(np.argmax(real[40]))
    assert int(np.argmax(warped[40])) == peak
    assert int(np.argmax(sine_feats(1000.0)[40])) != peak
    assert np.abs(warped[40, peak - 1:peak + 2] - real[40, peak - 1:peak + 2]).max() < 1.0
    # Down by 0.9 it moves the other way.
    down = FrequencyWarp({"warp_prob": 1.0, "warp_alpha": [0.9, 0.9]}, FCFG)(sine_feats(1000.0), np.random.default_rng(0))
    assert int(np.argmax(down[40])) == int(np.argmax(sine_feats(900.0)[40]))


def test_warp_keeps_the_band_edges_and_is_the_identity_at_one():
    for alpha in (0.85, 0.9, 1.0, 1.1, 1.15):
        src = vtlp_source_hz(np.array([0.0, 1000.0, 7600.0]), alpha, 7600.0)
        assert src[0] == pytest.approx(0.0, abs=1e-6) and src[2] == pytest.approx(7600.0, rel=1e-6)
        assert src[1] == pytest.approx(1000.0 / alpha, rel=1e-3)   # below the knee: a plain scaling
        pos = FrequencyWarp({"warp_prob": 1.0, "warp_alpha": [alpha, alpha]}, FCFG).positions(alpha)
        assert (np.diff(pos) > 0).all() and pos[0] >= 0 and pos[-1] <= FCFG.n_mels - 1
    feats = sine_feats(440.0)
    same = FrequencyWarp({"warp_prob": 1.0, "warp_alpha": [1.0, 1.0]}, FCFG)(feats, np.random.default_rng(0))
    assert np.allclose(same, feats, atol=1e-4)


def test_warp_is_off_by_default_and_draws_the_same_whatever_its_probability():
    feats = sine_feats(440.0)
    off = FrequencyWarp({}, FCFG)
    assert not off.enabled and off(feats, np.random.default_rng(0)) is feats
    with pytest.raises(ValueError):
        FrequencyWarp({"warp_prob": 1, "warp_alpha": [1.1, 0.9]}, FCFG)
    with pytest.raises(ValueError):
        FrequencyWarp({"warp_prob": 1}, whisper_config())
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    FrequencyWarp({"warp_prob": 0.0}, FCFG)(feats, rng_a)
    FrequencyWarp({"warp_prob": 1.0}, FCFG)(feats, rng_b)
    assert rng_a.random() == rng_b.random()
