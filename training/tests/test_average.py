import pytest
import torch

from lasr_train.average import average_checkpoints


def checkpoint(path, step, scale, args=None):
    model = {"w": torch.full((2, 3), float(scale)), "b": torch.tensor([scale, -scale], dtype=torch.float32),
             "count": torch.tensor(step)}
    torch.save({"model_args": args or {"d_model": 3}, "model": model, "optimizer": {"state": 1}, "step": step,
                "epoch": step // 10}, path)
    return str(path)


def test_floats_are_averaged_and_the_rest_is_the_last_checkpoints(tmp_path):
    paths = [checkpoint(tmp_path / f"{s}.pt", s, v) for s, v in [(10, 1.0), (20, 2.0), (30, 6.0)]]
    ck = average_checkpoints(paths)
    assert torch.allclose(ck["model"]["w"], torch.full((2, 3), 3.0))
    assert torch.allclose(ck["model"]["b"], torch.tensor([3.0, -3.0]))
    assert ck["model"]["count"].item() == 30 and ck["step"] == 30
    assert ck["averaged_steps"] == [10, 20, 30] and "optimizer" not in ck


def test_different_shapes_are_refused(tmp_path):
    a = checkpoint(tmp_path / "a.pt", 10, 1.0)
    b = checkpoint(tmp_path / "b.pt", 20, 1.0, args={"d_model": 4})
    with pytest.raises(SystemExit, match="differs"):
        average_checkpoints([a, b])


def test_training_only_dropouts_do_not_keep_checkpoints_apart(tmp_path):
    # A run with decoder dropout, and one from before that field existed, hold the same
    # architecture: their weights average.
    a = checkpoint(tmp_path / "a.pt", 10, 1.0, args={"d_model": 3, "dropout": 0.1})
    b = checkpoint(tmp_path / "b.pt", 20, 3.0, args={"d_model": 3, "dropout": 0.2, "decoder_dropout": 0.2})
    assert torch.allclose(average_checkpoints([a, b])["model"]["w"], torch.full((2, 3), 2.0))


def test_an_exported_model_directory_averages_as_its_weights_in_float32(tmp_path):
    from pathlib import Path
    from safetensors.torch import load_file

    from lasr_train.export import load_checkpoint_model
    root = Path(__file__).resolve().parents[2]
    shipped = root / "models" / "default"
    if not (shipped / "model.safetensors").exists():
        pytest.skip("models/default is not here")
    weights = {k: v.float() for k, v in load_file(str(shipped / "model.safetensors")).items()}
    ck = average_checkpoints([str(shipped), str(shipped)])
    assert ck["averaged_steps"][0].startswith(str(shipped)) and "optimizer" not in ck
    card = (shipped / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert ck["inputs_synthetic_speech"] and all(l in card for l in ck["inputs_synthetic_speech"])
    for k, v in weights.items():
        assert torch.equal(ck["model"][k], v), k
    # The result is a checkpoint that the export reads: the same architecture as the directory's.
    torch.save(ck, tmp_path / "avg.pt")
    model, cfg, _ = load_checkpoint_model(tmp_path / "avg.pt", shipped)
    assert cfg["encoder"] == ck["config"]["encoder"] and sum(p.numel() for p in model.parameters()) > 0
    with pytest.raises(SystemExit, match="not a checkpoint file nor a model directory"):
        average_checkpoints([str(tmp_path)])
