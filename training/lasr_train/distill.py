"""Encoder distillation from a teacher's cached states (training/README.md, "The teacher").

Chosen student encoder blocks regress chosen teacher encoder layers at the student's
frame rate, each through its own linear head, which exists only in training: the
export writes the model's tensors, never these. The loss per layer is DistilHuBERT's
(Chang et al. 2022): the L1 distance plus −log σ(cosine similarity), averaged over
valid frames. The teacher's states are layer-normalized (no affine) first: Whisper's
residual stream grows from layer to layer, and a scale-free target keeps one layer
from outweighing another.

An utterance at another speed than the teacher heard (speed perturbation) gets the
teacher's states stretched linearly to its length: the student learns to give the
same states to faster, slower, noisier or masked input, which is the invariance
the augmentation is for.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def parse_layers(layers) -> dict[int, int]:
    """`{student block: teacher layer}` from a config mapping or "5:3,10:6"."""
    if isinstance(layers, str):
        pairs = [p.split(":") for p in layers.split(",") if p.strip()]
        layers = {int(a): int(b) for a, b in pairs}
    out = {int(k): int(v) for k, v in dict(layers).items()}
    if not out:
        raise ValueError("training.distill.layers is empty")
    return out


class DistillHeads(nn.Module):
    """One Linear(d_student, d_teacher) per distilled student block."""

    def __init__(self, layers: dict[int, int], d_student: int, d_teacher: int):
        super().__init__()
        self.layers = dict(layers)
        self.heads = nn.ModuleDict({str(b): nn.Linear(d_student, d_teacher) for b in self.layers})

    def forward(self, block: int, x: torch.Tensor) -> torch.Tensor:
        return self.heads[str(block)](x)


def stretch(states: torch.Tensor, frames: int) -> torch.Tensor:
    """(T, D) → (frames, D) by linear interpolation in time; unchanged when T == frames."""
    if states.shape[0] == frames:
        return states
    if states.shape[0] == 1 or frames == 1:
        return states.mean(dim=0, keepdim=True).expand(frames, -1)
    return F.interpolate(states.T[None], size=frames, mode="linear", align_corners=True)[0].T


def distill_loss(kept: dict[int, torch.Tensor], lengths: torch.Tensor, targets: list[dict[int, torch.Tensor] | None],
                 heads: DistillHeads, cosine_weight: float = 1.0):
    """Mean over the distilled layers of the per-frame L1 − w·log σ(cos), over the valid
    frames of the utterances that have teacher states (`targets[i]` None: no term).
    Returns (loss, frames counted); (0, 0) when no utterance of the batch has states."""
    have = [i for i, t in enumerate(targets) if t is not None]
    if not have:
        return kept[next(iter(kept))].sum() * 0.0, 0
    total, frames = 0.0, 0
    for block, layer in heads.layers.items():
        pred = heads(block, kept[block])
        for i in have:
            n = int(lengths[i])
            y = stretch(targets[i][layer].float(), n)
            y = F.layer_norm(y, y.shape[-1:])
            p = pred[i, :n]
            l1 = (p - y).abs().mean(dim=-1)
            cos = F.cosine_similarity(p, y, dim=-1)
            total = total + (l1 - cosine_weight * F.logsigmoid(cos)).sum()
            frames += n
    return total / max(frames, 1), frames // len(heads.layers)
