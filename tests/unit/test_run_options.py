"""prune and bench share one set of run options: the CLI maps them once (run_options_from_args)
and bench hands them to every row's PruneConfig (RUN_OPTIONS)."""

from dataclasses import fields

import pytest

from edgeprune.cli.args import run_options_from_args
from edgeprune.cli.main import build_parser
from edgeprune.errors import UserError
from edgeprune.workflows.bench import RUN_OPTIONS, BenchConfig, _prune_config
from edgeprune.workflows.prune import PruneConfig

# every shared option away from its default
ARGV = ["--model", "resnet8", "--weights", "w.th", "--trust-pickle", "--device", "local"]
ARGV += ["--host", "u@h:2222", "--key", "k", "--remote-python", "py3", "--connect-timeout", "5"]
ARGV += ["--data-root", "data", "--limit-batches", "3", "--seed", "7", "--distill", "feat"]
ARGV += ["--candidates", "2", "--candidate-batches", "9", "--precision", "int8"]
ARGV += ["--precision-batches", "5", "--calibration-images", "64", "--out", "o"]


def _options(command: str, budget: str) -> dict:
    return run_options_from_args(build_parser().parse_args([command, budget, "0.5x", *ARGV]))


def _names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def test_prune_and_bench_read_the_same_run_options():
    opts = _options("prune", "--flops-budget")
    assert opts == _options("bench", "--flops-budgets")
    assert set(opts) == {*RUN_OPTIONS, "distill"}
    assert set(opts) <= _names(PruneConfig) & _names(BenchConfig)
    assert (opts["weights"], opts["trust_pickle"], opts["seed"]) == ("w.th", True, 7)
    assert opts["ssh"].connect_timeout == 5 and opts["distill"].mode == "feat"
    assert opts["quantization"].calibration_images == 64


def test_every_bench_row_runs_with_the_bench_run_options(tmp_path):
    opts = _options("bench", "--flops-budgets")
    base = dict(model="resnet8", methods=("l1",), budgets=("0.5x",), budget_kind="flops")
    cfg = BenchConfig(out=str(tmp_path), **base, **opts)
    for bench in (cfg, BenchConfig.from_dict(cfg.to_dict())):  # distill as a dict too
        pc = _prune_config(bench, "l1", "0.5x", str(tmp_path / "r"))
        assert pc.distill == opts["distill"]
        assert {f: getattr(pc, f) for f in RUN_OPTIONS} == {
            f: getattr(bench, f) for f in RUN_OPTIONS
        }


@pytest.mark.parametrize(
    "command, budget", [("prune", "--flops-budget"), ("bench", "--flops-budgets")]
)
@pytest.mark.parametrize(
    "flag, value",
    [
        ("--epochs", "-1"),
        ("--candidates", "0"),
        ("--candidate-batches", "0"),
        ("--precision-batches", "-1"),
    ],
)
def test_prune_and_bench_refuse_the_same_counts(command, budget, flag, value):
    args = build_parser().parse_args([command, budget, "0.5x", *ARGV, flag, value])
    with pytest.raises(UserError, match=flag):
        args._run(args)
