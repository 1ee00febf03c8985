"""Replace the shipped model with a freshly exported one only if the engine scores it better.

`make train-export` exports a checkpoint into a candidate directory, calibrates its
timestamps (lasr_train.timing), and then runs this: `lasr eval` scores the candidate
and the current model on the dev manifest; the candidate's MODEL_CARD.md gets the
measured error rates and word-timing errors; and if it makes fewer errors than the
current model on the deciding corpus (LibriSpeech by default) with a probability of
improvement of at least `--min-poi` under a paired bootstrap over that corpus's
utterances, or there is no current model, the candidate and its parity fixtures replace
the current ones. A lower WER alone is not enough: on 248 dev utterances, checkpoints of
one run differ by a few tenths of a point by chance (training/README.md).

    python -m lasr_train.promote --candidate /work/lasr-runs/candidate --target models/default \\
        --fixtures /work/lasr-runs/candidate-fixtures --fixtures-target Tests/LasrTests/Fixtures/model-parity \\
        --manifest ../shared/speech/dev.jsonl --lasr .build/release/lasr
"""
from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

from .export import engine_eval, set_card_line

DECIDING_CORPUS = "librispeech-train-clean-100-sample"
WER_KEY = "dev WER, Swift engine (lasr eval)"
TIMING_KEY = "word timing on the dev words with forced alignments (lasr eval)"
# A candidate replaces the shipped model only if it makes fewer errors on at least this
# share of bootstrap draws: a one-sided test at the 5 % level.
MIN_POI = 0.95


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


def paired_bootstrap(old: dict, new: dict, corpus: str, resamples: int = 1000, seed: int = 0) -> dict:
    """Compare two `lasr eval` summaries of one manifest utterance by utterance.

    Draws the corpus's utterances with replacement `resamples` times and recomputes both
    WERs on each draw (Bisani & Ney 2004, "Bootstrap estimates for confidence intervals in
    ASR performance evaluation"). Returns the WER difference new - old in points, its
    2.5th and 97.5th percentiles, and `poi`, the share of draws on which the candidate
    made fewer errors (ties count against it)."""
    def rows(summary, which):
        per = summary.get("per_utterance")
        if per is None:
            raise SystemExit(f"the {which} model's summary has no per_utterance counts: rebuild lasr (make build)")
        return {r["id"]: r for r in per if r["corpus"] == corpus}
    a, b = rows(old, "current"), rows(new, "candidate")
    if set(a) != set(b) or not a:
        raise SystemExit(f"the two evaluations decoded different '{corpus}' utterances "
                         f"({len(a)} and {len(b)}; a line failed to decode?)")
    ids = sorted(a)
    words = [a[i]["reference_words"] for i in ids]
    if sum(words) == 0:
        raise SystemExit(f"the '{corpus}' references have no words")
    old_err = [a[i]["errors"] for i in ids]
    new_err = [b[i]["errors"] for i in ids]
    rng = random.Random(seed)
    diffs, wins = [], 0
    for _ in range(resamples):
        pick = rng.choices(range(len(ids)), k=len(ids))
        n = sum(words[k] for k in pick) or 1
        d_err = sum(new_err[k] - old_err[k] for k in pick)
        diffs.append(100.0 * d_err / n)
        wins += d_err < 0
    diffs.sort()
    return {"delta": 100.0 * (sum(new_err) - sum(old_err)) / sum(words),
            "low": diffs[int(0.025 * (resamples - 1))], "high": diffs[int(0.975 * (resamples - 1))],
            "poi": wins / resamples, "utterances": len(ids), "resamples": resamples}


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
            manifest: str, lasr: str, corpus: str = DECIDING_CORPUS, jobs: int = 2,
            min_poi: float = MIN_POI) -> bool:
    new = score_card(candidate, manifest, lasr, jobs)
    new_wer = corpus_wer(new, corpus)
    if (Path(target) / "config.yaml").exists():
        old = engine_eval(target, manifest, lasr, jobs)
        old_wer = corpus_wer(old, corpus)
        t = paired_bootstrap(old, new, corpus)
        verdict = (f"{corpus} WER {new_wer:.2f}% against {old_wer:.2f}%: {t['delta']:+.2f} points, "
                   f"95% interval [{t['low']:+.2f}, {t['high']:+.2f}], probability of improvement {t['poi']:.3f} "
                   f"(paired bootstrap, {t['utterances']} utterances, {t['resamples']} draws; needed {min_poi})")
        if t["poi"] < min_poi:
            print(f"kept {target}; the candidate ({candidate}) reads {verdict}")
            return False
        print(f"{candidate} replaces {target}: {verdict}")
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
    ap.add_argument("--min-poi", type=float, default=MIN_POI,
                    help="probability of improvement (paired bootstrap) the candidate needs; about 0.5 is "
                         "'any lower WER', 0 promotes every candidate")
    a = ap.parse_args(argv)
    if a.card_only:
        print(wer_line(score_card(a.candidate, a.manifest, a.lasr, a.jobs)))
        return
    if a.target is None:
        ap.error("--target is required unless --card-only")
    promote(a.candidate, a.target, a.fixtures, a.fixtures_target, a.manifest, a.lasr, a.corpus, a.jobs, a.min_poi)


if __name__ == "__main__":
    main()
