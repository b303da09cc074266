"""Confidence intervals for timings: the median of per-round ratios B/A of two models timed
interleaved, with a distribution-free 95% interval, and the rule that says when to stop.

Pure arithmetic (stdlib only), unit-tested on scripted sequences. The device agent keeps a
copy of ``median_ci_bounds`` for its stop rule (it must stay standalone); a test asserts the
two agree.

The interval is the order-statistic interval of the median: with n values sorted, the
median lies between the l-th and u-th value with l = floor(n/2 - z*sqrt(n)/2) and
u = ceil(1 + n/2 + z*sqrt(n)/2) (1-based; the normal approximation of the binomial). It
assumes nothing about the distribution (timings are skewed by load spikes) but treats the
rounds as independent; interleaving makes neighbouring rounds see the same machine load.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

Z95 = 1.959963984540054  # two-sided 95%
MIN_ROUNDS = 6  # fewer rounds than this: no interval (it would be min..max at best)
STOP_NARROW = "narrow"  # half-width reached the target
STOP_TIME_CAP = "time_cap"  # the time cap came first: the interval is wider than asked
STOP_FIXED = "fixed"  # no target asked: timed for the minimum time only
STOP_SESSIONS_DISAGREE = "sessions_disagree"  # each session narrow, together not


def median_ci_bounds(n: int, z: float = Z95) -> tuple[int, int] | None:
    """0-based indices (lo, hi) into n sorted values bounding their median's interval,
    or None when n is too small for one."""
    if n < MIN_ROUNDS:
        return None
    half = z * math.sqrt(n) / 2.0
    lo = int(math.floor(n / 2.0 - half))  # 1-based
    hi = int(math.ceil(1.0 + n / 2.0 + half))
    if lo < 1 or hi > n:
        return None
    return lo - 1, hi - 1


@dataclass(frozen=True)
class RatioInterval:
    """The median of per-round ratios B/A with its 95% interval, how many rounds it rests
    on, their spread (interquartile range of the ratios / median), and why timing stopped."""

    median: float
    lo: float
    hi: float
    n_rounds: int
    spread: float
    stop: str = STOP_FIXED
    target_halfwidth: float | None = None

    @property
    def halfwidth(self) -> float:
        """Half the interval's width, relative to the median."""
        return (self.hi - self.lo) / 2.0 / self.median if self.median else math.inf

    @property
    def narrow_enough(self) -> bool:
        """The half-width met the target (False when no target was asked)."""
        return self.target_halfwidth is not None and self.halfwidth <= self.target_halfwidth

    def to_dict(self) -> dict:
        d = asdict(self)
        d["halfwidth"] = self.halfwidth
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RatioInterval:
        names = {"median", "lo", "hi", "n_rounds", "spread", "stop", "target_halfwidth"}
        return cls(**{k: v for k, v in d.items() if k in names})

    def describe(self) -> str:
        """``0.512 [0.505, 0.519] (±1.4%, 812 rounds, narrow)``."""
        return (
            f"{self.median:.3f} [{self.lo:.3f}, {self.hi:.3f}] (±{self.halfwidth:.1%}, "
            f"{self.n_rounds} rounds, {self.stop})"
        )


def median_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float, float]:
    """(median, lo, hi) of ``values``; lo/hi are min/max when there are too few values."""
    xs = sorted(float(v) for v in values)
    if not xs:
        raise ValueError("no values")
    med = statistics.median(xs)
    idx = median_ci_bounds(len(xs), z)
    if idx is None:
        return med, xs[0], xs[-1]
    return med, xs[idx[0]], xs[idx[1]]


def round_ratios(a_times: Sequence[float], b_times: Sequence[float]) -> list[float]:
    """B/A per interleaved round (the two lists hold one time per round, in order)."""
    if len(a_times) != len(b_times):
        raise ValueError(f"{len(a_times)} rounds of A but {len(b_times)} of B")
    return [b / a for a, b in zip(a_times, b_times, strict=True) if a > 0]


