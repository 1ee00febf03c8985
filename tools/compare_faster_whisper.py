#!/usr/bin/env python3
"""lasr (a converted Whisper model) against faster-whisper with the same weights,
on the same files and beam: word error rate (lasr's normalization), word start
times of one against the other, and wall time including model load.

faster-whisper is not a dependency of lasr; install it in a separate venv:

    python3 -m venv /tmp/fw && /tmp/fw/bin/pip install faster-whisper soundfile
    /tmp/fw/bin/python tools/compare_faster_whisper.py --ct2 ~/faster-whisper-tiny.en \\
        --lasr-model models/whisper-tiny.en --manifest ../shared/speech/dev.jsonl

Both systems get 16 kHz mono float32 samples decoded by the same library
(soundfile here, libsndfile in lasr), beam 5, temperature fallback, previous-text
conditioning, word timestamps on, VAD off.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
from lasr_train.text import normalize_text  # noqa: E402  (the twin of lasr's TextNormalizer)


def edit_ops(ref: list[str], hyp: list[str]):
    """Levenshtein alignment: returns (errors, list of (ref index or None, hyp index or None))."""
    n, m = len(ref), len(hyp)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    pairs, i, j = [], n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return d[n][m], pairs[::-1]


def load_manifest(path: Path, limit: int | None, every: int = 1):
    entries = [json.loads(l) for l in path.read_text().splitlines() if l.strip()][::every]
    for e in entries:
        e["path"] = str((path.parent / e["audio"]).resolve())
    return entries[:limit] if limit else entries


def run_faster_whisper(entries, ct2: str, compute_type: str, beam: int, threads: int, fallback: bool = True):
    import soundfile as sf
    from faster_whisper import WhisperModel

    started = time.time()
    model = WhisperModel(ct2, device="cpu", compute_type=compute_type, cpu_threads=threads)
    out = {}
    for e in entries:
        audio, sr = sf.read(e["path"], dtype="float32")
        assert sr == 16000 and audio.ndim == 1, (e["path"], sr, audio.shape)
        extra = {} if fallback else {"temperature": 0.0}
        segments, _ = model.transcribe(audio, beam_size=beam, language="en", word_timestamps=True, vad_filter=False,
                                       **extra)
        segments = list(segments)
        out[e["id"]] = {"text": " ".join(s.text.strip() for s in segments),
                        "words": [(w.start, w.end, w.word.strip()) for s in segments for w in s.words]}
    return out, time.time() - started


def attention_lag(model: str) -> float:
    """The model's `timestamps.attention_lag` (seconds lasr subtracts from every word time; 0 when absent)."""
    block = False
    for line in (Path(model) / "config.yaml").read_text(encoding="utf-8").splitlines():
        if not line.startswith((" ", "\t")):
            block = line.startswith("timestamps:")
        elif block and line.strip().startswith("attention_lag:"):
            return float(line.split(":", 1)[1].split("#")[0])
    return 0.0


def run_lasr(entries, lasr: str, model: str, beam: int, threads: int, padding: str, fallback: bool = True):
    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        subprocess.run([lasr, "transcribe", "--model", model, "--beam", str(beam), "--jobs", "1", "--whisper-padding", padding,
                        "--threads", str(threads), "--output-format", "json", "--output-dir", tmp,
                        *([] if fallback else ["--no-fallback"]),
                        *[e["path"] for e in entries]], check=True, stdout=subprocess.DEVNULL)
        elapsed = time.time() - started
        out = {}
        for e in entries:
            doc = json.loads((Path(tmp) / (Path(e["path"]).stem + ".json")).read_text())
            out[e["id"]] = {"text": doc["text"],
                            "words": [(w["start"], w["end"], w["word"]) for s in doc["segments"] for w in s["words"]]}
    return out, elapsed


def wer(entries, hyps):
    errors = words = 0
    for e in entries:
        ref = normalize_text(e["text"]).split()
        hyp = normalize_text(hyps[e["id"]]["text"]).split()
        errors += edit_ops(ref, hyp)[0]
        words += len(ref)
    return 100.0 * errors / max(words, 1)


