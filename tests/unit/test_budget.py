"""Budget parsing, the allocator on a hand-made staircase table, feasibility and retries."""

import math
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from edgeprune.budget import Budget, budget_from_args, load_budget_yaml, parse_latency
from edgeprune.budget.allocator import allocate
from edgeprune.budget.controller import ControllerConfig, decide
from edgeprune.budget.costmodel import CostModel
from edgeprune.budget.verify import Measurement
from edgeprune.cost.ops import extract_ops, resolve_op
from edgeprune.errors import InfeasibleBudget, UserError
from edgeprune.methods.l1 import l1_group_scores
from edgeprune.models import create_model
from edgeprune.surgery import apply_plan_, prunable_layers
from edgeprune.surgery.blocks import find_blocks


def test_parse_latency_and_counts():
    assert parse_latency("0.5x") == (None, 0.5)
    assert parse_latency("0.8ms") == (0.8, None)
    assert parse_latency("800us") == (pytest.approx(0.8), None)
    with pytest.raises(UserError):
        parse_latency("fast")
    args = SimpleNamespace(
        latency_budget="0.5x",
        device="xeon",
        flops_budget="60M",
        params_budget=None,
        memory_budget_mb=4.0,
        activation_budget_mb=None,
        max_acc_drop=1.0,
        budget_file=None,
    )
    b = budget_from_args(args)
    assert (b.latency_ratio, b.flops, b.weight_mb, b.max_acc_drop) == (0.5, 60e6, 4.0, 1.0)


@pytest.mark.parametrize("text", ["0.5", "2", "1e-3"])
def test_latency_budget_needs_a_unit(text):
    with pytest.raises(UserError, match=f"has no unit: write {text}x .* or {text}ms"):
        parse_latency(text)


@pytest.mark.parametrize(
    "kw,msg",
    [
        ({"latency_ratio": 0.5}, "needs a device"),
        ({"weight_mb": -1}, "non-negative"),
        ({"weight_mb": math.inf}, "finite"),
        ({"activation_mb": -math.inf}, "finite"),
        ({"flops": math.nan}, "finite"),
        ({"max_acc_drop": math.inf}, "finite"),
        ({"params": 0}, "positive"),
        ({"weight_mb": "4"}, "must be a number"),
        ({"weight_mb": True}, "must be a number"),
        ({"flops_ratio": 2.0}, "cannot be larger"),
        ({}, "no budget"),
        ({"latency_ms": 1, "latency_ratio": 0.5, "device": "x"}, "not both"),
    ],
)
def test_nonsense_budgets_refused(kw, msg):
    with pytest.raises(UserError, match=msg):
        Budget(**kw)


