"""`edgeprune eval` on a tiny registry model and a tiny fake CIFAR-10 folder; user errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from edgeprune.cli.main import main

KEYS = {"model", "weights", "split", "n", "top1", "top5", "params", "flops", "backend", "precision",
        "onnx_model"}  # fmt: skip
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for name in CLASSES:
        d = tmp_path / "data" / "test" / name
        d.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return tmp_path / "data"


def test_eval_writes_json_with_the_contract_keys(data_root, tmp_path, capsys):
    out = tmp_path / "res" / "eval.json"
    argv = ["eval", "--model", "resnet8", "--data-root", str(data_root), "--batch-size", "8"]
    assert main([*argv, "--json", str(out), "--no-progress"]) == 0
    rec = json.loads(out.read_text())
    assert set(rec) == KEYS
    assert rec["model"] == "resnet8" and rec["weights"] is None and rec["split"] == "test"
    assert rec["n"] == 30 and 0 <= rec["top1"] <= rec["top5"] <= 1
    assert rec["params"] > 0 and rec["flops"] > rec["params"]
    assert "top-1" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["eval.json"]  # no temp file left


def test_eval_limit_batches(data_root, tmp_path):
    out = tmp_path / "eval.json"
    argv = ["eval", "--model", "resnet8", "--data-root", str(data_root), "--batch-size", "4"]
    assert main([*argv, "--limit-batches", "2", "--json", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["n"] == 8


def test_eval_a_pruned_model_directory(data_root, tmp_path):
    from edgeprune.models import create_model
    from edgeprune.surgery import apply_plan_, save_pruned, uniform_plan

    dense = create_model("resnet8").eval()
    plan = uniform_plan(dense, 0.5)
    pruned = apply_plan_(create_model("resnet8").eval(), plan)
    save_pruned(tmp_path / "pruned", "resnet8", pruned, plan)
    out, dense_out = tmp_path / "p.json", tmp_path / "d.json"
    common = ["--data-root", str(data_root), "--no-progress", "--json"]
    assert main(["eval", "--model", str(tmp_path / "pruned"), *common, str(out)]) == 0
    assert main(["eval", "--model", "resnet8", *common, str(dense_out)]) == 0
    rec, dense_rec = json.loads(out.read_text()), json.loads(dense_out.read_text())
    assert rec["model"] == str(tmp_path / "pruned") and rec["n"] == 30
    assert rec["params"] < 0.6 * dense_rec["params"] and rec["flops"] < 0.6 * dense_rec["flops"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--data-root", "/nonexistent/cifar"], "data root /nonexistent/cifar does not exist"),
        (["--weights", "/nonexistent/w.th"], "weights file not found"),
        (["--split", "val"], "no train/ folder"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(data_root, capsys, extra, message):
    argv = ["eval", "--model", "resnet8", "--data-root", str(data_root), *extra, "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_unrecognised_data_root_is_a_user_error(tmp_path, capsys):
    argv = ["eval", "--model", "resnet8", "--data-root", str(tmp_path), "--no-progress"]
    assert main(argv) == 2
    assert "not a CIFAR-10 root" in capsys.readouterr().err


def test_eval_scores_an_int8_run_dir_through_onnx_runtime(data_root, tmp_path):
    """A run dir whose model.onnx is int8 is scored by that file, not by the torch model."""
    pytest.importorskip("onnxruntime")
    from edgeprune.export.onnx_export import export_onnx
    from edgeprune.models import create_model
    from edgeprune.quant.calibration import random_batches
    from edgeprune.quant.ptq import quantize_onnx
    from edgeprune.surgery import apply_plan_, save_pruned, uniform_plan

    run = tmp_path / "run"
    pruned = apply_plan_(create_model("resnet8").eval(), uniform_plan(create_model("resnet8"), 0.5))
    save_pruned(run, "resnet8", pruned, uniform_plan(create_model("resnet8"), 0.5))
    export_onnx(pruned, (3, 32, 32), str(run / "model_fp32.onnx"))
    quantize_onnx(run / "model_fp32.onnx", run / "model.onnx", random_batches((3, 32, 32), 16))
    common = ["--data-root", str(data_root), "--no-progress", "--json"]
    docs = {}
    for backend in ("auto", "torch"):
        out = tmp_path / f"{backend}.json"
        assert main(["eval", "--model", str(run), "--backend", backend, *common, str(out)]) == 0
        docs[backend] = json.loads(out.read_text())
    assert docs["auto"]["backend"] == "onnx" and docs["auto"]["precision"] == "int8"
    assert docs["auto"]["onnx_model"] == str(run / "model.onnx") and docs["auto"]["n"] == 30
    assert docs["torch"]["backend"] == "torch" and docs["torch"]["onnx_model"] is None
