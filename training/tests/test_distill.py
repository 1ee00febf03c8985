"""Encoder distillation's loss and its pieces (lasr_train.distill)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lasr_train.distill import DistillHeads, distill_loss, parse_layers, stretch


def test_layer_maps_from_config_or_command_line():
    assert parse_layers({5: 3, 10: 6}) == {5: 3, 10: 6}
    assert parse_layers("1:1, 2:2") == {1: 1, 2: 2}
    with pytest.raises(ValueError):
        parse_layers({})


def test_stretch_keeps_the_ends_and_interpolates_between():
    x = torch.tensor([[0.0], [10.0]])
    assert torch.equal(stretch(x, 2), x)
    y = stretch(x, 5)
    assert y.shape == (5, 1) and torch.allclose(y[:, 0], torch.tensor([0.0, 2.5, 5.0, 7.5, 10.0]))


def test_loss_is_lowest_on_the_teachers_states_and_skips_utterances_without():
    torch.manual_seed(0)
    heads = DistillHeads({1: 1}, d_student=4, d_teacher=4)
    with torch.no_grad():   # an identity head: the student's block output is its prediction
        heads.heads["1"].weight.copy_(torch.eye(4))
        heads.heads["1"].bias.zero_()
    teacher = torch.randn(6, 4) * 7 + 3    # scale and offset vanish under the layer norm
    target = F.layer_norm(teacher, (4,))
    lengths = torch.tensor([6, 3])
    exact = torch.stack([target, torch.zeros(6, 4)])
    noisy = (exact + 0.5 * torch.randn_like(exact)).requires_grad_()
    l_exact, n = distill_loss({1: exact}, lengths, [{1: teacher}, None], heads)
    l_noisy, _ = distill_loss({1: noisy}, lengths, [{1: teacher}, None], heads)
    assert n == 6 and l_exact < l_noisy
    # L1 0 and cos 1 leave −log σ(1) per frame.
    assert abs(float(l_exact.detach()) - float(-F.logsigmoid(torch.tensor(1.0)))) < 1e-5
    none, frames = distill_loss({1: noisy}, lengths, [None, None], heads)
    assert frames == 0 and float(none.detach()) == 0.0 and none.requires_grad
