"""Simple plans: uniform width scaling and random variants (for tests and profiling)."""

from __future__ import annotations

import math
import random

import torch.nn as nn

from edgeprune.surgery.apply import prunable_layers
from edgeprune.surgery.plan import Plan


def uniform_plan(model: nn.Module, keep_ratio: float, input_size=None, align: int = 1) -> Plan:
    """Keep the first ``ceil(keep_ratio * C)`` channels (rounded up to ``align``) of every group."""
    keep = {}
    for g in prunable_layers(model, input_size):
        n = min(g.channels, max(1, math.ceil(keep_ratio * g.channels / align) * align))
        keep[g.name] = list(range(n))
    return Plan(keep, meta={"kind": "uniform", "keep_ratio": keep_ratio})


def random_plan(
    model: nn.Module,
    seed: int = 0,
    min_keep_frac: float = 0.2,
    input_size=None,
    drop_block_prob: float = 0.0,
    align: int = 1,
) -> Plan:
    """A random variant: each group keeps a random subset of at least ``min_keep_frac``
    (its size rounded up to a multiple of ``align``, as a device-aware allocator rounds), and
    a residual block's inner group is emptied (the block dropped) with ``drop_block_prob``."""
    from edgeprune.surgery.blocks import droppable_groups

    rng = random.Random(seed)
    inner = droppable_groups(model)
    keep = {}
    for g in prunable_layers(model, input_size):
        if g.name in inner and rng.random() < drop_block_prob:
            keep[g.name] = []
            continue
        lo = max(1, math.ceil(min_keep_frac * g.channels))
        n = rng.randint(lo, g.channels)
        n = min(g.channels, math.ceil(n / align) * align)
        keep[g.name] = sorted(rng.sample(range(g.channels), n))
    return Plan(keep, meta={"kind": "random", "seed": seed})
