"""INT8 as a budget dimension (issue 18): the table's precision column, the predictor at a
precision, and the controller's choice between precisions, on hand-made tables."""

import pandas as pd
import pytest
import torch
from hand_profiles import hand_profile, hand_table

from edgeprune.budget import Budget
from edgeprune.budget.controller import (
    PrecisionOption,
    choose_precision,
    decide,
)
from edgeprune.budget.costmodel import CostModel
from edgeprune.cost.latency import LatencyPredictor, predict_latency, profile_precisions
from edgeprune.cost.latency_table import LatencyTable
from edgeprune.cost.ops import extract_ops
from edgeprune.devices.profile import Provenance, load_profile
from edgeprune.devices.sweep import Job, done_keys, int8_twins
from edgeprune.errors import UserError
from edgeprune.models import create_model
from edgeprune.surgery import prunable_layers
from edgeprune.surgery.blocks import droppable_groups

SIZE = (3, 32, 32)


def _cost(op, ci, co, k, h):
    return 0.01 + ci * co * k * k * h * h / 1e7 + (ci + co) * 1e-4


def make_profile(tmp_path, model, int8_factor=None, conv_only=True):
    """fp32 rows from ``_cost``; int8 rows (when ``int8_factor``) the same times the factor
    for convs (other ops as fp32 unless not ``conv_only``)."""

    def latency(key, precision):
        lat = _cost(key.op, key.c_in, key.c_out, key.kernel, key.h_in)
        if precision == "int8" and (key.op == "conv" or not conv_only):
            lat *= int8_factor
        return lat

    precisions = ["fp32"] + (["int8"] if int8_factor is not None else [])
    table = hand_table(extract_ops(model, SIZE), latency, precisions)
    measured = Provenance("measured", host="test", date="2026-12-01")
    return load_profile(hand_profile(tmp_path, table, f"hand{int8_factor}", None, measured).path)


def test_old_tables_read_as_fp32_and_rpi3_has_no_int8():
    for name in ("xeon", "rpi3"):
        assert profile_precisions(load_profile(name)) == ("fp32",)
    row = dict(op="conv", c_in=4, c_out=4, kernel=3, stride=1, groups=1, h_in=8, w_in=8, batch=1)
    row.update(runtime="ort", threads=1, dtype="float32", latency_ms_median=1.0)
    row.update(latency_ms_p90=1.0, n_runs=1)
    t = LatencyTable(pd.DataFrame([row]))
    assert t.precision == "fp32" and t.precisions == ("fp32",)
    with pytest.raises(UserError, match="no int8 measurements"):
        LatencyTable(pd.DataFrame([row]), precision="int8")
    with pytest.raises(UserError, match="unknown precision"):
        LatencyTable(pd.DataFrame([{**row, "precision": "int4"}]))


def test_predictor_prices_int8_cheaper_or_dearer_as_the_table_says(tmp_path):
    model = create_model("resnet8").eval()
    fast = make_profile(tmp_path, model, 0.5)
    fp32 = predict_latency(model, fast, input_size=SIZE).total_ms
    int8 = predict_latency(model, fast, input_size=SIZE, precision="int8")
    assert int8.precision == "int8" and int8.total_ms < 0.8 * fp32
    slow = make_profile(tmp_path, model, 1.5)
    assert predict_latency(model, slow, input_size=SIZE, precision="int8").total_ms > fp32
    # widths re-priced on the int8 rows too
    pred = LatencyPredictor.from_model(model, SIZE, fast, precision="int8")
    widths = {n: 4 for n in pred.by_name if n.endswith("conv1")}
    assert pred.total_ms(widths) < pred.total_ms()


def test_a_table_without_int8_rows_never_guesses(tmp_path):
    model = create_model("resnet8").eval()
    prof = make_profile(tmp_path, model, None)
    assert profile_precisions(prof) == ("fp32",)
    with pytest.raises(UserError) as err:
        predict_latency(model, prof, input_size=SIZE, precision="int8")
    msg = str(err.value)
    assert "no int8 measurements" in msg and "edgeprune profile --device hand" in msg


def _choose(prof, score):
    model = create_model("resnet8").eval()
    groups = prunable_layers(model, SIZE)
    torch.manual_seed(0)
    scores = {g.name: torch.rand(g.channels) for g in groups}
    budget = Budget(latency_ratio=0.5, device="hand")
    preds = {
        p: LatencyPredictor.from_model(model, SIZE, prof, precision=p)
        for p in profile_precisions(prof)
    }
    dense = preds["fp32"].total_ms()
    options = [PrecisionOption(p, pr.total_ms() / dense) for p, pr in preds.items()]
    example = torch.randn(1, *SIZE)

    def decide_at(o):
        cost = CostModel(model, groups, SIZE, preds[o.precision])
        args = (model, groups, scores, budget, cost, droppable_groups(model), example)
        return decide(*args, log=lambda m: None, latency_base=1.0 / o.dense_ratio)

    return choose_precision(options, decide_at, score, lambda m: None)


