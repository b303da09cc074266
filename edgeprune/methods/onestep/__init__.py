"""One-step pruning-recovery (Wang, Zhou, Bai, Zhou): ``--method onestep``.

1. Learn a channel-importance vector beta per prunable layer (Z = |beta| X) on
   CE + lam * ||beta||_1 with every weight frozen (``importance``).
2. Rank layers by the mean |beta| (or the sum, Eq. 4: ``layer_score=sum``); the N best and
   the layer of the last conv are crucial and keep all their filters (``crucial``).
3. Prune the other layers in one step: by default (``ranking=per_layer``, ours) the
   latency-aware allocator on |beta| relative to each layer's mean; with ``ranking=global``
   (the paper's, ``--preset paper``) one global |beta| ranking under the budget controller
   (``WidthRule.THRESHOLD``: the controller keeps the k best channels network-wide, k the
   largest whose model meets the budget on the device's latency table); with ``rate=...``
   exactly that share of their channels. Crucial layers get +inf scores and stay whole.
4. Recover in one step: the pruned student mimics the dense teacher's post-ReLU outputs at
   the crucial layers (KL by default), classifier copied and frozen (``recovery``). The
   pipeline then fine-tunes with CE for ``--epochs``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn

from edgeprune.errors import UserError
from edgeprune.methods.base import (
    BudgetOracle,
    IterativeMethod,
    IterativeResult,
    MethodContext,
    RecoveryResult,
    ScoreResult,
    ScoringMethod,
    WidthRule,
    register_method,
)
from edgeprune.methods.onestep.config import OneStepConfig
from edgeprune.methods.onestep.crucial import (
    allocation_scores,
    feasible_crucial,
    last_conv_group,
    rate_plan,
    select_crucial,
)
from edgeprune.methods.onestep.importance import beta_l1, layer_scores, learn_beta
from edgeprune.methods.onestep.mimic import MIMIC_LOSSES
from edgeprune.methods.onestep.recovery import (
    MimicNet,
    crucial_nodes,
    mean_mimic_loss,
    reconstruct_,
)
from edgeprune.surgery.blocks import droppable_groups
from edgeprune.surgery.graph import PrunableGroup

__all__ = ["OneStepConfig", "OneStepMethod", "OneStepRate"]

MIMIC_BATCHES = 4  # fixed training batches on which the mimic loss is reported


@dataclass(frozen=True)
class Selection:
    """What scoring found: beta per group, the crucial layers, and their diagnostics."""

    beta: dict[str, torch.Tensor]
    crucial: list[str]
    diagnostics: dict


@register_method("onestep")
class OneStepMethod(ScoringMethod):
    """One-step pruning-recovery under the budget controller (``ranking=per_layer``:
    ``WidthRule.ALLOCATE``; ``ranking=global``: one |beta| threshold, ``WidthRule.THRESHOLD``);
    with ``rate=...`` the paper's fixed-rate mode (:class:`OneStepRate`). Options: see
    :class:`OneStepConfig` (``--opt key=value``)."""

    config_cls = OneStepConfig
    needs_data = True
    short_schedule = {"recover_epochs": 1}
    own_budget_option = "rate"

    def __init__(self, config: OneStepConfig | None = None, **options) -> None:
        self.cfg = config if config is not None else OneStepConfig.from_dict(options)

    @classmethod
    def create(cls, **options) -> OneStepMethod | OneStepRate:
        """The scorer, or with ``rate`` the paper's fixed-rate pruner."""
        cfg = OneStepConfig.from_dict(options)
        return OneStepRate(cfg) if cfg.rate is not None else cls(cfg)

    def score(self, model, groups, ctx: MethodContext) -> ScoreResult:
        """|beta| per channel; crucial layers +inf so the controller keeps them whole."""
        sel = select(self.cfg, model, groups, ctx, ctx.oracle)
        scores = allocation_scores(sel.beta, sel.crucial)
        rule = WidthRule.THRESHOLD if self.cfg.ranking == "global" else WidthRule.ALLOCATE
        return ScoreResult(scores, rule, sel.diagnostics, {"crucial": sel.crucial})

    def recover(self, pruned, dense, groups, scored: ScoreResult, ctx) -> RecoveryResult:
        """Reconstruct the crucial layers' outputs; returns accuracies and mimic losses."""
        return recover(self.cfg, pruned, dense, groups, list(scored.state["crucial"]), ctx)


class OneStepRate(IterativeMethod):
    """One-step in the paper's mode (``rate``): prune exactly that share, then reconstruct."""

    name = "onestep"
    config_cls = OneStepConfig
    needs_data = True
    short_schedule = OneStepMethod.short_schedule
    own_budget_option = "rate"

    def __init__(self, config: OneStepConfig) -> None:
        self.cfg = config

    def run(self, model, groups, ctx: MethodContext) -> IterativeResult:
        from edgeprune.surgery import apply_plan_

        sel = select(self.cfg, model, groups, ctx, None)
        droppable = droppable_groups(model)
        plan = rate_plan(list(groups), sel.beta, sel.crucial, float(self.cfg.rate), droppable)
        ctx.log(f"onestep: rate {self.cfg.rate} removes {plan.meta['removed']} channels")
        pruned = apply_plan_(copy.deepcopy(model), plan, ctx.example_input)
        rec = recover(self.cfg, pruned, model, groups, sel.crucial, ctx)
        return IterativeResult(pruned, plan, {**sel.diagnostics, **rec.diagnostics})


