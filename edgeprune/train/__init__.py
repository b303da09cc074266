"""The one training/evaluation loop of edgeprune (plain or DDP under torchrun).

Typical use by a method::

    from edgeprune.train import TrainConfig, TrainHooks, evaluate, train
    cfg = TrainConfig(epochs=30, lr=0.01, schedule="cosine", warmup_epochs=1)
    res = train(model, train_loader, cfg, val_loader=val_loader, ckpt_dir=run_dir, resume=True,
                hooks=TrainHooks(extra_loss=penalty, params=lambda m: gate_params(m)))
    acc = evaluate(model, test_loader)          # EvalResult(n, top1, top5, loss)
"""

from edgeprune.train.checkpoint import load_checkpoint, save_atomic, seed_everything
from edgeprune.train.config import OPTIMIZERS, SCHEDULES, TrainConfig
from edgeprune.train.distill import DISTILL_MODES, NO_DISTILL, DistillConfig, distill_loss
from edgeprune.train.distributed import (
    DistEnv,
    cleanup,
    current_env,
    init_distributed,
    resolve_device,
)
from edgeprune.train.loop import TrainHooks, TrainResult, evaluate, train
from edgeprune.train.metrics import EvalResult, topk_correct
from edgeprune.train.optim import build_optimizer, build_scheduler, lr_factor_fn

__all__ = [
    "DISTILL_MODES",
    "NO_DISTILL",
    "DistillConfig",
    "distill_loss",
    "OPTIMIZERS",
    "SCHEDULES",
    "DistEnv",
    "EvalResult",
    "TrainConfig",
    "TrainHooks",
    "TrainResult",
    "build_optimizer",
    "build_scheduler",
    "cleanup",
    "current_env",
    "evaluate",
    "init_distributed",
    "load_checkpoint",
    "lr_factor_fn",
    "resolve_device",
    "save_atomic",
    "seed_everything",
    "topk_correct",
    "train",
]
