from lasr_train.timing import current_lag, set_attention_lag, set_card_line, word_times

SEGMENTS = [("pau", 0.2), ("hh", 0.3), ("ax", 0.34), ("l", 0.43), ("ow", 0.58), ("pau", 0.8),
            ("w", 0.89), ("er", 0.95), ("l", 1.0), ("d", 1.04), ("pau", 1.26)]


def test_word_times_group_phones_and_skip_pauses():
    assert word_times(["hello", "world"], [4, 4], SEGMENTS) == [[0.2, 0.58, "hello"], [0.8, 1.04, "world"]]


def test_word_times_refuse_counts_that_do_not_add_up():
    assert word_times(["hello", "world"], [4, 3], SEGMENTS) is None
    assert word_times(["hello", "world"], [8, 0], SEGMENTS) is None


CONFIG = "format: lasr-model\ndecoding:\n  beam: 8\n  eos_threshold: 1.5\n"


def test_attention_lag_is_added_then_replaced():
    once = set_attention_lag(CONFIG, 0.048)
    assert once == CONFIG + "timestamps:\n  attention_lag: 0.048\n"
    assert current_lag(CONFIG) == 0.0 and current_lag(once) == 0.048
    twice = set_attention_lag(once, 0.05)
    assert twice == CONFIG + "timestamps:\n  attention_lag: 0.050\n"


def test_card_line_lands_at_the_end_of_the_training_run_list():
    card = "# m\n\n## Training run\n\n- a: 1\n- b: 2\n\n## Limitations\n\ntext\n"
    once = set_card_line(card, "timestamp calibration", "48 ms")
    assert once == "# m\n\n## Training run\n\n- a: 1\n- b: 2\n- timestamp calibration: 48 ms\n\n## Limitations\n\ntext\n"
    assert set_card_line(once, "timestamp calibration", "50 ms") == once.replace("48 ms", "50 ms")
    assert set_card_line(once, "a", "3") == once.replace("- a: 1", "- a: 3")
