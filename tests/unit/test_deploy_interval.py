"""The deploy report's ratio interval (scripted rows, no timing)."""

from __future__ import annotations

import pytest

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


def _rows(model_ms: float, dense_ms: float, n: int = 8) -> list[dict]:
    model = {"latency_ms_median": model_ms, "times_ms": [model_ms] * n, "stop": "narrow"}
    dense = {"latency_ms_median": dense_ms, "times_ms": [dense_ms] * n, "stop": "narrow"}
    return [model, dense]


def test_sessions_that_disagree_widen_the_deploy_interval():
    from edgeprune.runtimes.interval import combine_sessions
    from edgeprune.workflows.deploy import _session_intervals

    one = combine_sessions(_session_intervals([_rows(1.0, 2.0)], 0.015))
    assert (one.median, one.lo, one.hi) == (0.5, 0.5, 0.5)
    each = _session_intervals([_rows(1.0, 2.0), _rows(1.1, 2.0), _rows(0.9, 2.0)], 0.015)
    assert [iv.median for iv in each] == [0.5, 0.55, 0.45]
    three = combine_sessions(each)  # the t-interval over 3 session medians (2 df)
    half = 4.303 * 0.05 / 3**0.5
    assert three.median == 0.5
    assert (three.lo, three.hi) == (pytest.approx(0.5 - half), pytest.approx(0.5 + half))
    assert three.n_rounds == 24 and three.stop == "sessions_disagree"


def test_each_further_session_swaps_the_order_and_returns_model_then_dense(monkeypatch):
    import edgeprune.runtimes as runtimes
    from edgeprune.workflows.deploy import _session

    seen = []

    def fake_time_models(target, paths, runtime, settings, python, extra_files=None):
        seen.append(list(paths))
        return [{"path": p} for p in paths]

    monkeypatch.setattr(runtimes, "time_models", fake_time_models)
    for i in (1, 2):
        rows = _session(None, ["model.onnx", "dense.onnx"], None, None, None, [], i)
        assert [r["path"] for r in rows] == ["model.onnx", "dense.onnx"]
    assert seen == [["dense.onnx", "model.onnx"], ["model.onnx", "dense.onnx"]]
