import pytest
import torch

from lasr_train.average import average_checkpoints


def checkpoint(path, step, scale, args=None):
    model = {"w": torch.full((2, 3), float(scale)), "b": torch.tensor([scale, -scale], dtype=torch.float32),
             "count": torch.tensor(step)}
    torch.save({"model_args": args or {"d": 3}, "model": model, "optimizer": {"state": 1}, "step": step,
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
    b = checkpoint(tmp_path / "b.pt", 20, 1.0, args={"d": 4})
    with pytest.raises(SystemExit, match="differs"):
        average_checkpoints([a, b])
