"""Latency-aware channel allocation: meet a budget while losing the least importance.

Greedy on the cost model: at each step, among every group's candidate widths (one channel
less, the next multiple of 8 or 16 below, or 0 for the inner layer of a residual block,
which removes the block), take the move with the most budget-metric saved per unit of
channel importance lost. Moves that save nothing (64 -> 61 when 61 is not faster than 64
on the device) are never taken, so the allocator follows the runtime's alignment steps.

Count budgets (FLOPs, params, weight and activation bytes) are met at or under their limit,
judged on the exact counts of the plan applied to the model (:func:`land_counts`): where the
cost model's counts differ from the real ones, the count targets are tightened and the
allocation is repeated; where the granularity (min keep, alignment) cannot get under, the
allocation says so (``Allocation.landing``) and logs the step it could not go below.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from edgeprune.budget.budget import Budget
from edgeprune.budget.costmodel import CostModel
from edgeprune.budget.verdict import verdict
from edgeprune.errors import InfeasibleBudget, UserError
from edgeprune.surgery.graph import PrunableGroup
from edgeprune.surgery.plan import Plan


@dataclass(frozen=True)
class AllocatorConfig:
    """Knobs of the allocator."""

    min_keep_frac: float = 0.1  # no layer keeps fewer than this share of its channels
    min_channels: int = 1
    allow_block_drop: bool = True
    objective: str = "latency"  # what a move's gain is measured in: latency | flops | budget
    steps: tuple[int, ...] = (8, 16)  # alignment steps tried besides one channel
    block_drop_penalty: float = 3.0  # importance lost by removing a block, x its inner channels
    fill_aligned: bool = True  # a threshold's latency slack widens layers to the alignment
    max_iters: int = 100000

    def to_dict(self) -> dict:
        return dict(self.__dict__)


COUNT_METRICS = frozenset({"params", "flops", "weight_bytes", "activation_bytes"})
LANDING_TRIES = 4  # allocations tried to land count budgets on the exact counts


@dataclass
class Targets:
    """Absolute limits per metric (None: unconstrained)."""

    limits: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_budget(
        cls, budget: Budget, dense: dict[str, float], latency_scale: float = 1.0
    ) -> Targets:
        """Absolute limits from ``budget`` and the dense model's metrics; ``latency_scale``
        (< 1 after a measured miss) tightens the latency limit."""
        t: dict[str, float] = {}
        if budget.latency_ms is not None:
            t["latency_ms"] = budget.latency_ms
        if budget.latency_ratio is not None:
            t["latency_ms"] = budget.latency_ratio * dense["latency_ms"]
        if budget.flops is not None:
            t["flops"] = budget.flops
        if budget.flops_ratio is not None:
            t["flops"] = min(t.get("flops", float("inf")), budget.flops_ratio * dense["flops"])
        if budget.params is not None:
            t["params"] = budget.params
        if budget.params_ratio is not None:
            t["params"] = min(t.get("params", float("inf")), budget.params_ratio * dense["params"])
        if budget.weight_mb is not None:
            t["weight_bytes"] = budget.weight_mb * 1e6
        if budget.activation_mb is not None:
            t["activation_bytes"] = budget.activation_mb * 1e6
        if "latency_ms" in t:
            t["latency_ms"] *= latency_scale
        return cls(t)

    def scaled_counts(self, scale: float) -> Targets:
        """These targets with every count limit times ``scale`` (latency unchanged)."""
        return Targets({k: v * scale if k in COUNT_METRICS else v for k, v in self.limits.items()})

    def violated(self, metrics: dict[str, float]) -> dict[str, float]:
        """The limits ``metrics`` (predicted: judged exactly) miss: metric -> limit."""
        return verdict(metrics, self.limits).violated


@dataclass
class Allocation:
    """The allocator's answer: widths per group, the plan, predicted metrics, history."""

    widths: dict[str, int]
    plan: Plan
    metrics: dict[str, float]
    dense_metrics: dict[str, float]
    targets: dict[str, float]
    steps: int
    dropped_blocks: list[str]
    landing: dict = field(default_factory=dict)  # exact counts and count-target scale used


def fixed_groups(scores: dict[str, torch.Tensor]) -> set[str]:
    """Groups whose every score is +inf: a method's way to say "never cut this layer"
    (one-step's crucial layers). The allocators keep them at full width."""
    return {g for g, s in scores.items() if s.numel() and bool(torch.isposinf(s).all())}


def min_widths(
    groups: list[PrunableGroup],
    droppable: set[str],
    cfg: AllocatorConfig,
    fixed: set[str] = frozenset(),
) -> dict[str, int]:
    """The smallest model the allocator may produce (``fixed`` groups at full width)."""
    out = {}
    for g in groups:
        if g.name in fixed:
            out[g.name] = g.channels
        elif cfg.allow_block_drop and g.name in droppable:
            out[g.name] = 0
        else:
            least = max(cfg.min_channels, math.ceil(cfg.min_keep_frac * g.channels))
            out[g.name] = min(g.channels, _round_up(least, getattr(g, "step", 1)))
    return out


