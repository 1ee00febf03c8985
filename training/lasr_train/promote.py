"""Replace the shipped model with a freshly exported one only if the engine scores it better.

`make train-export` exports a checkpoint into a candidate directory, calibrates its
timestamps (lasr_train.timing), and then runs this: `lasr eval` scores the candidate
and the current model on the dev manifest; the candidate's MODEL_CARD.md gets the
measured error rates and word-timing errors; and if it makes fewer errors than the
current model on the deciding corpus (LibriSpeech by default) with a probability of
improvement of at least `--min-poi` under a paired bootstrap over that corpus's
utterances, or there is no current model, the candidate and its parity fixtures replace
the current ones. A lower WER alone is not enough: on 248 dev utterances, checkpoints of
one run differ by a few tenths of a point by chance (training/README.md). Since the
product decodes with the language model, a candidate that passes without it is also
scored with the shipped model's LM (where that LM fits its vocabulary) and refused if the
same paired test says it is worse that way, the decoding users get. A candidate that
passes both ships with that LM (its word list, fusion defaults and card section), so a
new acoustic model on the same vocabulary needs no `make train-lm`.
`--compare OLD.json NEW.json` runs the same test on two saved summaries.

    python -m lasr_train.promote --candidate /work/lasr-runs/candidate --target models/default \\
        --fixtures /work/lasr-runs/candidate-fixtures --fixtures-target Tests/LasrTests/Fixtures/model-parity \\
        --manifest ../shared/speech/dev.jsonl --lasr .build/release/lasr
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
from pathlib import Path

import yaml

from .export import engine_eval, set_card_line
from .lm import CARD_HEADING, LEXICON_FILE, LEXICON_NOTICE, card_section, vocabulary_checksum, with_card_section, write_lm_section

DECIDING_CORPUS = "librispeech-train-clean-100-sample"
WER_KEY = "dev WER, Swift engine (lasr eval)"
TIMING_KEY = "word timing on the dev words with forced alignments (lasr eval)"
NO_LM_KEY = "dev WER without the language model (lasr eval --no-lm)"
# A candidate replaces the shipped model only if it makes fewer errors on at least this
# share of bootstrap draws: a one-sided test at the 5 % level.
MIN_POI = 0.95


def wer_line(summary: dict) -> str:
    """The card's WER line: every corpus, overall, CER, and the decoding settings."""
    parts = [f"{name} ({c['utterances']} utts) {c['wer']:.2f}%" for name, c in sorted(summary["corpora"].items())]
    cer = " / ".join(f"{c['cer']:.2f}" for _, c in sorted(summary["corpora"].items()))
    o = summary["overall"]
    lm = (f", language model weight {summary['lm_weight']}, length bonus {summary['length_bonus']}"
          + (f", internal-LM discount {summary['internal_lm_weight']}" if summary.get("internal_lm_weight") else "")
          if summary.get("lm_weight") else "")
    return (", ".join(parts) + f"; overall {o['wer']:.2f}%; CER {cer} / {o['cer']:.2f}% "
            f"(beam {summary['beam']}, ctc weight {summary['ctc_weight']}{lm})")


def timing_line(summary: dict) -> str | None:
    t = summary.get("timing")
    if not t:
        return None
    return (f"{t['matched_words']} matched words: start error median {t['start_median_ms']:.0f} ms, "
            f"p90 {t['start_p90_ms']:.0f} ms; end error median {t['end_median_ms']:.0f} ms, "
            f"p90 {t['end_p90_ms']:.0f} ms; bias {t['start_bias_ms']:+.0f} / {t['end_bias_ms']:+.0f} ms")


def utterance_rows(summary: dict, corpus: str, which: str = "the") -> dict:
    """The corpus's `per_utterance` rows of a `lasr eval --summary-json`, by id."""
    per = summary.get("per_utterance")
    if per is None:
        raise SystemExit(f"{which} model's summary has no per_utterance counts: rebuild lasr (make build)")
    rows = {r["id"]: r for r in per if r["corpus"] == corpus}
    if not rows or sum(r["reference_words"] for r in rows.values()) == 0:
        raise SystemExit(f"{which} model's summary has no '{corpus}' words to score")
    return rows


