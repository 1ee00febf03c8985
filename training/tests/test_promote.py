import json
from pathlib import Path

import pytest
import yaml

from lasr_train import promote as P

SUMMARY = {
    "beam": 8, "ctc_weight": 0.3,
    "corpora": {"librispeech-train-clean-100-sample": {"utterances": 248, "wer": 51.25, "cer": 29.5},
                "speechocean762": {"utterances": 200, "wer": 58.0, "cer": 33.0}},
    "overall": {"utterances": 448, "wer": 52.0, "cer": 30.0},
    "timing": {"matched_words": 4300, "start_median_ms": 54.0, "start_p90_ms": 150.0, "end_median_ms": 45.0,
               "end_p90_ms": 146.0, "start_bias_ms": -5.0, "end_bias_ms": -6.0},
}


def test_card_lines_carry_every_corpus_and_the_timing():
    line = P.wer_line(SUMMARY)
    assert "librispeech-train-clean-100-sample (248 utts) 51.25%" in line
    assert "speechocean762 (200 utts) 58.00%" in line and "overall 52.00%" in line and "beam 8" in line
    assert P.timing_line(SUMMARY).startswith("4300 matched words: start error median 54 ms")
    assert P.timing_line({"corpora": {}}) is None
    assert "language model" not in line
    fused = dict(SUMMARY, lm_weight=0.2, length_bonus=1.0)
    assert P.wer_line(fused).endswith("(beam 8, ctc weight 0.3, language model weight 0.2, length bonus 1.0)")
    discounted = dict(fused, internal_lm_weight=0.2)
    assert P.wer_line(discounted).endswith("length bonus 1.0, internal-LM discount 0.2)")
    assert P.wer_line(dict(SUMMARY, internal_lm_weight=0.2)) == line


LS = "librispeech-train-clean-100-sample"


def summary_with(errors: list[int], words: int = 20) -> dict:
    """A summary whose LibriSpeech utterances have these word errors out of `words` each."""
    s = json.loads(json.dumps(SUMMARY))
    s["corpora"][LS]["wer"] = 100.0 * sum(errors) / (words * len(errors))
    s["per_utterance"] = ([{"id": f"u{i}", "corpus": LS, "errors": e, "reference_words": words}
                           for i, e in enumerate(errors)]
                          + [{"id": "so", "corpus": "speechocean762", "errors": 3, "reference_words": 5}])
    return s


def fake_scores(monkeypatch, errors):
    monkeypatch.setattr(P, "engine_eval",
                        lambda model_dir, manifest, lasr, jobs, extra=(): summary_with(errors[model_dir + "".join(extra)]))


OLD = [8, 9, 10, 11, 12] * 20   # 100 utterances, WER 50 %


def make_model(path, tag):
    path.mkdir()
    (path / "config.yaml").write_text(f"name: {tag}\n")
    (path / "MODEL_CARD.md").write_text("# m\n\n## Training run\n\n- a: 1\n\n## Limitations\n")


# Better on every utterance; better by one error on 55 and worse by one on 45 (a WER 0.5
# points lower, the kind of gain checkpoints of one run show by chance); worse.
@pytest.mark.parametrize("new, replaced", [([e - 1 for e in OLD], True),
                                           ([e - 1 if i < 55 else e + 1 for i, e in enumerate(OLD)], False),
                                           ([e + 1 for e in OLD], False)])
def test_the_candidate_replaces_the_target_only_when_surely_better(tmp_path, monkeypatch, new, replaced):
    cand, target = tmp_path / "cand", tmp_path / "target"
    make_model(cand, "new")
    make_model(target, "old")
    fix, fix_target = tmp_path / "fix", tmp_path / "fix-target"
    fix.mkdir(); fix_target.mkdir()
    (fix / "parity.json").write_text("new")
    (fix_target / "parity.json").write_text("old")
    fake_scores(monkeypatch, {str(cand): new, str(target): OLD})
    assert P.promote(str(cand), str(target), str(fix), str(fix_target), "m.jsonl", "lasr") == replaced
    assert (target / "config.yaml").read_text() == ("name: new\n" if replaced else "name: old\n")
    assert (fix_target / "parity.json").read_text() == ("new" if replaced else "old")
    card = (cand / "MODEL_CARD.md").read_text()
    assert f"- {P.WER_KEY}: " in card and f"- {P.TIMING_KEY}: 4300 matched words" in card


