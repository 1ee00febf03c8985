"""Calibrate the engine's word times on synthetic speech whose word boundaries are known.

A listen-attend-spell decoder writes a token once it has heard it, so the attention
of the step that wrote a token peaks a little after the token ends. The engine reads
word times off those peaks (docs/alignments.md) and subtracts a constant lag, the
model's `timestamps.attention_lag` (docs/model-format.md). This module measures that
lag without touching the dev set:

    render     flite speaks public-domain sentences; flite's own segment end times,
               grouped by word, are the exact word boundaries (manifest with `words`)
    calibrate  runs `lasr eval` on that manifest, takes the median signed start and
               end errors, and moves the model's lag by their mean; then, with that
               lag, tries each `timestamps.max_token_span` of SPAN_FRAMES and keeps
               the one with the smallest median start error

    python -m lasr_train.timing render --text .../ljspeech-sentences.txt --out /work/lasr-runs/timing
    python -m lasr_train.timing calibrate --model models/default \\
        --manifest /work/lasr-runs/timing/manifest.jsonl --lasr .build/release/lasr

The dev set's forced alignments stay what they are for: the measurement
(`lasr eval --manifest dev.jsonl`).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import tempfile
from pathlib import Path

import yaml

from .export import engine_eval, set_card_line, write_config

VOICES = ["kal16", "slt", "rms", "awb"]
# Letters, apostrophes and pauses only: digits, abbreviations and hyphens make
# flite's words differ from the sentence's.
SENTENCE = re.compile(r"[A-Za-z' ,.;]+")
WORD = re.compile(r"[A-Za-z']+")


def flite_segments(text: str, voice: str, stretch: float = 1.0, wav: str | None = None) -> list[tuple[str, float]]:
    """flite's phone segments of `text` as (phone, end time in seconds); writes the audio to `wav` if given."""
    cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", text,
           "-o", wav or "none", "-psdur"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout.split()
    segments = []
    for item in out:
        phone, _, end = item.rpartition(":")
        segments.append((phone, float(end)))
    return segments


def word_times(words: list[str], phone_counts: list[int],
               segments: list[tuple[str, float]]) -> list[list] | None:
    """Each word's [start, end, word] from the sentence's segments, given each word's
    number of phones (pauses excluded); None where the counts do not add up."""
    spoken = [i for i, (phone, _) in enumerate(segments) if phone != "pau"]
    if 0 in phone_counts or sum(phone_counts) != len(spoken) or len(words) != len(phone_counts):
        return None
    out, k = [], 0
    for word, n in zip(words, phone_counts):
        first, last = spoken[k], spoken[k + n - 1]
        k += n
        start = segments[first - 1][1] if first > 0 else 0.0
        out.append([round(start, 3), round(segments[last][1], 3), word])
    return out


def render(text_path: str, out_dir: str, count: int, seed: int) -> int:
    """Writes `count` utterances (WAV) and manifest.jsonl into out_dir; returns how many exist."""
    out = Path(out_dir)
    manifest = out / "manifest.jsonl"
    if manifest.exists() and sum(1 for _ in manifest.open()) >= count:
        return count
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    sentences = [s.strip() for s in Path(text_path).read_text(encoding="utf-8").splitlines()]
    sentences = [s for s in sentences if SENTENCE.fullmatch(s) and 6 <= len(s.split()) <= 25]
    rng.shuffle(sentences)
    phones: dict[tuple[str, str], int] = {}
    lines = []
    for sentence in sentences:
        if len(lines) == count:
            break
        voice = VOICES[len(lines) % len(VOICES)]
        stretch = round(rng.uniform(0.85, 1.2), 3)
        words = WORD.findall(sentence)
        counts = []
        for w in words:
            key = (w.lower(), voice)
            if key not in phones:
                phones[key] = sum(1 for p, _ in flite_segments(w, voice) if p != "pau")
            counts.append(phones[key])
        name = f"{len(lines):04d}-{voice}.wav"
        with tempfile.TemporaryDirectory() as tmp:
            segments = flite_segments(sentence, voice, stretch, wav=str(Path(tmp) / name))
            timed = word_times(words, counts, segments)
            if timed is None:  # flite's post-lexical rules changed a word's phones in context
                continue
            Path(tmp, name).replace(out / name)
        lines.append(json.dumps({"id": name[:-4], "audio": name, "text": sentence, "corpus": f"flite-{voice}",
                                 "duration": segments[-1][1], "stretch": stretch, "words": timed}))
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


# Candidate `timestamps.max_token_span` values, in encoder frames (40 ms): from two
# frames to 0.32 s, the engine's rule before the span was calibrated (0.3 s rounds to
# 8 frames).
SPAN_FRAMES = range(2, 9)


