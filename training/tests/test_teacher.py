"""The teacher loader and its cache pass (lasr_train.teacher)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from lasr_train.audio import load_audio
from lasr_train.teacher import (Teacher, TeacherStates, _byte_decoder, cache, encoder_only, main,
                                make_random_teacher, pool_to_student, select)

ROOT = Path(__file__).resolve().parents[2]
AUDIO = sorted((ROOT / "audio").glob("*.wav"))


def test_byte_spelling_covers_every_byte_once():
    table = _byte_decoder()
    assert sorted(table.values()) == list(range(256))
    assert table["Ġ"] == ord(" ") and table["a"] == ord("a") and table["Ċ"] == ord("\n")


def test_pooling_gives_the_students_frames():
    states = torch.arange(20, dtype=torch.float32).view(10, 2)   # 10 teacher frames of 20 ms
    # 17 mel frames: the student has ceil(ceil(17/2)/2) = 5 frames, each the mean of two.
    pooled = pool_to_student(states, 17)
    assert pooled.shape == (5, 2) and pooled.dtype == np.float16
    assert np.allclose(pooled[0], [1.0, 2.0]) and np.allclose(pooled[4], [17.0, 18.0])
    # Past the teacher's last frame the last one repeats rather than reading zeros.
    assert pool_to_student(states[:3], 17).shape == (5, 2)


def test_random_teacher_loads_and_decodes_deterministically(tmp_path):
    d = make_random_teacher(tmp_path / "t", seed=3)
    a, b = Teacher(d), Teacher(d)
    window, content = a.log_mel_window(load_audio(AUDIO[0]))
    assert window.shape == (3000, 80) and 0 < content < 3000
    final, kept = a.encode(window[None], layers=(1, 2))
    assert final.shape == (1, 1500, 32) and set(kept) == {1, 2}
    assert torch.equal(kept[2], final)   # the last layer is the encoder's output (after ln_post)
    ta, tb = a.transcribe(final, max_tokens=8), b.transcribe(b.encode(window[None])[0], max_tokens=8)
    assert ta.tokens == tb.tokens and len(ta.logprobs) == len(ta.tokens)
    assert all(t < a.special["end_of_text"] or t >= a.special["timestamp_begin"] for t in ta.tokens)
    assert ta.tokens[0] >= a.special["timestamp_begin"]   # the timestamp grammar: a timestamp first


def test_not_a_whisper_directory_is_refused(tmp_path):
    (tmp_path / "config.yaml").write_text("architecture: lasr\n")
    with pytest.raises(ValueError, match="not a Whisper model"):
        Teacher(tmp_path)
    with pytest.raises(FileNotFoundError, match="lasr models install"):
        Teacher(tmp_path / "missing")


def _manifest(tmp_path) -> Path:
    m = tmp_path / "m.jsonl"
    with open(m, "w") as f:
        for i, a in enumerate(AUDIO):
            d = {"id": f"u{i}", "audio": str(a), "duration": sf.info(str(a)).duration}
            d["language"] = "en" if i % 2 == 0 else "de"   # only English is transcribed
            f.write(json.dumps(d) + "\n")
    return m


def test_cache_resumes_to_the_same_bytes(tmp_path):
    teacher = make_random_teacher(tmp_path / "t")
    m = _manifest(tmp_path)
    args = ["cache", "--teacher", str(teacher), "--manifest", str(m), "--shard-size", "2", "--batch", "2",
            "--layers", "1", "2"]
    main(args + ["--out", str(tmp_path / "a")])
    states = TeacherStates(tmp_path / "a")
    assert len(states) == len(AUDIO)
    for i, a in enumerate(AUDIO):
        frames = len(load_audio(a)) // 160
        assert states.states(f"u{i}", 1).shape == (-(-(-(-frames // 2)) // 2), 32)
    lines = (tmp_path / "a/transcripts.jsonl").read_text().splitlines()
    assert [json.loads(l)["id"] for l in lines] == [f"u{i}" for i in range(0, len(AUDIO), 2)]
    # An interrupted pass: the last shard and its transcripts missing; the rerun completes it.
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    last = sorted((tmp_path / "b").glob("states-*.safetensors"))[-1]
    last.unlink()
    (tmp_path / "b/transcripts.jsonl").write_text("\n".join(lines[:1]) + "\n")
    main(args + ["--out", str(tmp_path / "b")])
    for p in sorted((tmp_path / "a").glob("states-*.safetensors")):
        assert p.read_bytes() == (tmp_path / "b" / p.name).read_bytes(), p.name
    assert (tmp_path / "b/transcripts.jsonl").read_text().splitlines() == lines
    # The transcripts become a manifest by their confidence.
    kept, read = select(tmp_path / "a/transcripts.jsonl", tmp_path / "sel.jsonl", -1e9, 1.0, min_words=0)
    assert kept == read == len(lines)
    first = json.loads((tmp_path / "sel.jsonl").read_text().splitlines()[0])
    assert Path(first["audio"]).is_absolute() and {"id", "duration", "text"} <= set(first)
    assert select(tmp_path / "a/transcripts.jsonl", tmp_path / "none.jsonl", 1.0, 1.0) == (0, len(lines))
    # Other settings into the same folder are refused, not mixed.
    with pytest.raises(SystemExit, match="other settings"):
        main(args[:-2] + ["2", "--out", str(tmp_path / "a")])


def test_a_language_list_caches_those_lines_alone(tmp_path):
    teacher = make_random_teacher(tmp_path / "t")
    m = _manifest(tmp_path)
    args = ["cache", "--teacher", str(teacher), "--manifest", str(m), "--shard-size", "2", "--batch", "2"]
    main(args + ["--languages", "en", "--out", str(tmp_path / "en")])
    english = [f"u{i}" for i in range(0, len(AUDIO), 2)]
    states = TeacherStates(tmp_path / "en")
    assert len(states) == len(english) and all(u in states for u in english)
    lines = (tmp_path / "en/transcripts.jsonl").read_text().splitlines()
    assert [json.loads(l)["id"] for l in lines] == english
    # The same folder without the list, or with another, is another cache: refused, not mixed.
    for other in ([], ["--languages", "de"]):
        with pytest.raises(SystemExit, match="other settings"):
            main(args + other + ["--out", str(tmp_path / "en")])
    with pytest.raises(SystemExit, match="no line of"):
        main(args + ["--languages", "xx", "--out", str(tmp_path / "none")])


def test_parts_and_an_encoder_only_teacher_fill_the_same_cache(tmp_path):
    teacher = make_random_teacher(tmp_path / "t")
    m = _manifest(tmp_path)
    args = ["--manifest", str(m), "--shard-size", "1", "--batch", "1", "--layers", "1", "2", "--transcribe"]
    main(["cache", "--teacher", str(teacher), *args, "--out", str(tmp_path / "whole")])
    # The encoder alone, in two processes' parts (here one after the other), every other shard each.
    small = encoder_only(teacher, tmp_path / "enc" / teacher.name)
    assert (small / "model.safetensors").stat().st_size < (teacher / "model.safetensors").stat().st_size / 2
    main(["cache", "--teacher", str(small), *args, "--out", str(tmp_path / "parts"), "--part", "1/2"])
    assert len(TeacherStates(tmp_path / "parts")) == (len(AUDIO) + 1) // 2
    main(["cache", "--teacher", str(small), *args, "--out", str(tmp_path / "parts"), "--part", "2/2"])
    whole = sorted(p.name for p in (tmp_path / "whole").glob("states-*"))
    assert whole == sorted(p.name for p in (tmp_path / "parts").glob("states-*")) and len(whole) == len(AUDIO)
    for name in whole:
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "parts" / name).read_bytes(), name
    # Caches read as one when one teacher made them with the same layers.
    both = TeacherStates(tmp_path / "whole", tmp_path / "parts")
    assert len(both) == len(AUDIO) and len(both.meta["manifests"]) == 2
    main(["cache", "--teacher", str(small), *args[:-4], "--layers", "1", "--transcribe", "--out", str(tmp_path / "l1")])
    with pytest.raises(SystemExit, match="differ in layers"):
        TeacherStates(tmp_path / "whole", tmp_path / "l1")
    # Without its decoder the teacher gives states and refuses transcripts by name.
    t = Teacher(small)
    with pytest.raises(ValueError, match="encoder alone"):
        t.transcribe(t.encode(t.log_mel_window(load_audio(AUDIO[0]))[0][None])[0])
    with pytest.raises(SystemExit, match="K/N"):
        main(["cache", "--teacher", str(small), *args, "--out", str(tmp_path / "x"), "--part", "2"])


def _lasr_binary() -> Path | None:
    for p in (ROOT / ".build/release/lasr", ROOT / ".build/debug/lasr"):
        if p.exists():
            return p
    return None


@pytest.mark.parametrize("name", ["whisper-tiny.en", "whisper-base"])
def test_greedy_transcripts_match_lasrs_own_whisper(name, tmp_path):
    """The recipe's Whisper and lasr's Swift Whisper decode audio/ to the same tokens.

    Both read the same 16 kHz files (audio/ is 44.1 kHz stereo, and the two resamplers
    differ in the last bits, enough to flip a near-tie in a weak model's decoding)."""
    model, lasr = ROOT / "models" / name, _lasr_binary()
    if not (model / "model.safetensors").exists() or lasr is None:
        pytest.skip(f"needs models/{name} (lasr models install {name}) and a built lasr")
    files = []
    for a in AUDIO:
        f = tmp_path / a.name
        sf.write(str(f), load_audio(a), 16000, subtype="FLOAT")
        files.append(f)
    out = tmp_path / "json"
    subprocess.run([str(lasr), "transcribe", "--model", str(model), "--beam", "1", "--no-fallback",
                    "--output-format", "json", "--output-dir", str(out), *map(str, files)],
                   check=True, capture_output=True, env=dict(os.environ, OMP_NUM_THREADS="2"))
    teacher = Teacher(model)
    for f in files:
        doc = json.loads((out / f"{f.stem}.json").read_text())
        theirs = [t["id"] for s in doc["segments"] for t in s["tokens"]]
        window, _ = teacher.log_mel_window(load_audio(f))
        ours = teacher.transcribe(teacher.encode(window[None])[0])
        assert [t for t in ours.tokens if t < teacher.special["end_of_text"]] == theirs, f.name
        assert ours.text == doc["text"].strip(), f.name
