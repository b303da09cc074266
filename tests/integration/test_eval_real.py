"""`edgeprune eval` with real pretrained weights on the real shared CIFAR-10 JPEG test set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeprune.cli.main import main

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DATA = SHARED / "data" / "cifar10-jpeg"
WEIGHTS = SHARED / "weights" / "cifar10"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {SHARED}")


def _eval(tmp_path, model: str, weights: str, *extra: str) -> dict:
    out = tmp_path / "eval.json"
    argv = ["eval", "--model", model, "--weights", str(WEIGHTS / weights)]
    assert main([*argv, "--data-root", str(DATA), "--json", str(out), "--no-progress", *extra]) == 0
    return json.loads(out.read_text())


def test_resnet20_on_a_subset_of_test_a(tmp_path):
    rec = _eval(
        tmp_path, "resnet20", "resnet20-12fca82f.th", "--limit-batches", "4", "--batch-size", "128"
    )
    assert rec["n"] == 512 and rec["split"] == "test"
    assert 0.70 < rec["top1"] < 0.92  # ~0.8 on the JPEG images (0.92 on the originals)
    assert 0.26e6 < rec["params"] < 0.28e6


@pytest.mark.slow
def test_resnet56_done_when_accuracy(tmp_path):
    rec = _eval(tmp_path, "resnet56", "resnet56-4bfd9763.th")
    assert rec["n"] == 5000
    assert 0.82 <= rec["top1"] <= 0.85
