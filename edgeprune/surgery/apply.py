"""Apply a ``Plan``: physically remove channels (and whole residual blocks)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch_pruning as tp

from edgeprune.errors import UserError
from edgeprune.log import get_logger
from edgeprune.surgery.blocks import BlockSpec, bypass_block_, find_blocks
from edgeprune.surgery.graph import (
    KeptWhole,
    PrunableGroup,
    analyse_groups,
    build_graph,
    coupled_groups,
    is_grouped,
)
from edgeprune.surgery.plan import Plan, resolve_plan  # noqa: F401 (resolve_plan: its home)

_IN_HANDLERS = (tp.prune_conv_in_channels, tp.prune_linear_in_channels)


def example_input_for(model: nn.Module, input_size: tuple[int, int, int] | None = None):
    """A small random batch for tracing: (2, C, H, W)."""
    c, h, w = input_size or getattr(model, "edgeprune_input_size", (3, 32, 32))
    return torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(0))


def prunable_layers(model: nn.Module, input_size=None) -> list[PrunableGroup]:
    """The model's prunable groups of coupled conv channels, named by their first conv.

    Structures surgery cannot prune safely are not offered (see ``kept_whole``).
    """
    example = example_input_for(model, input_size)
    return coupled_groups(model, build_graph(model, example), example)


def kept_whole(model: nn.Module, input_size=None) -> list[KeptWhole]:
    """The convs whose output channels surgery keeps whole, each with the reason."""
    example = example_input_for(model, input_size)
    return analyse_groups(model, build_graph(model, example), example)[1]


def _blocks_to_drop(
    model: nn.Module, resolved: dict[str, list[int]], groups: list[PrunableGroup]
) -> dict[str, BlockSpec]:
    blocks = find_blocks(model)
    inner = {f"{b}.{c}" if b else c: b for b, s in blocks.items() for c in s.inner_convs}
    drop: dict[str, BlockSpec] = {}
    for g in groups:
        if g.name in resolved and not resolved[g.name]:
            block = inner.get(g.name)
            if block is None:
                raise UserError(
                    f"layer {g.name!r} is planned to 0 channels; only the inner layers of a "
                    "residual block may be emptied (the block is then removed)"
                )
            drop[block] = blocks[block]
    return drop


def _record_constant_inputs(
    model: nn.Module, example: torch.Tensor
) -> dict[nn.Module, torch.Tensor]:
    """Per conv/linear: per input channel the constant value it receives, or NaN if varying."""
    consts: dict[nn.Module, torch.Tensor] = {}

    def hook(mod, inputs, _out):
        x = inputs[0].detach()
        flat = x.transpose(0, 1).reshape(x.shape[1], -1)
        lo, hi = flat.min(1).values, flat.max(1).values
        tol = 1e-6 * (1 + hi.abs())
        consts[mod] = torch.where(hi - lo <= tol, flat[:, 0], torch.full_like(lo, float("nan")))

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return consts


def _zeroed_root_channels(group: tp.Group) -> set[int]:
    """Root indices whose producing conv filters are all zero (masked, not gated)."""
    zeroed: set[int] | None = None
    for item in group.items:
        layer = item.dep.target.module
        # bound methods: compare with ==, `is` fails for every member but the root
        if item.dep.handler != tp.prune_conv_out_channels or not isinstance(layer, nn.Conv2d):
            continue
        w = layer.weight.detach()
        here = {r for i, r in zip(item.idxs, item.root_idxs, strict=False) if not bool(w[i].any())}
        zeroed = here if zeroed is None else zeroed & here
    return zeroed or set()


def _fold_constant_channels_(group: tp.Group, consts: dict[nn.Module, torch.Tensor]) -> None:
    """Fold the constants carried by zeroed channels into the consumers' biases.

    A channel whose conv filter was zeroed (but whose BN was not) still carries BN's bias
    through the activation; removing it would change the outputs. Folding is exact away
    from zero-padded borders. Channels with live filters are simply removed.
    """
    zeroed = _zeroed_root_channels(group)
    if not zeroed:
        return
    for item in group.items:
        layer = item.dep.target.module
        if item.dep.handler not in _IN_HANDLERS or layer not in consts:
            continue
        if isinstance(layer, nn.Conv2d) and layer.groups != 1:
            continue
        pairs = [(i, r) for i, r in zip(item.idxs, item.root_idxs, strict=False) if r in zeroed]
        if not pairs:
            continue
        idxs = torch.tensor([i for i, _ in pairs])
        values = consts[layer][idxs]
        mask = torch.isfinite(values) & (values != 0)
        if not bool(mask.any()):
            continue
        w = layer.weight.detach()[:, idxs[mask]]
        w = w.sum(dim=(2, 3)) if w.dim() == 4 else w
        delta = w @ values[mask]
        if layer.bias is None:
            layer.bias = nn.Parameter(torch.zeros(layer.weight.shape[0]))
        with torch.no_grad():
            layer.bias += delta


def apply_plan_(
    model: nn.Module, plan: Plan, example_input: torch.Tensor | None = None, strict: bool = True
) -> nn.Module:
    """Physically remove the channels ``plan`` drops, in place; returns the model.

    Removes conv out-channels, their BN, the next layers' in-channels and everything
    residual-coupled; a block whose inner layer keeps 0 channels is replaced by its
    shortcut. Constants carried by removed channels are folded into the next layer's bias.
    """
    example = example_input if example_input is not None else example_input_for(model)
    was_training = model.training
    model.eval()
    graph = build_graph(model, example)
    groups, kept = analyse_groups(model, graph, example)
    _note_kept_whole(plan, kept)
    resolved = resolve_plan(plan, groups, strict)
    drop = _blocks_to_drop(model, resolved, groups)
    consts = _record_constant_inputs(model, example)
    modules = dict(model.named_modules())
    for g in groups:
        keep = resolved.get(g.name)
        if keep is None or len(keep) == g.channels or not keep:
            continue
        keep_set = set(keep)
        remove = [i for i in range(g.channels) if i not in keep_set]
        group = graph.get_pruning_group(modules[g.name], tp.prune_conv_out_channels, remove)
        _fold_constant_channels_(group, consts)
        _prune_group_(group)
    for name, spec in drop.items():
        _fold_block_inner_(model, name, spec, consts)
        bypass_block_(model, name, spec)
    if any(len(k) < g.channels for g in groups if (k := resolved.get(g.name)) is not None):
        _drop_aux_heads_(model)
    model.train(was_training)
    return model


def _note_kept_whole(plan: Plan, kept: list[KeptWhole]) -> None:
    """Refuse a plan that prunes a kept-whole conv; record (and log once) what stays whole."""
    by_name = {k.module: k.reason for k in kept}
    for name in plan.keep:
        if name in by_name:
            raise UserError(f"layer {name!r} cannot be pruned: {by_name[name]}")
    if kept and "kept_whole" not in plan.meta:
        plan.meta["kept_whole"] = [k.to_dict() for k in kept]
        reasons = sorted({k.reason for k in kept})
        get_logger("surgery").info("kept whole: %d conv(s) (%s)", len(kept), "; ".join(reasons))


def _prune_group_(group: tp.Group) -> None:
    """``group.prune()``, with the input channels of grouped convs pruned per conv group."""
    special = [
        it
        for it in group.items
        if it.dep.handler == tp.prune_conv_in_channels and is_grouped(it.dep.target.module)
    ]
    group._group = [it for it in group.items if not any(it is s for s in special)]
    for it in special:
        prune_grouped_in_channels_(it.dep.target.module, [int(i) for i in it.idxs])
    group.prune()


def prune_grouped_in_channels_(conv: nn.Conv2d, remove: list[int]) -> None:
    """Remove input channels of a grouped conv: each conv group loses the same count.

    Positions may differ between groups: each filter keeps the inputs kept in its group.
    """
    g, size = conv.groups, conv.in_channels // conv.groups
    gone = set(remove)
    per = [
        [i - s * size for i in range(s * size, (s + 1) * size) if i not in gone] for s in range(g)
    ]
    if len({len(p) for p in per}) != 1 or not per[0]:
        raise UserError(
            f"grouped conv with {g} groups must lose the same number of inputs in each group"
        )
    idx = torch.tensor(per).repeat_interleave(conv.out_channels // g, dim=0)
    w = conv.weight.detach()
    idx = idx[:, :, None, None].expand(-1, -1, *w.shape[2:])
    conv.weight = nn.Parameter(torch.gather(w, 1, idx).contiguous())
    conv.in_channels = g * len(per[0])


def _drop_aux_heads_(model: nn.Module) -> None:
    """Torchvision GoogLeNet/Inception-v3 auxiliary heads (training-only, outside the eval
    graph) would read pruned channels: the pruned model goes without them."""
    for attr in ("aux1", "aux2", "AuxLogits"):
        if isinstance(getattr(model, attr, None), nn.Module):
            setattr(model, attr, None)
            if hasattr(model, "aux_logits"):
                model.aux_logits = False


def _fold_block_inner_(model: nn.Module, name: str, spec: BlockSpec, consts) -> None:
    """Before a block is removed, fold constants reaching its last conv into that conv's bias.

    Only when the block's inner filters were zeroed (a masking method): then its last conv
    still sees BN biases through the activation. Otherwise removal means "gated to zero".
    """
    block = model.get_submodule(name)
    last = block.get_submodule(spec.last_conv)
    if any(bool(m.weight.detach().any()) for m in _branch_convs(block, spec)):
        return
    values = consts.get(last)
    if values is None or values.numel() != last.in_channels or last.groups != 1:
        return
    mask = torch.isfinite(values) & (values != 0)
    if bool(mask.any()):
        delta = last.weight.detach()[:, mask].sum(dim=(2, 3)) @ values[mask]
        if last.bias is None:
            last.bias = nn.Parameter(torch.zeros(last.out_channels))
        with torch.no_grad():
            last.bias += delta


def _branch_convs(block: nn.Module, spec: BlockSpec) -> list[nn.Conv2d]:
    """Convs of a block's residual branch before its last conv (not the shortcut)."""
    last = block.get_submodule(spec.last_conv)
    shortcut = (
        block.get_submodule(spec.shortcut)
        if spec.shortcut and getattr(block, spec.shortcut, None)
        else None
    )
    skip = set(shortcut.modules()) if shortcut is not None else set()
    return [
        m for m in block.modules() if isinstance(m, nn.Conv2d) and m is not last and m not in skip
    ]
