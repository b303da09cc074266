"""PAAM as an edgeprune method: ``edgeprune prune --method paam [--opt key=value ...]``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from edgeprune.methods.base import (
    IterativeMethod,
    IterativeResult,
    MethodContext,
    ScoreResult,
    ScoringMethod,
    WidthRule,
    register_method,
)
from edgeprune.methods.paam.binarize import Binarization
from edgeprune.methods.paam.config import PAAMConfig
from edgeprune.methods.paam.runner import PAAMRun
from edgeprune.surgery.graph import PrunableGroup
from edgeprune.surgery.plan import Plan


def plan_from(binar: Binarization, groups: list[PrunableGroup]) -> Plan:
    """The plan keeping the filters whose binary score is 1 (an empty inner group drops
    its residual block)."""
    keep = {
        g.name: torch.nonzero(binar.masks[g.name]).flatten().tolist()
        for g in groups
        if int(binar.masks[g.name].sum()) < g.channels
    }
    return Plan(keep, meta={"allocator": "paam-binarize", "theta": binar.theta, "p": binar.p})


def train_(
    cfg: PAAMConfig, model: nn.Module, groups: Sequence[PrunableGroup], ctx: MethodContext
) -> tuple[PAAMRun, dict[str, torch.Tensor], dict]:
    """Warm-up + cycles on ``model`` in place; returns the run, final scores, diagnostics."""
    run = PAAMRun(cfg, model, list(groups), ctx)
    final = run.execute()
    return run, final, run.diagnostics(final)


@register_method("paam")
class PAAMMethod(ScoringMethod):
    """Pruning by active attention manipulation (Babaiee et al.): attention networks learn
    analog filter scores that multiply the feature maps; alternating AN/CNN training.

    ``final=controller`` (default): the budget controller picks the global threshold on the
    final scores (``WidthRule.THRESHOLD``). ``final=binarize``: the paper's own g(s, p)
    gives the plan (:class:`PAAMBinarize`, an iterative pruner). Options: :class:`PAAMConfig`.
    """

    config_cls = PAAMConfig
    needs_data = True
    short_schedule = {"cycles": 1, "an_epochs": 1, "cnn_epochs": 1, "an_lr": 0.001}

    def __init__(self, config: PAAMConfig | None = None, **options) -> None:
        self.cfg = config if config is not None else PAAMConfig.from_dict(options)

    @classmethod
    def create(cls, **options) -> PAAMMethod | PAAMBinarize:
        """The scorer, or with ``final=binarize`` the paper's own binarizing pruner."""
        cfg = PAAMConfig.from_dict(options)
        return PAAMBinarize(cfg) if cfg.final == "binarize" else cls(cfg)

    def score(self, model, groups, ctx: MethodContext) -> ScoreResult:
        """The final analog AN scores per group (the controller thresholds them)."""
        _run, final, diag = train_(self.cfg, model, groups, ctx)
        return ScoreResult(final, WidthRule.THRESHOLD, diag)


class PAAMBinarize(IterativeMethod):
    """PAAM in the paper's mode (``final=binarize``): g(s, p) on the final scores prunes."""

    name = "paam"
    config_cls = PAAMConfig
    needs_data = True
    short_schedule = PAAMMethod.short_schedule

    def __init__(self, config: PAAMConfig) -> None:
        self.cfg = config

    def run(self, model, groups, ctx: MethodContext) -> IterativeResult:
        """Train, binarize the final scores with g(s, p) and prune ``model`` in place."""
        from edgeprune.surgery import apply_plan_

        run, final, diag = train_(self.cfg, model, groups, ctx)
        plan = plan_from(run.binarize(final), list(groups))
        pruned = apply_plan_(model, plan, ctx.example_input)
        return IterativeResult(pruned, plan, diag)
