"""Training-time channel gates: per-channel multipliers on a group's outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from edgeprune.models.cifar_resnet import ShortcutA
from edgeprune.surgery.graph import PrunableGroup


@dataclass
class GateSet:
    """Gates attached to a model: one parameter per group, applied after each conv's BN."""

    gates: dict[str, nn.Parameter]
    handles: list = field(default_factory=list)
    # Optional: how a group's gate becomes the multiplier, either one callable(gate) for all
    # groups or a dict group name -> callable(gate) (e.g. PAAM's attention network).
    transform: object = None

    def parameters(self) -> list[nn.Parameter]:
        return list(self.gates.values())

    def remove(self) -> None:
        """Detach every gate hook; the model computes exactly as before gating."""
        for h in self.handles:
            h.remove()
        self.handles.clear()


def post_bn_modules(model: nn.Module, example: torch.Tensor) -> dict[str, nn.Module]:
    """Per conv: the module whose output is the conv's feature map after BN (or the conv)."""
    produced: dict[int, str] = {}
    after: dict[str, nn.Module] = {}
    names = {m: n for n, m in model.named_modules()}

    def conv_hook(mod, _inp, out):
        produced[id(out)] = names[mod]
        after[names[mod]] = mod

    def bn_hook(mod, inp, _out):
        conv = produced.get(id(inp[0]))
        if conv is not None:
            after[conv] = mod

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.BatchNorm2d):
            handles.append(m.register_forward_hook(bn_hook))
    was_training = model.training
    model.eval()  # tracing must not update BatchNorm running statistics
    try:
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return after


def attach_gates_(
    model: nn.Module,
    groups: list[PrunableGroup],
    example_input: torch.Tensor,
    init: float = 1.0,
    transform=None,
) -> GateSet:
    """Attach one gate vector per group (after the BN of each of its convs), in place.

    For a residual stream the gate also multiplies the option-A shortcuts feeding it, so a
    gate of 0 removes the channel from the stream exactly as pruning it does.
    """
    after = post_bn_modules(model, example_input)
    gs = GateSet({}, transform=transform)
    modules = dict(model.named_modules())
    for g in groups:
        gate = nn.Parameter(torch.full((g.channels,), float(init)))
        gs.gates[g.name] = gate
        targets = [after[c] for c in g.convs if c in after]
        if g.residual:
            targets += _stream_shortcuts(model, g, modules)
        for t in targets:
            gs.handles.append(t.register_forward_hook(_gate_hook(g.name, gate, gs)))
    return gs


def _stream_shortcuts(model, group: PrunableGroup, modules) -> list[nn.Module]:
    """Option-A shortcuts whose output joins the residual stream of ``group``."""
    out = []
    for conv in group.convs:
        block = conv.rpartition(".")[0]
        sc = getattr(modules.get(block), "shortcut", None)
        if isinstance(sc, ShortcutA) and sc.out_channels == group.channels:
            out.append(sc)
    return out


def _gate_hook(name: str, gate: nn.Parameter, gs: GateSet):
    def hook(_mod, _inp, out):
        fn = gs.transform.get(name) if isinstance(gs.transform, dict) else gs.transform
        g = fn(gate) if fn is not None else gate
        return out * g.view(1, -1, *([1] * (out.dim() - 2)))

    return hook
