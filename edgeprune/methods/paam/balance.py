"""Per-layer weights w_l of PAAM's score regulariser (FLOPs or latency balancing)."""

from __future__ import annotations

import torch
import torch.nn as nn

from edgeprune.methods.paam.scores import eval_mode
from edgeprune.surgery.graph import PrunableGroup


def image_sizes(
    model: nn.Module, groups: list[PrunableGroup], example_input: torch.Tensor
) -> dict[str, int]:
    """H*W of each group's (first conv's) output feature map."""
    sizes: dict[str, int] = {}
    handles = []
    for g in groups:
        conv = model.get_submodule(g.name)
        hook = _size_hook(sizes, g.name)
        handles.append(conv.register_forward_hook(hook))
    try:
        with torch.no_grad(), eval_mode(model):
            model(example_input.to(next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return sizes


def _size_hook(sizes: dict[str, int], name: str):
    def hook(_m, _i, out):
        sizes.setdefault(name, int(out.shape[-2] * out.shape[-1]))

    return hook


def flops_weights(sizes: dict[str, int], groups: list[PrunableGroup]) -> dict[str, float]:
    """The paper's balancing: a layer's image size relative to the last layer's."""
    last = sizes[groups[-1].name]
    return {g.name: sizes[g.name] / last for g in groups}


def latency_weights(
    ms_per_channel: dict[str, float], reference: dict[str, float], groups: list[PrunableGroup]
) -> dict[str, float]:
    """Our extension: predicted ms saved per channel, rescaled so that the channel-weighted
    mean equals that of ``reference`` (the FLOPs weights), keeping lambda's scale."""
    chans = {g.name: g.channels for g in groups}
    total = sum(chans.values())
    mean_lat = sum(ms_per_channel.get(n, 0.0) * c for n, c in chans.items()) / total
    mean_ref = sum(reference[n] * c for n, c in chans.items()) / total
    if mean_lat <= 0:
        return dict(reference)
    scale = mean_ref / mean_lat
    return {n: max(0.0, ms_per_channel.get(n, 0.0)) * scale for n in chans}


def layer_weights(
    mode: str,
    model: nn.Module,
    groups: list[PrunableGroup],
    example_input: torch.Tensor,
    ms_per_channel: dict[str, float] | None,
) -> tuple[str, dict[str, float]]:
    """(the mode used, w_l per group) for balance = auto | flops | latency | none."""
    from edgeprune.errors import UserError

    if mode == "none":
        return mode, {g.name: 1.0 for g in groups}
    ref = flops_weights(image_sizes(model, groups, example_input), groups)
    if mode == "auto":
        mode = "latency" if ms_per_channel else "flops"
    if mode == "flops":
        return mode, ref
    if not ms_per_channel:
        raise UserError("paam option balance=latency needs --device (a latency table)")
    return mode, latency_weights(ms_per_channel, ref, groups)