def _round_up(c: int, step: int) -> int:
    return -(-c // step) * step if step > 1 else c


def _candidates(g: PrunableGroup, w: int, floor: int, droppable: bool, cfg) -> list[int]:
    """Narrower widths to try: one channel less and the alignment steps below ``w``, all
    multiples of the group's ``step`` (a grouped conv's equal segments; surgery would round
    any other width down, away from what the cost model priced)."""
    unit = max(1, getattr(g, "step", 1))
    cands = {w - 1}
    for s in cfg.steps:
        cands.add(((w - 1) // s) * s)
    cands = {c // unit * unit for c in cands}
    cands = {c for c in cands if floor <= c < w}
    if droppable and w > 0:
        cands.add(0)
    return sorted(cands)


def _importance_lost(norm: torch.Tensor, w: int, new_w: int) -> float:
    return float(norm[new_w:w].sum()) + 1e-9


def allocate(
    cost: CostModel,
    groups: list[PrunableGroup],
    scores: dict[str, torch.Tensor],
    budget: Budget,
    droppable: set[str] | None = None,
    cfg: AllocatorConfig | None = None,
    latency_scale: float = 1.0,
) -> Allocation:
    """Choose per-group widths meeting ``budget``; raises UserError when infeasible.

    ``scores`` gives one importance per channel of each group (higher: keep). Groups in
    ``droppable`` are inner layers of residual blocks, which may go to 0 (block removed).
    ``latency_scale`` (< 1) tightens the latency target after a measured miss. A group
    whose scores are all +inf is never cut (see :func:`fixed_groups`). Count budgets
    land at or under their limit on the exact counts (:func:`land_counts`).
    """

    def at(count_scale: float) -> Allocation:
        return _allocate(cost, groups, scores, budget, droppable, cfg, latency_scale, count_scale)

    return land_counts(cost, at)


def land_counts(cost: CostModel, allocate_at: Callable[[float], Allocation]) -> Allocation:
    """``allocate_at(count_scale)`` until the plan's exact counts meet the count targets.

    The allocation is judged (``budget/verdict.py``, exact) on the counts of its plan
    applied to the model; on a miss the count targets are tightened by how far the exact
    count exceeds its limit, at most ``LANDING_TRIES`` times. The last miss is recorded in
    ``Allocation.landing`` with the step it could not go below, and logged.
    """
    scale, alloc = 1.0, None
    for attempt in range(LANDING_TRIES):
        try:
            alloc = allocate_at(scale)
        except InfeasibleBudget:
            if attempt == 0:
                raise
            break  # tighter than the granularity allows: keep the closest so far
        limits = {k: v for k, v in alloc.targets.items() if k in COUNT_METRICS}
        if not limits or getattr(cost, "model", None) is None:
            return alloc
        exact = cost.counted(alloc.plan)
        missed = verdict(exact, limits).violated
        alloc.landing = {"count_scale": scale, "counted": exact}
        if not missed:
            return alloc
        scale *= min(limits[k] / exact[k] for k in missed) * (1.0 - 1e-4)
    exact = alloc.landing["counted"]
    missed = verdict(exact, {k: alloc.targets[k] for k in COUNT_METRICS & alloc.targets.keys()})
    k, limit = next(iter(missed.violated.items()))
    step = exact[k] / limit - 1.0
    alloc.landing["missed"] = {k: limit}
    alloc.landing["step"] = step
    from edgeprune.log import get_logger

    get_logger("budget").warning(
        f"the allocator could not land {k} at or under {limit:.6g}: its closest plan counts "
        f"{exact[k]:.6g} ({step:+.2%}), the step its granularity (min keep, alignment) "
        "could not go below"
    )
    return alloc


def _allocate(
    cost: CostModel,
    groups: list[PrunableGroup],
    scores: dict[str, torch.Tensor],
    budget: Budget,
    droppable: set[str] | None,
    cfg: AllocatorConfig | None,
    latency_scale: float,
    count_scale: float,
) -> Allocation:
    """One greedy allocation with the count targets scaled by ``count_scale``."""
    cfg = cfg or AllocatorConfig()
    fixed = fixed_groups(scores)
    droppable = (droppable or set()) - fixed
    dense = {g.name: g.channels for g in groups}
    dense_m = cost.metrics(dense)
    exact = exact_dense(cost)
    judged = Targets.from_budget(budget, {**dense_m, **exact}, latency_scale)
    # the greedy search runs on the cost model's op sums; its count limits are the exact
    # ones in those units (they differ where the op list approximates, e.g. Inception's
    # 1x7 convs or unpadded ones)
    units = {k: dense_m[k] / v for k, v in exact.items() if v > 0 and dense_m.get(k, 0) > 0}
    targets = Targets(
        {k: v * units.get(k, 1.0) for k, v in judged.scaled_counts(count_scale).limits.items()}
    )
    _check_feasible(cost, groups, droppable, cfg, targets, fixed)
    order, norm = {}, {}
    for g in groups:
        s = scores[g.name].detach().float().cpu()
        order[g.name] = torch.argsort(s, descending=True, stable=True)
        # importance relative to the layer's mean, times the number of coupled convs: a
        # residual-stream channel is a channel of every layer on that stream
        norm[g.name] = s[order[g.name]] / (s.mean() + 1e-12) * len(g.convs)
    floors = min_widths(groups, set(), cfg, fixed)
    widths = dict(dense)
    metrics = dict(dense_m)
    steps = 0
    best_move: dict[str, tuple[float, int] | None] = {}
    dirty = set(widths)
    while targets.violated(metrics) and steps < cfg.max_iters:
        violated = targets.violated(metrics)
        for name in dirty:
            best_move[name] = _best_move(
                cost,
                widths,
                name,
                groups_by(groups)[name],
                floors[name],
                name in droppable and cfg.allow_block_drop,
                norm[name],
                violated,
                targets,
                cfg,
            )
        dirty = set()
        choice = max(((v[0], k, v[1]) for k, v in best_move.items() if v is not None), default=None)
        if choice is None:
            break
        _, name, new_w = choice
        widths[name] = new_w
        metrics = cost.metrics(widths)
        steps += 1
        dirty = set(cost.neighbours[name]) | {name}
        if set(targets.violated(metrics)) != set(violated):
            dirty = set(widths)
    if targets.violated(metrics):
        raise InfeasibleBudget(_infeasible_message(targets, metrics))
    plan = Plan(
        {g: sorted(order[g][:w].tolist()) for g, w in widths.items() if w != dense[g]},
        meta={"allocator": cfg.to_dict(), "targets": judged.limits},
    )
    dropped = [g for g, w in widths.items() if w == 0]
    return Allocation(widths, plan, metrics, dense_m, judged.limits, steps, dropped)


def exact_dense(cost: CostModel) -> dict[str, float]:
    """Exact counts of the dense model (cached on ``cost``; ``{}`` without its model): what
    a ratio budget's count limits are a fraction of, as the run's verdict judges them."""
    if getattr(cost, "model", None) is None or not hasattr(cost, "counted"):
        return {}
    cached = getattr(cost, "_exact_dense", None)
    if cached is None:
        from edgeprune.surgery import Plan

        cached = cost.counted(Plan({}))
        cost._exact_dense = cached
    return dict(cached)


def groups_by(groups: list[PrunableGroup]) -> dict[str, PrunableGroup]:
    return {g.name: g for g in groups}


def _best_move(cost, widths, name, group, floor, droppable, norm, violated, targets, cfg):
    w = widths[name]
    best = None
    for new_w in _candidates(group, w, floor, droppable, cfg):
        try:
            d = cost.delta(widths, name, new_w)
        except UserError:  # width outside the device table's measured range: not allowed
            continue
        if "activation_bytes" in violated:
            trial = dict(widths, **{name: new_w})
            d["activation_bytes"] = (
                cost.metrics(trial)["activation_bytes"] - cost.metrics(widths)["activation_bytes"]
            )
        gain = _gain(d, violated, targets, cfg)
        if gain <= 0:
            continue
        if new_w:
            lost = _importance_lost(norm, w, new_w)
        else:  # removing a block loses both of its convs, not only the inner channels
            lost = cfg.block_drop_penalty * float(norm[:w].sum()) + 1e-9
        ratio = gain / lost
        if best is None or ratio > best[0]:
            best = (ratio, new_w)
    return best


def _gain(d: dict[str, float], violated: dict, targets: Targets, cfg: AllocatorConfig) -> float:
    """Budget saved by a move, as a share of each violated limit (objective-weighted)."""
    if cfg.objective == "flops" and "flops" in d:
        # FLOPs-proportional allocation (baseline): rank moves by FLOPs saved, whatever the budget.
        return -d["flops"] / max(1.0, targets.limits.get("flops", 1.0)) if d["flops"] < 0 else 0.0
    gain = 0.0
    for k in violated:
        if k in d and d[k] < 0:
            gain += -d[k] / targets.limits[k]
    return gain


def _check_feasible(cost, groups, droppable, cfg, targets: Targets, fixed=frozenset()) -> None:
    try:
        smallest = cost.metrics(min_widths(groups, droppable, cfg, fixed))
    except UserError:  # the table does not reach the minimum widths; the search decides
        return
    if targets.violated(smallest):
        raise InfeasibleBudget(_infeasible_message(targets, smallest, smallest=True))


def _infeasible_message(targets: Targets, metrics: dict, smallest: bool = False) -> str:
    k, limit = next(iter(targets.violated(metrics).items()))
    unit = {"latency_ms": " ms", "weight_bytes": " bytes", "activation_bytes": " bytes"}.get(k, "")
    who = "even the smallest allowed model" if smallest else "the allocator"
    return (
        f"budget infeasible: {who} reaches {k} = {metrics[k]:.4g}{unit} "
        f"(best achievable), above the budget of {limit:.4g}{unit}"
    )