def test_budget_yaml(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text("latency: 0.5x\ndevice: xeon\nweight_mb: 3\n")
    b = load_budget_yaml(str(p))
    assert b.latency_ratio == 0.5 and b.weight_mb == 3 and b.device == "xeon"
    p.write_text("latency: 0.5x\nbogus: 1\n")
    with pytest.raises(UserError, match="unknown budget key"):
        load_budget_yaml(str(p))
    p.write_text("latency: 0.5\ndevice: xeon\n")
    with pytest.raises(UserError, match="b.yaml: latency budget '0.5' has no unit"):
        load_budget_yaml(str(p))
    p.write_text("weight_mb: .inf\n")
    with pytest.raises(UserError, match="finite"):
        load_budget_yaml(str(p))
    p.write_text("latency: [0.5x\n")
    with pytest.raises(UserError, match=r"b.yaml is not valid YAML \(line 2: ") as err:
        load_budget_yaml(str(p))
    assert "\n" not in str(err.value)


@dataclass
class _Cal:
    scale: float = 1.0
    offset_ms: float = 0.05
    scale_unaligned: float = 1.0


class StaircasePredictor:
    """A hand-made table: per-op overhead plus cost in whole 8-channel blocks (unaligned
    widths cost as much as the next multiple of 8, plus a penalty)."""

    def __init__(self, ops):
        self.ops = ops
        self.by_name = {o.name: o for o in ops}
        self.calibration = _Cal()
        self.table = SimpleNamespace(alignment=8)

    def calibrated_op_ms(self, op, widths=None):
        return self.op_cost(op, widths)

    def correction_factor(self, widths=None):
        return 1.0  # no fitted correction

    def op_cost(self, op, widths=None):
        ci, co = resolve_op(op, widths, self.by_name)
        if ci == 0:
            return 0.0
        blocks = math.ceil(ci / 8) * math.ceil(co / 8)
        penalty = 1.3 if (ci % 8 or co % 8) else 1.0
        return 0.01 + 1e-4 * blocks * op.h_in * op.w_in / 64 * penalty


def _setup(name="resnet20"):
    model = create_model(name).eval()
    groups = prunable_layers(model)
    pred = StaircasePredictor(extract_ops(model, (3, 32, 32)))
    droppable = {f"{b}.{s.inner_convs[0]}" for b, s in find_blocks(model).items()}
    return model, groups, CostModel(model, groups, (3, 32, 32), pred), droppable


def test_allocator_meets_latency_and_follows_alignment_steps():
    model, groups, cost, droppable = _setup()
    scores = l1_group_scores(model, groups)
    budget = Budget(latency_ratio=0.6, device="handmade")
    a = allocate(cost, groups, scores, budget, droppable)
    assert a.metrics["latency_ms"] <= 0.6 * a.dense_metrics["latency_ms"] + 1e-9
    # on a staircase table an unaligned width never pays off
    assert all(w % 8 == 0 for w in a.widths.values())
    pruned = apply_plan_(model, a.plan)
    assert cost.metrics(a.widths)["params"] == pytest.approx(
        sum(p.numel() for p in pruned.parameters() if p.requires_grad), rel=0.01
    )


def test_allocator_drops_blocks_when_overhead_dominates():
    model, groups, cost, droppable = _setup()
    cost.predictor.op_cost_orig = cost.predictor.op_cost

    def overhead_heavy(op, widths=None):
        ci, _ = resolve_op(op, widths, cost.predictor.by_name)
        return 0.0 if ci == 0 else 1.0 + 1e-3 * cost.predictor.op_cost_orig(op, widths)

    cost.predictor.op_cost = overhead_heavy
    cost.predictor.calibrated_op_ms = overhead_heavy
    a = allocate(
        cost,
        groups,
        l1_group_scores(model, groups),
        Budget(latency_ratio=0.6, device="x"),
        droppable,
    )
    assert a.dropped_blocks, "with a fixed cost per op only removing blocks saves time"


def test_infeasible_budget_names_best_achievable():
    model, groups, cost, droppable = _setup()
    with pytest.raises(InfeasibleBudget, match="budget infeasible.*best achievable"):
        allocate(
            cost,
            groups,
            l1_group_scores(model, groups),
            Budget(latency_ratio=0.01, device="x"),
            droppable,
        )


def test_flops_and_memory_budgets():
    model, groups, cost, droppable = _setup()
    scores = l1_group_scores(model, groups)
    a = allocate(cost, groups, scores, Budget(flops_ratio=0.4, weight_mb=0.6), droppable)
    assert a.metrics["flops"] <= 0.4 * a.dense_metrics["flops"]
    assert a.metrics["weight_bytes"] <= 0.6e6


def test_controller_retries_when_measured_latency_misses():
    model, groups, cost, droppable = _setup()
    scores = l1_group_scores(model, groups)
    calls = []

    def measure(dense, pruned):
        calls.append(pruned)
        slow = 1.25 if len(calls) == 1 else 1.0  # the device disagrees with the table once
        d = cost.metrics({g.name: g.channels for g in groups})["latency_ms"]
        widths = {g.name: g.channels for g in groups}
        for g in groups:
            widths[g.name] = _width_of(pruned, g)
        return Measurement(d, cost.metrics(widths)["latency_ms"] * slow, 100, "test")

    res = decide(
        model,
        groups,
        scores,
        Budget(latency_ratio=0.6, device="x"),
        cost,
        droppable,
        torch.randn(1, 3, 32, 32),
        ControllerConfig(),
        measure,
        log=lambda m: None,
    )
    assert len(res.attempts) >= 2 and res.budget_met_latency
    assert res.attempts[0]["miss"] > 0.03 and res.attempts[1]["latency_scale"] < 1.0
    assert any(a["miss"] <= 0.03 for a in res.attempts[1:])


def _width_of(model, group):
    mods = dict(model.named_modules())
    conv = mods.get(group.name)
    return conv.out_channels if conv is not None and hasattr(conv, "out_channels") else 0
