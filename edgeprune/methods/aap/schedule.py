"""Segments of the dense training schedule (Table 1) for AAP's rewinding.

The dense model trains E epochs with a step LR schedule; rewinding the LR schedule to epoch
k and retraining E-k epochs is the tail segment [k, E): its start LR is lr * gamma^(number
of milestones <= k) and its milestones are the later ones, as fractions of the segment.
``round_epochs`` compresses the segment (same shape, fewer epochs) for small budgets.
"""

from __future__ import annotations

from edgeprune.train import TrainConfig


def _segment(cfg, start: int, end: int, epochs: int, limit_batches, seed: int) -> TrainConfig:
    passed = sum(m <= start for m in cfg.milestones)
    inside = [(m - start) / (end - start) for m in cfg.milestones if start < m < end]
    return TrainConfig(
        epochs=epochs,
        lr=cfg.lr * cfg.gamma**passed,
        schedule="step" if inside else "constant",
        milestones=tuple(inside) or (1.0,),
        gamma=cfg.gamma,
        momentum=0.9,
        nesterov=True,
        weight_decay=cfg.weight_decay,
        limit_batches=limit_batches,
        seed=seed,
        progress=False,
    )


def tail_config(cfg, limit_batches: int | None, seed: int) -> TrainConfig | None:
    """Retraining of one round: the schedule from epoch k to E (None: no retraining)."""
    n = cfg.epochs - cfg.rewind_epoch if cfg.round_epochs is None else cfg.round_epochs
    if n <= 0:
        return None
    return _segment(cfg, cfg.rewind_epoch, cfg.epochs, n, limit_batches, seed)


def head_config(cfg, limit_batches: int | None, seed: int) -> TrainConfig | None:
    """Dense training up to epoch k (None when k = 0)."""
    if cfg.rewind_epoch <= 0:
        return None
    return _segment(cfg, 0, cfg.rewind_epoch, cfg.rewind_epoch, limit_batches, seed)
