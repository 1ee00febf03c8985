import pytest

from lasr_train.export import set_card_line
from lasr_train.timing import calibrate, word_times

SEGMENTS = [("pau", 0.2), ("hh", 0.3), ("ax", 0.34), ("l", 0.43), ("ow", 0.58), ("pau", 0.8),
            ("w", 0.89), ("er", 0.95), ("l", 1.0), ("d", 1.04), ("pau", 1.26)]


def test_word_times_group_phones_and_skip_pauses():
    assert word_times(["hello", "world"], [4, 4], SEGMENTS) == [[0.2, 0.58, "hello"], [0.8, 1.04, "world"]]


def test_word_times_refuse_counts_that_do_not_add_up():
    assert word_times(["hello", "world"], [4, 3], SEGMENTS) is None
    assert word_times(["hello", "world"], [8, 0], SEGMENTS) is None


def test_card_line_lands_at_the_end_of_the_training_run_list():
    card = "# m\n\n## Training run\n\n- a: 1\n- b: 2\n\n## Limitations\n\ntext\n"
    once = set_card_line(card, "timestamp calibration", "48 ms")
    assert once == "# m\n\n## Training run\n\n- a: 1\n- b: 2\n- timestamp calibration: 48 ms\n\n## Limitations\n\ntext\n"
    assert set_card_line(once, "timestamp calibration", "50 ms") == once.replace("48 ms", "50 ms")
    assert set_card_line(once, "a", "3") == once.replace("- a: 1", "- a: 3")


def test_calibrate_moves_the_lag_by_the_measured_bias(tmp_path, monkeypatch):
    import lasr_train.timing as T
    (tmp_path / "config.yaml").write_text("format: lasr-model\ndecoding:\n  beam: 8\ntimestamps:\n  attention_lag: 0.02\n")
    (tmp_path / "MODEL_CARD.md").write_text("# m\n\n## Training run\n\n- a: 1\n")
    summary = {"overall": {"utterances": 240},
               "timing": {"matched_words": 3000, "start_bias_ms": 26.0, "end_bias_ms": 30.0}}
    monkeypatch.setattr(T, "engine_eval", lambda *a: summary)
    assert calibrate(str(tmp_path), "m.jsonl", "lasr") == 0.048
    import yaml
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert config == {"format": "lasr-model", "decoding": {"beam": 8}, "timestamps": {"attention_lag": 0.048}}
    assert "- timestamp calibration: word times are moved 48 ms earlier" in (tmp_path / "MODEL_CARD.md").read_text()
    summary["timing"]["matched_words"] = 10
    with pytest.raises(SystemExit, match="too few"):
        calibrate(str(tmp_path), "m.jsonl", "lasr")
