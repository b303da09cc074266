"""Channel coupling via Torch-Pruning's DependencyGraph (the only module importing it)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch_pruning as tp

from edgeprune.models.cifar_resnet import ShortcutA


class ShortcutAPruner(tp.pruner.function.BasePruningFunc):
    """Prunes the option-A shortcut: output positions and input channels independently."""

    TARGET_MODULES = ShortcutA

    def prune_out_channels(self, layer: ShortcutA, idxs: list[int]) -> ShortcutA:
        removed = torch.tensor(sorted(set(idxs)), dtype=torch.long)
        index = layer.index.clone()
        dropped = torch.isin(index, removed)
        shift = (removed.view(1, -1) < index.view(-1, 1)).sum(1)
        index = torch.where(dropped, torch.full_like(index, -1), index - shift)
        layer.set_index_(index, layer.out_channels - len(removed))
        return layer

    def prune_in_channels(self, layer: ShortcutA, idxs: list[int]) -> ShortcutA:
        keep = [i for i in range(layer.in_channels) if i not in set(idxs)]
        layer.set_index_(layer.index[keep], layer.out_channels)
        return layer

    def get_out_channels(self, layer: ShortcutA) -> int:
        return layer.out_channels

    def get_in_channels(self, layer: ShortcutA) -> int:
        return layer.in_channels


@dataclass(frozen=True)
class PrunableGroup:
    """Convs whose output channels are coupled (pruned together), named by the first one."""

    name: str
    convs: tuple[str, ...]
    channels: int
    residual: bool  # coupled through an add (a residual stream)


def build_graph(model: nn.Module, example_input: torch.Tensor) -> tp.DependencyGraph:
    """Trace the model's channel dependencies."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.enable_grad():
            return tp.DependencyGraph().build_dependency(
                model, example_input, customized_pruners={ShortcutA: ShortcutAPruner()}
            )


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels


def _classifier_linears(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def coupled_groups(model: nn.Module, graph: tp.DependencyGraph) -> list[PrunableGroup]:
    """Every group of coupled conv output channels, in module order."""
    names = {m: n for n, m in model.named_modules()}
    order = {n: i for i, n in enumerate(names.values())}
    groups: list[PrunableGroup] = []
    seen: set[str] = set()
    ignored = _classifier_linears(model)
    for m in model.modules():
        if not isinstance(m, nn.Conv2d) or _is_depthwise(m) or names[m] in seen:
            continue
        group = graph.get_pruning_group(m, tp.prune_conv_out_channels, [0])
        convs, residual = [], False
        for item in group.items:
            target, handler = item.dep.target.module, item.dep.handler
            if isinstance(target, nn.Conv2d) and handler in (
                tp.prune_conv_out_channels,
                tp.prune_depthwise_conv_out_channels,
            ):
                convs.append(names[target])
            if "Add" in type(item.dep.target).__name__ or "AddBackward" in str(item.dep.target):
                residual = True
            if target in ignored and handler is tp.prune_linear_out_channels:
                convs = []
                break
        if not convs:
            continue
        convs = sorted(set(convs), key=order.get)
        seen.update(convs)
        dense = [c for c in convs if not _is_depthwise(model.get_submodule(c))]
        groups.append(PrunableGroup(dense[0], tuple(convs), m.out_channels, residual))
    return groups
