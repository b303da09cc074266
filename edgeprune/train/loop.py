"""The one train/evaluate loop every method uses (plain, or DDP under torchrun)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from edgeprune.errors import UserError
from edgeprune.log import get_logger
from edgeprune.log import progress as show_progress
from edgeprune.train.checkpoint import LAST, load_checkpoint, save_atomic, seed_everything
from edgeprune.train.config import TrainConfig
from edgeprune.train.distill import (
    DistillConfig,
    FeatureTap,
    distill_loss,
    feature_term,
    matched_stages,
)
from edgeprune.train.distributed import (
    DistEnv,
    all_reduce_sum,
    barrier,
    broadcast_buffers_,
    current_env,
)
from edgeprune.train.metrics import EvalResult, Totals
from edgeprune.train.optim import build_optimizer, build_scheduler

log = get_logger("train")


@dataclass
class TrainHooks:
    """How a method customises the loop without copying it.

    ``extra_loss(model, outputs)``: a term added to the cross-entropy (e.g. a sparsity penalty);
    ``params(model)``: the parameters (or param-group dicts) to train; all others are frozen for
    the run and unfrozen afterwards; ``on_step_end(model, step)``: after each optimizer step
    (e.g. clamp gates); ``on_epoch_end(model, epoch, record)``: after each epoch's record.
    ``model`` is always the bare module, never the DDP wrapper.
    """

    extra_loss: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None
    params: Callable[[nn.Module], Iterable] | None = None
    on_step_end: Callable[[nn.Module, int], None] | None = None
    on_epoch_end: Callable[[nn.Module, int, dict], None] | None = None


@dataclass
class TrainResult:
    """Per-epoch records (``epoch, lr, train_loss, train_top1, val_*, time_s``) and the last eval."""

    history: list[dict[str, Any]] = field(default_factory=list)
    final: EvalResult | None = None


@dataclass
class _Run:
    model: nn.Module  # possibly DDP-wrapped
    raw: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    criterion: nn.Module
    trainable: list[nn.Parameter]
    cfg: TrainConfig
    hooks: TrainHooks
    env: DistEnv
    teacher: _Teacher | None = None


@dataclass
class _Teacher:
    """A frozen teacher (eval mode, no grad), the distillation config and, for ``feat``,
    the feature taps on both models (set up on the first batch)."""

    model: nn.Module
    cfg: DistillConfig
    total_steps: int = 1
    stages: list[str] | None = None
    taps: tuple[FeatureTap, FeatureTap] | None = None

    def loss(self, student: nn.Module, x, out, y, criterion, step: int) -> torch.Tensor:
        """The distillation loss of the student's ``out`` on batch ``(x, y)`` at ``step`` of
        ``total_steps`` (``prepare`` ran before the student's forward pass)."""
        with torch.no_grad():
            t_out = self.model(x)
        progress = step / max(self.total_steps - 1, 1)
        loss = distill_loss(out, t_out, y, self.cfg, criterion, progress)
        if self.taps is not None and self.stages:
            s_maps, t_maps = self.taps[0].take(self.stages), self.taps[1].take(self.stages)
            loss = loss + self.cfg.feat_weight / 2 * feature_term(s_maps, t_maps)
        return loss

    def prepare(self, student: nn.Module, x: torch.Tensor) -> None:
        """``feat``: find the stages both models share and tap them (first batch only)."""
        if self.cfg.mode == "feat" and self.stages is None:
            self.stages = matched_stages(student, self.model, x[:2])
            self.taps = FeatureTap(student, self.stages), FeatureTap(self.model, self.stages)

    def close(self) -> None:
        for tap in self.taps or ():
            tap.close()


def _use_cuda_extras(cfg: TrainConfig, device: torch.device) -> tuple[bool, bool]:
    """(amp, channels_last): both only on CUDA."""
    return cfg.amp and device.type == "cuda", cfg.channels_last and device.type == "cuda"


def _to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    nb = device.type == "cuda"
    return x.to(device, non_blocking=nb, memory_format=fmt), y.to(device, non_blocking=nb)


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device.type, dtype=torch.float16) if enabled else nullcontext()


