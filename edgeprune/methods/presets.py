"""Presets of the papers' methods: ``paper`` (every value the paper gives for CIFAR-10
ResNet-56) and ``cpu`` (the method's ``short_schedule``, ours, for a CPU budget).

A preset is data: method options, the recovery training after pruning (the pipeline's
fine-tune: epochs and optimizer) and the batch size. Explicit ``--opt`` values win over
the preset's options. See docs/methods.md for where each value comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from edgeprune.errors import UserError

PRESETS = ("paper", "cpu")


@dataclass(frozen=True)
class Preset:
    """Method options, the recovery TrainConfig fields (None: no recovery training) and
    the batch size (None: the command's)."""

    options: dict[str, Any] = field(default_factory=dict)
    recovery: dict[str, Any] | None = None
    batch_size: int | None = None
    source: str = ""


PAPER: MappingProxyType = MappingProxyType(
    {
        "paam": Preset(
            options={
                "variant": "vanilla",
                "lam": 5e-4,
                "balance": "flops",
                "warmup_epochs": 50,
                "warmup_lr": 0.1,
                "warmup_weight_decay": 5e-4,
                "cycles": 10,
                "an_epochs": 3,
                "cnn_epochs": 6,
                "an_lr": 1e-6,
                "cnn_lr": 1e-3,
                "binarize": "theta",
                "theta": 0.5,
                "final": "binarize",
                "final_scores": "trained",
                "group_weights": "all",
            },
            # "SGD with the same parameters as in warm-up, 300 epochs" (Sec. 3)
            recovery={
                "epochs": 300,
                "optimizer": "sgd",
                "lr": 0.1,
                "momentum": 0.9,
                "weight_decay": 5e-4,
                "schedule": "cosine",
            },
            batch_size=256,
            source="PAAM Sec. 3 and Table 5 (ResNet-56, medium: lambda 5e-4)",
        ),
        "aap": Preset(
            options={
                "t0": 0.0,
                "lam0": 0.01,
                "init_from_attention": False,
                "lam_rule": "paper",
                "stream_threshold": "mean",
                "epochs": 182,
                "rewind_epoch": 136,
                "round_epochs": None,
                "round_batches": None,
                "lr": 0.1,
                "milestones": [91, 136],
                "gamma": 0.1,
                "weight_decay": 2e-4,
                "train_dense": True,
                "retrain_dense": False,
                "align": 1,
            },
            recovery=None,  # AAP's rounds are its own retraining
            batch_size=128,
            source="AAP Algorithms 1-4, Sec. 3.3, Table 1 (ResNet-56), Sec. 4 (batch 128)",
        ),
        "onestep": Preset(
            options={
                "lam": 1.0,
                "beta_lr": 1e-5,
                "beta_epochs": 15,
                "beta_travel": None,
                "n_crucial": 4,
                "mimic": "kl",
                "recover_epochs": 15,
                "recover_lr": 1e-3,
                "recover_lr_step": 5,
                "ranking": "global",
            },
            # "retrained for 20 epochs with fixed learning rate 1e-5" (Adam; ImageNet protocol)
            recovery={
                "epochs": 20,
                "optimizer": "adam",
                "lr": 1e-5,
                "weight_decay": 0.0,
                "schedule": "constant",
            },
            batch_size=128,
            source="one-step Sec. 4.1 (CIFAR: lambda 1, 15 epochs at 1e-5) and 4.2 (fine-tune)",
        ),
    }
)


def get_preset(method: str, name: str) -> Preset:
    """The preset ``name`` of ``method``; one sentence for an unknown pair."""
    from edgeprune.methods.base import method_class

    cls = method_class(method)
    if name == "cpu":
        return Preset(dict(cls.short_schedule), source="ours: the method's short_schedule")
    if name == "paper" and method in PAPER:
        return PAPER[method]
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    raise UserError(f"method {method!r} has no paper preset (only {', '.join(sorted(PAPER))})")


def apply_preset(
    method: str, name: str | None, options: dict, epochs: int, batch_size: int
) -> tuple[dict, Any, int, int]:
    """(options, recovery TrainConfig or None, epochs, batch size) for a run with preset
    ``name`` (None: unchanged). Given ``--opt`` values win; the preset's recovery epochs
    and batch size apply when the command left them at 0 and 128."""
    if name is None:
        return options, None, epochs, batch_size
    p = get_preset(method, name)
    merged = {**p.options, **options}
    recovery = None
    if p.recovery is not None:
        from edgeprune.train import TrainConfig

        fields = {k: v for k, v in p.recovery.items() if k != "epochs"}
        recovery = TrainConfig(epochs=max(1, int(p.recovery["epochs"])), **fields)
        epochs = epochs or int(p.recovery["epochs"])
    if p.batch_size is not None and batch_size == 128:
        batch_size = p.batch_size
    return merged, recovery, epochs, batch_size