def recover(
    cfg: OneStepConfig,
    pruned: nn.Module,
    dense: nn.Module,
    groups: Sequence[PrunableGroup],
    crucial: list[str],
    ctx: MethodContext,
) -> RecoveryResult:
    """Reconstruct the crucial layers' outputs (Eq. 8); accuracies and mimic losses."""
    if ctx.train_loader is None:
        raise UserError("method 'onestep' needs --data-root (it trains on the data)")
    nodes = crucial_nodes(dense, list(groups), crucial, ctx.example_input)
    net = MimicNet(pruned, dense, nodes, MIMIC_LOSSES[cfg.mimic])
    batches = _fixed_batches(ctx.train_loader, MIMIC_BATCHES, ctx.limit_batches)
    info: dict = {"mimic": cfg.mimic, "crucial_layers": list(crucial)}
    info["nodes"] = {g: n.module for g, n in nodes.items()}
    try:
        info["top1_pruned"] = _eval_top1(pruned, ctx)
        info["mimic_loss_before"] = mean_mimic_loss(net, batches)
        if cfg.recover_epochs > 0:
            ctx.log(f"onestep: reconstruction ({cfg.recover_epochs} epoch(s), mimic {cfg.mimic})")
            info["recover_history"] = reconstruct_(
                net, ctx.train_loader, cfg, ctx.limit_batches, ctx.log
            )
        info["mimic_loss_after"] = mean_mimic_loss(net, batches)
    finally:
        net.remove()
    pruned.eval()
    info["top1_before_finetune"] = _eval_top1(pruned, ctx)
    info["eval_split"] = _eval_split(ctx)
    info["widths"] = group_widths(pruned, list(groups))
    ctx.log(
        f"onestep recovery ({cfg.mimic}): mimic loss {info['mimic_loss_before']:.4g}"
        f" -> {info['mimic_loss_after']:.4g}; top-1 before fine-tune "
        f"{info['top1_before_finetune']}"
    )
    return RecoveryResult(info, {"recovery": info, "widths": info["widths"]})


def select(
    cfg: OneStepConfig,
    model: nn.Module,
    groups: Sequence[PrunableGroup],
    ctx: MethodContext,
    oracle: BudgetOracle | None,
) -> Selection:
    """Learn (or resume) beta, then choose the crucial layers (feasible under ``oracle``)."""
    if ctx.train_loader is None:
        raise UserError("method 'onestep' needs --data-root (beta is learned from data)")
    groups = list(groups)
    beta = _resumed_beta(ctx, groups)
    if beta is None:
        ctx.log(f"onestep: learning beta ({cfg.beta_epochs} pass(es), W frozen)")
        beta = learn_beta(
            model, groups, ctx.train_loader, ctx.example_input, cfg, ctx.limit_batches
        )
        if ctx.checkpoint is not None:
            ctx.checkpoint.save({"beta": beta})
    scores = layer_scores(beta, cfg.layer_score)
    last = last_conv_group(model, groups, ctx.example_input)
    args = (model, groups, beta, scores, cfg.n_crucial, last, oracle)
    crucial = feasible_crucial(*args, ctx.example_input, droppable_groups(model))
    if len(select_crucial(scores, cfg.n_crucial, last)) != len(crucial):
        ctx.log("onestep: budget unreachable with all crucial layers whole; released some")
    ctx.log(f"onestep: crucial layers {', '.join(crucial)}")
    diag = {
        "options": cfg.to_dict(),
        "layer_score": cfg.layer_score,
        "layer_scores": scores,
        "crucial_layers": list(crucial),
        "n_crucial_used": len(crucial),
        "last_conv_group": last,
        "beta_l1_init": float(sum(g.channels for g in groups)),
        "beta_l1": beta_l1(beta),
        "beta": {g: [round(float(v), 6) for v in b] for g, b in beta.items()},
    }
    return Selection(beta, list(crucial), diag)


def group_widths(model: nn.Module, groups: list[PrunableGroup]) -> dict[str, int]:
    """Output channels per group in a (pruned) model; 0 where its block was removed
    (a residual stream whose conv went with its block is read from the bypass)."""
    from edgeprune.surgery.blocks import BlockBypass

    modules = dict(model.named_modules())
    out = {}
    for g in groups:
        convs = [modules[c] for c in g.convs if c in modules]
        block = modules.get(g.convs[-1].rpartition(".")[0])
        if convs:
            out[g.name] = convs[0].out_channels
        elif g.residual and isinstance(block, BlockBypass):
            out[g.name] = int(block.bias.shape[1])
        else:
            out[g.name] = 0
    return out


def _resumed_beta(ctx: MethodContext, groups) -> dict[str, torch.Tensor] | None:
    if not (ctx.resume and ctx.checkpoint is not None):
        return None
    state = ctx.checkpoint.load() or {}
    beta = state.get("beta")
    if not beta or set(beta) != {g.name for g in groups}:
        return None
    ctx.log("onestep: resumed beta from the run directory")
    return beta


def _fixed_batches(loader, n: int, limit: int | None) -> list[torch.Tensor]:
    out = []
    for x, _y in loader:
        if len(out) >= min(n, limit or n):
            break
        out.append(x)
    return out


def _eval_loader(ctx: MethodContext):
    return ctx.test_loader or ctx.val_loader


def _eval_split(ctx: MethodContext) -> str | None:
    if ctx.test_loader is not None:
        return "test"
    return "val" if ctx.val_loader is not None else None


def _eval_top1(model: nn.Module, ctx: MethodContext) -> float | None:
    loader = _eval_loader(ctx)
    if loader is None:
        return None
    from edgeprune.train import evaluate

    return float(evaluate(model, loader, limit_batches=ctx.limit_batches, progress=False).top1)
