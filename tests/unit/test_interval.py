"""The ratio interval arithmetic and the stop rule, on scripted per-round times (no timing)."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from edgeprune.deploy_agent import edgeprune_agent as agent

from edgeprune.runtimes.interval import (
    STOP_FIXED,
    STOP_NARROW,
    STOP_SESSIONS_DISAGREE,
    STOP_TIME_CAP,
    RatioInterval,
    combine_sessions,
    median_ci_bounds,
    median_interval,
    ratio_interval,
    should_stop,
    t95,
)
from edgeprune.runtimes.timing import pair_interval


def test_order_statistic_bounds_cover_the_median():
    assert median_ci_bounds(5) is None  # too few rounds for any interval
    lo, hi = median_ci_bounds(100)
    assert (lo, hi) == (39, 60)  # the textbook 95% ranks 40 and 61 (1-based)
    for n in range(6, 400):
        b = median_ci_bounds(n)
        if b is not None:
            assert 0 <= b[0] < (n - 1) / 2 < b[1] <= n - 1


def test_agent_copy_agrees_with_the_package():
    for n in range(0, 3000, 7):
        assert agent.median_ci_bounds(n) == median_ci_bounds(n)
    rng = random.Random(1)
    a = [1.0 + rng.random() * 0.1 for _ in range(501)]
    b = [0.5 * x * (1 + rng.gauss(0, 0.02)) for x in a]
    iv = ratio_interval(a, b)
    assert agent.ratio_halfwidth(a, b) == pytest.approx(iv.halfwidth, rel=1e-12)


def test_interval_of_a_known_ratio_narrows_with_rounds():
    rng = random.Random(0)

    def rounds(n):
        a = [2.0 * (1 + abs(rng.gauss(0, 0.05))) for _ in range(n)]
        return a, [x * 0.5 * (1 + rng.gauss(0, 0.03)) for x in a]

    few, many = ratio_interval(*rounds(50)), ratio_interval(*rounds(2000))
    for iv in (few, many):
        assert iv.lo <= iv.median <= iv.hi and iv.lo < 0.5 < iv.hi
        assert iv.stop == STOP_FIXED and iv.n_rounds in (50, 2000)
    assert many.halfwidth < few.halfwidth / 3  # ~1/sqrt(n)
    assert many.spread == pytest.approx(2 * 0.6745 * 0.03, rel=0.2)  # IQR of the noise


def test_a_load_spike_moves_the_median_little():
    a, b = [1.0] * 200, [0.5] * 200
    for i in range(0, 200, 10):  # one round in ten hit by another process, either model
        a[i] = 3.0
    iv = ratio_interval(a, b)
    assert iv.median == 0.5 and iv.hi == 0.5


def test_stop_reason_is_judged_against_the_target():
    a = [1.0] * 100
    b = [0.5 + 0.01 * ((i * 37) % 11 - 5) / 5 for i in range(100)]  # +-2% spread
    assert ratio_interval(a, b, target_halfwidth=0.015).stop == STOP_NARROW
    wide = [0.5 * (1 + 0.3 * ((i * 37) % 11 - 5) / 5) for i in range(100)]
    assert ratio_interval(a, wide, target_halfwidth=0.015).stop == STOP_TIME_CAP
    assert ratio_interval(a, wide, target_halfwidth=0.015, stop="narrow").stop == "narrow"


def test_should_stop_narrow_time_cap_or_keep_going():
    tight = [0.5 + 0.001 * (i % 3) for i in range(60)]
    loose = [0.5 * (1 + 0.5 * ((i * 7) % 9 - 4) / 4) for i in range(60)]
    assert should_stop(tight, 1.0, 3.0, 10.0, 0.015) is None  # never before min time
    assert should_stop(tight, 3.5, 3.0, 10.0, 0.015) == STOP_NARROW
    assert should_stop(loose, 3.5, 3.0, 10.0, 0.015) is None  # wide: go on
    assert should_stop(loose, 10.0, 3.0, 10.0, 0.015) == STOP_TIME_CAP
    assert should_stop(tight[:4], 10.0, 3.0, 10.0, 0.015) == STOP_TIME_CAP  # too few rounds


def test_pair_interval_from_agent_rows_in_either_direction():
    dense = {"times_ms": [2.0, 2.2, 2.1, 2.0, 2.3, 2.1, 2.0, 2.2]}
    pruned = {"times_ms": [1.0, 1.1, 1.05, 1.0, 1.15, 1.05, 1.0, 1.1], "stop": "time_cap"}
    iv = pair_interval(pruned, dense, 0.015)
    assert iv.median == pytest.approx(0.5) and iv.stop == STOP_TIME_CAP
    inv = pair_interval(dense, pruned)
    assert inv.median == pytest.approx(2.0) and inv.stop == STOP_FIXED
    assert pair_interval({"latency_ms_median": 1.0}, dense) is None  # not interleaved
    back = RatioInterval.from_dict(iv.to_dict())
    assert back == iv and "rounds" in back.describe()


def test_median_interval_small_samples_fall_back_to_range():
    assert median_interval([3.0, 1.0, 2.0]) == (2.0, 1.0, 3.0)
    with pytest.raises(ValueError):
        median_interval([])
    assert math.isfinite(ratio_interval([1.0] * 10, [0.7] * 10).halfwidth)


def test_agent_measure_stops_on_narrow_or_cap():
    """The agent's adaptive loop on two constant-cost callables (fast: tiny sleeps not
    needed; identical work gives a narrow ratio at once)."""

    def work():
        sum(range(200))

    narrow = agent.measure(
        [work, work],
        warmup=1,
        min_time_s=0.05,
        min_runs=20,
        halfwidth=0.5,
        max_time_s=2.0,
        keep_times=True,
    )
    assert narrow[0]["stop"] == "narrow" and len(narrow[0]["times_ms"]) == narrow[0]["n_runs"]
    sizes = iter([100, 400] * 100_000)  # alternating costs: per-round ratios never all equal

    def uneven():
        sum(range(next(sizes)))

    capped = agent.measure(
        [work, uneven], warmup=1, min_time_s=0.05, min_runs=20, halfwidth=1e-9, max_time_s=0.2
    )
    assert capped[1]["stop"] == "time_cap" and "times_ms" not in capped[1]


def test_two_sessions_combine_to_the_hull_and_say_when_they_disagree():
    a = RatioInterval(0.50, 0.495, 0.505, 300, 0.05, STOP_NARROW, 0.015)
    b = RatioInterval(0.53, 0.525, 0.535, 300, 0.06, STOP_NARROW, 0.015)
    both = combine_sessions([a, b])
    assert (both.lo, both.hi, both.n_rounds) == (0.495, 0.535, 600)
    assert both.spread == 0.06 and both.median == pytest.approx(0.515)
    assert both.stop == STOP_SESSIONS_DISAGREE  # each +-1%, together +-4% > 1.5%
    close = RatioInterval(0.502, 0.497, 0.507, 300, 0.05, STOP_NARROW, 0.015)
    assert combine_sessions([a, close]).stop == STOP_NARROW
    capped = RatioInterval(0.50, 0.45, 0.55, 50, 0.2, STOP_TIME_CAP, 0.015)
    assert combine_sessions([a, capped]).stop == STOP_TIME_CAP
    assert combine_sessions([a]) is a


def test_more_sessions_give_a_t_interval_over_their_medians():
    """The final verification of a 0.3x plan on the quiet VM (session 7): six sessions, each
    +-1%, medians 0.270-0.310. The t-interval (5 df) is narrower than the hull (0.267-0.312)
    but far wider than any one session's; it shrinks as the sessions agree."""
    medians = [0.275, 0.270, 0.286, 0.275, 0.297, 0.310]
    ivs = [RatioInterval(m, m * 0.99, m * 1.01, 700, 0.05, STOP_NARROW, 0.015) for m in medians]
    got = combine_sessions(ivs)
    mean, sd = statistics.fmean(medians), statistics.stdev(medians)
    half = 2.571 * sd / math.sqrt(6)
    assert got.median == pytest.approx(0.2805)  # the median of the session medians
    assert (got.lo, got.hi) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert 0.267 < got.lo < 0.272 and 0.299 < got.hi < 0.312
    assert got.stop == STOP_SESSIONS_DISAGREE and got.n_rounds == 4200
    same = combine_sessions([ivs[0]] * 6)  # sessions that agree: a typical one's / sqrt(6)
    assert same.hi - same.median == pytest.approx(0.275 * 0.01 / math.sqrt(6))
    assert same.stop == STOP_NARROW


def test_t_quantiles():
    assert t95(5) == 2.571 and t95(2) == 4.303
    assert t95(11) == t95(10)  # not tabulated: the next smaller df, conservative
    assert t95(1000) == pytest.approx(1.962, abs=1e-3)
    with pytest.raises(ValueError):
        t95(0)
