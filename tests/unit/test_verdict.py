"""budget/verdict.py: the one "do these metrics meet these targets" and the one tolerance."""

import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgeprune.budget import Budget
from edgeprune.budget.controller import ControllerConfig
from edgeprune.budget.verdict import (
    LATENCY_TOLERANCE,
    latency_miss,
    measured_verdict,
    verdict,
)

COUNTS = ["params", "flops", "weight_bytes", "activation_bytes"]
PACKAGE = Path(__file__).resolve().parents[2] / "edgeprune"


@pytest.mark.parametrize("metric", COUNTS)
def test_a_count_fits_exactly_at_its_limit_and_not_one_above(metric):
    assert verdict({metric: 1000}, {metric: 1000}).met
    assert not verdict({metric: 1001}, {metric: 1000}).met
    # the latency tolerance never loosens a count
    assert not verdict({metric: 1001}, {metric: 1000}, tol=0.5).met


def test_a_ratio_budget_rounded_below_the_count_still_fits():
    limit = 0.29 * 100  # --params-budget 0.29x of 100: rounds to 28.999999999999996
    assert limit < 29
    assert verdict({"params": 29}, {"params": limit}).met
    assert not verdict({"params": 30}, {"params": limit}).met


@pytest.mark.parametrize("metric", ["latency_ms", "latency_ratio"])
def test_latency_gets_the_tolerance_and_only_when_given(metric):
    assert verdict({metric: 1.0}, {metric: 1.0}).met
    assert not verdict({metric: 1.02}, {metric: 1.0}).met  # predictions: exact
    v = verdict({metric: 1.02}, {metric: 1.0}, tol=0.03)
    assert v.met and v.latency_miss == pytest.approx(0.02)
    v = verdict({metric: 1.04}, {metric: 1.0}, tol=0.03)
    assert not v.met and v.violated == {metric: 1.0}


def test_rows_carry_value_limit_ratio_and_met():
    v = verdict({"flops": 50.0, "params": 30.0, "latency_ms": 2.0}, {"flops": 100, "params": 20})
    assert not v.met and v.latency_miss is None  # no latency target
    rows = {r.metric: r for r in v.rows}
    assert set(rows) == {"flops", "params"}  # one row per target, none for other metrics
    assert (rows["flops"].value, rows["flops"].limit, rows["flops"].ratio) == (50.0, 100.0, 0.5)
    assert rows["flops"].met and not rows["params"].met and rows["params"].ratio == 1.5
    assert v.violated == {"params": 20}
    assert v.to_dict()["rows"][0]["metric"] == "flops"


def test_no_targets_is_met_and_an_unknown_value_is_not():
    assert verdict({"flops": 1.0}, {}).met
    assert not verdict({}, {"flops": 1.0}).met
    assert not verdict({"latency_ms": math.nan}, {"latency_ms": 1.0}, tol=1.0).met


def test_latency_miss_sign_and_size():
    assert latency_miss(1.1, 1.0) == pytest.approx(0.1)  # 10% too slow
    assert latency_miss(0.9, 1.0) == pytest.approx(-0.1)  # 10% under: negative
    assert latency_miss(0.5, 0.5) == 0.0
    assert latency_miss(0.55, 0.5) == pytest.approx(0.1)  # ratios to dense alike


def test_measured_verdict_judges_the_ratio_or_the_ms_the_budget_names():
    m = SimpleNamespace(ratio=0.61, pruned_ms=6.1, dense_ms=10.0)
    by_ratio = measured_verdict(Budget(latency_ratio=0.6, device="x"), m, LATENCY_TOLERANCE)
    assert by_ratio.met and by_ratio.latency_miss == pytest.approx(0.61 / 0.6 - 1)
    by_ms = measured_verdict(Budget(latency_ms=5.0, device="x"), m, LATENCY_TOLERANCE)
    assert not by_ms.met and by_ms.latency_miss == pytest.approx(0.22)
    assert not measured_verdict(Budget(latency_ratio=0.6, device="x"), m, 0.0).met


def test_the_controller_config_holds_the_one_tolerance():
    assert ControllerConfig().tolerance == LATENCY_TOLERANCE


def test_no_tolerance_literal_or_fudge_outside_the_verdict_module():
    """0.03 (the latency tolerance) and 1.0001 (a count fudge) live in budget/verdict.py."""
    pattern = re.compile(r"(?<![\d.])(1\.0001|0\.03)(?!\d)|tolerance\s*[:=]\s*[\d.]")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "verdict.py" and path.parent.name == "budget":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if "tolerance" not in line and "1.0001" not in line and "0.03" not in line:
                continue
            if "export" in line or "rtol" in line or "atol" in line:
                continue  # ONNX export parity tolerances, not the budget's
            if pattern.search(line.split("#")[0]):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
