"""PAAM as an edgeprune method: ``edgeprune prune --method paam [--opt key=value ...]``."""

from __future__ import annotations

import torch
import torch.nn as nn

from edgeprune.methods.base import IterativeResult, Method, MethodContext, register_method
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


@register_method("paam")
class PAAMMethod(Method):
    """Pruning by active attention manipulation (Babaiee et al.): attention networks learn
    analog filter scores that multiply the feature maps; alternating AN/CNN training.

    ``final=controller`` (default): the budget controller picks the global threshold on the
    final scores (``knob = "threshold"``). ``final=binarize``: the paper's own g(s, p) gives
    the plan (``knob = "iterative"``). Options: see :class:`PAAMConfig`.
    """

    knob = "threshold"
    config_cls = PAAMConfig
    needs_data = True

    def __init__(self, config: PAAMConfig | None = None, **options) -> None:
        self.cfg = config if config is not None else PAAMConfig.from_dict(options)
        if self.cfg.final == "binarize":
            self.knob = "iterative"
        self._diag: dict = {}

    def train_(
        self, model: nn.Module, groups: list[PrunableGroup], ctx: MethodContext
    ) -> tuple[PAAMRun, dict[str, torch.Tensor]]:
        """Warm-up + cycles on ``model`` in place; returns the run and the final scores."""
        run = PAAMRun(self.cfg, model, groups, ctx)
        final = run.execute()
        self._diag = run.diagnostics(final)
        return run, final

    def scores(self, model, groups, ctx: MethodContext) -> dict[str, torch.Tensor]:
        """The final analog AN scores per group (the controller thresholds them)."""
        return self.train_(model, groups, ctx)[1]

    def run(self, model, groups, ctx: MethodContext) -> IterativeResult:
        """The paper's mode: binarize the final scores with g(s, p) and prune."""
        from edgeprune.surgery import apply_plan_

        run, final = self.train_(model, groups, ctx)
        plan = plan_from(run.binarize(final), groups)
        pruned = apply_plan_(model, plan, ctx.example_input)
        return IterativeResult(pruned, plan, self._diag)

    def diagnostics(self) -> dict:
        return self._diag
