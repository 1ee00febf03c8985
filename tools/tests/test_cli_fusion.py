"""The fusion options of `lasr transcribe`, over the real binary and models/default: the
internal-LM discount's default comes from the model's lm: section, the JSON records what
was applied, and the CLI refuses the combinations where it could not apply."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from lasr_server import AUDIO, DEFAULT_MODEL, REQUEST_TIMEOUT, TINY_WHISPER, lasr_binary

SAMPLE = AUDIO / "01-welcome.wav"


def transcribe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(lasr_binary()), "transcribe", str(SAMPLE), *args],
                          capture_output=True, text=True, timeout=REQUEST_TIMEOUT, stdin=subprocess.DEVNULL)


def decoding(out: Path, *args: str) -> dict:
    r = transcribe("--model", str(DEFAULT_MODEL), "--output-format", "json", "--output-dir", str(out), *args)
    assert r.returncode == 0, r.stderr
    return json.loads((out / f"{SAMPLE.stem}.json").read_text())["decoding"]


def test_the_discount_defaults_to_the_models_and_is_recorded(tmp_path: Path):
    lm = yaml.safe_load((DEFAULT_MODEL / "config.yaml").read_text())["lm"]
    assert lm["internal_lm_weight"] > 0
    shipped = decoding(tmp_path / "a")
    assert shipped["internal_lm_weight"] == lm["internal_lm_weight"]
    assert shipped["lm_weight"] == lm["weight"]
    chosen = decoding(tmp_path / "b", "--internal-lm-weight", "0.5")
    assert chosen["internal_lm_weight"] == 0.5
    # 0 turns the discount off, and --no-lm turns off all of fusion with it.
    assert "internal_lm_weight" not in decoding(tmp_path / "c", "--internal-lm-weight", "0")
    plain = decoding(tmp_path / "d", "--no-lm")
    assert "internal_lm_weight" not in plain and "lm_weight" not in plain


def test_the_discount_is_refused_where_it_cannot_apply():
    cases = [
        (["--model", str(DEFAULT_MODEL), "--internal-lm-weight", "3"], "--internal-lm-weight must lie in [0, 2]"),
        (["--model", str(DEFAULT_MODEL), "--internal-lm-weight", "0.2", "--no-lm"], "--no-lm cannot be combined"),
        (["--model", str(TINY_WHISPER), "--internal-lm-weight", "0.2"], "not Whisper"),
    ]
    for args, message in cases:
        r = transcribe(*args)
        assert r.returncode != 0, args
        assert message in r.stderr, (args, r.stderr)
