"""CSV rows of the comparison harness, Pareto fronts, resume (hand-made run dirs)."""

import json
import math

import pytest

from edgeprune.errors import UserError
from edgeprune.report.pareto import pareto_front
from edgeprune.report.rows import (
    ROW_COLUMNS,
    budget_label,
    build_row,
    rows_to_csv,
    speedup_vs_flops,
    with_measurement,
)
from edgeprune.workflows.bench import BenchConfig, make_budget, run_dir_name, run_one

REPORT = {
    "model": "resnet8",
    "method": "l1",
    "device": "xeon",
    "device_table": "measured",
    "budget": {"latency_ratio": 0.5, "device": "xeon"},
    "dense": {"latency_ms": 2.0, "params": 1000, "flops": 4000, "top1": 0.9},
    "pruned": {"params": 500, "flops": 1000, "top1": 0.85},
    "predicted_latency_ms": 1.1,
    "measured_latency_ms": 1.0,
    "latency_ratio": 0.5,
    "budget_met": True,
    "recovery_epochs": 1,
    "wall_time_s": 12.0,
    "timings": {"method_s": 3.0, "verify_s": 2.0, "recovery_s": 5.0},
    "seed": 0,
    "versions": {"torch": "2.x"},
}


def test_build_row_columns_and_arithmetic():
    row = build_row(REPORT)
    assert tuple(row) == ROW_COLUMNS
    assert row["budget"] == "0.5x latency" and row["status"] == "ok"
    assert row["speedup"] == pytest.approx(2.0)
    assert row["flops_reduction"] == pytest.approx(4.0)
    # 2x faster for 4x fewer FLOPs: half the FLOPs cut turned into time
    assert row["speedup_vs_flops"] == pytest.approx(0.5)
    assert row["params_ratio"] == pytest.approx(0.5) and row["top1"] == 0.85
    assert row["method_s"] == 3.0 and row["versions"] == "torch=2.x"


def test_row_without_measurement_has_no_speedup_until_measured():
    rep = {**REPORT, "measured_latency_ms": None, "latency_ratio": None}
    row = build_row(rep)
    assert row["speedup"] is None and row["speedup_vs_flops"] is None
    row = with_measurement(row, 2.0, 0.5)
    assert row["latency_ratio"] == pytest.approx(0.25)
    assert row["speedup_vs_flops"] == pytest.approx(1.0)


def test_speedup_vs_flops_missing_values():
    assert speedup_vs_flops(None, 1.0, 4, 1) is None
    assert speedup_vs_flops(2.0, 1.0, 4, 0) is None
    assert speedup_vs_flops(2.0, 1.0, 4, float("nan")) is None


def test_budget_label_and_csv():
    assert budget_label({"flops_ratio": 0.3}) == "0.3x flops"
    assert budget_label({}) == "-"
    text = rows_to_csv([build_row(REPORT)])
    header, line = text.strip().splitlines()
    assert header.split(",") == list(ROW_COLUMNS)
    assert ",0.5," in line


def test_pareto_front():
    pts = [(1.0, 0.80), (2.0, 0.90), (1.5, 0.70), (3.0, 0.89), (0.5, None), (2.5, math.nan)]
    assert pareto_front(pts) == [0, 1]
    assert pareto_front([(1.0, 0.5), (1.0, 0.6)]) == [1]
    assert pareto_front([]) == []


def _cfg(tmp_path, **kw):
    base = dict(model="resnet8", methods=("l1",), budgets=("0.5x",), budget_kind="flops")
    return BenchConfig(out=str(tmp_path), **{**base, **kw})


ENV = {"versions": {"torch": "x"}, "device": None}


def test_resume_skips_done_rows(tmp_path):
    cfg = _cfg(tmp_path)
    d = tmp_path / "runs" / run_dir_name("l1", "flops", "0.5x")
    d.mkdir(parents=True)
    done = {**build_row(REPORT), "status": "ok", "message": "from before"}
    (d / "row.json").write_text(json.dumps(done))
    row = run_one(cfg, "l1", "0.5x", ENV)  # would take seconds if it really ran
    assert row["message"] == "from before"


def test_unregistered_method_is_not_available(tmp_path):
    row = run_one(_cfg(tmp_path), "no-such-method", "0.5x", ENV)
    assert row["status"] == "not available" and row["budget"] == "0.5x flops"
    assert not (tmp_path / "runs" / "no-such-method-flops-0.5x" / "row.json").exists()


