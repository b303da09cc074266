"""The controller's acceptance rule on scripted measurements: a plan is met only when the
upper end of its ratio's 95% interval is within budget x (1 + tolerance), and the search
aims the measured median at the landing zone [0.95, 1.00] x budget."""

from __future__ import annotations

import pytest
import torch

from edgeprune.budget import Budget
from edgeprune.budget.allocator import Allocation
from edgeprune.budget.controller import ControllerConfig, verify_loop
from edgeprune.budget.verdict import measured_verdict
from edgeprune.budget.verify import Checks, Measurement
from edgeprune.models import create_model
from edgeprune.runtimes.interval import RatioInterval
from edgeprune.surgery import Plan

BUDGET = Budget(latency_ratio=0.5, device="x")
DENSE_MS = 10.0


def _measurement(median: float, halfwidth: float) -> Measurement:
    lo, hi = median * (1 - halfwidth), median * (1 + halfwidth)
    iv = RatioInterval(median, lo, hi, 400, 0.02, "time_cap", 0.015)
    return Measurement(DENSE_MS, DENSE_MS * median, 400, "scripted", iv)


def _table_allocator(scales: list):
    """allocate_at for verify_loop: the table promises 0.5 * scale; each scale asked is
    appended to ``scales``."""

    def allocate_at(scale):
        scales.append(scale)
        metrics = {"latency_ms": DENSE_MS * 0.5 * scale}
        return Allocation({}, Plan({}), metrics, {"latency_ms": DENSE_MS}, {}, 0, [])

    return allocate_at


def _run(device_ratio, halfwidth=0.01, cfg=ControllerConfig(), confirm=None):  # noqa: B008
    """verify_loop where the table promises 0.5 * scale and the device measures
    ``device_ratio(scale)`` with a +-``halfwidth`` interval; ``confirm(scale)``, if given,
    is the (median, halfwidth) of the separate-sessions confirmation."""
    model = create_model("resnet8").eval()
    scales = []
    allocate_at = _table_allocator(scales)

    calls = []

    def measure(dense, pruned):
        calls.append(1)
        hw = halfwidth(len(calls)) if callable(halfwidth) else halfwidth
        return _measurement(device_ratio(scales[-1]), hw)

    checks = measure
    if confirm is not None:
        checks = Checks(measure, lambda dense, pruned: _measurement(*confirm(scales[-1])))
    res = verify_loop(
        model, allocate_at, BUDGET, torch.randn(1, 3, 32, 32), cfg, checks, lambda m: None
    )
    return res, scales


@pytest.mark.parametrize(
    ("median", "halfwidth", "met"),
    [
        (0.505, 0.01, True),  # upper 0.510 <= 0.515
        (0.500, 0.04, False),  # median on the budget, interval reaching 0.520: not shown
        (0.514, 0.0, True),  # just under budget x (1 + tolerance)
        (0.470, 0.10, False),  # a wide interval fails even far under
    ],
)
def test_met_is_judged_on_the_upper_bound(median, halfwidth, met):
    assert measured_verdict(BUDGET, _measurement(median, halfwidth), 0.03).met is met


def test_milliseconds_budget_is_judged_on_the_upper_bound_too():
    m = _measurement(0.5, 0.04)  # 5.0 ms, upper 5.2 ms
    assert not measured_verdict(Budget(latency_ms=5.1, device="x"), m, 0.0).met
    assert measured_verdict(Budget(latency_ms=5.2, device="x"), m, 0.0).met


def test_a_plan_in_the_landing_zone_is_accepted_at_once():
    res, scales = _run(lambda s: 0.49 * s)
    assert scales == [1.0] and res.budget_met_latency
    assert res.attempts[0]["met"] and 0.95 <= res.attempts[0]["position"] <= 1.0


def test_a_slow_device_tightens_until_the_interval_fits():
    res, scales = _run(lambda s: 0.55 * s)  # the device is 10% slower than the table
    assert len(scales) >= 2 and scales[1] < 1.0
    assert not res.attempts[0]["met"] and res.budget_met_latency
    final = res.measurement
    assert final.interval.hi <= 0.5 * 1.03 and final.ratio >= 0.95 * 0.5


def test_far_under_the_budget_loosens_into_the_landing_zone():
    res, scales = _run(lambda s: 0.40 * s)  # the plan is 20% faster than asked
    assert res.attempts[0]["met"] and res.attempts[0]["position"] < 0.95
    assert scales[1] > 1.0 and res.budget_met_latency
    assert 0.95 * 0.5 <= res.measurement.ratio <= 0.5 * 1.03


def test_staircase_latency_keeps_the_least_pruned_met_plan():
    # latency jumps between scales: no scale lands in the zone; the best met plan is kept
    res, scales = _run(lambda s: 0.42 if s < 1.05 else 0.56)
    assert len(scales) == ControllerConfig().max_retries + 1
    assert res.budget_met_latency and res.measurement.ratio == pytest.approx(0.42)


