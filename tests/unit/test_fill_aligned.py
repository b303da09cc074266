"""A global threshold's latency slack widens layers to the device's channel alignment."""

import copy
import dataclasses

import pytest
import torch
from hand_profiles import hand_profile, hand_table

from edgeprune.budget.allocator import AllocatorConfig
from edgeprune.budget.budget import Budget
from edgeprune.budget.controller import threshold_allocate
from edgeprune.budget.costmodel import CostModel
from edgeprune.cost.latency import LatencyPredictor
from edgeprune.cost.ops import extract_ops
from edgeprune.methods.aap.thresholds import droppable_convs
from edgeprune.models import create_model
from edgeprune.surgery import apply_plan_
from edgeprune.surgery.apply import prunable_layers

SIZE = (3, 32, 32)
ALIGN = 4


def stepped(key, _precision):
    """A device whose kernels run channels in multiples of ALIGN: 5 costs what 8 costs."""

    def up(c):
        return -(-c // ALIGN) * ALIGN

    return 0.01 + up(key.c_in) * up(key.c_out) * key.kernel**2 * key.h_in * key.w_in / 1e7


def setup(tmp_path):
    model = create_model("resnet8").eval()
    ops = extract_ops(model, SIZE)
    prof = hand_profile(tmp_path, hand_table(ops, stepped))
    prof = dataclasses.replace(prof, channel_alignment=ALIGN)
    groups = prunable_layers(model, SIZE)
    cost = CostModel(model, groups, SIZE, LatencyPredictor(ops, prof))
    torch.manual_seed(0)
    scores = {g.name: torch.rand(g.channels) for g in groups}
    return model, groups, cost, scores


def allocate(model, groups, cost, scores, budget, fill, min_keep_frac=0.1):
    cfg = AllocatorConfig(fill_aligned=fill, min_keep_frac=min_keep_frac)
    return threshold_allocate(cost, groups, scores, budget, droppable_convs(model), cfg)


def test_slack_widens_unaligned_layers_and_the_budget_still_holds(tmp_path):
    model, groups, cost, scores = setup(tmp_path)
    budget = Budget(latency_ratio=0.5, device="hand")
    plain = allocate(model, groups, cost, scores, budget, fill=False)
    filled = allocate(model, groups, cost, scores, budget, fill=True)
    limit = 0.5 * plain.dense_metrics["latency_ms"]
    assert plain.metrics["latency_ms"] <= limit and filled.metrics["latency_ms"] <= limit
    widened = filled.plan.meta["filled"]
    assert widened, "this scripted case leaves unaligned layers with slack"
    for g in groups:
        w0, w1 = plain.widths[g.name], filled.widths[g.name]
        assert w1 >= w0
        if g.name in widened:
            assert w1 > w0 and (w1 % ALIGN == 0 or w1 == g.channels)
        kept0 = set(plain.plan.keep.get(g.name, range(g.channels)))
        kept1 = set(filled.plan.keep.get(g.name, range(g.channels)))
        assert kept0 <= kept1 and len(kept1) == w1
    pruned = apply_plan_(copy.deepcopy(model), filled.plan, torch.zeros(1, *SIZE))
    assert cost.metrics(filled.widths) == pytest.approx(filled.metrics)
    assert pruned(torch.zeros(1, *SIZE)).shape == (1, 10)


def test_no_fill_without_a_latency_target(tmp_path):
    model, groups, cost, scores = setup(tmp_path)
    budget = Budget(flops_ratio=0.5)
    plain = allocate(model, groups, cost, scores, budget, fill=False)
    filled = allocate(model, groups, cost, scores, budget, fill=True)
    assert filled.widths == plain.widths and "filled" not in filled.plan.meta


def test_the_threshold_keeps_each_layers_floor(tmp_path):
    """The trunk's lowest scores must not leave a 1-channel stream (PAAM at 0.3x did:
    top-1 0.10); every non-droppable layer keeps ``min_keep_frac`` of its filters."""
    import math

    model, groups, cost, scores = setup(tmp_path)
    stem = groups[0]
    scores[stem.name] = torch.zeros(stem.channels)  # the stream scored lowest of all
    budget = Budget(flops_ratio=0.3)
    alloc = allocate(model, groups, cost, scores, budget, fill=False, min_keep_frac=0.25)
    drop = droppable_convs(model)
    for g in groups:
        if g.name not in drop:
            assert alloc.widths[g.name] >= math.ceil(0.25 * g.channels), g.name
    assert alloc.widths[stem.name] == 2 and len(alloc.plan.keep[stem.name]) == 2
    assert alloc.metrics["flops"] <= 0.3 * alloc.dense_metrics["flops"]
