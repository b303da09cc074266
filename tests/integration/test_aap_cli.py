"""`edgeprune prune --method aap` end to end on real CIFAR-10 JPEG data (a fast smoke)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from edgeprune.cli.main import main

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DATA = SHARED / "data" / "cifar10-jpeg"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {SHARED}")

ARGS = ["prune", "--model", "resnet8", "--method", "aap", "--flops-budget", "0.6x"]
ARGS += ["--data-root", str(DATA), "--epochs", "0", "--limit-batches", "2", "--batch-size", "32"]
ARGS += ["--opt", "max_rounds=3", "--opt", "round_epochs=1", "--opt", "lam0=1"]


def test_aap_smoke_prunes_physically_and_writes_round_diagnostics(tmp_path):
    out = tmp_path / "run"
    rc = main([*ARGS, "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    diag = json.loads((out / "diagnostics.json").read_text())
    rounds = diag["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2, 3]
    assert {"T", "lam", "acc_loss", "params", "flops", "outcome", "widths"} <= set(rounds[1])
    assert diag["goal"] == "flops" and set(diag["layer_sparsity"]) == {
        ln["layer"] for ln in report["layers"]
    }
    final = diag["final"]
    assert report["pruned"]["flops"] == final["flops"] < report["dense"]["flops"]
    if final["target_met"]:
        assert rc == 0 and report["budget_met"] and final["flops"] <= 0.6 * rounds[0]["flops"]
    state = torch.load(out / "method_state.pt", weights_only=True)
    assert state["policy"]["round"] == 3 and state["policy"]["done"]

    # --resume of a finished run redoes no round and returns the same model
    rc2 = main([*ARGS, "--out", str(out), "--resume"])
    again = json.loads((out / "diagnostics.json").read_text())
    assert rc2 == rc and again["rounds"] == rounds


def test_aap_without_a_usable_target_is_one_clear_error(tmp_path, capsys):
    argv = ["prune", "--model", "resnet8", "--method", "aap", "--max-acc-drop", "1"]
    rc = main([*argv, "--out", str(tmp_path / "x"), "--opt", "bogus=1"])
    assert rc == 2 and "no option 'bogus'" in capsys.readouterr().err
