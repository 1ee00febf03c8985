import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from lasr_train.config import load_config, merge
from lasr_train.export import (export_model, load_model_dir, model_outputs, refresh_fixtures, round_trip_check,
                               write_fixtures)
from lasr_train.model import LasrModel, ModelArgs
from lasr_train.tokenizer import train_tokenizer

SMALL = {"encoder": {"subsampling_channels": 4, "d_model": 16, "num_blocks": 2, "kernel_size": 5},
         "decoder": {"embed_dim": 8, "hidden": 12, "attention": {"dim": 8, "filters": 3, "radius": 2}},
         "vocabulary": {"type": "characters", "size": 31}}


def test_export_round_trip_and_fixtures(tmp_path):
    cfg = merge(load_config(), SMALL)
    tok = train_tokenizer(["hello world"], "characters", 31, tmp_path / "tok")
    torch.manual_seed(0)
    model = LasrModel(ModelArgs.from_config(cfg, tok.size)).eval()
    rounded = export_model(model, cfg, tmp_path / "tok", tmp_path / "model", {"note": "test"})
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert files == ["MODEL_CARD.md", "config.yaml", "model.safetensors", "tokens.txt"]
    feats = torch.randn(120, 80)
    assert round_trip_check(rounded, tmp_path / "model", feats) == 0.0
    loaded, ecfg, tok2 = load_model_dir(tmp_path / "model")
    assert ecfg["format"] == "lasr-model" and "training" not in ecfg and tok2.size == 31
    # float16 storage: every loaded weight equals the fp16 rounding of the original
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v.half().float())
    wave = (0.1 * np.sin(np.arange(24000) * 0.05)).astype(np.float32)
    info = write_fixtures(tmp_path / "model", tmp_path / "fx", "a test", waveform=wave)
    t = load_file(str(tmp_path / "fx" / "parity.safetensors"))
    T1 = t["encoder_out"].shape[0]
    assert t["features"].shape == (148, 80) and T1 == 37
    assert t["attention"].shape == (5, T1) and t["logprobs"].shape == (5, 31)
    assert t["ctc_logprobs"].shape == (T1, 31)
    o = model_outputs(loaded, torch.from_numpy(t["features"]))
    assert np.allclose(o["encoder_out"].numpy(), t["encoder_out"], atol=1e-6)
    assert json.loads((tmp_path / "fx" / "parity.json").read_text())["nbest"] == info["nbest"]
    # refreshing recomputes the same fixtures from the stored waveform, and refuses another model
    (tmp_path / "fx" / "parity.json").write_text(json.dumps({**info, "nbest": []}))
    assert refresh_fixtures(tmp_path / "model", tmp_path / "fx")["nbest"] == info["nbest"]
    assert np.array_equal(load_file(str(tmp_path / "fx" / "parity.safetensors"))["encoder_out"], t["encoder_out"])
    (tmp_path / "fx" / "parity.json").write_text(json.dumps({**info, "model_sha256": "0" * 64}))
    with pytest.raises(SystemExit, match="fixtures belong to model 000000000000"):
        refresh_fixtures(tmp_path / "model", tmp_path / "fx")


def test_model_card_names_the_synthetic_engines_and_hours_from_the_synth_summary():
    from lasr_train.export import synthetic_summary
    line = synthetic_summary({"hours": 23.138, "prompts": ["ljspeech-sentences.txt"], "hours_by_voice": {
        "espeak:en-029": 2.2, "espeak:en-gb": 2.1, "flite:awb": 1.5, "piper:en_US-joe-medium": 0.4}})
    assert line == ("23.1 h of synthetic speech (espeak-ng 4.3 h, flite 1.5 h, piper 0.4 h) rendered by "
                    "lasr_train.synth from public-domain text (ljspeech-sentences.txt)")
    assert "not given" in synthetic_summary(None)


def test_model_card_lists_each_synthetic_set_of_the_run_and_the_start_models_once(tmp_path):
    from lasr_train.export import card_synthetic_speech, synthetic_summary
    cfg = merge(load_config(), SMALL)
    tok = train_tokenizer(["hello world"], "characters", 31, tmp_path / "tok")
    model = LasrModel(ModelArgs.from_config(cfg, tok.size))
    again = {"hours": 2.466, "prompts": ["p.txt"], "hours_by_voice": {"piper:joe": 1.6, "festival:kal": 0.9}}
    more = {"hours": 5.2, "prompts": ["p.txt"], "seed": 2026, "prompt_range": [1424, 4424],
            "hours_by_voice": {"piper:joe": 3.3, "festival:kal": 1.9}}
    earlier = ["23.1 h of synthetic speech (espeak-ng 17.2 h) rendered by x (learned by the model this run started from)",
               synthetic_summary(again)]
    export_model(model, cfg, tmp_path / "tok", tmp_path / "m", {}, [again, more], earlier)
    lines = card_synthetic_speech((tmp_path / "m" / "MODEL_CARD.md").read_text().splitlines())
    assert lines == [earlier[0], synthetic_summary(again) + " (trained on in this run)",
                     synthetic_summary(more) + " (trained on in this run)"]
    assert synthetic_summary(more).endswith("(p.txt, prompts 1425-4424, seed 2026)")
    # The average of a start model and a run brings each set twice (the start's card, and
    # the run's record of it), marked as either model learned it: the card lists each once.
    twice = earlier + [synthetic_summary(again) + " (trained on in this run)", earlier[0], earlier[0],
                       synthetic_summary(again) + " (new in this run)"]
    export_model(model, cfg, tmp_path / "tok", tmp_path / "m2", {}, [more], twice)
    lines = card_synthetic_speech((tmp_path / "m2" / "MODEL_CARD.md").read_text().splitlines())
    assert lines == [earlier[0], synthetic_summary(again) + " (learned by the model this run started from)",
                     synthetic_summary(more) + " (trained on in this run)"]
    export_model(model, cfg, tmp_path / "tok", tmp_path / "m3", {}, [more], [])
    assert card_synthetic_speech((tmp_path / "m3" / "MODEL_CARD.md").read_text().splitlines()) == [
        synthetic_summary(more)]