def _timing(summary: dict) -> dict:
    timing = summary.get("timing")
    if not timing or timing["matched_words"] < 200:
        raise SystemExit(f"too few recognized words to calibrate on ({timing and timing['matched_words']}); "
                         "is the model trained?")
    return timing


def calibrate(model_dir: str, manifest: str, lasr: str, jobs: int = 2) -> tuple[float, float]:
    """Measures the model's timing on `manifest` and folds it into its config; returns the new
    (attention_lag, max_token_span).

    The lag is measured with the span at the engine's default, where most words (86 % of
    the dev words for models/default) start at the previous token's peak, so the start and
    end biases both measure how far the peaks trail the boundaries, and a second run gives
    the same lag. The span is then
    chosen, with that lag, by the median absolute start error (the figure `lasr eval`
    reports): the peak of a word's first token follows the word's start by a fairly steady
    time, so a cap that short places words after pauses and slow onsets where they begin."""
    config_path = Path(model_dir) / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    old = config.get("timestamps", {}).get("attention_lag", 0.0)
    config["timestamps"] = {"attention_lag": old}
    write_config(config_path, config)
    summary = engine_eval(model_dir, manifest, lasr, jobs)
    timing = _timing(summary)
    lag = round(old + (timing["start_bias_ms"] + timing["end_bias_ms"]) / 2000, 3)
    print(f"{model_dir}: bias start {timing['start_bias_ms']:+.0f} ms, end {timing['end_bias_ms']:+.0f} ms "
          f"with lag {1000 * old:.0f} ms and the default span; timestamps.attention_lag now {lag:.3f} s")
    features = config["features"]
    frame = features["hop_length"] * 4 / features["sample_rate"]   # the encoder's 4× subsampling
    trials = []
    for frames in SPAN_FRAMES:
        span = round(frames * frame, 3)
        config["timestamps"] = {"attention_lag": lag, "max_token_span": span}
        write_config(config_path, config)
        t = _timing(engine_eval(model_dir, manifest, lasr, jobs))
        trials.append((t["start_median_ms"], -span, t))
        print(f"  max_token_span {span:.3f} s: start error median {t['start_median_ms']:.0f} ms, "
              f"p90 {t['start_p90_ms']:.0f} ms, bias {t['start_bias_ms']:+.0f} ms")
    # Ties go to the longer span, the nearer to the uncalibrated rule.
    median, negative_span, best = min(trials, key=lambda x: (x[0], x[1]))
    span = -negative_span
    config["timestamps"] = {"attention_lag": lag, "max_token_span": span}
    write_config(config_path, config)
    card = Path(model_dir) / "MODEL_CARD.md"
    if card.exists():
        n = summary["overall"]["utterances"]
        card.write_text(set_card_line(card.read_text(encoding="utf-8"), "timestamp calibration",
                        f"word times are moved {abs(1000 * lag):.0f} ms {'earlier' if lag >= 0 else 'later'} "
                        f"(timestamps.attention_lag), the median lag of the attention peaks "
                        f"{'behind' if lag >= 0 else 'ahead of'} the word boundaries on {n} flite sentences "
                        f"({timing['matched_words']} recognized words; lasr_train.timing), and a token reaches "
                        f"back at most {1000 * span:.0f} ms before its peak (timestamps.max_token_span: of "
                        f"{round(1000 * frame * SPAN_FRAMES[0])}–{round(1000 * frame * SPAN_FRAMES[-1])} ms in steps "
                        f"of {round(1000 * frame)} ms, the one with the smallest median start error there, "
                        f"{median:.0f} ms, p90 {best['start_p90_ms']:.0f} ms)"),
                        encoding="utf-8")
    print(f"{model_dir}: timestamps.attention_lag {lag:.3f} s, max_token_span {span:.3f} s "
          f"(start error median {median:.0f} ms on {best['matched_words']} words)")
    return lag, span


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="synthetic sentences with exact word times")
    r.add_argument("--text", required=True, help="public-domain sentences, one a line")
    r.add_argument("--out", required=True)
    r.add_argument("--count", type=int, default=240)
    r.add_argument("--seed", type=int, default=20261122)
    c = sub.add_parser("calibrate", help="measure and store a model's attention lag and token span")
    c.add_argument("--model", required=True)
    c.add_argument("--manifest", required=True)
    c.add_argument("--lasr", default=".build/release/lasr")
    c.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    if a.command == "render":
        n = render(a.text, a.out, a.count, a.seed)
        print(f"{a.out}/manifest.jsonl: {n} utterances")
    else:
        calibrate(a.model, a.manifest, a.lasr, a.jobs)


if __name__ == "__main__":
    main()
