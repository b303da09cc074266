"""Image transforms: standard CIFAR augmentation and the normalization of the checkpoints."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

# Normalization the pretrained CIFAR-10 checkpoints were trained with.
MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def build_transform(train: bool, image_size: int = 32, resize: int | None = None) -> v2.Compose:
    """Transform of a uint8 (3, H, W) tensor into a normalized float tensor.

    ``train``: random crop of ``image_size`` with 4-pixel zero padding + horizontal flip.
    ``resize``: resize to this side first (e.g. 224 for ImageNet-shaped models).
    """
    steps: list = [v2.Resize(resize, antialias=True)] if resize else []
    if train:
        side = resize or image_size
        steps += [v2.RandomCrop(side, padding=4 * side // 32), v2.RandomHorizontalFlip()]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    return v2.Compose(steps)
