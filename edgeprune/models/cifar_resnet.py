"""CIFAR ResNets (He et al. 2016) with option-A shortcuts.

Parameter names match the widely used pretrained checkpoints (conv1, bn1, layerN.i.{conv1,
bn1,conv2,bn2}, linear), so they load with ``strict=True``. The option-A shortcut is a
module (:class:`ShortcutA`) that the surgery engine knows how to prune, so the residual
stream can be narrowed too; a block whose inner width is pruned to 0 is replaced by
:class:`BlockBypass`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from edgeprune.models.registry import register_model


class ShortcutA(nn.Module):
    """Option-A shortcut: subsample by ``stride`` and place input channels among zeros.

    Input channel ``i`` goes to output channel ``index[i]`` (-1: dropped). Initially the input sits in the
    middle (``planes // 4`` zero channels each side), which exports as a single ONNX Pad;
    after pruning an arbitrary placement exports as Concat + Gather.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        pad = (out_channels - in_channels) // 2
        self.register_buffer("index", torch.arange(in_channels) + pad, persistent=False)

    def set_index_(self, index: torch.Tensor, out_channels: int) -> None:
        """Replace the channel placement (used by surgery)."""
        self.index = index.to(torch.long).clone()
        self.in_channels = int(index.numel())
        self.out_channels = int(out_channels)

    def _contiguous_pad(self) -> tuple[int, int] | None:
        idx = self.index.tolist()
        if not idx:
            return (self.out_channels, 0)
        start = idx[0]
        if idx == list(range(start, start + len(idx))):
            return (start, self.out_channels - start - len(idx))
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        pads = self._contiguous_pad()
        if pads is not None:
            return F.pad(x, (0, 0, 0, 0, pads[0], pads[1]))
        # Input channels with index -1 were pruned away on the output side: they are dropped.
        valid = self.index >= 0
        gather = torch.full((self.out_channels,), self.in_channels, dtype=torch.long)
        gather[self.index[valid]] = torch.arange(self.in_channels)[valid]
        zero = x.new_zeros(x.shape[0], 1, x.shape[2], x.shape[3])
        return torch.cat([x, zero], dim=1)[:, gather.to(x.device)]

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class BasicBlock(nn.Module):
    """Two 3x3 convs with BN; ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut: nn.Module = ShortcutA(in_planes, planes, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 inputs: three stages of widths w, 2w, 4w."""

    def __init__(self, depth: int = 56, num_classes: int = 10, base_width: int = 16) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        w = base_width
        self.conv1 = nn.Conv2d(3, w, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.in_planes = w
        self.layer1 = self._make_layer(w, n, 1)
        self.layer2 = self._make_layer(2 * w, n, 2)
        self.layer3 = self._make_layer(4 * w, n, 2)
        self.linear = nn.Linear(4 * w, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def _make(depth: int):
    def fn(num_classes: int = 10, base_width: int = 16) -> CifarResNet:
        return CifarResNet(depth, num_classes, base_width)

    fn.__doc__ = f"CIFAR ResNet-{depth} (option-A shortcuts)."
    return fn


for _depth in (20, 32, 44, 56, 110):
    register_model(f"resnet{_depth}")(_make(_depth))


@register_model("resnet8")
def resnet8(num_classes: int = 10, base_width: int = 8) -> CifarResNet:
    """Tiny CIFAR ResNet-8 (widths 8/16/32) for unit tests."""
    return CifarResNet(8, num_classes, base_width)
