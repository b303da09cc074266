"""Peer baseline: Torch-Pruning's MagnitudePruner (GroupMagnitudeImportance) at one channel
ratio, the ratio matched to the budget by bisection (on the device's measured latency when
the pipeline gives a measurer, else on the predicted/counted metrics).

Torch-Pruning chooses the channels; edgeprune's surgery applies the choice, so the slim
model is built, exported and measured exactly like every other method's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch.nn as nn

from edgeprune.budget.verdict import verdict
from edgeprune.config_io import from_dict
from edgeprune.errors import InfeasibleBudget, UserError
from edgeprune.methods.base import (
    IterativeMethod,
    IterativeResult,
    MethodContext,
    register_method,
)
from edgeprune.search import bisect_float
from edgeprune.surgery import Plan, apply_plan_

MAX_RATIO = 0.95


@dataclass(frozen=True)
class TPMagnitudeConfig:
    """tp-magnitude's options: norm ``p``, ``global_pruning``, and the ratio search."""

    p: int = 2
    global_pruning: bool = False
    search_steps: int = 10
    max_measurements: int = 7

    @classmethod
    def from_dict(cls, d: dict) -> TPMagnitudeConfig:
        """Build from options: unknown keys and wrong types are one UserError."""
        return from_dict(cls, d, "method 'tp-magnitude'")


@dataclass
class _Search:
    """One run's ratio search: the largest ratio TP can reach and every trial, in order."""

    hi: float
    trace: list[dict] = field(default_factory=list)


@register_method("tp-magnitude")
class TPMagnitudeMethod(IterativeMethod):
    """Torch-Pruning's magnitude pruner as a user would run it, ratio matched to the budget."""

    config_cls = TPMagnitudeConfig

    def __init__(self, **options) -> None:
        c = TPMagnitudeConfig.from_dict(options)
        self.p, self.global_pruning = c.p, c.global_pruning
        self.search_steps, self.max_measurements = c.search_steps, c.max_measurements

    def _plan(self, model: nn.Module, ctx: MethodContext, ratio: float) -> Plan:
        from edgeprune.surgery.tp_importance import tp_magnitude_plan

        return tp_magnitude_plan(model, ctx.example_input, ratio, self.p, self.global_pruning)

    def _slim(self, model: nn.Module, plan: Plan, ctx: MethodContext) -> nn.Module:
        return apply_plan_(copy.deepcopy(model), plan, ctx.example_input)

    def run(self, model, groups, ctx: MethodContext) -> IterativeResult:
        oracle = ctx.oracle
        if oracle is None:
            raise UserError("tp-magnitude needs a budget")
        # above this, TP would leave a layer with no channel and skips it (not monotone)
        search = _Search(min(MAX_RATIO, 1.0 - 1.0 / min(g.channels for g in groups)))

        def fits_predicted(r: float) -> bool:
            m = oracle.metrics(self._slim(model, self._plan(model, ctx, r), ctx))
            ok = verdict(m, oracle.targets).met  # predicted and counted: judged exactly
            search.trace.append({"ratio": r, "fits_predicted": ok, **m})
            return ok

        if not fits_predicted(search.hi):
            raise InfeasibleBudget(
                f"budget infeasible for tp-magnitude: even pruning {search.hi:.0%} of the "
                "channels misses it"
            )
        ratio = _bisect(fits_predicted, self.search_steps, 0.0, search.hi)
        ctx.log(f"tp-magnitude: predicted/counted budget met at pruning ratio {ratio:.3f}")
        if oracle.measure is not None and "latency_ms" in oracle.targets:
            ratio = self._match_measured(model, ctx, ratio, search)
        plan = self._plan(model, ctx, ratio)
        plan.meta["pruning_ratio"] = ratio
        diag = {"search": list(search.trace), "p": self.p, "global_pruning": self.global_pruning}
        return IterativeResult(self._slim(model, plan, ctx), plan, diag)

    def _match_measured(
        self, model: nn.Module, ctx: MethodContext, r0: float, search: _Search
    ) -> float:
        """Bisection on the measured latency ratio, bracketed around the predicted ratio."""
        oracle = ctx.oracle
        target = oracle.targets["latency_ms"] / oracle.dense_metrics["latency_ms"]
        limit = {"latency_ratio": target}
        measured: dict[float, float] = {}

        def fits(r: float) -> bool:
            dense_ms, ms = oracle.measure(self._slim(model, self._plan(model, ctx, r), ctx))
            measured[r] = ms / dense_ms
            search.trace.append({"ratio": r, "measured_ratio": measured[r], "target": target})
            ctx.log(f"tp-magnitude: ratio {r:.3f} -> measured {measured[r]:.3f} (<= {target:.3f})")
            # measured: judged with the run's one latency tolerance (the controller's)
            return verdict({"latency_ratio": measured[r]}, limit, oracle.tolerance).met

        lo, hi = _bracket(fits, r0, self.max_measurements, search.hi)
        n_left = self.max_measurements - len(measured)
        return _bisect(fits, n_left, lo, hi) if n_left > 0 and lo < hi else hi


def _bisect(fits: Callable[[float], bool], steps: int, lo: float, hi: float) -> float:
    """Smallest pruning ratio in [lo, hi] that fits (``hi`` assumed to fit)."""
    return bisect_float(fits, lo, hi, steps)[1]


def _bracket(
    fits: Callable[[float], bool], r0: float, budget: int, top: float
) -> tuple[float, float]:
    """(lo, hi): lo does not fit (or is 0), hi fits; stepping out from ``r0`` by 0.05,
    doubling the step each time (the prediction may be far off)."""
    step, used = 0.05, 1
    if fits(r0):
        hi, lo = r0, max(0.0, r0 - step)
        while lo > 0.0 and used < budget and fits(lo):
            step *= 2
            hi, lo, used = lo, max(0.0, lo - step), used + 1
        return lo, hi
    lo, hi = r0, min(top, r0 + step)
    while hi < top and used < budget and not fits(hi):
        step *= 2
        lo, hi, used = hi, min(top, hi + step), used + 1
    return lo, hi
