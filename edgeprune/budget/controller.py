"""The budget controller: scores + budget + device table -> a verified plan.

It asks the cost model (never measures by itself) to allocate channels; when a measuring
function is given (the deploy stage on the device), it checks the slim model's real
latency against the budget and, on a miss beyond the noise tolerance, tightens the
latency target and allocates again, a bounded number of times.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from edgeprune.budget.allocator import (
    Allocation,
    AllocatorConfig,
    Targets,
    allocate,
    land_counts,
    min_widths,
)
from edgeprune.budget.budget import Budget
from edgeprune.budget.costmodel import CostModel
from edgeprune.budget.verdict import LATENCY_TOLERANCE, measured_verdict
from edgeprune.budget.width_rule import WidthRule
from edgeprune.errors import InfeasibleBudget
from edgeprune.search import bisect_float, largest_int_that
from edgeprune.surgery import Plan, apply_plan_
from edgeprune.surgery.graph import PrunableGroup


@dataclass(frozen=True)
class ControllerConfig:
    """Allocation settings plus the verify-and-retry policy."""

    allocator: AllocatorConfig = AllocatorConfig()
    max_retries: int = 5
    # the project's one latency tolerance: a measured miss this small counts as noise
    tolerance: float = LATENCY_TOLERANCE
    # landing zone: a measured latency (median) in [1 - slack, 1] x budget; further under,
    # loosen and try again (pruning less keeps accuracy)
    slack: float = 0.05
    uniform: bool = False  # baseline: one keep ratio for every layer

    def to_dict(self) -> dict:
        return {
            "allocator": self.allocator.to_dict(),
            "max_retries": self.max_retries,
            "tolerance": self.tolerance,
            "slack": self.slack,
            "uniform": self.uniform,
        }


@dataclass
class ControllerResult:
    """The chosen plan, its predicted metrics, and every verification attempt."""

    allocation: Allocation
    attempts: list[dict] = field(default_factory=list)
    measurement: object | None = None  # budget.verify.Measurement of the final plan
    budget_met_latency: bool | None = None

    @property
    def plan(self) -> Plan:
        return self.allocation.plan


def uniform_allocate(
    cost: CostModel, groups: list[PrunableGroup], scores, budget: Budget, latency_scale=1.0
) -> Allocation:
    """Peer baseline: the largest single keep ratio (L1 order per layer) meeting the budget
    (count budgets on the exact counts: ``land_counts``)."""
    return land_counts(
        cost, lambda cs: _uniform_at(cost, groups, scores, budget, latency_scale, cs)
    )


def _uniform_at(cost, groups, scores, budget: Budget, latency_scale, count_scale) -> Allocation:
    dense = {g.name: g.channels for g in groups}
    dense_m = cost.metrics(dense)
    judged = Targets.from_budget(budget, dense_m, latency_scale)
    targets = judged.scaled_counts(count_scale)

    def widths_at(r: float) -> dict[str, int]:
        return {g.name: max(1, math.ceil(r * g.channels)) for g in groups}

    def misses(r: float) -> bool:
        return bool(targets.violated(cost.metrics(widths_at(r))))

    if misses(0.01):
        raise InfeasibleBudget("budget infeasible for uniform scaling: even 1% width misses it")
    lo, _ = bisect_float(misses, 0.0, 1.0, 30)
    widths = widths_at(lo)
    plan = Plan(
        {
            g.name: best_filters(scores[g.name], widths[g.name])
            for g in groups
            if widths[g.name] < g.channels
        },
        meta={"allocator": "uniform", "keep_ratio": lo, "targets": judged.limits},
    )
    return Allocation(widths, plan, cost.metrics(widths), dense_m, judged.limits, 0, [])


def threshold_allocate(
    cost: CostModel,
    groups: list[PrunableGroup],
    scores: dict[str, torch.Tensor],
    budget: Budget,
    droppable: set[str],
    cfg: AllocatorConfig,
    latency_scale: float = 1.0,
) -> Allocation:
    """One global threshold on absolute scores (PAAM's binarization g(s, p)).

    Keeps the k highest-scoring filters of the whole network (a threshold theta on the
    scores, with ties broken by a stable global ranking so that any share is reachable);
    finds the largest k whose network meets the budget. A layer keeps at least its
    ``min_keep_frac`` (its best filters), unless it is the inner layer of a residual block
    left with none (then the block goes). Under a latency target the slack left is spent by
    :func:`fill_aligned`.
    Count budgets land on the exact counts (``land_counts``).
    """

    def at(count_scale: float) -> Allocation:
        return _threshold_at(
            cost, groups, scores, budget, droppable, cfg, latency_scale, count_scale
        )

    return land_counts(cost, at)


def best_filters(scores: torch.Tensor, n: int) -> list[int]:
    """The indices of the ``n`` best-scored filters of one layer, ascending (ties: lower
    index first)."""
    order = torch.argsort(scores.detach().float().cpu(), descending=True, stable=True)
    return sorted(order[:n].tolist())


def _threshold_at(
    cost, groups, scores, budget, droppable, cfg, latency_scale, count_scale
) -> Allocation:
    dense = {g.name: g.channels for g in groups}
    dense_m = cost.metrics(dense)
    judged = Targets.from_budget(budget, dense_m, latency_scale)
    targets = judged.scaled_counts(count_scale)
    flat = torch.cat([scores[g.name].detach().float().flatten().cpu() for g in groups])
    owner = torch.cat([torch.full((g.channels,), i) for i, g in enumerate(groups)])
    ranking = torch.argsort(flat, descending=True, stable=True)
    floors = min_widths(groups, droppable, cfg)  # min_keep_frac, as the allocator's

    def widths_at(k: int) -> dict[str, int]:
        counts = torch.bincount(owner[ranking[:k]], minlength=len(groups)).tolist()
        return {g.name: max(n, floors[g.name]) for g, n in zip(groups, counts, strict=True)}

    lo = largest_int_that(
        lambda k: not targets.violated(cost.metrics(widths_at(k))), 0, int(flat.numel())
    )
    if lo is None:
        raise InfeasibleBudget(
            "budget infeasible: even binarizing away all but each layer's floor (min_keep_frac) misses it"
        )
    widths = widths_at(lo)
    theta = float(flat[ranking[lo - 1]]) if lo > 0 else float("inf")
    kept = set(ranking[:lo].tolist())
    keep, offset = {}, 0
    for g in groups:
        mine = [i for i in range(g.channels) if offset + i in kept]
        if len(mine) < widths[g.name]:  # a layer kept at its floor: its best filters
            mine = best_filters(scores[g.name], widths[g.name])
        keep[g.name] = mine
        offset += g.channels
    p = 1.0 - lo / max(1, flat.numel())
    filled = {}
    if cfg.fill_aligned:
        widths, filled = fill_aligned(cost, groups, scores, widths, targets)
        for name, w in filled.items():  # the layer's best filters: a superset of its kept
            keep[name] = sorted(set(keep[name]) | set(best_filters(scores[name], w)))
    keep = {g.name: keep[g.name] for g in groups if len(keep[g.name]) < g.channels}
    meta = {"allocator": "threshold", "p": p, "theta": theta, "targets": judged.limits}
    plan = Plan(keep, meta={**meta, "filled": filled} if filled else meta)
    dropped = [g for g, w in widths.items() if w == 0]
    return Allocation(widths, plan, cost.metrics(widths), dense_m, judged.limits, 0, dropped)


def fill_aligned(
    cost: CostModel,
    groups: list[PrunableGroup],
    scores: dict[str, torch.Tensor],
    widths: dict[str, int],
    targets: Targets,
) -> tuple[dict[str, int], dict[str, int]]:
    """Spend a global threshold's latency slack (ours; under a latency target only): a
    threshold leaves widths anywhere (23 of 32), and on a device whose kernels run channels
    in multiples of ``channel_alignment`` an unaligned width costs about as much as the next
    aligned one. Greedily widen a layer to its next aligned width (its best filters) while
    every target holds, the move with the most score gained per millisecond first (free
    moves before all). Removed blocks stay removed. Returns (widths, {widened: width})."""
    profile = getattr(cost.predictor, "profile", None)
    align = int(getattr(profile, "channel_alignment", 1) or 1)
    if "latency_ms" not in targets.limits or align <= 1:
        return widths, {}
    ranked = {
        g.name: scores[g.name].detach().float().cpu().sort(descending=True).values for g in groups
    }
    widths, filled = dict(widths), {}
    now = cost.metrics(widths)["latency_ms"]
    while True:
        best = None
        for g in groups:
            w = widths[g.name]
            if w == 0 or w >= g.channels:
                continue
            unit = max(1, getattr(g, "step", 1))  # a grouped conv's equal segments
            new = min(g.channels, -(-(w + 1) // align) * align) // unit * unit
            if new <= w:
                continue
            m = cost.metrics({**widths, g.name: new})
            if targets.violated(m):
                continue
            gain = float(ranked[g.name][w:new].clamp(min=0).sum()) + 1e-9
            value = gain / max(m["latency_ms"] - now, 1e-6)
            if best is None or value > best[0]:
                best = (value, g.name, new, m["latency_ms"])
        if best is None:
            return widths, filled
        _, name, new, now = best
        widths[name] = filled[name] = new


def decide(
    model: nn.Module,
    groups: list[PrunableGroup],
    scores: dict[str, torch.Tensor],
    budget: Budget,
    cost: CostModel,
    droppable: set[str],
    example_input: torch.Tensor,
    cfg: ControllerConfig = ControllerConfig(),
    measure: Callable | None = None,
    log: Callable[[str], None] = print,
    rule: WidthRule = WidthRule.ALLOCATE,
    latency_base: float = 1.0,
) -> ControllerResult:
    """Turn ``scores`` into widths by the scorer's ``rule``, then (with ``measure``) verify on
    the device and re-allocate on a latency miss (tighter) or a large margin (looser).

    ``latency_base`` multiplies every latency target: a cost model of another precision
    than the budget's reference passes (dense fp32 / dense at its precision), predicted, so
    that a ratio budget stays relative to the dense fp32 model."""

    def allocate_at(scale: float) -> Allocation:
        scale *= latency_base
        if rule is WidthRule.UNIFORM or cfg.uniform:
            return uniform_allocate(cost, groups, scores, budget, scale)
        if rule is WidthRule.THRESHOLD:
            return threshold_allocate(cost, groups, scores, budget, droppable, cfg.allocator, scale)
        return allocate(cost, groups, scores, budget, droppable, cfg.allocator, scale)

    return verify_loop(model, allocate_at, budget, example_input, cfg, measure, log)


def verify_loop(
    model: nn.Module,
    allocate_at: Callable[[float], Allocation],
    budget: Budget,
    example_input: torch.Tensor,
    cfg: ControllerConfig,
    measure: Callable | None,
    log: Callable[[str], None],
) -> ControllerResult:
    """Allocate at a latency scale, measure, adjust the scale; bounded retries.

    A plan is met when the upper end of its measured ratio's 95% interval is within
    budget x (1 + tolerance) (``measured_verdict``); when ``measure`` has a ``confirm``
    (``budget.verify.Checks``), a plan the quick check meets is timed again in separate
    sessions and is met only if that says so too (a miss there tightens by its upper
    bound). The search aims the measured median at the landing zone [1 - slack, 1] x
    budget and stops there (or, confirmed, where the upper bound is within ``slack`` of
    the acceptance bound), tightening above it and loosening below it. The least-pruned
    met plan is kept."""
    scale = 1.0
    attempts: list[dict] = []
    best: ControllerResult | None = None  # the least-pruned plan measured within budget
    lo: tuple[float, float] | None = None  # largest scale measured under the aim, its offset
    hi: tuple[float, float] | None = None  # smallest scale measured over the aim, its offset
    aim = 1.0 - cfg.slack / 2.0  # the middle of the landing zone
    confirm = getattr(measure, "confirm", None)
    alloc: Allocation | None = None
    remeasure = False  # the last interval was too wide to steer by: time the plan again
    for attempt in range(cfg.max_retries + 1):
        if alloc is None or not remeasure:
            try:
                alloc = allocate_at(scale)
            except InfeasibleBudget as err:
                if best is None and attempt == 0:
                    raise
                log(f"no plan at target x{scale:.3f} ({err}); keeping the last measured one")
                break
        remeasure = False
        rec = {
            "attempt": attempt,
            "latency_scale": scale,
            "predicted_latency_ms": alloc.metrics.get("latency_ms"),
            "widths": dict(alloc.widths),
        }
        attempts.append(rec)
        if measure is None or not budget.has_latency:
            return ControllerResult(alloc, attempts)
        pruned = apply_plan_(copy.deepcopy(model), alloc.plan, example_input)
        m, measured = measure(model, pruned), alloc
        judged = measured_verdict(budget, m, cfg.tolerance)
        rec.update(_attempt_record(budget, m, judged))
        log(f"attempt {attempt}: predicted {alloc.metrics['latency_ms']:.3f} ms, " + _said(m))
        confirmed = judged.met and confirm is not None
        if confirmed:  # accepted only if separate sessions say so too
            m = confirm(model, pruned)
            judged = measured_verdict(budget, m, cfg.tolerance)
            rec["confirm"] = _attempt_record(budget, m, judged)
            rec["met"] = judged.met
            n = len(m.sessions) or 1
            verdict_ = "met" if judged.met else "NOT met"
            log(f"attempt {attempt}: confirmed in {n} sessions: {_said(m)}: {verdict_}")
        met, miss = judged.met, judged.latency_miss  # miss of the interval's upper end
        position = _position(budget, m)  # measured median / budget
        if met and (best is None or _kept(alloc, m) > _kept(best.allocation, best.measurement)):
            best = ControllerResult(alloc, attempts, m, True)
        if met and _landed(position, miss, confirmed, cfg):
            break
        if met and _is_whole(alloc):  # under the landing zone, but nothing left to give back
            log("the plan keeps the whole model and meets the budget: nothing to loosen")
            break
        # over: tighten; under the landing zone: loosen. Once one scale landed under the
        # aim and one over, interpolate between them (latency is a staircase in the
        # widths, so a plain multiplicative step can oscillate).
        if not confirmed and _too_wide_to_steer(m, position, cfg):  # load: time it again
            remeasure = True
            log(f"the interval is too wide to steer by (±{m.interval.halfwidth:.1%}): again")
            continue
        offset = position / aim - 1.0
        if not met:  # tighten by the interval's upper end, at least a little
            offset = max(offset, (1.0 + miss) / (1.0 + cfg.tolerance) - 1.0 + 0.005)
        if offset < 0:
            lo = max(lo, (scale, offset), key=lambda t: t[0]) if lo else (scale, offset)
        else:
            hi = min(hi, (scale, offset), key=lambda t: t[0]) if hi else (scale, offset)
        if lo and hi and lo[0] < hi[0]:
            (s_lo, o_lo), (s_hi, o_hi) = lo, hi
            frac = (0.0 - o_lo) / (o_hi - o_lo) if o_hi != o_lo else 0.5
            scale = s_lo + min(0.9, max(0.1, frac)) * (s_hi - s_lo)
        else:  # a table off by more than 25% is noise or load, not a table error
            scale *= min(1.25, max(0.8, 1.0 / (1.0 + offset)))
        what = "reaches over the budget" if not met else "is under the landing zone"
        log(
            f"measured latency {what} (median at {position:.1%} of it, interval up to "
            f"{1.0 + miss:.1%}); re-allocating (target x{scale:.3f})"
        )
    if best is not None:
        best.attempts = attempts
        return best
    return ControllerResult(measured, attempts, m, False)


def _kept(alloc: Allocation, m) -> tuple[float, float]:
    """How much of the model a plan keeps, to compare plans: its predicted latency (the
    same table for every attempt), then its measured ratio (absolute milliseconds from
    different sessions are not comparable: a loaded session inflates both models')."""
    pred = alloc.metrics.get("latency_ms", math.nan)
    return (pred if math.isfinite(pred) else 0.0, m.ratio)


def _attempt_record(budget: Budget, m, judged) -> dict:
    """One measurement of an attempt for the report: latencies, ratio, interval, verdict."""
    rec = {
        "measured_latency_ms": m.pruned_ms,
        "dense_latency_ms": m.dense_ms,
        "ratio": m.ratio,
        "miss": judged.latency_miss,
        "position": _position(budget, m),
        "met": judged.met,
    }
    if getattr(m, "interval", None) is not None:
        rec["interval"] = m.interval.to_dict()
    return rec


def _landed(position: float, miss: float, confirmed: bool, cfg: ControllerConfig) -> bool:
    """A met plan that needs no loosening: its median in the landing zone, or (confirmed
    in separate sessions) its interval's upper end within ``slack`` of the acceptance
    bound, so that pruning less would likely cross it."""
    if position >= 1.0 - cfg.slack:
        return True
    return confirmed and 1.0 + miss >= (1.0 + cfg.tolerance) * (1.0 - cfg.slack)


def _is_whole(alloc: Allocation) -> bool:
    """The allocation keeps every channel and block of the dense model."""
    dense = alloc.dense_metrics.get("flops")
    return not alloc.dropped_blocks and bool(dense) and alloc.metrics.get("flops", 0) >= dense


def _too_wide_to_steer(m, position: float, cfg: ControllerConfig) -> bool:
    """The interval is over twice its asked half-width and reaches into the landing zone
    or across the acceptance bound: which way to go is unclear. (An interval wholly over
    budget x (1 + tolerance), or wholly under the landing zone, still steers.)"""
    iv = getattr(m, "interval", None)
    if iv is None or not iv.target_halfwidth or iv.halfwidth <= 2 * iv.target_halfwidth:
        return False
    lo, hi = position * iv.lo / iv.median, position * iv.hi / iv.median
    return not (lo > 1.0 + cfg.tolerance or hi < 1.0 - cfg.slack)


def _position(budget: Budget, m) -> float:
    """The measured median as a fraction of the budget (ratio or milliseconds)."""
    if budget.latency_ratio is not None:
        return m.ratio / budget.latency_ratio
    return m.pruned_ms / budget.latency_ms


def _said(m) -> str:
    """One measurement in words: the two latencies and the ratio with its interval."""
    iv = getattr(m, "interval", None)
    ratio = iv.describe() if iv is not None else f"{m.ratio:.3f}"
    return f"measured {m.pruned_ms:.3f} ms vs dense {m.dense_ms:.3f} ms (ratio {ratio})"


@dataclass(frozen=True)
class PrecisionOption:
    """One precision a device offers a run: the predicted latency of the dense model at that
    precision over the dense fp32 model's (``dense_ratio``; 1 for fp32)."""

    precision: str
    dense_ratio: float = 1.0


@dataclass
class PrecisionChoice:
    """The chosen precision, its controller result, and per precision what was found."""

    precision: str
    result: ControllerResult
    candidates: dict[str, dict] = field(default_factory=dict)
    rule: str = ""

    def to_dict(self) -> dict:
        """The report's ``precision_choice``."""
        return {"chosen": self.precision, "rule": self.rule, "candidates": self.candidates}


PRECISION_RULE = (
    "each precision the device's table measured and whose dense model it predicts faster "
    "than dense fp32 gets its own plan for the budget (relative to dense fp32); the plan "
    "whose measured verification meets the budget and whose quantized model scores best on "
    "the val split (the same images for every precision) is chosen (without val data: the "
    "one that keeps the most FLOPs); a tie goes to fp32"
)


# a tie between precisions goes to the earlier one here
_TIE_ORDER = {"fp32": 0, "int8": 1}


def offered_precisions(options: list[PrecisionOption]) -> list[PrecisionOption]:
    """fp32, and each other precision whose dense model is predicted faster than fp32's
    (a device where int8 is slower never offers it)."""
    return [o for o in options if o.precision == "fp32" or o.dense_ratio < 1.0]


def choose_precision(
    options: list[PrecisionOption],
    decide_at: Callable[[PrecisionOption], ControllerResult],
    score: Callable[[str, ControllerResult], float] | None,
    log: Callable[[str], None] = print,
    forced: bool = False,
) -> PrecisionChoice:
    """Decide a plan per offered precision (``decide_at``), then choose by ``score``
    (higher is better; e.g. val top-1 of the quantized candidate): ``PRECISION_RULE``.

    A precision with no feasible plan, or whose measured plan misses the budget while
    another's meets it, is out. With a single candidate nothing is scored."""
    found: dict[str, ControllerResult] = {}
    record: dict[str, dict] = {}
    for o in options:
        rec: dict = {"dense_ratio_predicted": o.dense_ratio}
        record[o.precision] = rec
        if not forced and o not in offered_precisions(options):
            rec["excluded"] = "the table predicts its dense model no faster than dense fp32"
            continue
        try:
            res = decide_at(o)
        except InfeasibleBudget as err:
            rec["excluded"] = f"no plan meets the budget ({err})"
            continue
        found[o.precision] = res
        rec.update(_precision_record(res, o.dense_ratio))
    met = [p for p, r in found.items() if r.budget_met_latency is not False]
    pool = met or list(found)
    if not pool:
        why = "; ".join(f"{p}: {r['excluded']}" for p, r in record.items() if "excluded" in r)
        raise InfeasibleBudget(f"no precision has a plan that meets the budget ({why})")
    if len(pool) > 1 and score is not None:
        for p in pool:
            record[p]["val_score"] = float(score(p, found[p]))
            log(f"precision {p}: val score {record[p]['val_score']:.4f}")
        best = max(pool, key=lambda p: (record[p]["val_score"], -_TIE_ORDER.get(p, 9)))
    elif len(pool) > 1:
        # nothing to score (no data): the candidate that keeps the most of the model
        for p in pool:
            record[p]["flops_kept"] = round(_flops_kept(found[p]), 4)
        best = max(pool, key=lambda p: (record[p]["flops_kept"], -_TIE_ORDER.get(p, 9)))
        log(
            f"precision {best}: no val data, kept the most FLOPs ({record[best]['flops_kept']:.3f})"
        )
    else:
        best = pool[0]
    for p in record:
        record[p]["chosen"] = p == best
    return PrecisionChoice(best, found[best], record, PRECISION_RULE)


def _flops_kept(res: ControllerResult) -> float:
    """The share of the dense model's FLOPs a candidate keeps (1.0 when unknown)."""
    a = res.allocation
    dense = a.dense_metrics.get("flops") or 0.0
    return float(a.metrics.get("flops", dense)) / dense if dense else 1.0


def _precision_record(res: ControllerResult, dense_ratio: float) -> dict:
    """A candidate's predicted and measured ratio to the dense fp32 model (the measured one
    with its 95% interval) for the report."""
    alloc = res.allocation
    pred, dense = alloc.metrics.get("latency_ms"), alloc.dense_metrics.get("latency_ms")
    out: dict = {"predicted_latency_ms": pred, "budget_met": res.budget_met_latency}
    if pred is not None and dense and math.isfinite(pred):
        out["predicted_ratio"] = pred / dense * dense_ratio
    m = res.measurement
    if m is not None:
        out["measured_ratio"] = m.ratio
        iv = getattr(m, "interval", None)
        out["measured_ratio_ci95"] = [iv.lo, iv.hi] if iv is not None else None
    out["widths"] = dict(alloc.widths)
    out["predicted_dense_latency_ms_this_precision"] = dense
    return out
