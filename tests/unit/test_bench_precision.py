"""bench/prune ``--precision auto`` plumbing: the rows' precision column, --precision-batches."""

import pytest

from edgeprune.cli.main import build_parser
from edgeprune.errors import UserError
from edgeprune.report.rows import ROW_COLUMNS, build_row, rows_to_csv
from edgeprune.workflows.bench import BenchConfig, _prune_config, run_one

ENV = {"versions": {"torch": "x"}, "device": None}


def _cfg(tmp_path, **kw):
    base = dict(model="resnet8", methods=("uniform",), budgets=("0.5x",), budget_kind="flops")
    return BenchConfig(out=str(tmp_path), **{**base, **kw})


def test_row_says_the_deployed_precision():
    assert build_row({"precision": "int8"})["precision"] == "int8"
    assert build_row({})["precision"] == "fp32"  # a report from before int8
    assert "precision" in ROW_COLUMNS
    header, line = rows_to_csv([build_row({"precision": "int8", "method": "l1"})]).splitlines()
    assert line.split(",")[header.split(",").index("precision")] == "int8"


def test_bench_passes_precision_and_its_batches_to_each_row(tmp_path):
    cfg = _cfg(tmp_path, precision="auto", precision_batches=16)
    pc = _prune_config(cfg, "l1", "0.5x", str(tmp_path / "r"))
    assert pc.precision == "auto" and pc.precision_batches == 16
    assert BenchConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("precision, want", [("int8", "int8"), ("auto", None)])
def test_a_row_without_a_model_says_the_asked_precision_only(tmp_path, precision, want):
    cfg = _cfg(tmp_path, budgets=("0.0001x",), precision=precision)
    row = run_one(cfg, "uniform", "0.0001x", ENV)
    assert row["status"] == "infeasible" and row["precision"] == want


def _run_cli(monkeypatch, module: str, target: str, argv: list[str]):
    """The config the command builds (its workflow replaced by a recorder)."""
    import importlib

    seen = {}

    def record(cfg):
        seen["cfg"] = cfg
        raise UserError("recorded")

    monkeypatch.setattr(importlib.import_module(module), target, record)
    args = build_parser().parse_args(argv)
    with pytest.raises(UserError, match="recorded"):
        args._run(args)
    return seen["cfg"]


def test_bench_cli_accepts_precision_auto(monkeypatch, tmp_path):
    argv = ["bench", "--model", "resnet8", "--methods", "l1", "--flops-budgets", "0.5x"]
    argv += ["--precision", "auto", "--precision-batches", "8", "--out", str(tmp_path)]
    cfg = _run_cli(monkeypatch, "edgeprune.workflows.bench", "run_bench", argv)
    assert cfg.precision == "auto" and cfg.precision_batches == 8


def test_prune_cli_passes_precision_batches(monkeypatch, tmp_path):
    argv = ["prune", "--model", "resnet8", "--method", "l1", "--flops-budget", "0.5x"]
    argv += ["--precision", "auto", "--precision-batches", "4", "--out", str(tmp_path)]
    cfg = _run_cli(monkeypatch, "edgeprune.workflows.prune", "run_prune", argv)
    assert cfg.precision == "auto" and cfg.precision_batches == 4
    args = build_parser().parse_args([*argv[:-4], "--precision-batches", "-1", *argv[-2:]])
    with pytest.raises(UserError, match="--precision-batches"):
        args._run(args)
