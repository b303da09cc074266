"""VGG with batch norm for 32x32 inputs (the usual CIFAR variant)."""

from __future__ import annotations

import torch
import torch.nn as nn

from edgeprune.models.registry import register_model

VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"]
VGG16_CFG += [512, 512, 512, "M", 512, 512, 512, "M"]


class CifarVGG(nn.Module):
    """Conv-BN-ReLU stacks with max-pooling, global average pool and one linear layer."""

    def __init__(self, cfg: list[int | str], num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(v), 3, padding=1, bias=False)]
                layers += [nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
                c_in = int(v)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)


@register_model("vgg16_bn_cifar")
def vgg16_bn_cifar(num_classes: int = 10) -> CifarVGG:
    """VGG-16 with BN for CIFAR (13 convs, global pool, linear classifier)."""
    return CifarVGG(VGG16_CFG, num_classes)


@register_model("vgg_tiny")
def vgg_tiny(num_classes: int = 10) -> CifarVGG:
    """Tiny VGG (8/16/16 channels) for unit tests."""
    return CifarVGG([8, "M", 16, "M", 16], num_classes)
