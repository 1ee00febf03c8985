"""Renders the audio seeds of the fuzz targets `audio` and `opus` (docs/fuzzing.md):
a tenth of a second of synthetic tone in each container and encoding libsndfile writes,
so no recorded speech ends up in the repository. Run by `make fuzz-seeds`.

    python tools/make_fuzz_seeds.py Tests/Fuzz/corpus
"""
import sys
from pathlib import Path

import numpy as np
import soundfile as sf


def tone(rate: int, channels: int, seconds: float = 0.1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * (440 + 110 * c) * t) for c in range(channels)], axis=1)
    return x.astype(np.float32)


AUDIO = [  # name, rate, channels, format, subtype
    ("u8.wav", 8000, 1, "WAV", "PCM_U8"), ("s16.wav", 8000, 1, "WAV", "PCM_16"),
    ("s24.wav", 8000, 1, "WAV", "PCM_24"), ("s32.wav", 8000, 1, "WAV", "PCM_32"),
    ("f32.wav", 8000, 1, "WAV", "FLOAT"), ("f64.wav", 8000, 1, "WAV", "DOUBLE"),
    ("alaw.wav", 8000, 1, "WAV", "ALAW"), ("ulaw.wav", 8000, 1, "WAV", "ULAW"),
    ("ima-adpcm.wav", 8000, 1, "WAV", "IMA_ADPCM"), ("ms-adpcm.wav", 8000, 1, "WAV", "MS_ADPCM"),
    ("gsm.wav", 8000, 1, "WAV", "GSM610"), ("s16-stereo.wav", 8000, 2, "WAV", "PCM_16"),
    ("s16-3ch-extensible.wav", 8000, 3, "WAVEX", "PCM_16"), ("s16.aiff", 8000, 1, "AIFF", "PCM_16"),
    ("s16.au", 8000, 1, "AU", "PCM_16"), ("s16.caf", 8000, 1, "CAF", "PCM_16"),
    ("s16.w64", 8000, 1, "W64", "PCM_16"), ("s16.flac", 8000, 1, "FLAC", "PCM_16"),
    ("s24.flac", 8000, 1, "FLAC", "PCM_24"), ("tone.ogg", 16000, 1, "OGG", "VORBIS"),
    ("mono-16k.opus", 16000, 1, "OGG", "OPUS"), ("stereo-48k.opus", 48000, 2, "OGG", "OPUS"),
]
OPUS = [("mono-16k.opus", 16000, 1), ("mono-8k.opus", 8000, 1), ("stereo-48k.opus", 48000, 2)]


def main(root: str):
    audio, opus = Path(root) / "audio", Path(root) / "opus"
    audio.mkdir(parents=True, exist_ok=True)
    opus.mkdir(parents=True, exist_ok=True)
    for name, rate, ch, fmt, sub in AUDIO:
        sf.write(audio / name, tone(rate, ch), rate, format=fmt, subtype=sub)
    for name, rate, ch in OPUS:
        sf.write(opus / name, tone(rate, ch), rate, format="OGG", subtype="OPUS")
    # Two links of one chained stream, as `cat a.opus b.opus` makes.
    (opus / "chained.opus").write_bytes((opus / "mono-16k.opus").read_bytes() + (opus / "mono-8k.opus").read_bytes())
    print(f"{root}: {len(AUDIO)} audio and {len(OPUS) + 1} opus seeds")


if __name__ == "__main__":
    main(sys.argv[1])
