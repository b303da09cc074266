"""`edgeprune prune` end to end: real models, real ONNX Runtime, the real data."""

import json
from pathlib import Path

import pytest

from edgeprune.cli.main import main

SHARED = Path(__file__).resolve().parents[3] / "shared"
W20 = SHARED / "weights" / "cifar10" / "resnet20-12fca82f.th"
DATA = SHARED / "data" / "cifar10-jpeg"
REPORT_KEYS = {
    "model",
    "method",
    "device",
    "budget",
    "dense",
    "pruned",
    "predicted_latency_ms",
    "measured_latency_ms",
    "latency_ratio",
    "budget_met",
    "layers",
}


def test_flops_budget_without_device(tmp_path):
    out = tmp_path / "p"
    assert main(["prune", "--model", "resnet20", "--flops-budget", "0.5x", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert REPORT_KEYS <= set(report) and report["budget_met"] is True
    assert report["pruned"]["flops"] <= 0.5 * report["dense"]["flops"]
    assert (out / "model.json").is_file() and (out / "model.onnx").is_file()
    assert any(layer["after"] < layer["before"] for layer in report["layers"])


def test_precision_auto_without_a_latency_budget_ships_fp32(tmp_path):
    out = tmp_path / "run"
    args = ["prune", "--model", "resnet8", "--flops-budget", "0.5x", "--precision", "auto"]
    assert main([*args, "--out", str(out)]) == 0
    assert json.loads((out / "report.json").read_text())["precision"] == "fp32"


def test_latency_budget_verified_on_this_host(tmp_path):
    out = tmp_path / "p"
    args = [
        "prune",
        "--model",
        "resnet20",
        "--device",
        "xeon",
        "--latency-budget",
        "0.6x",
        "--min-time",
        "0.5",
        "--out",
        str(out),
    ]
    rc = main(args)
    report = json.loads((out / "report.json").read_text())
    assert rc == (0 if report["budget_met"] else 1)
    assert report["measured_latency_ms"] > 0 and report["latency_ratio"] > 0
    assert report["verification"] and "ratio" in report["verification"][0]
    # eval and deploy accept the pruned directory
    assert (
        main(
            [
                "deploy",
                str(out),
                "--device",
                "local",
                "--min-time",
                "0.2",
                "--out",
                str(tmp_path / "d"),
            ]
        )
        == 0
    )


def test_infeasible_budget_is_one_sentence(tmp_path, capsys):
    rc = main(["prune", "--model", "resnet20", "--params-budget", "10", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "infeasible" in err and "Traceback" not in err
    assert not (tmp_path / "report.json").exists()


def test_missing_data_root_with_epochs(tmp_path, capsys):
    rc = main(
        [
            "prune",
            "--model",
            "resnet20",
            "--flops-budget",
            "0.5x",
            "--epochs",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 2 and "--data-root" in capsys.readouterr().err


@pytest.mark.skipif(not (W20.exists() and DATA.exists()), reason="../shared not present")
def test_accuracy_budget_with_recovery(tmp_path):
    out = tmp_path / "p"
    rc = main(
        [
            "prune",
            "--model",
            "resnet20",
            "--weights",
            str(W20),
            "--method",
            "l1",
            "--max-acc-drop",
            "3",
            "--data-root",
            str(DATA),
            "--limit-batches",
            "2",
            "--epochs",
            "1",
            "--out",
            str(out),
        ]
    )
    report = json.loads((out / "report.json").read_text())
    assert rc == (0 if report["budget_met"] else 1)
    assert report["dense"]["top1"] is not None and report["pruned"]["top1"] is not None
    assert report["pruned"]["flops"] < report["dense"]["flops"]
    assert (
        main(["eval", "--model", str(out), "--data-root", str(DATA), "--limit-batches", "1"]) == 0
    )
