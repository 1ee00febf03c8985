import json

import pytest

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


def fake_scores(monkeypatch, wers):
    def score(model_dir, manifest, lasr, jobs):
        s = json.loads(json.dumps(SUMMARY))
        s["corpora"]["librispeech-train-clean-100-sample"]["wer"] = wers[model_dir]
        return s
    monkeypatch.setattr(P, "engine_eval", score)


def make_model(path, tag):
    path.mkdir()
    (path / "config.yaml").write_text(f"name: {tag}\n")
    (path / "MODEL_CARD.md").write_text("# m\n\n## Training run\n\n- a: 1\n\n## Limitations\n")


@pytest.mark.parametrize("new_wer, replaced", [(50.0, True), (60.0, False)])
def test_the_candidate_replaces_the_target_only_when_better(tmp_path, monkeypatch, new_wer, replaced):
    cand, target = tmp_path / "cand", tmp_path / "target"
    make_model(cand, "new")
    make_model(target, "old")
    fix, fix_target = tmp_path / "fix", tmp_path / "fix-target"
    fix.mkdir(); fix_target.mkdir()
    (fix / "parity.json").write_text("new")
    (fix_target / "parity.json").write_text("old")
    fake_scores(monkeypatch, {str(cand): new_wer, str(target): 55.0})
    assert P.promote(str(cand), str(target), str(fix), str(fix_target), "m.jsonl", "lasr") == replaced
    assert (target / "config.yaml").read_text() == ("name: new\n" if replaced else "name: old\n")
    assert (fix_target / "parity.json").read_text() == ("new" if replaced else "old")
    card = (cand / "MODEL_CARD.md").read_text()
    assert f"- {P.WER_KEY}: " in card and f"- {P.TIMING_KEY}: 4300 matched words" in card


def test_a_missing_deciding_corpus_is_an_error(tmp_path, monkeypatch):
    cand = tmp_path / "cand"
    make_model(cand, "new")
    fake_scores(monkeypatch, {str(cand): 50.0})
    with pytest.raises(SystemExit, match="no 'other'"):
        P.promote(str(cand), str(tmp_path / "none"), None, None, "m.jsonl", "lasr", corpus="other")


def test_card_only_rescores_and_replaces_nothing(tmp_path, monkeypatch):
    model = tmp_path / "model"
    make_model(model, "shipped")
    card = model / "MODEL_CARD.md"
    card.write_text(card.read_text().replace("- a: 1\n", f"- a: 1\n- {P.WER_KEY}: stale\n"))
    fake_scores(monkeypatch, {str(model): 48.13})
    P.main(["--candidate", str(model), "--card-only", "--manifest", "m.jsonl"])
    text = card.read_text()
    assert "stale" not in text and "librispeech-train-clean-100-sample (248 utts) 48.13%" in text
    assert text.count(P.WER_KEY) == 1 and (model / "config.yaml").read_text() == "name: shipped\n"
