"""PAAM's training phases (Algorithm 1): dense warm-up, then cycles of an AN phase (CNN
frozen, regularised loss) and a CNN phase (binary scores, AN frozen)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn

from edgeprune.methods.paam.config import PAAMConfig
from edgeprune.methods.paam.scores import ScoreBank
from edgeprune.train import TrainConfig, TrainHooks, train


def _train_cfg(epochs: int, optimizer: str, lr: float, wd: float, ctx, seed: int, **kw):
    return TrainConfig(
        epochs=epochs,
        optimizer=optimizer,
        lr=lr,
        weight_decay=wd,
        limit_batches=ctx.limit_batches,
        seed=seed,
        **kw,
    )


def warmup_(model: nn.Module, cfg: PAAMConfig, ctx, seed: int = 0) -> list[dict]:
    """Train the dense CNN (all scores 1) with SGD, momentum 0.9, cosine schedule."""
    tcfg = _train_cfg(
        cfg.warmup_epochs,
        "sgd",
        cfg.warmup_lr,
        cfg.warmup_weight_decay,
        ctx,
        seed,
        momentum=0.9,
        schedule="cosine",
    )
    return train(model, ctx.train_loader, tcfg).history


@contextmanager
def frozen_bn_stats(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """BatchNorm normalises with batch statistics but its running statistics stay put."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [
        (m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone())
        for m in bns
    ]
    if enabled:
        for m in bns:
            m.momentum = 0.0
    try:
        yield
    finally:
        if enabled:
            for m, (mom, nbt) in zip(bns, saved, strict=True):
                m.momentum = mom
                if nbt is not None:
                    m.num_batches_tracked.copy_(nbt)


def an_phase_(
    bank: ScoreBank, weights: dict[str, float], cfg: PAAMConfig, ctx, seed: int = 0
) -> list[dict]:
    """Train the ANs (Adam) on CE + lambda * sum_l w_l ||S_l||_1; CNN weights frozen."""
    bank.set_analog()
    params = list(bank.nets.parameters())
    hooks = TrainHooks(
        params=lambda _m: params,
        extra_loss=lambda _m, _out: cfg.lam * bank.penalty(weights),
    )
    tcfg = _train_cfg(cfg.an_epochs, "adam", cfg.an_lr, 0.0, ctx, seed, schedule="constant")
    with frozen_bn_stats(bank.model, cfg.freeze_bn_stats):
        return train(bank.model, ctx.train_loader, tcfg, hooks=hooks).history


def cnn_phase_(
    bank: ScoreBank, masks: dict[str, torch.Tensor], cfg: PAAMConfig, ctx, seed: int = 0
) -> list[dict]:
    """Train the CNN (Adam, CE only) with its feature maps times the binary scores."""
    bank.set_binary(masks)
    cnn = [p for p in bank.model.parameters() if p.requires_grad]
    tcfg = _train_cfg(
        cfg.cnn_epochs, "adam", cfg.cnn_lr, cfg.cnn_weight_decay, ctx, seed, schedule="constant"
    )
    try:
        hooks = TrainHooks(params=lambda _m: cnn)
        return train(bank.model, ctx.train_loader, tcfg, hooks=hooks).history
    finally:
        bank.set_analog()
