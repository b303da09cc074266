"""`edgeprune prune --method onestep` end to end on the real CIFAR-10 JPEG data."""

import json
from pathlib import Path

import pytest

from edgeprune.cli.main import main

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-jpeg"


@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data/cifar10-jpeg")
def test_onestep_prune_smoke(tmp_path):
    out = tmp_path / "p"
    args = ["prune", "--model", "resnet8", "--method", "onestep", "--flops-budget", "0.6x"]
    args += ["--data-root", str(DATA), "--epochs", "1", "--limit-batches", "2"]
    args += ["--opt", "recover_epochs=1", "--out", str(out)]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    diag = json.loads((out / "diagnostics.json").read_text())
    assert report["budget_met"] and report["pruned"]["flops"] <= 0.6 * report["dense"]["flops"]
    layers = {la["layer"]: la for la in report["layers"]}
    assert diag["last_conv_group"] in diag["crucial_layers"]
    for c in diag["crucial_layers"]:
        assert layers[c]["after"] == layers[c]["before"] == diag["widths"][c]
    rec = report["method_recovery"]
    assert rec["top1_before_finetune"] is not None or rec["eval_split"] is None
    assert {"mimic_loss_before", "mimic_loss_after", "widths"} <= set(rec)


def test_onestep_bad_option_is_one_line(tmp_path, capsys):
    args = ["prune", "--model", "resnet8", "--method", "onestep", "--flops-budget", "0.6x"]
    rc = main(args + ["--opt", "mimic=cosine", "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert rc == 2 and "mimic must be one of" in err and "Traceback" not in err
