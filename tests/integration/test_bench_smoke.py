"""`edgeprune bench` + `edgeprune report` end to end: real models, ORT on this host, real data."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprune.cli.main import main

SHARED = Path(__file__).resolve().parents[3] / "shared"
DATA = SHARED / "data" / "cifar10-jpeg"


@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data/cifar10-jpeg")
def test_bench_then_report(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "bench"
    args = [
        "bench", "--model", "resnet8", "--device", "xeon",
        "--methods", "l1,uniform,tp-magnitude", "--flops-budgets", "0.5x",
        "--epochs", "0", "--data-root", str(DATA), "--limit-batches", "1",
        "--min-time", "0.2", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    by = {r["method"]: r for r in rows}
    assert set(by) == {"dense", "l1", "uniform", "tp-magnitude"}
    for m in ("l1", "uniform", "tp-magnitude"):
        assert by[m]["status"] == "ok", by[m]["message"]
        assert float(by[m]["flops_ratio"]) <= 0.5 + 1e-6
        assert float(by[m]["measured_latency_ms"]) > 0 and by[m]["top1"] != ""
        assert "torch=" in by[m]["versions"] and "measured" in by[m]["device_provenance"]
    # resume: nothing is re-run, the rows are the same
    mtime = (out / "runs" / "l1-flops-0.5x" / "row.json").stat().st_mtime
    assert main(args) == 0
    assert (out / "runs" / "l1-flops-0.5x" / "row.json").stat().st_mtime == mtime
    rep = tmp_path / "rep"
    assert main(["report", str(out), "--out", str(rep)]) == 0
    pngs = {p.name for p in rep.glob("*.png")}
    assert {"accuracy_vs_latency.png", "channels.png", "latency_breakdown.png"} <= pngs
    assert "base64," in (rep / "report.html").read_text()

    # benchmarks/longer_recovery.py: every row of the 0.5x column trained on, then evaluated
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "longer_recovery.py"
    cmd = [sys.executable, str(script), "--run", str(out), "--budgets", "0.5x", "--epochs", "1"]
    cmd += ["--limit-batches", "1"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    longer = list(csv.DictReader((out / "longer_recovery_plus1.csv").open()))
    assert {r["method"] for r in longer} == {"dense", "l1", "uniform", "tp-magnitude"}
    assert all(0 <= float(r["top1_longer"]) <= 1 for r in longer)
    again = subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert "+1 epochs" not in again.stderr  # resumed: nothing trained twice
    bad = subprocess.run([*cmd[:3], str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