def start_differences(entries, a, b):
    """|start_a − start_b| of the words both systems wrote the same (after normalization), paired by alignment."""
    diffs = []
    for e in entries:
        wa = [(s, normalize_text(w)) for s, _, w in a[e["id"]]["words"]]
        wb = [(s, normalize_text(w)) for s, _, w in b[e["id"]]["words"]]
        _, pairs = edit_ops([w for _, w in wa], [w for _, w in wb])
        diffs += [abs(wa[i][0] - wb[j][0]) for i, j in pairs if i is not None and j is not None and wa[i][1] == wb[j][1]]
    return diffs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ct2", required=True, help="CTranslate2 Whisper folder (faster-whisper's format)")
    p.add_argument("--lasr-model", required=True, help="the same model converted by tools/convert_whisper.py")
    p.add_argument("--manifest", type=Path, default=ROOT.parent / "shared/speech/dev.jsonl")
    p.add_argument("--lasr", default=str(ROOT / ".build/release/lasr"))
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--limit", type=int)
    p.add_argument("--no-fallback", action="store_true",
                   help="temperature 0 only on both sides: no sampled retries, so each system's output is "
                        "deterministic and the comparison is of the decoders alone")
    p.add_argument("--every", type=int, default=1, help="take every Kth manifest line (a subset spread over all corpora)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every system this many times, interleaved, so that a machine slowing down mid-run "
                        "hits all systems alike; the table shows the median wall time and each round's")
    p.add_argument("--compute-types", default="float32,int8")
    p.add_argument("--paddings", default="openai,faster-whisper", help="lasr's --whisper-padding values to run")
    a = p.parse_args()
    # faster-whisper has no offset: lasr's word starts are compared with theirs before it
    # (the lag added back), which checks that both align alike; a start lasr clamped at
    # the audio's beginning comes back lag late.
    lag = attention_lag(a.lasr_model)
    entries = load_manifest(a.manifest, a.limit, a.every)
    seconds = sum(e["duration"] for e in entries)
    print(f"{len(entries)} files, {seconds / 60:.1f} min of audio, beam {a.beam}, {a.threads} threads, "
          f"{'temperature 0 only' if a.no_fallback else 'temperature fallback'}")
    systems = {f"lasr ({padding} padding)": (lambda padding=padding: run_lasr(
        entries, a.lasr, a.lasr_model, a.beam, a.threads, padding, not a.no_fallback)) for padding in a.paddings.split(",")}
    systems.update({f"faster-whisper {ct}": (lambda ct=ct: run_faster_whisper(entries, a.ct2, ct, a.beam, a.threads,
                                                                             not a.no_fallback))
                    for ct in a.compute_types.split(",")})
    results, times = {}, {name: [] for name in systems}
    for r in range(a.rounds):
        for name, run in systems.items():
            results[name], t = run()
            times[name].append(t)
            print(f"round {r + 1}: {name} {t:.1f} s", flush=True)
    print(f"{'system':24} {'WER %':>7} {'wall s':>8} {'x real time':>12}  rounds")
    for name, out in results.items():
        t = statistics.median(times[name])
        rounds = " ".join(f"{x:.1f}" for x in times[name])
        print(f"{name:24} {wer(entries, out):7.2f} {t:8.1f} {seconds / t:12.1f}  {rounds}")
    corpora = sorted({e.get("corpus", "") for e in entries})
    if len(corpora) > 1:
        for name, out in results.items():
            parts = [f"{c} {wer([e for e in entries if e.get('corpus', '') == c], out):.2f}" for c in corpora]
            print(f"{name:24} WER % by corpus: " + ", ".join(parts))
    for name in [n for n in results if n.startswith("lasr")]:
        if "faster-whisper float32" not in results:
            break
        unshifted = {k: {**v, "words": [(s + lag, e + lag, w) for s, e, w in v["words"]]} for k, v in results[name].items()}
        diffs = start_differences(entries, unshifted, results["faster-whisper float32"])
        if diffs:
            q = statistics.quantiles(diffs, n=10)
            print(f"word starts, {name} (its {1000 * lag:+.0f} ms offset added back) vs faster-whisper float32: "
                  f"{len(diffs)} words, median |Δ| {1000 * statistics.median(diffs):.0f} ms, p90 {1000 * q[8]:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
