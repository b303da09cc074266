"""`edgeprune prune --distill` end to end: ResNet-20, the real data, the real training loop,
and the structure search with two candidates."""

import json
from pathlib import Path

import pytest

from edgeprune.cli.main import main

SHARED = Path(__file__).resolve().parents[3] / "shared"
W20 = SHARED / "weights" / "cifar10" / "resnet20-12fca82f.th"
DATA = SHARED / "data" / "cifar10-jpeg"


def _prune(out: Path, *extra: str) -> int:
    argv = ["prune", "--model", "resnet20", "--weights", str(W20), "--method", "l1"]
    argv += ["--flops-budget", "0.5x", "--data-root", str(DATA), "--epochs", "1"]
    argv += ["--limit-batches", "2", "--out", str(out), *extra]
    return main(argv)


@pytest.mark.skipif(not (W20.exists() and DATA.exists()), reason="../shared not present")
def test_prune_distills_and_searches_structures(tmp_path):
    kd = tmp_path / "kd"
    assert _prune(kd, "--distill", "kd", "--candidates", "2") == 0
    config = json.loads((kd / "config.json").read_text())
    assert config["distill"]["mode"] == "kd" and config["candidates"] == 2
    report = json.loads((kd / "report.json").read_text())
    assert report["pruned"]["top1"] is not None and report["budget_met"]
    search = json.loads((kd / "diagnostics.json").read_text())["structure_search"]
    assert len(search["candidates"]) == 2
    scores = {c["name"]: c["val_score"] for c in search["candidates"]}
    assert scores[search["chosen"]] == max(scores.values())
    assert (kd / "recovery" / "last.pt").is_file()


@pytest.mark.skipif(not (W20.exists() and DATA.exists()), reason="../shared not present")
def test_recovering_a_saved_structure_equals_the_whole_run(tmp_path):
    """``recover_model`` (the distillation benchmark's path: prune once, recover per mode) gives
    the top-1 of a whole ``prune`` run on the same structure, same seed."""
    from dataclasses import replace

    from edgeprune.budget import Budget
    from edgeprune.surgery import load_model
    from edgeprune.train import DistillConfig
    from edgeprune.workflows.prune import PruneConfig, recover_model, run_prune

    cfg = PruneConfig(
        model="resnet20",
        out=str(tmp_path / "whole"),
        budget=Budget(flops_ratio=0.5),
        weights=str(W20),
        data_root=str(DATA),
        epochs=1,
        limit_batches=2,
        verify=False,
        distill=DistillConfig("kd"),
    )
    whole = run_prune(cfg).to_dict()["pruned"]["top1"]
    run_prune(replace(cfg, out=str(tmp_path / "structure"), epochs=0))
    teacher = load_model("resnet20", str(W20)).model.eval()
    student = load_model(str(tmp_path / "structure")).model
    res = recover_model(replace(cfg, out=str(tmp_path / "recovered")), student, teacher)
    assert whole is not None and res.top1 == pytest.approx(whole, abs=1e-9)
    assert (tmp_path / "recovered" / "recovery" / "last.pt").is_file()
