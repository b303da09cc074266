"""The one budget verdict: do these metrics meet these targets, and by how much does
latency miss.

Counts (params, FLOPs, weight and activation bytes) either fit their limit or not; only
latency, a measurement, gets a tolerance, and only when the caller passes one (the
controller's ``tolerance`` for measured latency; predictions are judged exactly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeprune.budget.budget import Budget

LATENCY_TOLERANCE = 0.03  # default: a measured latency within 3% over its limit is noise
LATENCY_METRICS = frozenset({"latency_ms", "latency_ratio"})
# Float rounding, the only slack besides the latency tolerance: a ratio budget's limit is
# ratio * dense count (0.3 * 1000 may round to 299.99999999999994), and a predicted
# latency summed in another order differs by ~1e-15. A relative 1e-12 covers both and is
# far below one count of any real model.
_ROUNDING = 1e-12


@dataclass(frozen=True)
class Row:
    """One target's judgement: the metric, its value and limit, value / limit, met."""

    metric: str
    value: float
    limit: float
    ratio: float
    met: bool


@dataclass(frozen=True)
class Verdict:
    """Whether every target is met, one row per target, and the latency miss (None
    without a latency target): the fraction by which latency exceeds its limit."""

    met: bool
    rows: tuple[Row, ...]
    latency_miss: float | None = None

    @property
    def violated(self) -> dict[str, float]:
        """The missed targets: metric -> limit."""
        return {r.metric: r.limit for r in self.rows if not r.met}

    def to_dict(self) -> dict:
        return {
            "met": self.met,
            "latency_miss": self.latency_miss,
            "rows": [r.__dict__ for r in self.rows],
        }


def latency_miss(measured: float, limit: float) -> float:
    """How far ``measured`` exceeds ``limit``, as a fraction of it (<= 0: within it).

    Works on absolute latencies and on ratios to dense alike."""
    return measured / limit - 1.0


def verdict(metrics: dict[str, float], targets: dict[str, float], tol: float = 0.0) -> Verdict:
    """Judge ``metrics`` against ``targets`` (metric -> limit). ``tol`` loosens latency
    only (a miss up to ``tol`` counts as met); a metric that is absent or NaN is not met."""
    rows, miss = [], None
    for k, limit in targets.items():
        value = float(metrics.get(k, math.nan))
        if math.isnan(value):
            met = False
        else:
            met = value <= limit or math.isclose(value, limit, rel_tol=_ROUNDING)
            if k in LATENCY_METRICS:
                miss = latency_miss(value, limit)
                met = met or miss <= tol
        ratio = value / limit if limit else math.inf
        rows.append(Row(k, value, float(limit), ratio, bool(met)))
    return Verdict(all(r.met for r in rows), tuple(rows), miss)


def measured_verdict(budget: Budget, measurement, tol: float) -> Verdict:
    """Judge a device measurement (``budget.verify.Measurement``) against the budget's
    latency: the ratio to dense taken in the same run, or milliseconds. The upper end of the
    ratio's 95% interval is judged (the median where the measurement has no interval): met
    only when the interval says so."""
    ratio = getattr(measurement, "ratio_upper", measurement.ratio)
    if budget.latency_ratio is not None:
        return verdict({"latency_ratio": ratio}, {"latency_ratio": budget.latency_ratio}, tol)
    ms = getattr(measurement, "pruned_ms_upper", measurement.pruned_ms)
    return verdict({"latency_ms": ms}, {"latency_ms": budget.latency_ms}, tol)