def test_an_interval_too_wide_to_show_the_budget_is_never_met():
    res, _ = _run(lambda s: 0.5 * s, halfwidth=0.2)
    assert res.budget_met_latency is False
    assert all(not a["met"] for a in res.attempts)
    assert all(a["interval"]["hi"] > 0.515 for a in res.attempts)


def test_a_too_wide_interval_times_the_same_plan_again():
    res, scales = _run(lambda s: 0.49 * s, halfwidth=lambda call: 0.1 if call == 1 else 0.01)
    assert scales == [1.0] and len(res.attempts) == 2  # one plan, measured twice
    assert res.budget_met_latency and res.attempts[1]["interval"]["hi"] <= 0.515


def test_one_step_never_moves_the_target_more_than_25_percent():
    _, scales = _run(lambda s: 1.0 * s)  # the device says 2x the table: load, not the table
    assert scales[1] == pytest.approx(0.8)


def test_a_wide_interval_wholly_over_the_budget_still_tightens():
    res, scales = _run(lambda s: 0.6 * s, halfwidth=lambda call: 0.04 if call == 1 else 0.01)
    assert len(scales) >= 2 and scales[1] < 1.0  # [0.576, 0.624] is over 0.515 whatever


def test_a_whole_model_under_the_budget_is_not_loosened_again():
    """int8 at 0.7x: the dense int8 model already measures 0.52x; loosening a plan that
    keeps every channel cannot move it, so the first met attempt ends the search."""
    model = create_model("resnet8").eval()
    scales = []

    def allocate_at(scale):
        scales.append(scale)
        metrics = {"latency_ms": 5.2, "flops": 100.0}
        return Allocation({}, Plan({}), metrics, {"latency_ms": 10.0, "flops": 100.0}, {}, 0, [])

    res = verify_loop(
        model,
        allocate_at,
        Budget(latency_ratio=0.7, device="x"),
        torch.randn(1, 3, 32, 32),
        ControllerConfig(),
        lambda dense, pruned: _measurement(0.52, 0.01),
        lambda m: None,
    )
    assert scales == [1.0] and res.budget_met_latency


def test_a_plan_the_confirmation_rejects_is_tightened_by_its_upper_bound():
    # one session says 0.49 (met); the separate sessions disagree: median 0.50, up to 0.55
    res, scales = _run(lambda s: 0.49 * s, confirm=lambda s: (0.50 * s, 0.10))
    first = res.attempts[0]
    assert first["ratio"] == pytest.approx(0.49) and first["confirm"]["met"] is False
    assert not first["met"]
    # tightened by the upper bound's excess (0.55 / 0.515), not the median's (0.50 / 0.4875)
    assert scales[1] < 1.0 / (0.55 / 0.515) + 0.01
    assert res.budget_met_latency
    assert res.measurement.interval.hi <= 0.515  # what was accepted is the confirmation


def test_a_confirmed_plan_near_the_acceptance_bound_is_not_loosened():
    # median 0.46 (under the landing zone) but its confirmed upper end 0.506 is within 5%
    # of 0.515: pruning less would cross it
    res, scales = _run(lambda s: 0.46 * s, confirm=lambda s: (0.46 * s, 0.10))
    assert scales == [1.0] and res.budget_met_latency


def test_without_a_confirmation_the_same_plan_would_be_loosened():
    _, scales = _run(lambda s: 0.46 * s)
    assert len(scales) >= 2 and scales[1] > 1.0


def test_the_quick_check_missing_skips_the_confirmation():
    calls = []

    def confirm(s):
        calls.append(s)
        return 0.45 * s, 0.01

    res, scales = _run(lambda s: 0.6 * s, confirm=confirm)
    quick_met = [a for a in res.attempts if a["ratio"] * 1.01 <= 0.515]
    assert len(calls) == len(quick_met) >= 1  # only plans the quick check met
    assert "confirm" not in res.attempts[0]  # 0.6: over, never confirmed


def test_the_least_pruned_plan_is_judged_by_the_table_not_by_loaded_milliseconds():
    """Two met plans: the more pruned one was timed in a loaded session (both models
    slower, its milliseconds higher). The kept plan is the one that prunes less."""
    model = create_model("resnet8").eval()
    scales = []
    allocate_at = _table_allocator(scales)

    def measure(dense, pruned):
        ratio = 0.40 * scales[-1]  # under the landing zone: the search loosens
        slow = 3.0 if len(scales) == 1 else 1.0  # the first plan's session was loaded
        iv = RatioInterval(ratio, ratio * 0.99, ratio * 1.01, 400, 0.02, "narrow", 0.015)
        return Measurement(DENSE_MS * slow, DENSE_MS * slow * ratio, 400, "scripted", iv)

    cfg = ControllerConfig(max_retries=1)
    res = verify_loop(
        model, allocate_at, BUDGET, torch.randn(1, 3, 32, 32), cfg, measure, lambda m: None
    )
    assert len(scales) == 2 and scales[1] > scales[0]
    assert res.allocation.metrics["latency_ms"] == pytest.approx(DENSE_MS * 0.5 * scales[1])
