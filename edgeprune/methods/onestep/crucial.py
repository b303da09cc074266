"""Crucial layers (kept whole, mimicked in recovery) and the one-step global-rate plan."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn

from edgeprune.errors import UserError
from edgeprune.surgery import Plan
from edgeprune.surgery.graph import PrunableGroup


def conv_execution_order(model: nn.Module, example_input: torch.Tensor) -> list[str]:
    """Conv module names in the order a forward pass runs them."""
    names = {m: n for n, m in model.named_modules()}
    order: list[str] = []
    handles = [
        m.register_forward_hook(lambda mod, _i, _o: order.append(names[mod]))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            model.eval()(example_input)
    finally:
        for h in handles:
            h.remove()
    return order


def last_conv_group(
    model: nn.Module, groups: list[PrunableGroup], example_input: torch.Tensor
) -> str:
    """The group holding the last executed conv that belongs to any group."""
    owner = {c: g.name for g in groups for c in g.convs}
    for conv in reversed(conv_execution_order(model, example_input)):
        if conv in owner:
            return owner[conv]
    raise UserError("onestep: the model has no prunable convolution")


def select_crucial(scores: dict[str, float], n: int, last: str) -> list[str]:
    """The ``n`` best-scored layers, plus ``last`` appended if missing (paper, Sec. 3.3)."""
    ranked = sorted(scores, key=lambda g: -scores[g])
    crucial = ranked[:n]
    if last not in crucial:
        crucial.append(last)
    return crucial


def allocation_scores(beta: dict[str, torch.Tensor], crucial: list[str]) -> dict[str, torch.Tensor]:
    """Per-channel scores for the controller: |beta|, +inf for crucial layers (never cut)."""
    return {
        g: torch.full_like(b, float("inf")) if g in crucial else b.abs().clone()
        for g, b in beta.items()
    }


def rate_plan(
    groups: list[PrunableGroup],
    beta: dict[str, torch.Tensor],
    crucial: list[str],
    rate: float,
    droppable: set[str],
) -> Plan:
    """Remove exactly round(rate * channels of the non-crucial layers), lowest |beta| first.

    Global ranking across layers (each coupled group counted once). A layer keeps at least
    one channel unless it is a residual block's inner layer (then the block may go); the
    next-lowest channel elsewhere is taken instead, so the count is always exact.
    """
    prunable = [g for g in groups if g.name not in crucial]
    target = round(rate * sum(g.channels for g in prunable))
    entries = sorted(
        (float(beta[g.name][i].abs()), gi, i)
        for gi, g in enumerate(prunable)
        for i in range(g.channels)
    )
    left = {g.name: g.channels for g in prunable}
    removed: dict[str, set[int]] = {g.name: set() for g in prunable}
    count = 0
    for _, gi, i in entries:
        if count == target:
            break
        name = prunable[gi].name
        if left[name] == 1 and name not in droppable:
            continue
        removed[name].add(i)
        left[name] -= 1
        count += 1
    if count < target:
        raise UserError(f"onestep: rate {rate} removes more channels than the layers allow")
    keep = {
        g.name: [i for i in range(g.channels) if i not in removed[g.name]]
        for g in prunable
        if removed[g.name]
    }
    return Plan(keep, meta={"method": "onestep", "rate": rate, "removed": count})


def smallest_plan(
    groups: list[PrunableGroup],
    beta: dict[str, torch.Tensor],
    crucial: list[str],
    droppable: set[str],
    min_keep_frac: float = 0.1,
) -> Plan:
    """The smallest model the controller could reach with ``crucial`` kept whole
    (its defaults: blocks may go, other layers keep 10%, best |beta| first)."""
    keep = {}
    for g in groups:
        if g.name in crucial:
            continue
        n = 0 if g.name in droppable else max(1, math.ceil(min_keep_frac * g.channels))
        keep[g.name] = torch.argsort(beta[g.name].abs(), descending=True)[:n].tolist()
    return Plan(keep)


def feasible_crucial(
    model: nn.Module,
    groups: list[PrunableGroup],
    beta: dict[str, torch.Tensor],
    scores: dict[str, float],
    n: int,
    last: str,
    oracle,
    example_input: torch.Tensor,
    droppable: set[str],
) -> list[str]:
    """The crucial layers for the largest N' <= n (N' >= 2) with which the budget can be met.

    Small networks (ResNet-8 has 6 layers) cannot meet a tight budget with 4 whole layers;
    the least important ones are then released. Without an oracle: ``n`` as asked.
    """
    from edgeprune.surgery import apply_plan_

    for k in range(n, 1, -1):
        crucial = select_crucial(scores, k, last)
        if oracle is None:
            return crucial
        plan = smallest_plan(groups, beta, crucial, droppable)
        small = apply_plan_(copy.deepcopy(model), plan, example_input)
        if not oracle.violated(oracle.metrics(small)):
            return crucial
    return select_crucial(scores, 2, last)
