"""AAP, Automatic Attention Pruning (Zhao et al., AISTATS 2023): ``--method aap``.

Iterative structured pruning with activation-based attention, adaptive global threshold
with roll-back (accuracy / memory / FLOPs / latency targets, and combinations) and
layer-aware thresholds. Modules: ``attention`` (scores), ``thresholds`` (layer weights and
the per-round plan), ``policy`` (Algorithms 2-4 as a pure state machine), ``schedule``
(LR rewinding), ``loop`` (Algorithm 1 with checkpoint/resume). Options: ``AAPConfig``.
"""

from __future__ import annotations

from edgeprune.methods.aap.config import AAPConfig
from edgeprune.methods.base import IterativeResult, Method, MethodContext, register_method


@register_method("aap")
class AAPMethod(Method):
    """AAP runs its own prune/retrain rounds (knob ``iterative``); options: ``AAPConfig``."""

    knob = "iterative"
    config_cls = AAPConfig

    def __init__(self, **options) -> None:
        self.config = AAPConfig.from_dict(options)
        self._diagnostics: dict = {}

    def run(self, model, groups, ctx: MethodContext) -> IterativeResult:
        from edgeprune.methods.aap.loop import run_aap

        result = run_aap(model, groups, ctx, self.config)
        self._diagnostics = result.diagnostics
        return result

    def diagnostics(self) -> dict:
        return self._diagnostics


__all__ = ["AAPConfig", "AAPMethod"]
