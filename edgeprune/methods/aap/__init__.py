"""AAP, Automatic Attention Pruning (Zhao et al., AISTATS 2023): ``--method aap``.

Iterative structured pruning with activation-based attention, adaptive global threshold
with roll-back (accuracy / memory / FLOPs / latency targets, and combinations) and
layer-aware thresholds. Modules: ``attention`` (scores), ``thresholds`` (layer weights and
the per-round plan), ``policy`` (Algorithms 2-4 as a pure state machine), ``schedule``
(LR rewinding), ``loop`` (Algorithm 1 with checkpoint/resume). Options: ``AAPConfig``.
"""

from __future__ import annotations

from edgeprune.methods.aap.config import AAPConfig
from edgeprune.methods.base import (
    IterativeMethod,
    IterativeResult,
    MethodContext,
    register_method,
)


@register_method("aap")
class AAPMethod(IterativeMethod):
    """AAP runs its own prune/retrain rounds against the budget oracle; options: ``AAPConfig``.

    Short CPU schedule: rounds of 100 batches rewound to epoch 91 (lr 0.01, then 0.001),
    lam0 1.5, at most 12 rounds.
    """

    config_cls = AAPConfig
    short_schedule = {
        "round_epochs": 1,
        "round_batches": 100,
        "rewind_epoch": 91,
        "lam0": 1.5,
        "max_rounds": 12,
    }
    profile_option = "device"

    def __init__(self, **options) -> None:
        self.config = AAPConfig.from_dict(options)

    def run(self, model, groups, ctx: MethodContext) -> IterativeResult:
        from edgeprune.methods.aap.loop import run_aap

        return run_aap(model, list(groups), ctx, self.config)


__all__ = ["AAPConfig", "AAPMethod"]
