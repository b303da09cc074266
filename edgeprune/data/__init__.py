"""CIFAR-10 data: three root forms (torchvision, ImageFolder, JPEG tarballs), splits, loaders.

Typical use::

    from edgeprune.data import build_loader
    train = build_loader(root, "train", 128)            # augmented, shuffled
    val = build_loader(root, "val", 256)                # fixed 5000-image hold-out of train
    test = build_loader(root, "test", 256)

Names are imported lazily so that ``SPLITS`` (used by CLI parsers) costs no torch import.
"""

from __future__ import annotations

import importlib
from typing import Any

SPLITS: tuple[str, ...] = ("train", "val", "test")

_LAZY = {
    "CIFAR10_CLASSES": "arrays",
    "ArraySplit": "arrays",
    "cache_root": "cache",
    "ArrayDataset": "datasets",
    "DataOptions": "datasets",
    "build_dataset": "datasets",
    "val_indices": "datasets",
    "ShardSampler": "loaders",
    "build_loader": "loaders",
    "default_workers": "loaders",
    "RootForm": "roots",
    "detect_form": "roots",
    "load_source_split": "roots",
    "MEAN": "transforms",
    "STD": "transforms",
    "build_transform": "transforms",
}

__all__ = ["SPLITS", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"edgeprune.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'edgeprune.data' has no attribute {name!r}")
