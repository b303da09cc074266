"""Layer-aware thresholds (AAP Section 3.3) and the per-round keep plan.

w_i[r] = layer i's share of the current model's params (memory goal), FLOPs (FLOPs goal) or
predicted latency on the device (latency goal, ours); T_i[r] = T[r] * w_i[r]. A group of
coupled convs (a residual stream) is scored by the mean of its members' attention, so its
threshold is the mean of its members' T_i (``stream="mean"``, consistent with the paper's
per-layer thresholds); ``stream="sum"`` (the earlier rule, about 9x a layer's threshold on
a ResNet-56 stage) is kept as an option. Several goals joined by ``+`` average their shares.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from edgeprune.surgery.blocks import find_blocks
from edgeprune.surgery.graph import PrunableGroup
from edgeprune.surgery.plan import Plan


def conv_costs(model: nn.Module, example: torch.Tensor) -> dict[str, tuple[int, int]]:
    """Per conv: (params, MACs) = (weight elements, weight elements x output h x w)."""
    out: dict[str, tuple[int, int]] = {}
    names = {m: n for n, m in model.named_modules()}

    def hook(mod, _inp, y):
        n = mod.weight.numel()
        out[names[mod]] = (n, n * y.shape[-1] * y.shape[-2])

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for h in handles:
            h.remove()
    return out


def shares(
    per_conv: dict[str, float], total: float, groups: list[PrunableGroup], stream: str = "mean"
) -> dict:
    """Per group: its convs' cost divided by the model's total; a coupled group's members
    are averaged (``mean``: each member's T_i = T * w_i, the group the mean of them) or
    summed (``sum``)."""
    out = {}
    for g in groups:
        part = sum(per_conv.get(c, 0.0) for c in g.convs) / total
        out[g.name] = part / len(g.convs) if stream == "mean" else part
    return out


def layer_thresholds(T: float, weights: dict[str, float]) -> dict[str, float]:
    """T_i = T * w_i."""
    return {name: T * w for name, w in weights.items()}


def droppable_convs(model: nn.Module) -> set[str]:
    """Inner convs of removable residual blocks (parameter-free shortcut): emptying one
    removes its block."""
    from edgeprune.surgery.blocks import droppable_groups

    removable = {name.rpartition(".")[0] for name in droppable_groups(model)}
    return {
        f"{b}.{c}" if b else c
        for b, spec in find_blocks(model).items()
        if b in removable
        for c in spec.inner_convs
    }


def threshold_plan(
    attention: dict[str, torch.Tensor],
    thresholds: dict[str, float],
    groups: list[PrunableGroup],
    droppable: set[str],
    allow_block_drop: bool = True,
    align: int = 1,
) -> Plan:
    """Prune every filter whose attention is <= its layer's threshold (T = 0 removes only
    filters that are never active). A layer never goes to 0 channels, except the inner conv
    of a residual block (the block is removed) when ``allow_block_drop``; otherwise it keeps
    its highest-attention filter. With ``align`` > 1 (a latency goal on a runtime whose
    kernels run channel counts in multiples of ``align``) a layer keeps its best filters up
    to the next multiple, so that pruning never makes it slower."""
    keep: dict[str, list[int]] = {}
    for g in groups:
        att = attention[g.name]
        kept = torch.nonzero(att > thresholds[g.name]).flatten().tolist()
        if not kept and not (allow_block_drop and g.name in droppable):
            kept = [int(att.argmax())]
        if align > 1 and kept and len(kept) < g.channels:
            n = min(g.channels, -(-len(kept) // align) * align)
            kept = sorted(torch.argsort(att, descending=True, stable=True)[:n].tolist())
        if len(kept) < g.channels:
            keep[g.name] = kept
    return Plan(keep)