def test_a_candidate_without_an_lm_meets_the_shipped_model_without_its_lm(tmp_path, monkeypatch):
    cand, target = tmp_path / "cand", tmp_path / "target"
    make_model(cand, "new")
    make_model(target, "old")
    (target / "lm.safetensors").write_bytes(b"")
    # Fused, the shipped model would win; its acoustic model alone loses to the candidate.
    fake_scores(monkeypatch, {str(cand): [e - 1 for e in OLD], str(target): [e - 2 for e in OLD],
                              str(target) + "--no-lm": OLD})
    assert P.promote(str(cand), str(target), None, None, "m.jsonl", "lasr")
    assert (target / "config.yaml").read_text() == "name: new\n"


# The candidate passes without the LM; decoded with the shipped LM it is worse on every
# utterance (refused), level with the shipped model (promoted); or the LM was trained on
# another vocabulary, so the fused test cannot be run (promoted on the acoustic test alone).
@pytest.mark.parametrize("fused, same_vocabulary, replaced", [([e + 1 for e in OLD], True, False),
                                                              (OLD, True, True),
                                                              ([e + 1 for e in OLD], False, True)])
def test_a_candidate_worse_with_the_shipped_lm_is_refused(tmp_path, monkeypatch, fused, same_vocabulary,
                                                          replaced):
    from lasr_train.lm import vocabulary_checksum

    cand, target = tmp_path / "cand", tmp_path / "target"
    make_model(cand, "new")
    make_model(target, "old")
    (cand / "tokens.txt").write_text("<blank>\n<unk>\na\n" if same_vocabulary else "<blank>\n<unk>\nb\n")
    (target / "tokens.txt").write_text("<blank>\n<unk>\na\n")
    (target / "lm.safetensors").write_bytes(b"shipped lm")
    (target / "lexicon.txt").write_text("a\n")
    (target / "lexicon-NOTICE.txt").write_text("word list licence\n")
    crc = vocabulary_checksum(target / "tokens.txt")
    (target / "config.yaml").write_text(f"name: old\nlm:\n  file: lm.safetensors\n  vocabulary_crc32: {crc}\n"
                                        "  weight: 0.25\n  lexicon: lexicon.txt\n  lexicon_penalty: 1.0\n")
    (target / "MODEL_CARD.md").write_text("# m\n\n## Training run\n\n- a: 0\n\n## Language model\n\n"
                                          "- the shipped LM\n\n## Limitations\n")
    scored = []

    def fake(model_dir, manifest, lasr, jobs, extra=()):
        d = Path(model_dir)
        scored.append(d.name + "".join(extra))
        if d.name == "candidate-with-shipped-lm":
            cfg = yaml.safe_load((d / "config.yaml").read_text())
            assert cfg["name"] == "new" and cfg["lm"]["vocabulary_crc32"] == crc and cfg["lm"]["weight"] == 0.25
            assert (d / "lm.safetensors").read_bytes() == b"shipped lm" and (d / "lexicon.txt").read_text() == "a\n"
            assert (d / "lexicon-NOTICE.txt").read_text() == "word list licence\n"
            return summary_with(fused)
        return summary_with({"cand": [e - 1 for e in OLD], "target--no-lm": OLD, "target": OLD}[d.name + "".join(extra)])

    monkeypatch.setattr(P, "engine_eval", fake)
    assert P.promote(str(cand), str(target), None, None, "m.jsonl", "lasr") == replaced
    assert ("candidate-with-shipped-lm" in scored) == same_vocabulary
    assert yaml.safe_load((target / "config.yaml").read_text())["name"] == ("new" if replaced else "old")
    assert not (cand / "lm.safetensors").exists()
    if replaced and same_vocabulary:
        # The new acoustic model ships with the LM it was judged with: weights, word list,
        # lm: section, and the card's LM section, its WER lines with the LM and without.
        cfg = yaml.safe_load((target / "config.yaml").read_text())
        assert cfg["lm"]["vocabulary_crc32"] == crc and cfg["lm"]["lexicon"] == "lexicon.txt"
        assert (target / "lm.safetensors").read_bytes() == b"shipped lm" and (target / "lexicon.txt").read_text() == "a\n"
        card = (target / "MODEL_CARD.md").read_text()
        assert "- a: 1\n" in card and "## Language model\n\n- the shipped LM\n\n## Limitations" in card
        assert f"- {P.WER_KEY}: " in card and f"- {P.NO_LM_KEY}: " in card
    elif replaced:
        assert not (target / "lm.safetensors").exists() and "lm" not in yaml.safe_load((target / "config.yaml").read_text())


