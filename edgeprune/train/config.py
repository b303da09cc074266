"""TrainConfig: every knob of the one training loop, as frozen data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from edgeprune.errors import UserError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer, schedule, loss and run options of one training run.

    ``warmup_epochs`` (may be fractional) ramps the LR linearly from ``warmup_start_factor``*lr
    before the schedule; schedules are applied per step. ``limit_batches`` caps the batches of
    every phase (train and eval) for smoke runs. ``amp``/``channels_last`` only act on CUDA.
    """

    epochs: int = 1
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    milestones: tuple[float, ...] = (0.5, 0.75)  # step schedule: fractions of all epochs
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    warmup_start_factor: float = 0.1
    min_lr_factor: float = 0.0  # cosine floor as a fraction of lr
    label_smoothing: float = 0.0
    grad_clip_norm: float | None = None
    limit_batches: int | None = None
    amp: bool = False
    channels_last: bool = False
    ddp_find_unused: bool = False  # DDP: allow trained params that get no gradient in a step
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {self.optimizer!r}; expected one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown LR schedule {self.schedule!r}; expected one of {SCHEDULES}")
        if self.epochs < 1 or self.lr <= 0:
            raise UserError("epochs must be >= 1 and lr must be positive")
        if self.limit_batches is not None and self.limit_batches < 1:
            raise UserError("limit_batches must be >= 1")
        object.__setattr__(self, "milestones", tuple(float(m) for m in self.milestones))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise UserError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(**d)
