"""The deploy report's ratio interval (scripted rows, no timing)."""

from __future__ import annotations

from edgeprune.report.deploy_report import batch_row, build_report, render_csv, render_markdown
from edgeprune.runtimes.timing import pair_interval


def test_compare_dense_row_carries_the_ratio_interval():
    model = {"latency_ms_median": 1.0, "times_ms": [1.0, 1.02, 0.98, 1.0, 1.01, 0.99, 1.0, 1.0]}
    dense = {"latency_ms_median": 2.0, "times_ms": [2.0] * 8, "stop": "narrow"}
    model["stop"] = "time_cap"
    iv = pair_interval(model, dense, 0.015)
    row = batch_row(1, model, dense, None, iv)
    assert row["ratio"] == iv.median == 0.5 and row["ratio_ci95"] == [iv.lo, iv.hi]
    assert row["ratio_rounds"] == 8 and row["ratio_stop"] == "time_cap"
    report = build_report({"model": "m", "device": "local"}, [row])
    assert report["ratio_ci95"] == row["ratio_ci95"]  # the first batch at the top level
    assert "8 rounds (time_cap)" in render_markdown(report)
    assert "ratio_ci95_lo" in render_csv(report).splitlines()[0]


def test_a_row_without_interval_has_no_ratio_keys():
    row = batch_row(1, {"latency_ms_median": 1.0}, {"latency_ms_median": 2.0}, None)
    assert "ratio" not in row and row["speedup"] == 2.0
    assert "95% interval" not in render_markdown(build_report({}, [row]))