def test_config_errors_are_one_sentence(tmp_path):
    with pytest.raises(UserError, match="--device"):
        BenchConfig(model="resnet8", out=str(tmp_path), methods=("l1",), budgets=("0.5x",))
    with pytest.raises(UserError, match="data-root"):
        _cfg(tmp_path, recovery_epochs=1)
    with pytest.raises(UserError):
        make_budget(_cfg(tmp_path), "half")
    assert BenchConfig.from_dict(_cfg(tmp_path).to_dict()) == _cfg(tmp_path)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"methods": ("l1", "foo")}, "unknown method 'foo'; available: "),
        ({"method_options": {"bar": {"x": 1}}}, "unknown method 'bar'"),
        ({"method_options": {"l1": {"x": 1}}}, "method 'l1' has no option 'x'"),
        ({"methods": ("aap",), "method_options": {"aap": {"lam0": "big"}}}, "lam0 must be a"),
        ({"methods": ("paam",)}, "method 'paam' trains on data"),
        ({"budgets": ("0.5x", "half")}, "half"),
        ({"data_root": "/no/such/root"}, "does not exist"),
    ],
)
def test_every_row_is_checked_before_any_work(tmp_path, kw, match):
    from edgeprune.workflows.bench import check_rows

    with pytest.raises(UserError, match=match):
        check_rows(_cfg(tmp_path / "out", **kw))
    assert not (tmp_path / "out").exists()


def test_a_second_bench_into_the_same_dir_adds_to_the_table(tmp_path):
    from edgeprune.workflows.bench import earlier_rows, merged_config

    first = _cfg(tmp_path, methods=("l1", "paam"), budgets=("0.5x",))
    (tmp_path / "bench.json").write_text(json.dumps({"config": first.to_dict()}))
    merged = merged_config(_cfg(tmp_path, methods=("aap", "l1"), budgets=("0.3x",)))
    assert merged["methods"] == ["l1", "paam", "aap"] and merged["budgets"] == ["0.5x", "0.3x"]
    with pytest.raises(UserError, match="seed=0"):
        merged_config(_cfg(tmp_path, seed=1))

    for name in ("dense", "l1-flops-0.5x", "aap-flops-0.3x"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "row.json").write_text(json.dumps({"run_dir": f"runs/{name}"}))
    (tmp_path / "runs" / "broken").mkdir()  # a run that died before its row: left out
    this_run = [{"run_dir": "runs/dense"}, {"run_dir": "runs/aap-flops-0.3x"}]
    assert earlier_rows(str(tmp_path), this_run) == [{"run_dir": "runs/l1-flops-0.5x"}]


def test_an_infeasible_budget_is_a_result_kept_on_resume(tmp_path):
    cfg = _cfg(tmp_path, methods=("uniform",), budgets=("0.0001x",))
    row = run_one(cfg, "uniform", "0.0001x", ENV)
    assert row["status"] == "infeasible" and "infeasible" in row["message"]
    saved = tmp_path / "runs" / "uniform-flops-0.0001x" / "row.json"
    mtime = saved.stat().st_mtime
    assert run_one(cfg, "uniform", "0.0001x", ENV)["status"] == "infeasible"
    assert saved.stat().st_mtime == mtime  # not run again


def test_rows_with_another_distillation_do_not_join_the_table(tmp_path):
    from edgeprune.train.distill import DistillConfig
    from edgeprune.workflows.bench import merged_config

    old = _cfg(tmp_path).to_dict()
    old.pop("distill")  # a table written before distillation existed: its rows had none
    (tmp_path / "bench.json").write_text(json.dumps({"config": old}))
    with pytest.raises(UserError, match="distill='none'"):
        merged_config(_cfg(tmp_path))  # default: kd
    merged_config(_cfg(tmp_path, distill=DistillConfig(mode="none")))  # same table: accepted


def test_rows_with_another_kd_setting_do_not_join_the_table(tmp_path):
    from edgeprune.train.distill import DistillConfig
    from edgeprune.workflows.bench import merged_config

    old = _cfg(tmp_path).to_dict()
    old["distill"] = {"mode": "kd", "temperature": 4.0, "alpha": 0.9, "feat_weight": 1000.0}
    (tmp_path / "bench.json").write_text(json.dumps({"config": old}))  # before adjust existed
    merged_config(_cfg(tmp_path, distill=DistillConfig(adjust=False, alpha_end=None)))
    with pytest.raises(UserError, match="adjust=False"):
        merged_config(_cfg(tmp_path, distill=DistillConfig(adjust=True, alpha_end=0.0)))
    assert _cfg(tmp_path).distill == DistillConfig()  # None is resolved when the config is made


def test_bench_preset_gives_each_method_its_options_under_opt():
    from edgeprune.cli.bench_cmd import preset_options
    from edgeprune.methods.presets import get_preset

    opts = preset_options("l1,aap,onestep", "paper", ["aap:lam0=0.5"])
    assert "l1" not in opts  # a baseline has no paper preset and keeps its defaults
    assert opts["aap"]["lam0"] == 0.5  # --opt wins
    paper = get_preset("onestep", "paper").options
    assert opts["onestep"] == paper and paper  # the preset's values, all of them
    cpu = preset_options("aap", "cpu", [])
    assert cpu["aap"] == get_preset("aap", "cpu").options
    assert preset_options("aap", None, ["aap:lam0=0.5"]) == {"aap": {"lam0": 0.5}}
