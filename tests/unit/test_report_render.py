"""`edgeprune report` on tiny hand-made run dirs: Markdown, HTML with embedded PNGs."""

import json

import pytest

from edgeprune.cli.main import main
from edgeprune.report.compare import make_report
from edgeprune.report.rows import build_row, status_row

pytest.importorskip("matplotlib")


def _run_dir(path, method, ms, top1, flops):
    path.mkdir(parents=True)
    report = {
        "model": "resnet8",
        "method": method,
        "device": None,
        "budget": {"flops_ratio": 0.5},
        "dense": {"latency_ms": 2.0, "params": 100, "flops": 400, "top1": 0.9},
        "pruned": {"params": 50, "flops": flops, "top1": top1},
        "predicted_latency_ms": ms * 1.1,
        "measured_latency_ms": ms,
        "layers": [
            {"layer": "conv1", "before": 8, "after": 4},
            {"layer": "c2", "before": 16, "after": 9},
        ],
    }
    (path / "report.json").write_text(json.dumps(report))
    return report


def test_bench_dir_and_single_run_dir(tmp_path):
    bench = tmp_path / "bench"
    for i, (m, ms, acc) in enumerate([("l1", 1.0, 0.8), ("l1", 1.5, 0.85), ("uniform", 1.2, 0.7)]):
        rep = _run_dir(bench / "runs" / f"{m}-{i}", m, ms, acc, 200)
        (bench / "runs" / f"{m}-{i}" / "row.json").write_text(json.dumps(build_row(rep)))
    _run_dir(tmp_path / "single", "tp-magnitude", 1.1, 0.75, 150)
    rounds = [{"round": 0, "acc_loss": 0.0, "params": 100, "flops": 400, "outcome": "dense"}]
    rounds += [
        {"round": 1, "acc_loss": 0.5, "params": 80, "flops": 300, "outcome": "acceptable"},
        {"round": 2, "acc_loss": 3.0, "params": 40, "flops": 150, "outcome": "violation"},
    ]
    diag = {"method": "aap", "rounds": rounds}
    (bench / "runs" / "l1-0" / "diagnostics.json").write_text(json.dumps(diag))
    failed = bench / "runs" / "uniform-0.3x"
    failed.mkdir()
    row = status_row("resnet8", "uniform", "0.3x latency", "error", "budget infeasible")
    (failed / "row.json").write_text(json.dumps(row))
    files = make_report([str(bench), str(tmp_path / "single")], str(tmp_path / "rep"))
    for name in ("accuracy_vs_latency", "channels", "predicted_vs_measured", "aap_rounds"):
        assert files[name].endswith(".png")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| l1 |" in md and "tp-magnitude" in md and "accuracy_vs_latency.png" in md
    assert "- uniform at 0.3x latency: error: budget infeasible" in md
    html = (tmp_path / "rep" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(files) - 3
    csv = (tmp_path / "rep" / "results.csv").read_text().splitlines()
    assert len(csv) == 6


def test_report_cli_errors_and_no_plots(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    _run_dir(tmp_path / "one", "l1", 1.0, 0.8, 200)
    assert main(["report", str(tmp_path / "one"), "--out", str(tmp_path / "o"), "--no-plots"]) == 0
    assert not list((tmp_path / "o").glob("*.png"))


def test_reports_are_written_with_the_umask_not_mkstemps_0600(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        _run_dir(tmp_path / "one", "l1", 1.0, 0.8, 200)
        make_report([str(tmp_path / "one")], str(tmp_path / "o"), plots=False)
    finally:
        os.umask(old)
    assert (tmp_path / "o" / "report.md").stat().st_mode & 0o777 == 0o644