def _n_batches(loader, limit: int | None) -> int:
    return len(loader) if limit is None else min(len(loader), limit)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader,
    *,
    limit_batches: int | None = None,
    env: DistEnv | None = None,
    amp: bool = False,
    progress: bool = True,
    desc: str = "eval",
) -> EvalResult:
    """Top-1/top-5 accuracy and mean cross-entropy of ``model`` on ``loader`` (summed over ranks).

    Runs on ``env.device`` (default: where the model's parameters are); restores train mode.
    """
    device = env.device if env else next(model.parameters()).device
    env = env or current_env(device)
    was_training = model.training
    model.eval()
    totals, crit = Totals(), nn.CrossEntropyLoss()
    use_amp = amp and device.type == "cuda"
    n = _n_batches(loader, limit_batches)
    bar = show_progress(
        loader, desc, total=n, enabled=progress and env.is_main, area="train", leave=False
    )
    for i, (x, y) in enumerate(bar):
        if i >= n:
            break
        x, y = _to_device(x, y, device, False)
        with _autocast(device, use_amp):
            out = model(x)
        totals.add(crit(out.float(), y), out, y)
    bar.close()
    model.train(was_training)
    totals.sums = all_reduce_sum(totals.sums, env)
    return totals.result()


def _select_params(model: nn.Module, hooks: TrainHooks) -> tuple[list, dict[int, bool]]:
    """Params/groups to optimize; freezes the rest and returns the original requires_grad flags."""
    flags = {id(p): p.requires_grad for p in model.parameters()}
    if hooks.params is None:
        return [p for p in model.parameters() if p.requires_grad], flags
    chosen = list(hooks.params(model))
    if not chosen:
        raise UserError("the method selected no parameters to train")
    ids = {id(p) for g in chosen for p in (g["params"] if isinstance(g, dict) else [g])}
    for p in model.parameters():
        p.requires_grad_(id(p) in ids)
    return chosen, flags


def _train_step(run: _Run, x: torch.Tensor, y: torch.Tensor, totals: Totals, step: int) -> None:
    use_amp, _ = _use_cuda_extras(run.cfg, run.env.device)
    if run.teacher is not None:
        run.teacher.prepare(run.raw, x)
    with _autocast(run.env.device, use_amp):
        out = run.model(x)
        if run.teacher is None:
            loss = run.criterion(out.float(), y)
        else:
            loss = run.teacher.loss(run.raw, x, out, y, run.criterion, step)
        if run.hooks.extra_loss is not None:
            loss = loss + run.hooks.extra_loss(run.raw, out)
    if not torch.isfinite(loss):
        raise UserError(f"training loss became {float(loss.detach())} at step {step}; lower the lr")
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    if run.cfg.grad_clip_norm:
        run.scaler.unscale_(run.optimizer)
        nn.utils.clip_grad_norm_(run.trainable, run.cfg.grad_clip_norm)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    totals.add(loss, out, y)
    if run.hooks.on_step_end is not None:
        run.hooks.on_step_end(run.raw, step)


def _train_one_epoch(run: _Run, loader, epoch: int) -> EvalResult:
    """One pass over (at most ``limit_batches`` of) ``loader``; returns the train metrics."""
    run.model.train()
    _, channels_last = _use_cuda_extras(run.cfg, run.env.device)
    n = _n_batches(loader, run.cfg.limit_batches)
    show = run.cfg.progress and run.env.is_main
    desc = f"epoch {epoch + 1}/{run.cfg.epochs}"
    bar = show_progress(loader, desc, total=n, enabled=show, area="train", leave=False)
    totals = Totals()
    for i, (x, y) in enumerate(bar):
        if i >= n:
            break
        x, y = _to_device(x, y, run.env.device, channels_last)
        _train_step(run, x, y, totals, epoch * n + i)
        if i % 20 == 0:
            bar.set_postfix(loss=f"{float(totals.result().loss):.3f}")
    bar.close()
    totals.sums = all_reduce_sum(totals.sums, run.env)
    return totals.result()


def _setup(model: nn.Module, cfg: TrainConfig, hooks: TrainHooks, env: DistEnv, steps: int):
    _, channels_last = _use_cuda_extras(cfg, env.device)
    model.to(
        env.device, memory_format=torch.channels_last if channels_last else torch.preserve_format
    )
    params, flags = _select_params(model, hooks)
    wrapped = model
    if env.distributed:
        ids = [env.device.index] if env.device.type == "cuda" else None
        wrapped = DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=cfg.ddp_find_unused
        )
    optimizer = build_optimizer(params, cfg)
    trainable = [p for g in optimizer.param_groups for p in g["params"]]
    run = _Run(
        model=wrapped,
        raw=model,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, cfg, steps),
        scaler=torch.amp.GradScaler(env.device.type, enabled=_use_cuda_extras(cfg, env.device)[0]),
        criterion=nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing),
        trainable=trainable,
        cfg=cfg,
        hooks=hooks,
        env=env,
    )
    return run, flags


def _checkpoint(run: _Run, epoch: int, history: list[dict]) -> dict[str, Any]:
    return {
        "model": run.raw.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "epoch": epoch,
        "config": run.cfg.to_dict(),
        "world_size": run.env.world_size,
        "history": history,
    }