def _kept(result) -> int:
    return sum(result.allocation.widths.values())


def test_controller_picks_int8_where_it_is_faster(tmp_path):
    prof = make_profile(tmp_path, create_model("resnet8").eval(), 0.4)
    # the more channels kept, the better the (scripted) val score
    choice = _choose(prof, lambda p, r: _kept(r))
    assert choice.precision == "int8"
    rec = choice.to_dict()
    assert rec["chosen"] == "int8" and "val split" in rec["rule"]
    c = rec["candidates"]
    assert c["int8"]["val_score"] > c["fp32"]["val_score"]
    # the budget is relative to dense fp32 for both: their predicted ratios are <= 0.5
    assert c["fp32"]["predicted_ratio"] <= 0.5 + 1e-6
    assert c["int8"]["predicted_ratio"] <= 0.5 + 1e-6
    assert c["int8"]["dense_ratio_predicted"] < 1.0


def test_without_val_data_the_candidate_keeping_the_most_is_chosen(tmp_path):
    """No data, no score: int8 meets the budget with less pruning, so it is chosen (it had
    gone to fp32, the first candidate, on MobileNetV2 at 0.5x)."""
    prof = make_profile(tmp_path, create_model("resnet8").eval(), 0.4)
    choice = _choose(prof, None)
    c = choice.to_dict()["candidates"]
    assert choice.precision == "int8"
    assert c["int8"]["flops_kept"] > c["fp32"]["flops_kept"]
    assert "val_score" not in c["int8"]


def test_controller_never_picks_int8_where_it_is_slower(tmp_path):
    prof = make_profile(tmp_path, create_model("resnet8").eval(), 1.3, conv_only=False)
    # even a score that prefers int8 cannot choose it: the table rules it out
    choice = _choose(prof, lambda p, r: 1.0 if p == "int8" else 0.0)
    assert choice.precision == "fp32"
    assert "excluded" in choice.candidates["int8"]
    assert "val_score" not in choice.candidates["fp32"]  # a single candidate is not scored


def test_sweep_int8_twins_and_resume_keys():
    job = Job("pair", "conv", 4, 8, 3, 1, 8, 8)
    twins = int8_twins([job], ("fp32", "int8"))
    assert [j.precision for j in twins] == ["fp32", "int8"] and twins[1].tag != job.tag
    assert int8_twins([job], ("fp32",)) == [job]
    cols = dict(op="conv", c_in=4, c_out=8, kernel=3, stride=1, h_in=8, w_in=8, groups=1)
    old = pd.DataFrame([cols])
    assert ("fp32", "conv", 4, 8, 3, 1, 8, 8) in {k[:8] for k in done_keys(old)}  # no column: fp32


def test_int8_micro_model_is_qdq_and_runs(tmp_path):
    import numpy as np

    from edgeprune.devices import micro
    from edgeprune.devices.sweep import quantize_micro
    from edgeprune.quant.onnx_eval import run_onnx
    from edgeprune.quant.ptq import is_int8

    model, _ = micro.conv_chain(8, 16, 3, 8, 8, 2)
    path = quantize_micro(model, str(tmp_path / "q.onnx"))
    assert is_int8(path)
    out = run_onnx(path, np.random.default_rng(0).standard_normal((1, 8, 8, 8)))
    assert out.shape == (1, 8, 8, 8)


def test_int8_under_a_latency_budget_on_a_device_without_int8_rows_is_one_sentence():
    from edgeprune.workflows.precision import precision_options

    rpi3 = load_profile("rpi3")
    with pytest.raises(UserError) as err:
        precision_options("int8", rpi3, None, SIZE, "resnet56", None, lambda m: None)
    msg = str(err.value)
    assert "'rpi3' has no int8 measurements" in msg
    assert "edgeprune profile --device rpi3 --model resnet56" in msg


def test_no_feasible_precision_says_why_for_each():
    from edgeprune.budget.controller import InfeasibleBudget

    def decide_at(option):
        raise InfeasibleBudget(f"smallest {option.precision} plan predicted 0.4x")

    options = [PrecisionOption("fp32", 1.0), PrecisionOption("int8", 0.6)]
    with pytest.raises(InfeasibleBudget) as err:
        choose_precision(options, decide_at, None, lambda m: None)
    assert "fp32: no plan meets the budget (smallest fp32 plan predicted 0.4x)" in str(err.value)
    assert "int8: no plan meets the budget (smallest int8 plan predicted 0.4x)" in str(err.value)
