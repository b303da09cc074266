"""The method contract: every registered method (and each variant its options select) runs
through prune's dispatch (``run_method``) on a tiny ResNet-8 under a FLOPs and a latency
budget (a hand-made latency table), and meets the same invariants."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from hand_profiles import bilinear_cost, hand_profile, hand_table
from torch.utils.data import DataLoader, TensorDataset

from edgeprune.budget import Budget
from edgeprune.budget.costmodel import CostModel
from edgeprune.cost import count
from edgeprune.cost.latency import LatencyPredictor
from edgeprune.cost.ops import extract_ops
from edgeprune.devices.profile import DeviceProfile
from edgeprune.errors import InfeasibleBudget
from edgeprune.methods import (
    Checkpointer,
    IterativePruner,
    MethodLoaders,
    Scorer,
    get_method,
    list_methods,
    make_method_context,
    method_class,
)
from edgeprune.models import create_model
from edgeprune.surgery import apply_plan_, prunable_layers, resolve_plan
from edgeprune.workflows.prune import run_method

SIZE = (3, 32, 32)
TOL = 1e-4  # counted/predicted metrics: rounding only

# the smallest training each method allows (on top of its own ``short_schedule``)
FAST = {
    "paam": {"device": "cpu", "an_lr": 1e-3},
    "onestep": {"beta_lr": 1e-2},
    "aap": {"max_rounds": 2, "round_batches": 1, "lam0": 2.0},
    "tp-magnitude": {"search_steps": 4},
}
VARIANTS = [(name, {}) for name in list_methods()]
VARIANTS += [("paam", {"final": "binarize", "binarize": "budget"}), ("onestep", {"rate": 0.5})]
BUDGETS = {
    "flops": Budget(flops_ratio=0.6),
    "latency": Budget(latency_ratio=0.7, device="hand"),
}


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> DeviceProfile:
    """A hand-made device: one latency table covering every ResNet-8 op and width."""
    ops = extract_ops(create_model("resnet8"), SIZE)
    table = hand_table(ops, lambda key, _: bilinear_cost(*key[:7]))
    return hand_profile(tmp_path_factory.mktemp("device"), table)


def _loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(16) % 4
    x = torch.randn(16, *SIZE, generator=g) + y.view(-1, 1, 1, 1) * 0.5
    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("resnet8").eval()
    for m in model.modules():  # varied BN statistics: some channels matter more
        if isinstance(m, torch.nn.BatchNorm2d):
            m.bias.data.uniform_(-1.0, 0.5)
    return model


def _context(model, groups, cost, budget, profile):
    store: dict = {}
    return make_method_context(
        model,
        groups,
        cost,
        budget,
        torch.zeros(1, *SIZE),
        loaders=MethodLoaders(_loader(), _loader(), _loader()),
        checkpoint=Checkpointer(lambda s: store.update(state=s), lambda: store.get("state")),
        limit_batches=1,
        log=lambda _m: None,
        device_profile=profile,
    )


@pytest.mark.parametrize("kind", sorted(BUDGETS))
@pytest.mark.parametrize(("name", "extra"), VARIANTS, ids=lambda v: str(v) if v else "")
def test_every_method_meets_the_contract(name, extra, kind, profile):
    model = _model()
    groups = prunable_layers(model, SIZE)
    budget = BUDGETS[kind]
    predictor = LatencyPredictor.from_model(model, SIZE, profile) if kind == "latency" else None
    cost = CostModel(model, groups, SIZE, predictor)
    ctx = _context(model, groups, cost, budget, profile)
    cls = method_class(name)
    method = get_method(name, **{**cls.short_schedule, **FAST.get(name, {}), **extra})
    assert isinstance(method, Scorer) != isinstance(method, IterativePruner)  # exactly one
    state = dict(vars(method))
    try:
        out = run_method(method, model, groups, ctx, budget)
    except InfeasibleBudget:
        pytest.skip(f"{name}: budget infeasible (a result, not a failure)")
    assert vars(method) == state, "no state is left on the method between calls"

    # the plan applies to the original model and stays within the dense widths
    plan = out.result.plan
    keep = resolve_plan(plan, groups)
    for g in groups:
        kept = keep.get(g.name, list(range(g.channels)))
        assert kept == sorted(set(kept)) and all(0 <= i < g.channels for i in kept), g.name
    applied = apply_plan_(copy.deepcopy(_model()), plan, ctx.example_input)
    x = torch.randn(2, *SIZE)
    assert applied(x).shape == out.pruned(x).shape == (2, 10)
    assert count(applied, SIZE).params == count(out.pruned, SIZE).params

    # the budget's metric is met (unless the method's own option fixes the amount)
    if cls.own_budget_option not in extra:
        dense = ctx.oracle.dense_metrics
        if kind == "flops":
            assert count(out.pruned, SIZE).flops <= 0.6 * dense["flops"] * (1 + TOL)
        else:
            ms = LatencyPredictor.from_model(out.pruned, SIZE, profile).total_ms()
            assert ms <= 0.7 * dense["latency_ms"] * (1 + TOL)

    # diagnostics and the method's recovery info are JSON as written to the run dir
    json.dumps(out.diagnostics, default=float)
    json.dumps(out.recovery, default=float)
    assert out.budget == budget
