"""CIFAR-10 datasets over decoded arrays: train / val (held-out subset of train) / test."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from edgeprune.data import SPLITS
from edgeprune.data.arrays import ArraySplit
from edgeprune.data.roots import load_source_split
from edgeprune.data.transforms import build_transform
from edgeprune.errors import UserError


@dataclass(frozen=True)
class DataOptions:
    """How splits are derived from a root (everything but root, split and batching)."""

    val_size: int = 5000  # images held out of train as "val", stratified by class
    val_seed: int = 0  # the seed of that hold-out: fixed, so "val" is the same everywhere
    holdout_val: bool = False  # "train" without the "val" images
    download: bool = False  # torchvision download when the root holds no data
    resize: int | None = None  # resize side (e.g. 224 for ImageNet-shaped models)
    augment: bool | None = None  # random crop + flip; None: for the train split only

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataOptions:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise UserError(f"unknown data option(s): {', '.join(sorted(unknown))}")
        return cls(**d)


class ArrayDataset(Dataset):
    """Samples ``indices`` of an :class:`ArraySplit`, applying ``transform`` to uint8 CHW tensors."""

    def __init__(self, split: ArraySplit, indices: np.ndarray, transform) -> None:
        self.split = split
        self.indices = np.asarray(indices, dtype=np.int64)
        self.transform = transform
        self.classes = split.classes

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        j = self.indices[i]
        img = torch.from_numpy(np.array(self.split.images[j])).permute(2, 0, 1)
        return self.transform(img), int(self.split.labels[j])

    @property
    def targets(self) -> np.ndarray:
        """Labels of the samples, in dataset order."""
        return self.split.labels[self.indices]


def val_indices(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Deterministic class-stratified subset of ``size`` indices (sorted) of ``labels``."""
    if not 0 < size < len(labels):
        raise UserError(f"validation size {size} must be between 1 and {len(labels) - 1}")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    picked = []
    for k, c in enumerate(classes):
        members = np.flatnonzero(labels == c)
        share = size // len(classes) + (1 if k < size % len(classes) else 0)
        picked.append(rng.permutation(members)[:share])
    return np.sort(np.concatenate(picked))


def limit_indices(indices: np.ndarray, limit: int | None, seed: int = 0) -> np.ndarray:
    """A seeded random subset of ``limit`` of ``indices`` (kept in order); all when None."""
    if limit is None or limit >= len(indices):
        return indices
    if limit <= 0:
        raise UserError(f"limit must be positive, got {limit}")
    keep = np.sort(np.random.default_rng(seed).permutation(len(indices))[:limit])
    return indices[keep]


def split_indices(split: str, labels: np.ndarray, opts: DataOptions) -> np.ndarray:
    """Indices into the source split that make up ``split``."""
    if split == "test" or (split == "train" and not opts.holdout_val):
        return np.arange(len(labels))
    held = val_indices(labels, opts.val_size, opts.val_seed)
    return held if split == "val" else np.setdiff1d(np.arange(len(labels)), held)


def build_dataset(
    root: str | Path,
    split: str,
    limit: int | None = None,
    options: DataOptions | None = None,
) -> ArrayDataset:
    """The ``train``, ``val`` or ``test`` split of a CIFAR-10 root.

    ``train`` is augmented (unless ``options.augment`` is False), ``val``/``test`` are not.
    ``limit`` keeps a seeded random subset of that many images (smoke runs).
    """
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    opts = options or DataOptions()
    source = load_source_split(root, "test" if split == "test" else "train", opts.download)
    indices = limit_indices(split_indices(split, source.labels, opts), limit)
    augment = split == "train" if opts.augment is None else opts.augment
    transform = build_transform(augment, source.images.shape[1], opts.resize)
    return ArrayDataset(source, indices, transform)
