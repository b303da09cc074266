"""RunReport: the report.json keys a prune run and a bench's dense row have always written."""

from __future__ import annotations

import json

from edgeprune.report.rows import build_row, report_problem
from edgeprune.report.run_report import ModelStats, RunReport, write_run_report

DENSE = ModelStats(params=100, flops=1000, weight_bytes=400, top1=0.9, latency_ms=2.0)
PRUNE_KEYS = {
    "model", "method", "device", "device_table", "budget", "dense", "pruned",
    "predicted_latency_ms", "measured_latency_ms", "latency_ratio", "budget_met",
    "latency_checked_by", "verification", "dropped_blocks", "layers", "recovery_epochs",
    "controller_decision_s", "wall_time_s", "seed", "versions", "method_recovery", "timings",
    "precision",
}  # fmt: skip
DENSE_KEYS = {
    "model", "method", "device", "device_table", "budget", "dense", "pruned",
    "predicted_latency_ms", "measured_latency_ms", "latency_ratio", "budget_met", "layers",
    "recovery_epochs", "seed", "wall_time_s", "precision",
}  # fmt: skip


def _pruned_run() -> RunReport:
    pruned = ModelStats(
        params=50, flops=400, weight_bytes=200, top1=0.85, latency_ms=1.0, peak_activation_bytes=64
    )
    return RunReport(
        model="resnet8",
        method="l1",
        dense=ModelStats(**{**DENSE.__dict__, "predicted_latency_ms": 2.1}),
        pruned=pruned,
        device="xeon",
        device_table="measured",
        budget={"latency_ratio": 0.5},
        measured_latency_ms=1.0,
        latency_ratio=0.5,
        budget_met=True,
        latency_checked_by=None,
        verification=[{"attempt": 0}],
        dropped_blocks=[],
        controller_decision_s=0.1,
        versions={"torch": "x"},
        method_recovery={},
        timings={"method_s": 0.1, "verify_s": 0.0, "recovery_s": 0.0},
    )


def test_prune_report_keys_round_trip_and_read_back(tmp_path):
    report = _pruned_run()
    path = write_run_report(tmp_path, report)
    doc = json.loads(open(path).read())
    assert set(doc) == PRUNE_KEYS and doc["latency_checked_by"] is None
    assert set(doc["dense"]) == {"latency_ms", "predicted_latency_ms", "params", "flops",
                                 "weight_bytes", "top1"}  # fmt: skip
    assert "predicted_latency_ms" not in doc["pruned"] and "peak_activation_bytes" in doc["pruned"]
    assert RunReport.from_dict(doc) == report and report_problem(doc) is None
    assert build_row(doc)["speedup"] == 2.0


def test_dense_row_report_has_no_prune_only_keys():
    doc = RunReport("resnet8", "dense", DENSE, DENSE, wall_time_s=1.0).to_dict()
    assert set(doc) == DENSE_KEYS and set(doc["dense"]) == {"latency_ms", "params", "flops",
                                                            "weight_bytes", "top1"}  # fmt: skip
    assert build_row(doc)["method_s"] is None and report_problem(doc) is None
