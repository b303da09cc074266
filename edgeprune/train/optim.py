"""Optimizers and per-step LR schedules built from a TrainConfig."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR

from edgeprune.train.config import TrainConfig


def build_optimizer(params: Iterable, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov, weight decay), Adam or AdamW over ``params`` (or param groups)."""
    params = list(params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _cosine(t: float, floor: float) -> float:
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))


def _main_factor(cfg: TrainConfig, t: float) -> float:
    """LR factor at progress ``t`` in [0, 1] of the post-warm-up part of training."""
    if cfg.schedule == "cosine":
        return _cosine(t, cfg.min_lr_factor)
    if cfg.schedule == "step":
        return cfg.gamma ** sum(t >= m for m in cfg.milestones)
    if cfg.schedule == "onecycle":  # cosine up to peak over the first 30%, cosine down to ~0
        if t < 0.3:
            return 1 / 25 + (1 - 1 / 25) * (1 - _cosine(t / 0.3, 0.0))
        return _cosine((t - 0.3) / 0.7, 1e-4)
    return 1.0


def lr_factor_fn(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The LR multiplier as a function of the global step (linear warm-up, then schedule)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = min(total - 1, round(cfg.warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:
        if step < warm:
            return cfg.warmup_start_factor + (1 - cfg.warmup_start_factor) * step / warm
        return _main_factor(cfg, (step - warm) / max(1, total - warm))

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """A LambdaLR stepped once per optimizer step."""
    return LambdaLR(optimizer, lr_factor_fn(cfg, steps_per_epoch))
