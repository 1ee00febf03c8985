from pathlib import Path

import numpy as np

from lasr_train.features import FeatureConfig, hz_to_mel, log_mel, mel_filterbank, mel_to_hz


def test_frame_count_formula():
    cfg = FeatureConfig()
    assert cfg.num_frames(399) == 0
    assert cfg.num_frames(400) == 1
    assert cfg.num_frames(559) == 1
    assert cfg.num_frames(560) == 2
    assert cfg.num_frames(16000) == 98
    assert log_mel(np.zeros(16000), cfg).shape == (98, 80)
    assert log_mel(np.zeros(100), cfg).shape == (0, 80)


def test_filterbank_triangles():
    cfg = FeatureConfig()
    fb = mel_filterbank(cfg)
    assert fb.shape == (80, 257)
    assert fb.min() >= 0 and fb.max() <= 1 + 1e-12
    edges = mel_to_hz(np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2))
    bin_hz = np.arange(257) * cfg.sample_rate / cfg.n_fft
    for m in (0, 10, 40, 79):
        nz = np.nonzero(fb[m])[0]
        # support strictly inside (e_m, e_{m+2}); unimodal with the peak next to e_{m+1}
        assert bin_hz[nz].min() > edges[m] and bin_hz[nz].max() < edges[m + 2]
        peak = nz[np.argmax(fb[m, nz])]
        assert abs(bin_hz[peak] - edges[m + 1]) <= cfg.sample_rate / cfg.n_fft
        assert np.all(np.diff(fb[m, nz[0]:peak + 1]) >= 0) and np.all(np.diff(fb[m, peak:nz[-1] + 1]) <= 0)
    assert np.allclose(mel_to_hz(hz_to_mel(1234.5)), 1234.5)


def test_pure_tone_lands_in_its_band():
    cfg = FeatureConfig()
    sr = cfg.sample_rate
    t = np.arange(sr) / sr
    fb = mel_filterbank(cfg)
    centers = mel_to_hz(np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2))[1:-1]
    for f0 in (440.0, 1000.0, 3000.0):
        feats = log_mel(0.5 * np.sin(2 * np.pi * f0 * t), cfg)
        band = int(np.argmax(feats.mean(0)))
        assert abs(centers[band] - f0) <= (centers[min(band + 1, 79)] - centers[max(band - 1, 0)])
        assert feats.mean(0)[band] > feats.mean(0).mean() + 5


def test_log_floor_and_dtype():
    f = log_mel(np.zeros(4000))
    assert f.dtype == np.float32
    assert np.allclose(f, np.log(1e-6))


def test_whisper_front_end_matches_openai_whisper_on_the_fixture():
    """The fixture holds what openai-whisper's log_mel_spectrogram computed (make_whisper_feature_fixture.py)."""
    from safetensors.numpy import load_file
    from lasr_train.features import whisper_config

    fixture = load_file(str(Path(__file__).resolve().parents[2] / "Tests/LasrTests/Fixtures/whisper-features.safetensors"))
    for n_mels in (80, 128):
        ours = log_mel(fixture["waveform"], whisper_config(n_mels))
        assert ours.shape == fixture[f"features_{n_mels}"].shape
        assert np.abs(ours - fixture[f"features_{n_mels}"]).max() < 1e-4


def test_slaney_scale_and_centered_frames():
    from lasr_train.features import whisper_config

    assert np.allclose(hz_to_mel([0.0, 1000.0, 6400.0], "slaney"), [0.0, 15.0, 42.0])
    assert np.allclose(mel_to_hz(hz_to_mel([300.0, 2500.0], "slaney"), "slaney"), [300.0, 2500.0])
    cfg = whisper_config(80)
    assert cfg.num_frames(16000) == 100 and cfg.num_frames(159) == 0
    # unit-area triangles: each filter's weights times the bin spacing integrate to about 1 where bins are dense
    fb = mel_filterbank(cfg)
    assert abs(fb[40].sum() * cfg.sample_rate / cfg.n_fft - 1.0) < 0.1
    # the clamp: nothing lies more than dynamic_range below the maximum, before the rescaling
    f = log_mel(np.r_[np.zeros(8000), 0.5 * np.sin(np.arange(8000) * 0.3)], cfg)
    assert np.isclose(f.min(), f.max() - 8.0 * cfg.scale, atol=1e-5)
