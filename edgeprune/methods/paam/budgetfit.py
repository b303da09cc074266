"""Does a width assignment meet the run's budget? (for the CNN phases' g(s, p))

Static metrics (params, FLOPs, weight and activation bytes) come from the cost model;
latency is estimated linearly from the pipeline's per-channel latency weights (predicted
ms saved per channel). This only picks the training-time masks; the final plan is chosen
by the budget controller on the device's full latency table and verified on the device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from edgeprune.surgery.graph import PrunableGroup


def budget_checker(
    model: nn.Module, groups: list[PrunableGroup], ctx
) -> Callable[[dict[str, int]], bool] | None:
    """A predicate on group widths, or None when the run has no budget targets."""
    oracle = ctx.oracle
    if oracle is None or not oracle.targets:
        return None
    from edgeprune.budget.costmodel import CostModel

    cost = CostModel(model, groups, tuple(ctx.example_input.shape[1:]))
    dense_ms = float(oracle.dense_metrics.get("latency_ms", float("nan")))
    lat_w = ctx.latency_weights or {}
    chans = {g.name: g.channels for g in groups}

    def meets(widths: dict[str, int]) -> bool:
        m = dict(cost.metrics(widths))
        m["latency_ms"] = dense_ms - sum(
            lat_w.get(n, 0.0) * (c - widths[n]) for n, c in chans.items()
        )
        return not oracle.violated(m)  # predicted: the one verdict, judged exactly

    return meets
