"""Channel coupling via Torch-Pruning's DependencyGraph (the only module importing it).

Couplings covered (tests/unit/test_surgery_couplings.py holds one tiny model per family):

- residual adds, concatenation (Inception/GoogLeNet branches, DenseNet) and split/chunk:
  Torch-Pruning's index mapping; a consumer's input channels follow the concat offsets;
- depthwise convs follow their input channels (one group with their producer);
- grouped convs (ResNeXt, RegNet): ``groups`` stays as it is and an EQUAL number of
  channels is removed from each of its ``groups`` contiguous segments (positions may differ
  between segments); a ``PrunableGroup`` says so with ``step`` (kept widths are multiples of
  it) and ``resolve_plan`` rounds a keep-list down to that;
- squeeze-and-excitation (MobileNetV3, EfficientNet, RegNetY): the SE's reduce conv is its
  own group (its hidden width), its expand conv joins the block's channels through the
  multiply;
- LayerNorm over channels (ConvNeXt's ``LayerNorm2d`` and permute + LayerNorm + Linear):
  LN weight/bias are pruned with the stream's channels;
- channel shuffle (ShuffleNetV2): the channels that pass through a shuffle are kept whole
  (the branches' inner widths stay prunable).

What cannot be pruned safely is kept whole and reported (``KeptWhole``), never a traceback.
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch_pruning as tp

from edgeprune.errors import UserError
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
    """Convs whose output channels are coupled (pruned together), named by the first one.

    ``step`` > 1: a grouped conv consumes or produces these channels; they split into
    ``step`` contiguous segments that must keep equal counts (kept widths are multiples of
    ``step``).
    """

    name: str
    convs: tuple[str, ...]
    channels: int
    residual: bool  # coupled through an add (a residual stream)
    step: int = 1


@dataclass(frozen=True)
class KeptWhole:
    """A conv whose output channels surgery leaves whole, and why (goes into plan.meta)."""

    module: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


class _ChannelShuffle(torch.autograd.Function):
    """ShuffleNet's channel shuffle as one opaque op, so the tracer sees (and we find) it."""

    @staticmethod
    def forward(ctx, x, groups):
        ctx.groups = groups
        b, c, h, w = x.shape
        return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)

    @staticmethod
    def backward(ctx, grad):
        b, c, h, w = grad.shape
        g = ctx.groups
        return grad.view(b, c // g, g, h, w).transpose(1, 2).reshape(b, c, h, w), None


SHUFFLE_MARK = "_ChannelShuffleBackward"


@contextlib.contextmanager
def _traceable_shuffles():
    """While tracing, torchvision's ``channel_shuffle`` is one op Torch-Pruning can pass."""
    import torchvision.models.shufflenetv2 as sv2

    original = sv2.channel_shuffle
    sv2.channel_shuffle = lambda x, groups: _ChannelShuffle.apply(x, groups)
    try:
        yield
    finally:
        sv2.channel_shuffle = original


_ATTENTION = re.compile(r"(Multi[Hh]ead|Window|Self)Attention")


def attention_layer(model: nn.Module) -> str | None:
    """The first token-attention layer of ``model`` ('name (Type)'), or None for a CNN."""
    for name, m in model.named_modules():
        if isinstance(m, nn.MultiheadAttention) or _ATTENTION.search(type(m).__name__):
            return f"{name} ({type(m).__name__})"
    return None


def build_graph(model: nn.Module, example_input: torch.Tensor) -> tp.DependencyGraph:
    """Trace the model's channel dependencies (one UserError if Torch-Pruning cannot).

    Transformers are refused up front: their heads and windows fix channel counts in
    reshapes that filter pruning would break (torchvision's MaxViT, Swin, ViT).
    """
    layer = attention_layer(model)
    if layer is not None:
        raise UserError(
            f"{layer} is an attention layer: edgeprune prunes the filters of CNNs, and "
            "transformers (ViT, Swin, MaxViT) are out of scope for now"
        )
    with warnings.catch_warnings(), _traceable_shuffles():
        warnings.simplefilter("ignore")
        with torch.enable_grad():
            try:
                return tp.DependencyGraph().build_dependency(
                    model, example_input, customized_pruners={ShortcutA: ShortcutAPruner()}
                )
            except (RuntimeError, ValueError, ZeroDivisionError, IndexError, KeyError) as exc:
                raise UserError(
                    f"the channel dependencies of this model cannot be traced "
                    f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]}), so it cannot "
                    "be pruned"
                ) from exc


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels


