"""MobileNetV2 for 32x32 inputs: torchvision's network with a stride-1 stem."""

from __future__ import annotations

import torch.nn as nn
from torchvision.models import MobileNetV2

from edgeprune.models.registry import register_model

# (expansion t, channels c, repeats n, stride s); the second stage keeps stride 1 for CIFAR.
CIFAR_SETTING = [
    [1, 16, 1, 1],
    [6, 24, 2, 1],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]


def _cifar_mobilenet(num_classes: int, width_mult: float, setting: list[list[int]]) -> nn.Module:
    model = MobileNetV2(
        num_classes=num_classes, width_mult=width_mult, inverted_residual_setting=setting
    )
    model.features[0][0].stride = (1, 1)
    return model


@register_model("mobilenetv2_cifar")
def mobilenetv2_cifar(num_classes: int = 10, width_mult: float = 1.0) -> nn.Module:
    """MobileNetV2 for CIFAR (stride-1 stem and second stage)."""
    return _cifar_mobilenet(num_classes, width_mult, CIFAR_SETTING)


@register_model("mobilenetv2_tiny")
def mobilenetv2_tiny(num_classes: int = 10) -> nn.Module:
    """Tiny MobileNetV2 (a few 8-16 channel blocks; last conv 1280) for unit tests."""
    setting = [[1, 8, 1, 1], [2, 16, 2, 2], [2, 16, 1, 2]]
    model = MobileNetV2(num_classes=num_classes, inverted_residual_setting=setting, width_mult=0.25)
    model.features[0][0].stride = (1, 1)
    return model