def ratio_interval(
    a_times: Sequence[float],
    b_times: Sequence[float],
    *,
    target_halfwidth: float | None = None,
    stop: str | None = None,
    z: float = Z95,
) -> RatioInterval:
    """The interval of B/A from per-round times of A and B timed interleaved.

    ``stop`` is why the timing stopped (the agent's word); without it, it is judged here:
    narrow when ``target_halfwidth`` is met, else the time cap (or fixed without a target).
    """
    ratios = round_ratios(a_times, b_times)
    if not ratios:
        raise ValueError("no timed rounds")
    med, lo, hi = median_interval(ratios, z)
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [med, med, med]
    spread = (q[2] - q[0]) / med if med else math.inf
    out = RatioInterval(med, lo, hi, len(ratios), spread, STOP_FIXED, target_halfwidth)
    if stop is None:
        if target_halfwidth is None:
            stop = STOP_FIXED
        else:
            stop = STOP_NARROW if out.narrow_enough else STOP_TIME_CAP
    return RatioInterval(med, lo, hi, len(ratios), spread, stop, target_halfwidth)


def should_stop(
    ratios: Sequence[float],
    elapsed_s: float,
    min_time_s: float,
    max_time_s: float,
    target_halfwidth: float,
) -> str | None:
    """Why to stop timing now (``narrow`` or ``time_cap``), or None to keep going.

    Never before ``min_time_s``; at ``max_time_s`` whatever the width."""
    if elapsed_s < min_time_s:
        return None
    med, lo, hi = median_interval(ratios) if ratios else (0.0, 0.0, 0.0)
    if len(ratios) >= MIN_ROUNDS and med > 0 and (hi - lo) / 2.0 / med <= target_halfwidth:
        return STOP_NARROW
    return STOP_TIME_CAP if elapsed_s >= max_time_s else None


# separate sessions for a confirmation, the final verification and deploy --compare-dense;
# their medians give a t-interval with DEFAULT_SESSIONS - 1 degrees of freedom
DEFAULT_SESSIONS = 6
# two-sided 95% quantiles of Student's t by degrees of freedom (a standard table)
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}
_T95.update({9: 2.262, 10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042})


def t95(df: int) -> float:
    """Student's t two-sided 95% quantile for ``df`` >= 1 degrees of freedom (the next
    smaller tabulated df where not tabulated: conservative; 1.96 + 2.5 / df beyond 30)."""
    if df < 1:
        raise ValueError("t needs at least one degree of freedom")
    if df > 30:
        return Z95 + 2.5 / df
    return _T95[max(k for k in _T95 if k <= df)]


def combine_sessions(intervals: Sequence[RatioInterval]) -> RatioInterval:
    """One interval from several separate timing sessions of the same pair.

    The sessions are the unit: rounds within a session share its state (thread placement,
    the host's load at the time), so they cannot show what the next session will read; on
    a 2-vCPU VM a 2-thread ratio moved up to +-12% between sessions while each session's own
    interval was +-1%. The ratio is the median of the session medians; from 3 sessions on,
    the interval is the 95% t-interval of the mean session median (k - 1 degrees of
    freedom; widened to include the median), at least as wide as a typical session's own
    interval over sqrt(k); with 2 sessions, the hull of their intervals. Narrow only if
    every session was and the combination is too (``sessions_disagree`` when only the
    sessions were)."""
    if not intervals:
        raise ValueError("no sessions")
    if len(intervals) == 1:
        return intervals[0]
    k = len(intervals)
    medians = [iv.median for iv in intervals]
    med = statistics.median(medians)
    if k < 3:
        lo, hi = min(iv.lo for iv in intervals), max(iv.hi for iv in intervals)
    else:
        mean = statistics.fmean(medians)
        own = statistics.median((iv.hi - iv.lo) / 2.0 for iv in intervals) / math.sqrt(k)
        half = max(t95(k - 1) * statistics.stdev(medians) / math.sqrt(k), own)
        lo, hi = min(mean - half, med), max(mean + half, med)
    target = intervals[0].target_halfwidth
    stops = {iv.stop for iv in intervals}
    if stops == {STOP_NARROW}:  # each was narrow: is the combination?
        narrow = target is None or (hi - lo) / 2.0 / med <= target
        stop = STOP_NARROW if narrow else STOP_SESSIONS_DISAGREE
    else:
        stop = STOP_FIXED if stops == {STOP_FIXED} else STOP_TIME_CAP
    n = sum(iv.n_rounds for iv in intervals)
    return RatioInterval(med, lo, hi, n, max(iv.spread for iv in intervals), stop, target)
