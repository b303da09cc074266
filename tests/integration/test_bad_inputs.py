"""Every bad input through the console script: one sentence, non-zero exit, nothing left.

Each case runs ``python -m edgeprune ...`` in a fresh folder and checks: the exit code is
not 0, stderr is exactly one line (``edgeprune: error: ...``) with no traceback, and the
command left no file behind (no ``out`` folder, nothing in the edgeprune cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

PRUNE = ["prune", "--model", "resnet20", "--epochs", "0", "--no-verify", "--out", "out"]
BENCH = ["bench", "--model", "resnet20", "--flops-budgets", "0.5x", "--out", "out"]
PROFILE_NO_ARCH = "name: bad\nidentity:\n  runtime: ort\n  threads: 2\n"


def _files(tmp: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def _junk_image_root(tmp: Path) -> None:
    """An ImageFolder data root whose .jpg files are not images."""
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            _files(tmp, {f"junk/{split}/{cls}/{i}.jpg": b"not a jpeg" for i in range(2)})


def _pruned_dir_with_garbage_weights(tmp: Path) -> None:
    plan = {"version": 1, "keep": {}, "meta": {}}
    meta = {"format": "edgeprune-pruned-v1", "model": "resnet20", "plan": plan}
    _files(tmp, {"pr/model.json": json.dumps(meta), "pr/weights.pt": b"\x00garbage" * 8})


RUN = {"model": "resnet20", "method": "l1", "dense": {}, "pruned": {}}

# id -> (arguments, files to create first, or a function that creates them)
CASES: dict[str, tuple[list[str], dict | Callable[[Path], None]]] = {
    "aap-option-wrong-type": (
        [*PRUNE, "--method", "aap", "--flops-budget", "0.5x", "--opt", "round_epochs=abc"],
        {},
    ),
    "tp-magnitude-option-wrong-type": (
        [*PRUNE, "--method", "tp-magnitude", "--flops-budget", "0.5x", "--opt", "p=abc"],
        {},
    ),
    "prune-paam-without-data": ([*PRUNE, "--method", "paam", "--flops-budget", "0.5x"], {}),
    "option-broken-yaml": ([*PRUNE, "--flops-budget", "0.5x", "--opt", "mimic=[1,2"], {}),
    "bench-option-broken-yaml": ([*BENCH, "--methods", "l1", "--opt", "onestep:mimic=[1,2"], {}),
    "imagefolder-junk-jpg": (
        ["eval", "--model", "resnet20", "--data-root", "junk", "--split", "test"],
        _junk_image_root,
    ),
    "profile-without-arch": (
        [*PRUNE, "--device", "bad.yaml", "--latency-budget", "0.5x"],
        {"bad.yaml": PROFILE_NO_ARCH},
    ),
    "bench-profile-without-arch": (
        [*BENCH, "--methods", "l1", "--device", "bad.yaml"],
        {"bad.yaml": PROFILE_NO_ARCH},
    ),
    "profile-broken-yaml": (
        [*PRUNE, "--device", "bad.yaml", "--latency-budget", "0.5x"],
        {"bad.yaml": "name: bad\nidentity: {arch: [x86\n"},
    ),
    "eval-garbage-weights": (
        ["eval", "--model", "pr", "--data-root", "."],
        _pruned_dir_with_garbage_weights,
    ),
    "report-json-is-a-list": (
        ["report", "run", "--no-plots", "--out", "out"],
        {"run/report.json": "[1, 2]"},
    ),
    "report-json-empty-object": (
        ["report", "run", "--no-plots", "--out", "out"],
        {"run/report.json": "{}"},
    ),
    "report-json-wrong-types": (
        ["report", "run", "--no-plots", "--out", "out"],
        {"run/report.json": json.dumps({**RUN, "seed": "zero", "budget_met": "yes"})},
    ),
    "bench-unknown-method": ([*BENCH, "--methods", "l1,foo"], {}),
    "bench-checks-every-row-first": ([*BENCH, "--methods", "l1,paam"], {}),
    "bench-option-of-a-later-row": (
        [*BENCH, "--methods", "l1,aap", "--opt", "aap:lam0=big"],
        {},
    ),
    "latency-budget-without-unit": (
        [*PRUNE, "--device", "xeon", "--latency-budget", "0.5"],
        {},
    ),
    "budget-file-latency-without-unit": (
        [*PRUNE, "--budget", "b.yaml"],
        {"b.yaml": "latency: 0.5\ndevice: xeon\n"},
    ),
    "budget-file-broken-yaml": (
        [*PRUNE, "--budget", "b.yaml"],
        {"b.yaml": "latency: [0.5x\n"},
    ),
    "memory-budget-infinite": ([*PRUNE, "--memory-budget-mb", "inf"], {}),
    "deploy-unknown-provider": (
        ["deploy", "resnet20", "--device", "local", "--provider", "CPUProvider", "--out", "out"],
        {},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_sentence(tmp_path, case):
    args, setup = CASES[case]
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    setup(work) if callable(setup) else _files(work, setup)
    env = {**os.environ, "EDGEPRUNE_CACHE": str(cache), "EDGEPRUNE_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-m", "edgeprune", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("edgeprune: error: "), proc.stderr
    out = work / "out"
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))
    left = sorted(p for p in cache.rglob("*")) if cache.exists() else []
    assert not left, left
