"""Deploy report: rows, speedup, required keys, the three files, atomic writes."""

from __future__ import annotations

import csv
import json
import math

import pytest

from edgeprune.report.deploy_report import batch_row, build_report, render_markdown, write_report

META = {
    "model": "resnet56",
    "device": "rpi3",
    "runtime": "ort",
    "params": 850000,
    "flops": 125_000_000,
    "onnx_size_bytes": 3_400_000,
    "device_identity": {"hostname": "pi"},
}


def _res(median, p90=None, ips=None):
    return {
        "latency_ms_median": median,
        "latency_ms_p90": p90 or median * 1.1,
        "latency_ms_p99": median * 1.3,
        "latency_ms_mean": median,
        "n_runs": 50,
        "throughput_ips": ips or 1000.0 / median,
    }


def test_batch_row_speedup_is_dense_over_pruned():
    row = batch_row(8, _res(10.0), _res(25.0), predicted=11.0)
    assert row["speedup"] == pytest.approx(2.5)
    assert row["dense_latency_ms_median"] == 25.0 and row["predicted_latency_ms"] == 11.0
    assert "speedup" not in batch_row(1, _res(10.0), None, None)


def test_build_report_has_required_keys_and_primary_batch():
    rows = [batch_row(1, _res(4.0), _res(8.0), None), batch_row(8, _res(20.0), _res(60.0), 19.0)]
    rep = build_report(META, rows)
    for key in (
        "model",
        "device",
        "runtime",
        "batch",
        "latency_ms_median",
        "latency_ms_p90",
        "throughput_ips",
        "params",
        "flops",
        "predicted_latency_ms",
        "dense_latency_ms_median",
        "speedup",
    ):
        assert key in rep
    assert rep["batch"] == 1 and rep["speedup"] == pytest.approx(2.0)
    assert rep["predicted_latency_ms"] is None
    assert [r["batch"] for r in rep["results"]] == [1, 8]
    with pytest.raises(ValueError):
        build_report(META, [])


def test_write_report_files(tmp_path):
    rows = [batch_row(1, _res(4.0), _res(8.0), 3.5), batch_row(8, _res(20.0), _res(60.0), None)]
    rep = build_report({**META, "nan_field": math.nan}, rows)
    rep["layers"] = [{"module": "layer1.0.conv1", "ms": 0.5, "ops": "Conv"}]
    paths = write_report(str(tmp_path / "out"), rep)
    data = json.loads(open(paths["json"]).read())
    assert data["nan_field"] is None  # strict JSON, no NaN
    lines = list(csv.DictReader(open(paths["csv"])))
    assert [r["batch"] for r in lines] == ["1", "8"] and lines[1]["speedup"] == "3.0"
    assert lines[0]["model"] == "resnet56"
    md = open(paths["md"]).read()
    assert "| 1 | 4.000 |" in md and "speedup" in md and "layer1.0.conv1" in md
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "report.csv",
        "report.json",
        "report.md",
    ]


def test_markdown_without_dense_has_no_speedup_column():
    rep = build_report(META, [batch_row(1, _res(4.0), None, None)])
    assert "speedup" not in render_markdown(rep)
