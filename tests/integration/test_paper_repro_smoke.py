"""benchmarks/paper_repro.py --smoke: the three paper presets end to end on real CIFAR-10
(JPEG) and the shared ResNet-20 weights, 2 batches per phase (CPU, about a minute)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "..", "shared", "data", "cifar10-jpeg")
WEIGHTS = os.path.join(ROOT, "..", "shared", "weights", "cifar10", "resnet20-12fca82f.th")


def _script():
    path = os.path.join(ROOT, "benchmarks", "paper_repro.py")
    spec = importlib.util.spec_from_file_location("paper_repro", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["paper_repro"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not os.path.isdir(DATA), reason="needs ../shared CIFAR-10 (JPEG)")
def test_paper_repro_smoke_writes_rows_beside_the_papers(tmp_path):
    mod = _script()
    argv = ["--out", str(tmp_path), "--smoke", "--model", "resnet20", "--weights", WEIGHTS]
    args = mod.get_args_parser().parse_args(argv + ["--data-root", DATA])
    cfg = mod.run_config(args, "paam")
    assert cfg.method_options["final"] == "binarize" and cfg.method_options["lam"] == 5e-4
    assert cfg.recovery.optimizer == "sgd" and cfg.batch_size == 32
    rows = mod.main(args)
    assert [r["method"] for r in rows] == ["paam", "aap", "onestep"]
    saved = json.loads((tmp_path / "paper_rows.json").read_text())
    assert saved == rows
    for r in rows:
        assert 0.0 <= r["params_drop"] < 100.0 and r["top1"] is not None
    assert rows[0]["paper_top1"] == 94.28 and rows[1]["paper_params_drop"] == 79.11
    assert rows[2]["params_drop"] > 0  # rate 0.875 of the non-crucial layers is removed
    for m in ("paam", "aap", "onestep"):
        assert (tmp_path / m / "report.json").is_file()
