"""DataLoaders over CIFAR-10 splits, plain or sharded for DistributedDataParallel."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from edgeprune.data.datasets import ArrayDataset, DataOptions, build_dataset


def default_workers() -> int:
    """Loader worker processes: half the usable cores, at most 4; 0 (in-process) on <= 2 cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    return 0 if cores <= 2 else min(4, cores // 2)


def _dist_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class ShardSampler(Sampler[int]):
    """Rank ``r`` of ``w`` gets indices r, r+w, r+2w, ...: no padding, so eval counts are exact."""

    def __init__(self, n: int, rank: int, world_size: int) -> None:
        self.n, self.rank, self.world_size = n, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return max(0, math.ceil((self.n - self.rank) / self.world_size))


def _sampler(ds: ArrayDataset, shuffle: bool, distributed: bool, seed: int) -> Sampler | None:
    if not (distributed and _dist_active()):
        return None
    rank, world = dist.get_rank(), dist.get_world_size()
    if shuffle:
        return DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    return ShardSampler(len(ds), rank, world)


def _dataset_rank0_first(root, split, limit, options, distributed) -> ArrayDataset:
    """Build the dataset; under DDP rank 0 extracts/decodes first while the others wait."""
    if not (distributed and _dist_active()):
        return build_dataset(root, split, limit, options)
    if dist.get_rank() == 0:
        ds = build_dataset(root, split, limit, options)
        dist.barrier()
        return ds
    dist.barrier()
    return build_dataset(root, split, limit, options)


def build_loader(
    root: str | Path,
    split: str,
    batch_size: int = 128,
    *,
    shuffle: bool | None = None,
    workers: int | None = None,
    limit: int | None = None,
    distributed: bool = False,
    seed: int = 0,
    options: DataOptions | None = None,
) -> DataLoader:
    """A DataLoader of the ``train``/``val``/``test`` split of a CIFAR-10 root.

    ``shuffle`` defaults to True for train only. With ``distributed`` (and an initialized
    process group) each rank sees its shard: a seeded DistributedSampler when shuffling
    (call ``loader.sampler.set_epoch(e)``; the train loop does), an exact shard otherwise.
    Training batches drop the last incomplete batch.
    """
    shuffle = split == "train" if shuffle is None else shuffle
    workers = default_workers() if workers is None else workers
    ds = _dataset_rank0_first(root, split, limit, options, distributed)
    sampler = _sampler(ds, shuffle, distributed, seed)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=split == "train" and len(ds) >= batch_size,
        persistent_workers=workers > 0,
        generator=gen,
    )
