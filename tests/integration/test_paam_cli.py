"""`edgeprune prune --method paam` end to end on the real shared CIFAR-10 JPEG data (tiny)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeprune.cli.main import main

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DATA = SHARED / "data" / "cifar10-jpeg"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {SHARED}")


def test_paam_prune_smoke_writes_a_pruned_model_and_diagnostics(tmp_path):
    out = tmp_path / "run"
    argv = [
        "prune", "--model", "resnet8", "--method", "paam", "--flops-budget", "0.6x",
        "--data-root", str(DATA), "--epochs", "1", "--limit-batches", "2",
        "--opt", "cycles=1", "--opt", "an_epochs=1", "--opt", "cnn_epochs=1",
        "--opt", "an_lr=1e-3", "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "paam" and report["budget_met"]
    assert report["pruned"]["flops"] <= 0.6 * report["dense"]["flops"] * 1.0001
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["lambda"] == 5e-4 and diag["balance"] == "flops" and diag["binarize"] == "budget"
    (cycle,) = diag["cycles"]
    n = sum(layer["before"] for layer in report["layers"])
    assert sum(cycle["histogram"]["counts"]) == n
    assert set(cycle["kept"]) == {layer["layer"] for layer in report["layers"]}
    assert 0.0 < cycle["p"] < 1.0 and cycle["an_loss"] is not None
    assert (out / "model.onnx").is_file() and (out / "method_state.pt").is_file()


def test_paam_bad_option_is_one_line_and_exit_2(tmp_path, capsys):
    argv = [
        "prune", "--model", "resnet8", "--method", "paam", "--flops-budget", "0.6x",
        "--data-root", str(DATA), "--opt", "variant=huge", "--out", str(tmp_path / "x"),
    ]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "variant" in err[0] and "Traceback" not in err[0]
