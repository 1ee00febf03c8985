"""A run whose encoder starts as a Whisper encoder's layers: its first checkpoint, and
training it with the teacher's layers frozen or slowed."""
import torch

from lasr_train import hybrid, train
from lasr_train.teacher import Teacher, make_random_teacher

from test_train_resume import SET, exported_toy_model

TRAIN_SET = [s for s in SET if s.startswith("training.")]


def test_init_takes_the_teachers_layers_and_the_models_speller_and_training_keeps_them_frozen(tmp_path):
    common, native = exported_toy_model(tmp_path)
    teacher_dir = make_random_teacher(tmp_path / "teacher", state=32, layers=2, heads=2)
    run = tmp_path / "run"
    hybrid.main(["init", "--teacher", str(teacher_dir), "--model", str(tmp_path / "model"), "--out", str(run),
                 "--encoder-lr-scale", "0", "--conv-blocks", "1", "--align", str(tmp_path / "cache"), str(tmp_path / "cache"),
                 "--align-utterances", "4", "--threads", "1"])
    ck = torch.load(run / "last.pt", weights_only=False)
    assert ck["step"] == 0 and ck["model_args"]["encoder_type"] == "whisper"
    assert ck["config"]["encoder"]["whisper"] == {"state": 32, "heads": 2, "layers": 2, "ff": 128, "ctx": 750,
                                                   "conv_blocks": 1}
    assert ck["config"]["features"]["mel_scale"] == "slaney" and ck["config"]["features"]["log_base"] == "e"
    teacher = Teacher(teacher_dir).encoder.state_dict()
    start = ck["model"]
    torch.testing.assert_close(start["encoder.blocks.1.mlp.2.weight"], teacher["blocks.1.mlp.2.weight"])
    torch.testing.assert_close(start["encoder.positional_embedding"], teacher["positional_embedding"][0:1500:2])
    for k, v in native.state_dict().items():   # the exported model's float16 weights
        if k.startswith(("decoder.", "ctc.")):
            torch.testing.assert_close(start[k], v, atol=2e-3, rtol=2e-3)
    # the normalizer maps natural-log features to the teacher's scale, (log10 + 4) / 4
    log10 = torch.tensor([-10.0, 0.0, 2.0])
    y = (log10 * torch.log(torch.tensor(10.0)) - start["normalizer.mean"][:3]) / start["normalizer.std"][:3]
    torch.testing.assert_close(y, torch.tensor([-1.5, 1.0, 1.5]))

    train.main(common + ["--tokens", str(tmp_path / "tok"), "--out", str(run), "--resume", "--max-steps", "3",
                         "--set", *TRAIN_SET])
    end = torch.load(run / "last.pt", weights_only=False)["model"]
    for k in start:
        moved = not torch.equal(start[k], end[k])
        if hybrid.is_pretrained(k) or k.startswith("normalizer."):
            assert not moved, k
    assert not torch.equal(start["encoder.proj.weight"], end["encoder.proj.weight"])
    assert not torch.equal(start["encoder.conv_blocks.0.ff1.weight"], end["encoder.conv_blocks.0.ff1.weight"])
    assert not torch.equal(start["decoder.lstm.weight_hh"], end["decoder.lstm.weight_hh"])
    import pytest
    with pytest.raises(SystemExit, match="cannot switch"):
        train.main(common + ["--tokens", str(tmp_path / "tok"), "--out", str(run), "--resume", "--max-steps", "4",
                             "--set", "training.encoder_lr_scale=0.5"])


def test_a_slowed_teacher_moves_less_than_the_speller_and_init_refuses_to_overwrite(tmp_path):
    import pytest
    common, _ = exported_toy_model(tmp_path)
    teacher_dir = make_random_teacher(tmp_path / "teacher", state=32, layers=2, heads=2)
    runs = {}
    for scale in ("1", "0.01"):
        run = tmp_path / f"run{scale}"
        hybrid.main(["init", "--teacher", str(teacher_dir), "--model", str(tmp_path / "model"), "--out", str(run),
                     "--encoder-lr-scale", scale, "--layers", "1", "--threads", "1"])
        start = torch.load(run / "last.pt", weights_only=False)["model"]
        assert "encoder.blocks.1.attn.query.weight" not in start   # one layer taken
        train.main(common + ["--tokens", str(tmp_path / "tok"), "--out", str(run), "--resume", "--max-steps", "3",
                             "--set", *TRAIN_SET])
        end = torch.load(run / "last.pt", weights_only=False)["model"]
        runs[scale] = float((end["encoder.blocks.0.mlp.0.weight"] - start["encoder.blocks.0.mlp.0.weight"]).abs().max())
    assert 0 < runs["0.01"] < 0.1 * runs["1"]
    with pytest.raises(SystemExit, match="exists"):
        hybrid.main(["init", "--teacher", str(teacher_dir), "--model", str(tmp_path / "model"),
                     "--out", str(tmp_path / "run1")])


def test_export_writes_every_shape_of_the_whisper_encoder_and_its_card_names_the_teacher(tmp_path):
    import yaml
    from lasr_train import export
    exported_toy_model(tmp_path)
    teacher_dir = make_random_teacher(tmp_path / "teacher", state=32, layers=1, heads=2)
    hybrid.main(["init", "--teacher", str(teacher_dir), "--model", str(tmp_path / "model"),
                 "--out", str(tmp_path / "run"), "--threads", "1"])
    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over it.\n")
    export.main(["--checkpoint", str(tmp_path / "run" / "last.pt"), "--tokens", str(tmp_path / "tok"),
                 "--out", str(tmp_path / "exported"), "--fixture-text-file", str(text), "--synth-summary", "none",
                 "--decoding", "beam=3", "ctc_weight=0.25"])
    cfg = yaml.safe_load((tmp_path / "exported" / "config.yaml").read_text())
    assert cfg["decoding"]["beam"] == 3 and cfg["decoding"]["ctc_weight"] == 0.25
    import pytest
    with pytest.raises(SystemExit, match="KEY one of beam"):
        export.main(["--checkpoint", str(tmp_path / "run" / "last.pt"), "--tokens", str(tmp_path / "tok"),
                     "--out", str(tmp_path / "exported2"), "--fixture-text-file", str(text), "--decoding", "bean=3"])
    # no conv blocks: the run's config leaves kernel_size and ff_mult out, the engine's names them
    assert cfg["encoder"]["type"] == "whisper" and cfg["encoder"]["layer_norm_eps"] == 1e-5
    assert cfg["encoder"]["whisper"] == {"state": 32, "heads": 2, "layers": 1, "ff": 128, "ctx": 750, "conv_blocks": 0}
    assert {"kernel_size", "ff_mult", "d_model"} <= set(cfg["encoder"])
    from lasr_train.config import load_config
    with pytest.raises(SystemExit, match="only a conv encoder grows"):
        train.init_model_config(load_config(), cfg, {"encoder": {"num_blocks": 4}})
    card = (tmp_path / "exported" / "MODEL_CARD.md").read_text()
    assert "- encoder: Whisper's conv front end and 1 of its layers" in card and "kept frozen" in card
    assert "OpenAI, MIT licence" in card
