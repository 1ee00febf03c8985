"""Replace the shipped model with a freshly exported one only if the engine scores it better.

`make train-export` exports a checkpoint into a candidate directory, calibrates its
timestamps (lasr_train.timing), and then runs this: `lasr eval` scores the candidate
and the current model on the dev manifest; the candidate's MODEL_CARD.md gets the
measured error rates and word-timing errors; and if its WER on the deciding corpus
(LibriSpeech by default) is lower than the current model's, or there is no current
model, the candidate and its parity fixtures replace the current ones.

    python -m lasr_train.promote --candidate /work/lasr-runs/candidate --target models/default \\
        --fixtures /work/lasr-runs/candidate-fixtures --fixtures-target Tests/LasrTests/Fixtures/model-parity \\
        --manifest ../shared/speech/dev.jsonl --lasr .build/release/lasr
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from .export import engine_eval, set_card_line

DECIDING_CORPUS = "librispeech-train-clean-100-sample"
WER_KEY = "dev WER, Swift engine (lasr eval)"
TIMING_KEY = "word timing on the dev words with forced alignments (lasr eval)"


def wer_line(summary: dict) -> str:
    """The card's WER line: every corpus, overall, CER, and the decoding settings."""
    parts = [f"{name} ({c['utterances']} utts) {c['wer']:.2f}%" for name, c in sorted(summary["corpora"].items())]
    cer = " / ".join(f"{c['cer']:.2f}" for _, c in sorted(summary["corpora"].items()))
    o = summary["overall"]
    return (", ".join(parts) + f"; overall {o['wer']:.2f}%; CER {cer} / {o['cer']:.2f}% "
            f"(beam {summary['beam']}, ctc weight {summary['ctc_weight']})")


def timing_line(summary: dict) -> str | None:
    t = summary.get("timing")
    if not t:
        return None
    return (f"{t['matched_words']} matched words: start error median {t['start_median_ms']:.0f} ms, "
            f"p90 {t['start_p90_ms']:.0f} ms; end error median {t['end_median_ms']:.0f} ms, "
            f"p90 {t['end_p90_ms']:.0f} ms; bias {t['start_bias_ms']:+.0f} / {t['end_bias_ms']:+.0f} ms")


def corpus_wer(summary: dict, corpus: str) -> float:
    c = summary["corpora"].get(corpus)
    if c is None:
        raise SystemExit(f"the manifest has no '{corpus}' lines to decide on (corpora: {sorted(summary['corpora'])})")
    return c["wer"]


def score_card(model_dir: str, manifest: str, lasr: str, jobs: int = 2) -> dict:
    """Score a model directory with the engine and write the WER and timing lines of its card."""
    summary = engine_eval(model_dir, manifest, lasr, jobs)
    card = Path(model_dir) / "MODEL_CARD.md"
    text = set_card_line(card.read_text(encoding="utf-8"), WER_KEY, wer_line(summary))
    if timing_line(summary):
        text = set_card_line(text, TIMING_KEY, timing_line(summary))
    card.write_text(text, encoding="utf-8")
    return summary


def promote(candidate: str, target: str, fixtures: str | None, fixtures_target: str | None,
            manifest: str, lasr: str, corpus: str = DECIDING_CORPUS, jobs: int = 2) -> bool:
    new = score_card(candidate, manifest, lasr, jobs)
    new_wer = corpus_wer(new, corpus)
    if (Path(target) / "config.yaml").exists():
        old_wer = corpus_wer(engine_eval(target, manifest, lasr, jobs), corpus)
        if new_wer >= old_wer:
            print(f"kept {target}: {corpus} WER {old_wer:.2f}%, the candidate reads {new_wer:.2f}% ({candidate})")
            return False
        print(f"{candidate} replaces {target}: {corpus} WER {new_wer:.2f}% against {old_wer:.2f}%")
    else:
        print(f"{candidate} becomes {target}: {corpus} WER {new_wer:.2f}%")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(candidate, target)
    if fixtures and fixtures_target:
        shutil.rmtree(fixtures_target, ignore_errors=True)
        shutil.copytree(fixtures, fixtures_target)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candidate", required=True, help="exported model directory to consider")
    ap.add_argument("--target", help="the shipped model directory (replaced if the candidate wins)")
    ap.add_argument("--card-only", action="store_true",
                    help="only rescore the candidate's card (after an engine change), replace nothing")
    ap.add_argument("--fixtures", default=None, help="the candidate's parity fixtures")
    ap.add_argument("--fixtures-target", default=None, help="where the shipped model's parity fixtures live")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--lasr", default=".build/release/lasr")
    ap.add_argument("--corpus", default=DECIDING_CORPUS, help="the corpus whose WER decides")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    if a.card_only:
        print(wer_line(score_card(a.candidate, a.manifest, a.lasr, a.jobs)))
        return
    if a.target is None:
        ap.error("--target is required unless --card-only")
    promote(a.candidate, a.target, a.fixtures, a.fixtures_target, a.manifest, a.lasr, a.corpus, a.jobs)


if __name__ == "__main__":
    main()
