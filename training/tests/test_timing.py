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


def test_calibrate_moves_the_lag_by_the_measured_bias_and_picks_the_span(tmp_path, monkeypatch):
    import yaml

    import lasr_train.timing as T
    (tmp_path / "config.yaml").write_text("format: lasr-model\nfeatures:\n  sample_rate: 16000\n  hop_length: 160\n"
                                          "decoding:\n  beam: 8\ntimestamps:\n  attention_lag: 0.02\n"
                                          "  max_token_span: 0.08\n")
    (tmp_path / "MODEL_CARD.md").write_text("# m\n\n## Training run\n\n- a: 1\n")
    seen = []

    def fake_eval(model_dir, *a):
        # Biases as the engine would measure them: the lag with the default span (no key),
        # then start error medians that are smallest at 0.2 s.
        ts = yaml.safe_load((tmp_path / "config.yaml").read_text())["timestamps"]
        seen.append(dict(ts))
        span = ts.get("max_token_span")
        median = 53.0 if span is None else 30 + 400 * abs(span - 0.2)
        return {"overall": {"utterances": 240},
                "timing": {"matched_words": 3000, "start_bias_ms": 26.0, "end_bias_ms": 30.0,
                           "start_median_ms": median, "start_p90_ms": 2 * median}}
    monkeypatch.setattr(T, "engine_eval", fake_eval)
    assert calibrate(str(tmp_path), "m.jsonl", "lasr") == (0.048, 0.2)
    # The lag is measured once, with the stored lag and the default span, then each span with the new lag.
    assert seen[0] == {"attention_lag": 0.02}
    assert [s["max_token_span"] for s in seen[1:]] == [0.08, 0.12, 0.16, 0.2, 0.24, 0.28, 0.32]
    assert all(s["attention_lag"] == 0.048 for s in seen[1:])
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert config == {"format": "lasr-model", "features": {"sample_rate": 16000, "hop_length": 160},
                      "decoding": {"beam": 8}, "timestamps": {"attention_lag": 0.048, "max_token_span": 0.2}}
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert "- timestamp calibration: word times are moved 48 ms earlier" in card
    assert "at most 200 ms before its peak" in card and "30 ms, p90 60 ms" in card
    seen.clear()
    # A second run measures the lag without the span it wrote, so the result is the same
    # (the fake's biases do not follow the lag, so only the span is compared here).
    assert calibrate(str(tmp_path), "m.jsonl", "lasr")[1] == 0.2
    assert seen[0] == {"attention_lag": 0.048}
    monkeypatch.setattr(T, "engine_eval", lambda *a: {"overall": {"utterances": 240},
                                                      "timing": {"matched_words": 10}})
    with pytest.raises(SystemExit, match="too few"):
        calibrate(str(tmp_path), "m.jsonl", "lasr")