def bootstrap(words: list[int], errors: list[int], resamples: int = 1000, seed: int = 0) -> dict:
    """Draw utterances with replacement `resamples` times and recompute 100·Σerrors/Σwords
    on each draw (Bisani & Ney 2004, "Bootstrap estimates for confidence intervals in ASR
    performance evaluation"). `errors` may be differences of two models' errors. Returns
    the 2.5th and 97.5th percentiles and the shares of draws below and above zero."""
    rng = random.Random(seed)
    draws, below, above = [], 0, 0
    for _ in range(resamples):
        pick = rng.choices(range(len(words)), k=len(words))
        e = sum(errors[k] for k in pick)
        draws.append(100.0 * e / (sum(words[k] for k in pick) or 1))
        below += e < 0
        above += e > 0
    draws.sort()
    return {"low": draws[int(0.025 * (resamples - 1))], "high": draws[int(0.975 * (resamples - 1))],
            "below": below / resamples, "above": above / resamples, "resamples": resamples}


def wer_interval(summary: dict, corpus: str) -> tuple[float, float]:
    """95 % bootstrap interval of one model's WER on the corpus, in percent."""
    rows = list(utterance_rows(summary, corpus).values())
    b = bootstrap([r["reference_words"] for r in rows], [r["errors"] for r in rows])
    return b["low"], b["high"]


def paired_bootstrap(old: dict, new: dict, corpus: str) -> dict:
    """Compare two `lasr eval` summaries of one manifest utterance by utterance.

    Returns the WER difference new - old in points, the 95 % interval of that difference
    over bootstrap draws of the corpus's utterances, `poi`, the share of draws on which
    the candidate made fewer errors (ties count against it), and `worse`, the share on which
    it made more."""
    a, b = utterance_rows(old, corpus, "the current"), utterance_rows(new, corpus, "the candidate")
    if set(a) != set(b):
        raise SystemExit(f"the two evaluations decoded different '{corpus}' utterances "
                         f"({len(a)} and {len(b)}; a line failed to decode?)")
    ids = sorted(a)
    words = [a[i]["reference_words"] for i in ids]
    diff = [b[i]["errors"] - a[i]["errors"] for i in ids]
    t = bootstrap(words, diff)
    return {"delta": 100.0 * sum(diff) / sum(words), "low": t["low"], "high": t["high"], "poi": t["below"],
            "worse": t["above"], "utterances": len(ids), "resamples": t["resamples"]}


def compare(old_json: str, new_json: str) -> None:
    """Print each corpus's WER of two saved summaries with its interval, and the paired test."""
    old, new = (json.loads(Path(p).read_text()) for p in (old_json, new_json))
    for corpus in sorted(old["corpora"]):
        (a_lo, a_hi), (b_lo, b_hi) = (wer_interval(s, corpus) for s in (old, new))
        t = paired_bootstrap(old, new, corpus)
        print(f"{corpus}: {corpus_wer(old, corpus):.2f}% [{a_lo:.2f}, {a_hi:.2f}] -> "
              f"{corpus_wer(new, corpus):.2f}% [{b_lo:.2f}, {b_hi:.2f}]; difference {t['delta']:+.2f} points "
              f"[{t['low']:+.2f}, {t['high']:+.2f}], probability of improvement {t['poi']:.3f}")


def corpus_wer(summary: dict, corpus: str) -> float:
    c = summary["corpora"].get(corpus)
    if c is None:
        raise SystemExit(f"the manifest has no '{corpus}' lines to decide on (corpora: {sorted(summary['corpora'])})")
    return c["wer"]


def score_card(model_dir: str, manifest: str, lasr: str, jobs: int = 2) -> dict:
    """Score a model directory with the engine and write the WER and timing lines of its card;
    a model with a language model is scored without it too, for the card to show what it adds."""
    summary = engine_eval(model_dir, manifest, lasr, jobs)
    card = Path(model_dir) / "MODEL_CARD.md"
    text = set_card_line(card.read_text(encoding="utf-8"), WER_KEY, wer_line(summary))
    if timing_line(summary):
        text = set_card_line(text, TIMING_KEY, timing_line(summary))
    if (Path(model_dir) / "lm.safetensors").exists():
        text = set_card_line(text, NO_LM_KEY, wer_line(engine_eval(model_dir, manifest, lasr, jobs, ("--no-lm",))))
    card.write_text(text, encoding="utf-8")
    return summary


