"""Calibration inputs for static quantization: N seeded training images as float32 NCHW
batches, preprocessed exactly as evaluation preprocesses them (no augmentation).

The training split excludes the "val" hold-out, so the val split that judges the int8
model never calibrated it. ``random_batches`` is for structure-only runs (no data): its
ranges say nothing about real activations and the int8 accuracy it gives is meaningless.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from edgeprune.errors import UserError

DEFAULT_IMAGES = 256
DEFAULT_BATCH = 32


def calibration_batches(
    root: str | Path,
    images: int = DEFAULT_IMAGES,
    *,
    batch_size: int = DEFAULT_BATCH,
    seed: int = 0,
    options=None,
    split: str = "train",
) -> list[np.ndarray]:
    """``images`` training images of the CIFAR-10 root ``root`` (a seeded draw, val held
    out, eval preprocessing) in float32 NCHW batches of ``batch_size``.

    ``options`` is an ``edgeprune.data.DataOptions`` (its ``resize`` is kept); ``split``
    "val" draws the check inputs the int8 model is judged on instead.
    """
    import torch

    from edgeprune.data import DataOptions, build_dataset

    if images <= 0:
        raise UserError(f"calibration needs a positive number of images, got {images}")
    opts = dataclasses.replace(options or DataOptions(), holdout_val=True, augment=False)
    ds = build_dataset(root, split, options=opts)
    pick = np.random.default_rng(seed).permutation(len(ds))[: min(images, len(ds))]
    out: list[np.ndarray] = []
    for start in range(0, len(pick), batch_size):
        xs = [ds[int(i)][0] for i in pick[start : start + batch_size]]
        out.append(torch.stack(xs).float().numpy())
    return out


def random_batches(
    input_size: tuple[int, ...],
    images: int = DEFAULT_IMAGES,
    *,
    batch_size: int = DEFAULT_BATCH,
    seed: int = 0,
) -> list[np.ndarray]:
    """Standard-normal float32 batches of shape (B, *input_size): structure-only runs only."""
    rng = np.random.default_rng(seed)
    sizes = [min(batch_size, images - s) for s in range(0, images, batch_size)]
    return [rng.standard_normal((b, *input_size)).astype(np.float32) for b in sizes]