def _resume(run: _Run, path: Path) -> tuple[int, list[dict]]:
    """Load a checkpoint into the run; returns (epochs already done, history)."""
    ckpt = load_checkpoint(path)
    run.raw.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    run.scaler.load_state_dict(ckpt["scaler"])
    return int(ckpt["epoch"]), list(ckpt.get("history", []))


def _log(env: DistEnv, cfg: TrainConfig, record: dict) -> None:
    line = " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()
    )
    # shown with the progress display (main rank, progress on); kept at debug otherwise
    log.log(logging.INFO if env.is_main and cfg.progress else logging.DEBUG, line)


def train(
    model: nn.Module,
    train_loader,
    cfg: TrainConfig,
    *,
    val_loader=None,
    hooks: TrainHooks | None = None,
    ckpt_dir: str | Path | None = None,
    resume: bool = False,
    env: DistEnv | None = None,
    teacher: nn.Module | None = None,
    distill: DistillConfig | None = None,
) -> TrainResult:
    """Train ``model`` in place for ``cfg.epochs`` epochs; evaluate on ``val_loader`` each epoch.

    With ``ckpt_dir`` the run state is saved atomically to ``ckpt_dir/last.pt`` after every
    epoch, and ``resume=True`` continues from it. RNGs are reseeded at every epoch from
    (seed, epoch, rank), so a resumed run repeats the uninterrupted one. Under torchrun pass
    ``env=init_distributed()``: the model is wrapped in DDP and loaders should be distributed.

    With a ``teacher`` (and ``distill`` not ``none``; default ``kd``) the loss is the
    distillation loss of ``edgeprune.train.distill`` instead of the plain cross-entropy; the
    teacher runs in eval mode under no_grad on this rank's batch (never wrapped in DDP).
    """
    hooks = hooks or TrainHooks()
    env = env or current_env(next(model.parameters()).device)
    steps = _n_batches(train_loader, cfg.limit_batches)
    run, flags = _setup(model, cfg, hooks, env, steps)
    distill = distill or DistillConfig()
    if teacher is not None and distill.enabled:
        teacher_mode = teacher.training
        run.teacher = _Teacher(teacher.to(env.device).eval(), distill, steps * cfg.epochs)
    last = Path(ckpt_dir) / LAST if ckpt_dir is not None else None
    start, history = (0, [])
    if resume and last is not None and last.is_file():
        start, history = _resume(run, last)
    result = TrainResult(history=history)
    try:
        for epoch in range(start, cfg.epochs):
            result.history.append(_epoch(run, train_loader, val_loader, epoch, result))
            if last is not None and env.is_main:
                save_atomic(_checkpoint(run, epoch + 1, result.history), last)
            barrier(env)
            if hooks.on_epoch_end is not None:
                hooks.on_epoch_end(model, epoch, result.history[-1])
    finally:
        for p in model.parameters():
            p.requires_grad_(flags.get(id(p), p.requires_grad))
        if run.teacher is not None:
            run.teacher.close()
            teacher.train(teacher_mode)
    return result


def _reseed(run: _Run, loader, epoch: int) -> None:
    """Make epoch ``epoch`` depend only on (seed, epoch, rank): resumed runs repeat exactly."""
    seed = run.cfg.seed + 1_000_003 * epoch
    seed_everything(seed + run.env.rank)
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):  # the loader's own shuffling RNG
        generator.manual_seed(seed)
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):  # DistributedSampler: same order on every rank
        sampler.set_epoch(epoch)


def _epoch(run: _Run, train_loader, val_loader, epoch: int, result: TrainResult) -> dict:
    _reseed(run, train_loader, epoch)
    t0 = time.perf_counter()
    lr = run.optimizer.param_groups[0]["lr"]
    tr = _train_one_epoch(run, train_loader, epoch)
    broadcast_buffers_(run.raw, run.env)  # BN statistics drift apart per rank: take rank 0's
    record: dict[str, Any] = {
        "epoch": epoch + 1,
        "lr": lr,
        "train_loss": tr.loss,
        "train_top1": tr.top1,
    }
    if val_loader is not None:
        result.final = evaluate(
            run.raw,
            val_loader,
            limit_batches=run.cfg.limit_batches,
            env=run.env,
            amp=run.cfg.amp,
            progress=run.cfg.progress,
            desc="val",
        )
        record.update(
            val_top1=result.final.top1, val_top5=result.final.top5, val_loss=result.final.loss
        )
    record["time_s"] = time.perf_counter() - t0
    _log(run.env, run.cfg, record)
    return record