def with_shipped_lm(candidate: str, target: str, out: Path) -> Path | None:
    """A copy of the candidate at `out` that decodes with the target's language model: its
    weights, word list (with its notice) and `lm:` section (fusion defaults). None where the
    target has no LM or trained it on another vocabulary than the candidate's (`make
    train-lm` then makes one)."""
    t = Path(target)
    lm = (yaml.safe_load((t / "config.yaml").read_text()) or {}).get("lm")
    if not lm or not (t / "lm.safetensors").exists():
        return None
    if lm.get("vocabulary_crc32") != vocabulary_checksum(Path(candidate) / "tokens.txt"):
        return None
    shutil.copytree(candidate, out)
    for name in ("lm.safetensors", LEXICON_FILE, LEXICON_NOTICE):
        if (t / name).exists():
            shutil.copy(t / name, out / name)
    write_lm_section(out / "config.yaml", lm)
    return out


def fused_verdict(candidate: str, target: str, manifest: str, lasr: str, corpus: str, jobs: int,
                  min_poi: float, keep: Path | None = None) -> tuple[bool, str, dict | None]:
    """The candidate and the target both decoding with the target's LM: (refused, why, the
    fused candidate's scores, None where it could not be fused). Refused when the paired test
    finds the candidate worse on `corpus` as surely as promotion asks it to be better without
    the LM (the share of draws where it makes more errors ≥ min_poi). `keep`: where to leave
    the fused copy (a temporary directory otherwise)."""
    with tempfile.TemporaryDirectory() as tmp:
        fused = with_shipped_lm(candidate, target, keep or Path(tmp) / "candidate-with-shipped-lm")
        if fused is None:
            return False, "not scored with the shipped LM (none, or trained on another vocabulary)", None
        new = engine_eval(str(fused), manifest, lasr, jobs)
    old = engine_eval(target, manifest, lasr, jobs)
    t = paired_bootstrap(old, new, corpus)
    why = (f"with the shipped LM {corpus_wer(new, corpus):.2f}% against {corpus_wer(old, corpus):.2f}%: "
           f"{t['delta']:+.2f} points [{t['low']:+.2f}, {t['high']:+.2f}], probability it is worse {t['worse']:.3f} "
           f"(refused from {min_poi})")
    return t["worse"] >= min_poi, why, new


def carry_shipped_lm(fused: Path, target: str, fused_summary: dict, acoustic_summary: dict) -> None:
    """Makes the fused copy of a winning candidate (its acoustic model with the shipped LM, word
    list and `lm:` section) ready to ship: the card gets the shipped card's language-model
    section and the dev scores measured during the promotion, with the LM and without it."""
    card = fused / "MODEL_CARD.md"
    text = card.read_text(encoding="utf-8")
    section = card_section((Path(target) / "MODEL_CARD.md").read_text(encoding="utf-8"), CARD_HEADING)
    if section:
        text = with_card_section(text, section)
    text = set_card_line(text, WER_KEY, wer_line(fused_summary))
    if timing_line(fused_summary):
        text = set_card_line(text, TIMING_KEY, timing_line(fused_summary))
    text = set_card_line(text, NO_LM_KEY, wer_line(acoustic_summary))
    card.write_text(text, encoding="utf-8")


def promote(candidate: str, target: str, fixtures: str | None, fixtures_target: str | None,
            manifest: str, lasr: str, corpus: str = DECIDING_CORPUS, jobs: int = 2,
            min_poi: float = MIN_POI) -> bool:
    with tempfile.TemporaryDirectory() as staging:
        shipped = decide(candidate, target, manifest, lasr, corpus, jobs, min_poi, Path(staging))
        if shipped is None:
            return False
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(shipped, target)
    if fixtures and fixtures_target:
        shutil.rmtree(fixtures_target, ignore_errors=True)
        shutil.copytree(fixtures, fixtures_target)
    return True


