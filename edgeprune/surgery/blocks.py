"""Residual blocks the surgery engine can remove whole (inner width planned to 0)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from edgeprune.errors import UserError


@dataclass(frozen=True)
class BlockSpec:
    """How to read one residual block: its inner convs, last BN, shortcut and activation."""

    inner_convs: tuple[str, ...]
    last_conv: str
    last_bn: str
    shortcut: str | None
    relu_after_add: bool


def block_spec(module: nn.Module) -> BlockSpec | None:
    """The spec of a removable residual block, or None if ``module`` is not one."""
    from torchvision.models.mobilenetv2 import InvertedResidual
    from torchvision.models.resnet import BasicBlock as TvBasic
    from torchvision.models.resnet import Bottleneck

    from edgeprune.models.cifar_resnet import BasicBlock

    if isinstance(module, BasicBlock):
        return BlockSpec(("conv1",), "conv2", "bn2", "shortcut", True)
    if isinstance(module, TvBasic):
        return BlockSpec(("conv1",), "conv2", "bn2", "downsample", True)
    if isinstance(module, Bottleneck):
        return BlockSpec(("conv1", "conv2"), "conv3", "bn3", "downsample", True)
    if isinstance(module, InvertedResidual) and module.use_res_connect and len(module.conv) == 4:
        return BlockSpec(("conv.0.0",), "conv.2", "conv.3", None, False)
    return None


class BlockBypass(nn.Module):
    """A residual block whose inner branch was removed: ``act(shortcut(x) + bias)``.

    ``bias`` is what the removed branch still contributed (its last BN applied to zeros),
    so the replacement is exact.
    """

    def __init__(self, shortcut: nn.Module | None, bias: torch.Tensor, relu: bool) -> None:
        super().__init__()
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        # A Parameter (not a buffer) so the dependency graph traces and prunes it with its
        # channels; recovery training may tune it like any bias.
        self.bias = nn.Parameter(bias.detach().clone().reshape(1, -1, 1, 1))
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shortcut(x) + self.bias
        return F.relu(out) if self.relu else out

    def extra_repr(self) -> str:
        return f"channels={self.bias.shape[1]}, relu={self.relu}"


def bn_of_constant(bn: nn.BatchNorm2d, value: torch.Tensor | None) -> torch.Tensor:
    """What a BatchNorm layer outputs, per channel, for a per-channel constant input."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    x = torch.zeros_like(bn.running_mean) if value is None else value
    return (bn.bias + (x - bn.running_mean) * scale).detach()


def find_blocks(model: nn.Module) -> dict[str, BlockSpec]:
    """All removable residual blocks of a model, by module path."""
    return {name: spec for name, m in model.named_modules() if (spec := block_spec(m))}


def bypass_block_(model: nn.Module, name: str, spec: BlockSpec) -> None:
    """Replace block ``name`` by a BlockBypass (in place)."""
    block = model.get_submodule(name)
    if spec.shortcut and not isinstance(getattr(block, spec.shortcut), (nn.Identity, type(None))):
        from edgeprune.models.cifar_resnet import ShortcutA

        if not isinstance(getattr(block, spec.shortcut), ShortcutA):
            raise UserError(
                f"block {name} has a learned (conv) shortcut and cannot be removed; "
                "keep at least one channel in its inner layers"
            )
    # With every inner channel gone the last conv sees zeros (or constants folded into
    # its bias), so the branch contributes last_bn(conv bias).
    bias = bn_of_constant(
        block.get_submodule(spec.last_bn), block.get_submodule(spec.last_conv).bias
    )
    shortcut = getattr(block, spec.shortcut) if spec.shortcut else None
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, BlockBypass(shortcut, bias, spec.relu_after_add))


def droppable_groups(model: nn.Module) -> set[str]:
    """Inner-conv names whose emptying removes a block (blocks with a parameter-free shortcut)."""
    from edgeprune.models.cifar_resnet import ShortcutA

    out = set()
    for path, spec in find_blocks(model).items():
        block = model.get_submodule(path) if path else model
        shortcut = getattr(block, spec.shortcut, None) if spec.shortcut else None
        if shortcut is None or isinstance(shortcut, (nn.Identity, ShortcutA)):
            out.add(f"{path}.{spec.inner_convs[0]}" if path else spec.inner_convs[0])
    return out
