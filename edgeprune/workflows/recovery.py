"""Recovery training and top-1, the same for every row: loaders from one ``DataSpec``,
training into a checkpoint dir, evaluation on one fixed test subset.

Used by the prune workflow, the bench's dense row and ``benchmarks/longer_recovery.py``, so a
pruned and a dense model are always recovered and scored the same way (with
``limit_batches``: the same seeded random subset of the test split for every model).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

EVAL_BATCH = 256  # images per evaluation batch (the subset size is limit_batches x this)


@dataclass(frozen=True)
class DataSpec:
    """Where the data is and how much of it a run uses."""

    root: str
    batch_size: int = 128  # training batch
    limit_batches: int | None = None  # smoke runs: batches per epoch and per evaluation
    seed: int = 0  # the training loader's shuffling and the training itself


@dataclass(frozen=True)
class Loaders:
    """The training loader and the test loader of one ``DataSpec``."""

    spec: DataSpec
    train: Any
    test: Any


@dataclass(frozen=True)
class RecoveryResult:
    """Top-1 on the test split after recovery (None without data), and the training time."""

    top1: float | None
    train_s: float = 0.0


def eval_loader(spec: DataSpec, split: str = "test"):
    """``split`` for evaluation; with ``limit_batches`` a fixed random subset of it (the
    splits are class-ordered, so the first batches would hold one class)."""
    from edgeprune.data import build_loader

    limit = spec.limit_batches * EVAL_BATCH if spec.limit_batches else None
    return build_loader(spec.root, split, EVAL_BATCH, limit=limit)


def build_loaders(spec: DataSpec) -> Loaders:
    """The shuffled training loader and the test loader of ``spec``."""
    from edgeprune.data import build_loader

    train = build_loader(spec.root, "train", spec.batch_size, seed=spec.seed)
    return Loaders(spec, train, eval_loader(spec, "test"))


def evaluate_top1(model, loader, limit_batches: int | None = None) -> float | None:
    """Top-1 of ``model`` on ``loader`` (None without a loader), on a GPU when there is one."""
    if loader is None:
        return None
    from edgeprune.train import evaluate, resolve_device

    model.to(resolve_device("auto"))
    try:
        return float(evaluate(model, loader, limit_batches=limit_batches, desc="eval").top1)
    finally:
        model.to("cpu")


def recover_(
    model,
    loaders: Loaders,
    train_cfg,
    ckpt_dir: str,
    resume: bool = False,
    *,
    teacher=None,
    distill=None,
) -> float:
    """Train ``model`` in place with ``train_cfg`` (its epochs and optimizer; the seed and
    batch limit come from the DataSpec), checkpointing into ``ckpt_dir``; returns seconds.

    ``train_cfg`` None trains nothing. The checkpoint is continued only with ``resume``.
    With a ``teacher`` (the dense model) the student is distilled from it by ``distill``
    (an ``edgeprune.train.DistillConfig``; default ``kd``; ``none``: plain cross-entropy).
    """
    if train_cfg is None:
        return 0.0
    from edgeprune.train import resolve_device, train

    spec = loaders.spec
    tcfg = replace(train_cfg, limit_batches=spec.limit_batches, seed=spec.seed)
    t0 = time.time()
    model.to(resolve_device("auto"))
    try:
        train(
            model,
            loaders.train,
            tcfg,
            ckpt_dir=ckpt_dir,
            resume=resume,
            teacher=teacher,
            distill=distill,
        )
    finally:
        model.to("cpu")
        if teacher is not None:
            teacher.to("cpu")
    return time.time() - t0


def recover_and_evaluate(
    model,
    loaders: Loaders | None,
    train_cfg,
    ckpt_dir: str,
    *,
    resume: bool = False,
    teacher=None,
    distill=None,
) -> RecoveryResult:
    """Recover ``model`` in place (see ``recover_``; ``train_cfg`` None: no training; a
    ``teacher``: distilled by ``distill``), then its top-1 on the test split."""
    if loaders is None:
        return RecoveryResult(None)
    train_s = recover_(
        model, loaders, train_cfg, ckpt_dir, resume, teacher=teacher, distill=distill
    )
    model.eval()
    return RecoveryResult(evaluate_top1(model, loaders.test, loaders.spec.limit_batches), train_s)