def is_grouped(m: nn.Module) -> bool:
    """A grouped conv that is not depthwise (ResNeXt, RegNet)."""
    return isinstance(m, nn.Conv2d) and m.groups > 1 and not _is_depthwise(m)


def output_layer(model: nn.Module, example: torch.Tensor) -> nn.Module | None:
    """The last conv or linear the eval forward runs: the classifier, whose outputs stay."""
    last: list[nn.Module] = []
    hooks = [
        m.register_forward_hook(lambda mod, _i, _o: last.append(mod))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return last[-1] if last else None


def coupled_groups(
    model: nn.Module, graph: tp.DependencyGraph, example: torch.Tensor
) -> list[PrunableGroup]:
    """Every group of coupled conv output channels, in module order."""
    return analyse_groups(model, graph, example)[0]


def _group_step(group: tp.Group, channels: int) -> int | str:
    """The segment count grouped convs impose on a group's channels, or why it is unsafe."""
    step = 1
    for item in group.items:
        layer, handler = item.dep.target.module, item.dep.handler
        if not is_grouped(layer) or handler not in (
            tp.prune_conv_in_channels,
            tp.prune_conv_out_channels,
        ):
            continue
        if [int(i) for i in item.idxs] != [int(r) for r in item.root_idxs]:
            return "a grouped conv reads these channels through a concat or split"
        step = math.lcm(step, layer.groups)
    if channels % step:
        return f"{channels} channels do not split into {step} equal conv groups"
    return step


def analyse_groups(
    model: nn.Module, graph: tp.DependencyGraph, example: torch.Tensor
) -> tuple[list[PrunableGroup], list[KeptWhole]]:
    """The prunable groups, and the convs kept whole with the reason (module order)."""
    names = {m: n for n, m in model.named_modules()}
    order = {n: i for i, n in enumerate(names.values())}
    groups: list[PrunableGroup] = []
    kept: list[KeptWhole] = []
    seen: set[str] = set()
    head = output_layer(model, example)
    for m in model.modules():
        if not isinstance(m, nn.Conv2d) or _is_depthwise(m) or names[m] in seen:
            continue
        if m not in graph.module2node:
            kept.append(KeptWhole(names[m], "not used by the model's eval forward"))
            continue
        try:
            group = graph.get_pruning_group(
                m, tp.prune_conv_out_channels, list(range(m.out_channels))
            )
        except (IndexError, KeyError, ValueError, RuntimeError, ZeroDivisionError) as exc:
            why = f"Torch-Pruning cannot map its channels ({type(exc).__name__})"
            kept.append(KeptWhole(names[m], why))
            seen.add(names[m])
            continue
        convs, residual, reason = [], False, None
        for item in group.items:
            target, handler = item.dep.target.module, item.dep.handler
            if isinstance(target, nn.Conv2d) and handler in (
                tp.prune_conv_out_channels,
                tp.prune_depthwise_conv_out_channels,
            ):
                convs.append(names[target])
            node = str(item.dep.target)
            if "Add" in type(item.dep.target).__name__ or "AddBackward" in node:
                residual = True
            if SHUFFLE_MARK in node:
                reason = "its channels pass through a channel shuffle"
            if target is head and handler in (
                tp.prune_linear_out_channels,
                tp.prune_conv_out_channels,
            ):
                reason = reason or "they are the model's outputs (its classifier)"
        convs = sorted(set(convs), key=order.get)
        seen.update(convs)
        dense = [c for c in convs if not _is_depthwise(model.get_submodule(c))]
        step = _group_step(group, m.out_channels) if reason is None else reason
        if isinstance(step, str) or not dense:
            why = step if isinstance(step, str) else "only depthwise convs produce them"
            kept.extend(KeptWhole(c, why) for c in (dense or convs))
            continue
        groups.append(PrunableGroup(dense[0], tuple(convs), m.out_channels, residual, step))
    return groups, kept