def test_a_missing_deciding_corpus_is_an_error(tmp_path, monkeypatch):
    cand = tmp_path / "cand"
    make_model(cand, "new")
    fake_scores(monkeypatch, {str(cand): OLD})
    with pytest.raises(SystemExit, match="no 'other'"):
        P.promote(str(cand), str(tmp_path / "none"), None, None, "m.jsonl", "lasr", corpus="other")


def test_card_only_rescores_and_replaces_nothing(tmp_path, monkeypatch):
    model = tmp_path / "model"
    make_model(model, "shipped")
    card = model / "MODEL_CARD.md"
    card.write_text(card.read_text().replace("- a: 1\n", f"- a: 1\n- {P.WER_KEY}: stale\n"))
    fake_scores(monkeypatch, {str(model): [e - 1 for e in OLD] + [8] * 100})
    P.main(["--candidate", str(model), "--card-only", "--manifest", "m.jsonl"])
    text = card.read_text()
    assert "stale" not in text and "librispeech-train-clean-100-sample (248 utts) 42.50%" in text
    assert text.count(P.WER_KEY) == 1 and (model / "config.yaml").read_text() == "name: shipped\n"


def test_a_model_with_an_lm_is_scored_with_and_without_it(tmp_path, monkeypatch):
    model = tmp_path / "model"
    make_model(model, "shipped")
    (model / "lm.safetensors").write_bytes(b"")
    fake_scores(monkeypatch, {str(model): [e - 1 for e in OLD] + [8] * 100, str(model) + "--no-lm": OLD})
    P.main(["--candidate", str(model), "--card-only", "--manifest", "m.jsonl"])
    text = (model / "MODEL_CARD.md").read_text()
    assert f"- {P.WER_KEY}: librispeech-train-clean-100-sample (248 utts) 42.50%" in text
    assert f"- {P.NO_LM_KEY}: librispeech-train-clean-100-sample (248 utts) 50.00%" in text


def test_the_paired_bootstrap_reads_utterances_in_pairs():
    old = summary_with(OLD)
    same = P.paired_bootstrap(old, summary_with(OLD), LS)
    assert same["delta"] == 0 and same["poi"] == same["worse"] == 0 and same["low"] == same["high"] == 0
    better = P.paired_bootstrap(old, summary_with([e - 1 for e in OLD]), LS)
    assert better["delta"] == pytest.approx(-5.0) and better["poi"] == 1.0 and better["worse"] == 0
    assert better["high"] < 0
    # A 2-point gain made of large swings on a few utterances both ways is far less sure.
    mixed = [e - 12 if i % 2 == 0 and i < 40 else e + 10 if i % 2 and i < 40 else e for i, e in enumerate(OLD)]
    noisy = P.paired_bootstrap(old, summary_with(mixed), LS)
    assert noisy["delta"] == pytest.approx(-2.0) and 0.5 < noisy["poi"] < 0.95 and noisy["low"] < 0 < noisy["high"]
    # Read the other way round, the same draws: what was "better" is now "worse".
    assert P.paired_bootstrap(summary_with(mixed), old, LS)["worse"] == noisy["poi"]
    assert P.paired_bootstrap(old, summary_with(mixed), LS) == noisy   # seeded


def test_the_paired_bootstrap_refuses_different_utterances():
    shorter = summary_with(OLD[:-1])
    with pytest.raises(SystemExit, match="different"):
        P.paired_bootstrap(summary_with(OLD), shorter, LS)
    bare = summary_with(OLD)
    del bare["per_utterance"]
    with pytest.raises(SystemExit, match="rebuild lasr"):
        P.paired_bootstrap(bare, summary_with(OLD), LS)


def test_compare_prints_each_corpus_with_intervals_and_the_paired_test(tmp_path, capsys):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(summary_with(OLD)))
    new.write_text(json.dumps(summary_with([e - 1 for e in OLD])))
    lo, hi = P.wer_interval(summary_with(OLD), LS)
    assert lo < 50.0 < hi and hi - lo < 10
    P.main(["--compare", str(old), str(new)])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith(f"{LS}: 50.00% [{lo:.2f}, {hi:.2f}] -> 45.00% [")
    assert "difference -5.00 points" in out[0] and out[0].endswith("probability of improvement 1.000")
    assert out[1].startswith("speechocean762: 58.00%")
