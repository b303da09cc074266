"""Knowledge distillation for the training loop: a student trained against a frozen teacher.

``kd``: Hinton et al. (2015), ``(1 - alpha) * CE(student, y) + alpha * T^2 *
KL(softmax(teacher / T) || softmax(student / T))``. Two guards against a teacher weaker
than the student can become: ``adjust`` corrects the teacher's wrong answers before they are
softened (Knowledge Adjustment, Wen et al. 2019, "Preparing Lessons": where the teacher's top
class is not the label, the two logits swap places, so the target's argmax is always the label
and the rest of its "dark knowledge" stays), and ``alpha_end`` anneals the teacher's share
linearly from ``alpha`` to ``alpha_end`` over the training, so the last steps learn the labels.
``feat`` adds an attention-transfer term
on feature maps (Zagoruyko & Komodakis 2017): the channel-mean of squared activations,
L2-normalised per image, compared between teacher and student at the outputs of the model's
top-level stages. Attention maps do not depend on the channel count, so a pruned student is
compared with its dense teacher without any adapter layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.errors import UserError

DISTILL_MODES = ("kd", "feat", "none")


@dataclass(frozen=True)
class DistillConfig:
    """How a student learns from a teacher: the mode, the temperature ``T``, the share
    ``alpha`` of the softened-logit term (the rest is cross-entropy on the labels) and, for
    ``feat``, the weight of the attention-transfer term (1000 as in the paper, halved);
    ``adjust``: correct the teacher's wrong answers; ``alpha_end``: the share at the last step
    (None: constant ``alpha``). Both guards are on by default: with the plain constant kd a
    mildly pruned ResNet-56 (0.7x) lost 2.8 points against no distillation, because its teacher
    was weaker than one epoch of labels makes the student (RESULTS, issue 17)."""

    mode: str = "kd"
    temperature: float = 4.0
    alpha: float = 0.9
    feat_weight: float = 1000.0
    adjust: bool = True
    alpha_end: float | None = 0.0

    def __post_init__(self) -> None:
        if self.mode not in DISTILL_MODES:
            raise UserError(f"unknown distillation {self.mode!r}; expected one of {DISTILL_MODES}")
        end = self.alpha if self.alpha_end is None else self.alpha_end
        alphas_ok = 0.0 <= self.alpha <= 1.0 and 0.0 <= end <= 1.0
        if self.temperature <= 0 or not alphas_ok or self.feat_weight < 0:
            raise UserError("distillation needs temperature > 0, 0 <= alpha <= 1, feat weight >= 0")

    def alpha_at(self, progress: float) -> float:
        """The teacher's share after ``progress`` (0 at the first step, 1 at the last)."""
        if self.alpha_end is None:
            return self.alpha
        return self.alpha + (self.alpha_end - self.alpha) * min(max(progress, 0.0), 1.0)

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DistillConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise UserError(f"unknown distillation option(s): {', '.join(sorted(unknown))}")
        return cls(**d)


NO_DISTILL = DistillConfig(mode="none")


def kd_term(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher/T) || softmax(student/T))``, averaged over the batch."""
    t = float(temperature)
    log_p = F.log_softmax(student.float() / t, dim=1)
    log_q = F.log_softmax(teacher.float() / t, dim=1)
    return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True) * (t * t)


def adjusted_teacher(teacher: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The teacher's logits with each wrong answer corrected: where the top class is not the
    label, the top logit and the label's logit swap places (Knowledge Adjustment)."""
    top = teacher.argmax(1, keepdim=True)
    label = targets.view(-1, 1)
    top_val, label_val = teacher.gather(1, top), teacher.gather(1, label)
    return teacher.scatter(1, top, label_val).scatter(1, label, top_val)


def attention_map(x: torch.Tensor) -> torch.Tensor:
    """Per image: the channel-mean of ``x**2``, flattened and L2-normalised."""
    return F.normalize(x.float().pow(2).mean(1).flatten(1), dim=1)


def feature_term(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """Mean over matched maps of the squared attention-map difference (mean over entries)."""
    terms = [
        (attention_map(s) - attention_map(t)).pow(2).mean()
        for s, t in zip(student, teacher, strict=True)
    ]
    return torch.stack(terms).mean()


def distill_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    targets: torch.Tensor,
    cfg: DistillConfig,
    criterion: nn.Module | None = None,
    progress: float = 0.0,
) -> torch.Tensor:
    """The Hinton loss: ``(1 - alpha) * CE + alpha * T^2 * KL`` (``criterion``: the CE), with
    ``alpha`` at ``progress`` through the training and the teacher adjusted if configured."""
    ce = (criterion or nn.CrossEntropyLoss())(student.float(), targets)
    if cfg.adjust:
        teacher = adjusted_teacher(teacher, targets)
    alpha = cfg.alpha_at(progress)
    return (1 - alpha) * ce + alpha * kd_term(student, teacher, cfg.temperature)


class FeatureTap:
    """Forward hooks keeping the outputs of ``model``'s top-level 4-D stages by name."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        self.maps: dict[str, torch.Tensor] = {}
        mods = dict(model.named_children())
        self._handles = [mods[n].register_forward_hook(self._keep(n)) for n in names]

    def _keep(self, name: str):
        def hook(_module, _inputs, output):
            if isinstance(output, torch.Tensor):
                self.maps[name] = output

        return hook

    def take(self, names: list[str]) -> list[torch.Tensor]:
        out = [self.maps[n] for n in names]
        self.maps = {}
        return out

    def close(self) -> None:
        for h in self._handles:
            h.remove()


@torch.no_grad()
def matched_stages(student: nn.Module, teacher: nn.Module, example: torch.Tensor) -> list[str]:
    """Top-level children of both models whose outputs are 4-D maps of the same spatial size
    (the stages a feature term compares); ``example`` is one input batch."""
    names = [n for n, _ in teacher.named_children() if n in dict(student.named_children())]
    taps = FeatureTap(student, names), FeatureTap(teacher, names)
    modes = student.training, teacher.training
    try:
        student.eval()
        teacher.eval()
        student(example)
        teacher(example)
        s, t = taps[0].maps, taps[1].maps
        return [
            n
            for n in names
            if n in s and n in t and s[n].dim() == 4 and s[n].shape[2:] == t[n].shape[2:]
        ]
    finally:
        for tap in taps:
            tap.close()
        student.train(modes[0])
        teacher.train(modes[1])
