"""Channel augmentation in the log-mel domain (lasr_train.augment)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lasr_train.augment import DB, ChannelAugmenter, band_centres, colour_curve, reverberate, telephone_curve
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
