"""Channel importance beta (the paper's Eq. 2-3): learned with every network weight frozen."""

from __future__ import annotations

import torch
import torch.nn as nn

from edgeprune.surgery import attach_gates_
from edgeprune.surgery.graph import PrunableGroup


class FrozenNet(nn.Module):
    """Wraps a network so that the training loop's ``train()`` leaves it in eval mode.

    Learning beta must not change the network: BatchNorm keeps its running statistics
    (neither used from the batch nor updated), exactly the network that will be pruned.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def train(self, mode: bool = True) -> FrozenNet:
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def beta_l1(beta: dict[str, torch.Tensor]) -> float:
    """||beta||_1 over every layer."""
    return float(sum(b.detach().abs().sum() for b in beta.values()))


def learn_beta(
    model: nn.Module,
    groups: list[PrunableGroup],
    loader,
    example_input: torch.Tensor,
    cfg,
    limit_batches: int | None = None,
) -> dict[str, torch.Tensor]:
    """beta per group (init 1, Z = |beta| * X), trained on CE + lam * ||beta||_1 with Adam.

    ``cfg`` is a OneStepConfig (lam, beta_lr, beta_epochs). Only beta changes: the weights
    are frozen by the loop and BatchNorm stays in eval mode; the gates are removed after.
    Returns |beta| per group (CPU tensors).
    """
    from edgeprune.train import TrainConfig, TrainHooks, train

    gates = attach_gates_(model, groups, example_input, init=1.0, transform=torch.abs)
    params = gates.parameters()
    lr = beta_step(
        cfg.beta_lr, getattr(cfg, "beta_travel", None), cfg.beta_epochs, loader, limit_batches
    )

    def penalty(_m: nn.Module, _out: torch.Tensor) -> torch.Tensor:
        return cfg.lam * sum(p.abs().sum() for p in params)

    tcfg = TrainConfig(
        epochs=cfg.beta_epochs,
        optimizer="adam",
        lr=lr,
        weight_decay=0.0,
        schedule="constant",
        limit_batches=limit_batches,
        progress=False,
    )
    try:
        train(
            FrozenNet(model),
            loader,
            tcfg,
            hooks=TrainHooks(params=lambda _m: params, extra_loss=penalty),
        )
    finally:
        gates.remove()
    return {name: p.detach().abs().cpu().clone() for name, p in gates.gates.items()}


def beta_step(
    lr: float, travel: float | None, epochs: int, loader, limit_batches: int | None
) -> float:
    """The Adam step for beta: ``lr``, or with ``travel`` at least travel / steps, so that
    beta can move by about ``travel`` over the schedule (Adam moves ~lr per step)."""
    if travel is None:
        return lr
    try:
        per_epoch = len(loader)
    except TypeError:
        per_epoch = limit_batches or 1
    if limit_batches is not None:
        per_epoch = min(per_epoch, limit_batches)
    return max(lr, travel / max(1, epochs * per_epoch))


def layer_scores(beta: dict[str, torch.Tensor], how: str = "mean") -> dict[str, float]:
    """A layer's importance: mean (the paper's text, default) or sum (its Eq. 4) of |beta|."""
    reduce = torch.mean if how == "mean" else torch.sum
    return {name: float(reduce(b.abs())) for name, b in beta.items()}
