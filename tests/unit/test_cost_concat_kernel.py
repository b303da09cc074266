"""The cost model prices what a pruned model runs: a concat (and every op reading it) at
the width its pruned inputs add up to, and a non-square conv (1x7) by its real kernel."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from hand_profiles import hand_profile, hand_table
from torch import nn

from edgeprune.budget.costmodel import CostModel
from edgeprune.cost import count
from edgeprune.cost.latency import LatencyPredictor
from edgeprune.cost.ops import extract_ops, resolve_op
from edgeprune.devices.sweep import plan_jobs
from edgeprune.errors import UserError
from edgeprune.surgery import Plan, apply_plan_, prunable_layers

SIZE = (3, 16, 16)


class Inception(nn.Module):
    """Two inception-style blocks: branches concatenated, then read by a 1x1 conv."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.a1 = nn.Sequential(nn.Conv2d(16, 8, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.a2 = nn.Sequential(nn.Conv2d(16, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.b1 = nn.Sequential(nn.Conv2d(20, 8, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.b2 = nn.Sequential(nn.Conv2d(20, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Conv2d(16, 10, 1)

    def forward(self, x):
        x = self.stem(x)
        x = self.pool(torch.cat([self.a1(x), self.a2(x)], 1))
        x = torch.cat([self.b1(x), self.b2(x)], 1)
        return self.head(x).mean((2, 3))


def _cost(key, _):
    """A conv at 0.001 ms x c_in x c_out x its kernel's area as measured (a 1x7 job's rows
    cost 7, a 7x7 one's 49), any other op at 0.001 ms x c_in."""
    if key.op == "conv":
        return 0.001 * key.c_in * key.c_out * key.kernel * (key.kernel_w or key.kernel)
    return 0.001 * key.c_in


def _profile(tmp_path, ops):
    return hand_profile(tmp_path, hand_table(ops, _cost))


