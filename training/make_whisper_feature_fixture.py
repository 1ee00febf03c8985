"""Writes Tests/LasrTests/Fixtures/whisper-features.safetensors: two seconds of
audio/01-welcome.wav and the log-mel features that OpenAI's own
`whisper.audio.log_mel_spectrogram` computes from them, with 80 and 128 bands.
The Swift extractor (FeatureTests) and the recipe's numpy reference
(training/tests/test_features.py) must both reproduce them within 1e-3.

openai-whisper is not a dependency of lasr; install it beside the venv once:

    .venv/bin/pip install --target /tmp/whisper-ref --no-deps openai-whisper tiktoken tqdm \\
        more-itertools numba llvmlite regex
    PYTHONPATH=/tmp/whisper-ref .venv/bin/python training/make_whisper_feature_fixture.py
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
from lasr_train.features import log_mel, whisper_config  # noqa: E402

OUT = ROOT / "Tests/LasrTests/Fixtures/whisper-features.safetensors"


def main() -> None:
    import whisper.audio as reference  # OpenAI's implementation, the definition being matched

    x, sr = sf.read(ROOT / "audio/01-welcome.wav", dtype="float32")
    assert sr == 16000 and x.ndim == 1, (sr, x.shape)
    x = np.ascontiguousarray(x[: 2 * sr])
    tensors = {"waveform": x}
    for n_mels in (80, 128):
        ref = reference.log_mel_spectrogram(torch.from_numpy(x), n_mels=n_mels).numpy().T.copy()
        ours = log_mel(x, whisper_config(n_mels))
        diff = float(np.abs(ref - ours).max())
        assert diff < 1e-4, f"numpy reference differs from whisper by {diff} at {n_mels} bands"
        tensors[f"features_{n_mels}"] = ref.astype(np.float32)
    meta = {f"feature_config_{n}": json.dumps(asdict(whisper_config(n))) for n in (80, 128)}
    meta["source"] = "openai-whisper whisper.audio.log_mel_spectrogram via training/make_whisper_feature_fixture.py"
    save_file(tensors, str(OUT), metadata=meta)
    print(f"wrote {OUT} ({len(tensors['features_80'])} frames)")


if __name__ == "__main__":
    main()