def decide(candidate: str, target: str, manifest: str, lasr: str, corpus: str, jobs: int, min_poi: float,
           staging: Path) -> str | None:
    """The directory to ship in the target's place (the candidate, or its copy with the shipped
    LM, made under `staging`), or None where the target stays."""
    new = score_card(candidate, manifest, lasr, jobs)
    new_wer = corpus_wer(new, corpus)
    if not (Path(target) / "config.yaml").exists():
        print(f"{candidate} becomes {target}: {corpus} WER {new_wer:.2f}%")
        return candidate
    # Acoustic models are compared as such: a candidate fresh from training has no LM yet,
    # so the shipped one is scored without its own.
    without_lm = (Path(target) / "lm.safetensors").exists() and not (Path(candidate) / "lm.safetensors").exists()
    old = engine_eval(target, manifest, lasr, jobs, ("--no-lm",) if without_lm else ())
    old_wer = corpus_wer(old, corpus)
    t = paired_bootstrap(old, new, corpus)
    verdict = (f"{corpus} WER {new_wer:.2f}% against {old_wer:.2f}%: {t['delta']:+.2f} points, "
               f"95% interval [{t['low']:+.2f}, {t['high']:+.2f}], probability of improvement {t['poi']:.3f} "
               f"(paired bootstrap, {t['utterances']} utterances, {t['resamples']} draws; needed {min_poi})")
    if t["poi"] < min_poi:
        print(f"kept {target}; the candidate ({candidate}) reads {verdict}")
        return None
    shipped = candidate
    if without_lm:
        fused = staging / "candidate-with-shipped-lm"
        refused, why, fused_summary = fused_verdict(candidate, target, manifest, lasr, corpus, jobs, min_poi,
                                                    keep=fused)
        verdict += f"; {why}"
        if refused:
            print(f"kept {target}; the candidate ({candidate}) reads {verdict}")
            return None
        if fused_summary is not None:
            # Same vocabulary: the shipped LM goes on serving the new acoustic model, with its
            # word list and fusion defaults, so the promoted model decodes as the one it
            # replaces did; `make train-lm` is needed only for a new vocabulary.
            carry_shipped_lm(fused, target, fused_summary, new)
            shipped = str(fused)
            verdict += "; the shipped LM carried over"
    print(f"{candidate} replaces {target}: {verdict}")
    return shipped


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", nargs=2, metavar=("OLD_JSON", "NEW_JSON"),
                    help="only compare two saved `lasr eval --summary-json` files: each corpus's WER with its "
                         "95%% bootstrap interval, and the paired test promotion uses")
    ap.add_argument("--candidate", help="exported model directory to consider")
    ap.add_argument("--target", help="the shipped model directory (replaced if the candidate wins)")
    ap.add_argument("--card-only", action="store_true",
                    help="only rescore the candidate's card (after an engine change), replace nothing")
    ap.add_argument("--fixtures", default=None, help="the candidate's parity fixtures")
    ap.add_argument("--fixtures-target", default=None, help="where the shipped model's parity fixtures live")
    ap.add_argument("--manifest")
    ap.add_argument("--lasr", default=".build/release/lasr")
    ap.add_argument("--corpus", default=DECIDING_CORPUS, help="the corpus whose WER decides")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--min-poi", type=float, default=MIN_POI,
                    help="probability of improvement (paired bootstrap) the candidate needs; about 0.5 is "
                         "'any lower WER', 0 promotes every candidate")
    a = ap.parse_args(argv)
    if a.compare:
        compare(*a.compare)
        return
    if a.candidate is None or a.manifest is None:
        ap.error("--candidate and --manifest are required unless --compare")
    if a.card_only:
        print(wer_line(score_card(a.candidate, a.manifest, a.lasr, a.jobs)))
        return
    if a.target is None:
        ap.error("--target is required unless --card-only")
    promote(a.candidate, a.target, a.fixtures, a.fixtures_target, a.manifest, a.lasr, a.corpus, a.jobs, a.min_poi)


if __name__ == "__main__":
    main()
