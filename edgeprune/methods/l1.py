"""L1-norm filter pruning (Li et al. 2017): a filter's importance is its weights' L1 norm."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from edgeprune.methods.base import (
    MethodContext,
    ScoreResult,
    ScoringMethod,
    WidthRule,
    register_method,
)
from edgeprune.surgery.graph import PrunableGroup


def l1_group_scores(model: nn.Module, groups: Sequence[PrunableGroup]) -> dict[str, torch.Tensor]:
    """Per group: the sum over its coupled convs of each output filter's L1 norm."""
    modules = dict(model.named_modules())
    out = {}
    for g in groups:
        total = torch.zeros(g.channels)
        for conv in g.convs:
            w = modules[conv].weight.detach()
            total += w.abs().flatten(1).sum(1).cpu()
        out[g.name] = total
    return out


@register_method("l1")
class L1Method(ScoringMethod):
    """Filters ranked by L1 norm; the controller allocates widths per layer."""

    def score(self, model, groups, ctx: MethodContext) -> ScoreResult:
        return ScoreResult(l1_group_scores(model, groups), WidthRule.ALLOCATE)


@register_method("uniform")
class UniformL1Method(ScoringMethod):
    """Peer baseline: L1 ranking inside each layer, the same keep ratio for every layer."""

    def score(self, model, groups, ctx: MethodContext) -> ScoreResult:
        return ScoreResult(l1_group_scores(model, groups), WidthRule.UNIFORM)