def _halved(groups):
    return {g.name: max(1, g.channels // 2) for g in groups}


def test_a_concat_and_its_readers_take_the_pruned_inputs_width():
    model = Inception().eval()
    ops = extract_ops(model, SIZE)
    by_name = {o.name: o for o in ops}
    cats = [o for o in ops if o.op == "concat"]
    assert [c.c_in for c in cats] == [20, 16]
    widths = {"a1.0": 3, "a2.0": 5, "b1.0": 2, "b2.0": 7}
    assert resolve_op(cats[0], widths, by_name) == (8, 8)
    assert resolve_op(by_name["pool"], widths, by_name) == (8, 8)  # maxpool after the concat
    assert resolve_op(by_name["b1.0"], widths, by_name) == (8, 2)  # the conv reading it
    assert resolve_op(by_name["head"], widths, by_name) == (9, 10)
    assert resolve_op(by_name["head"], {}, by_name) == (16, 10)


def test_flops_of_a_pruned_inception_block_equal_the_exact_count():
    model = Inception().eval()
    groups = prunable_layers(model, SIZE)
    cost = CostModel(model, groups, SIZE, None)
    widths = _halved(groups)
    plan = Plan({g: list(range(w)) for g, w in widths.items()})
    slim = apply_plan_(copy.deepcopy(model), plan, torch.zeros(1, *SIZE))
    exact = count(slim, SIZE)
    m = cost.metrics(widths)
    assert m["flops"] == exact.flops
    assert m["params"] == exact.params
    # the incremental delta of a branch feeding a concat reaches the conv reading it
    name = next(g.name for g in groups if "a1.0" in g.convs)
    reader = next(i for i, o in enumerate(cost.ops) if o.name == "b1.0")
    assert reader in cost.affected[name]
    full = {g.name: g.channels for g in groups}
    d = cost.delta(dict(full), name, 1)["flops"]
    assert d == cost.metrics({**full, name: 1})["flops"] - cost.metrics(full)["flops"]


def test_latency_prices_a_concat_at_its_pruned_width(tmp_path):
    model = Inception().eval()
    ops = extract_ops(model, SIZE)
    pred = LatencyPredictor(ops, _profile(tmp_path, ops))
    cat = next(o for o in ops if o.op == "concat")
    widths = {"a1.0": 3, "a2.0": 5}
    assert pred.op_cost(cat, widths) < pred.op_cost(cat)
    assert abs(pred.op_cost(cat, widths) - 0.001 * 8) < 1e-9  # 3 + 5 channels


class Factorized(nn.Module):
    """Inception-v3's factorized 7x7: a 1x7 conv then a 7x1 conv, and a 1x1 beside them."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, (1, 7), padding=(0, 3))
        self.b = nn.Conv2d(8, 8, (7, 1), padding=(3, 0))
        self.c = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        return self.c(self.b(self.a(x)))


def test_a_non_square_kernel_is_measured_and_priced_with_its_real_shape(tmp_path):
    from onnx import helper

    from edgeprune.devices.sweep import build_job_models, done_keys

    ops = {o.name: o for o in extract_ops(Factorized().eval(), SIZE)}
    assert (ops["a"].kernel, ops["a"].kernel_w) == (1, 7)
    assert (ops["b"].kernel, ops["b"].kernel_w) == (7, 1)
    jobs = plan_jobs(list(ops.values()), alignment=1)
    shapes = {(j.kernel, j.kernel_w) for j in jobs if j.op == "conv"}
    assert shapes == {(1, 7), (7, 1), (1, 0)}
    # the micro model of a 1x7 job is a 1x7 conv that keeps the map's size
    job = next(j for j in jobs if j.kernel_w == 7)
    from edgeprune.devices.sweep import SweepSettings

    (path, _), *_ = build_job_models(job, str(tmp_path), SweepSettings())
    import onnx

    m = onnx.shape_inference.infer_shapes(onnx.load(path))
    conv = next(n for n in m.graph.node if n.op_type == "Conv")
    assert helper.get_attribute_value(
        next(a for a in conv.attribute if a.name == "kernel_shape")
    ) == [1, 7]
    out = [d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim]
    assert out[2:] == [SIZE[1], SIZE[2]]
    # priced from its own rows: 7 taps, not 49 (7x7) and not 1 (1x1)
    pred = LatencyPredictor(list(ops.values()), _profile(tmp_path, list(ops.values())))
    assert abs(pred.op_cost(ops["a"]) - 0.001 * 3 * 8 * 7) < 1e-9
    assert abs(pred.op_cost(ops["b"]) - 0.001 * 8 * 8 * 7) < 1e-9
    assert abs(pred.op_cost(ops["c"]) - 0.001 * 8 * 8) < 1e-9
    # a table measured before (square rows only) does not price it, and resumes it
    df = pd.read_csv(tmp_path / "hand.csv")
    square = df[df["kernel_w"].fillna(0) == 0].drop(columns=["kernel_w"])
    assert all(k[-1] == 0 for k in done_keys(square))
    assert not all(
        (j.precision, *k, j.groups, j.kernel_w) in done_keys(square) for j in jobs for k in j.keys()
    )
    with pytest.raises(UserError, match="1x7"):
        LatencyPredictor(list(ops.values()), hand_profile(tmp_path, square))


def test_ops_priced_beyond_the_measured_rows_are_named(tmp_path):
    from edgeprune.report.run_report import ModelStats, RunReport

    model = Inception().eval()
    ops = extract_ops(model, SIZE)
    full = LatencyPredictor(ops, _profile(tmp_path, ops))
    assert full.not_predicted() == []
    assert full.not_predicted({"a1.0": 3, "b2.0": 5}) == []
    df = pd.read_csv(tmp_path / "hand.csv")
    head = (df["op"] == "conv") & (df["kernel"] == 1) & (df["h_in"] == 8)
    cut = df[~(head & ((df["c_in"] > 9) | (df["c_out"] > 9)))]  # 1x1 convs at 8x8: <= 9
    pred = LatencyPredictor(ops, hand_profile(tmp_path, cut))
    lines = pred.not_predicted()
    assert {line.split(" ")[0] for line in lines} == {"b1.0", "head"}
    assert "c_in 20 extrapolated beyond the measured 1..9" in lines[0]
    pruned = pred.not_predicted({"a1.0": 2, "a2.0": 3, "b1.0": 4, "b2.0": 5})
    assert pruned == [
        "head (conv 9->10 k=1 at 8x8): c_out 10 extrapolated beyond the measured 1..9"
    ]
    stats = ModelStats(params=1, flops=1, weight_bytes=4)
    report = RunReport(model="m", method="l1", dense=stats, pruned=stats)
    assert "latency_not_predicted" not in report.to_dict()
    d = RunReport.from_dict({**report.to_dict(), "latency_not_predicted": lines}).to_dict()
    assert d["latency_not_predicted"] == lines


def test_a_width_whose_alignment_class_has_one_point_is_priced_from_both_classes():
    """regnet_x_400mf's grouped convs (4 groups of 16): the sweep measured 4, 16, 32, 48, 64
    channels, so the unaligned class (alignment 16) held only 4, and 56 was priced as 4."""
    from edgeprune.cost.latency_table import LatencyTable

    rows = [
        dict(
            op="conv", c_in=c, c_out=c, kernel=3, stride=1, groups=4, h_in=8, w_in=8, batch=1,
            runtime="ort", threads=1, dtype="float32", latency_ms_median=0.01 * c,
            latency_ms_p90=0.01 * c, n_runs=1,
        )
        for c in (4, 16, 32, 48, 64)
    ]  # fmt: skip
    table = LatencyTable(pd.DataFrame(rows), alignment=16)
    assert abs(table.lookup("conv", 56, 56, 3, 1, 8, 8, 4) - 0.56) < 1e-9  # was 0.04
    assert abs(table.lookup("conv", 48, 48, 3, 1, 8, 8, 4) - 0.48) < 1e-9
    why = table.inexact("conv", 56, 56, 3, 1, 8, 8, 4)
    assert why == "channels 56: 1 measured row(s) of its alignment class"
    assert table.inexact("conv", 32, 32, 3, 1, 8, 8, 4) is None
    assert table.inexact("conv", 4, 4, 3, 1, 8, 8, 4) is None  # its one point, measured
