"""An int8 plan's memory is priced at 1 byte per quantized weight (fp32 unchanged), and
deploy prices an int8 model's latency on the table's int8 rows (issue 18)."""

import pytest
import torch
import torch.nn as nn
from test_precision_choice import SIZE, make_profile

from edgeprune.budget import Budget
from edgeprune.budget.controller import decide
from edgeprune.budget.costmodel import CostModel
from edgeprune.cost.counting import count
from edgeprune.devices.settings import DeviceSettings
from edgeprune.models import create_model
from edgeprune.surgery import prunable_layers
from edgeprune.surgery.blocks import droppable_groups
from edgeprune.workflows.deploy import _predict


def test_int8_weight_bytes_count_one_byte_per_weight_plus_channel_scales():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 30 * 30, 5)
    )
    fp32 = count(net, (3, 32, 32)).weight_bytes
    int8 = count(net, (3, 32, 32), precision="int8").weight_bytes
    bn = 4 * 4 * 4  # weight, bias, running mean, running var: float32
    assert fp32 == 4 * (3 * 4 * 9 + 4 * 900 * 5 + 5) + bn
    # conv: 108 weights + 4 channels x (scale + zero point); linear: 18000 + 5 x 5 and its bias
    assert int8 == (108 + 4 * 5) + (18000 + 5 * 5 + 4 * 5) + bn
    assert count(net, (3, 32, 32), precision="fp32").weight_bytes == fp32


def test_cost_model_prices_int8_weights_and_keeps_fp32():
    model = create_model("resnet8").eval()
    groups = prunable_layers(model, SIZE)
    full = {g.name: g.channels for g in groups}
    fp32 = CostModel(model, groups, SIZE)
    int8 = CostModel(model, groups, SIZE, precision="int8")
    m32, m8 = fp32.metrics(full), int8.metrics(full)
    assert m32["weight_bytes"] == pytest.approx(4.0 * m32["params"])  # unchanged
    assert m8["params"] == m32["params"]
    assert 0.25 * m32["weight_bytes"] < m8["weight_bytes"] < 0.35 * m32["weight_bytes"]
    g = groups[0].name
    half = {**full, g: full[g] // 2}
    d = int8.delta(full, g, full[g] // 2)["weight_bytes"]
    assert d == pytest.approx(int8.metrics(half)["weight_bytes"] - m8["weight_bytes"])
    assert d < 0


def test_a_memory_budget_keeps_more_channels_at_int8():
    model = create_model("resnet8").eval()
    groups = prunable_layers(model, SIZE)
    torch.manual_seed(0)
    scores = {g.name: torch.rand(g.channels) for g in groups}
    dense_bytes = CostModel(model, groups, SIZE).metrics({g.name: g.channels for g in groups})
    budget = Budget(weight_mb=0.35 * dense_bytes["weight_bytes"] / 1e6)
    kept = {}
    for p in ("fp32", "int8"):
        cost = CostModel(model, groups, SIZE, precision=p)
        args = (model, groups, scores, budget, cost, droppable_groups(model))
        res = decide(*args, torch.randn(1, *SIZE), log=lambda m: None)
        kept[p] = sum(res.allocation.widths.values())
        assert cost.counted(res.allocation.plan)["weight_bytes"] <= budget.weight_mb * 1e6
    assert kept["int8"] > kept["fp32"]


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_deploy_prices_an_int8_model_on_the_int8_rows(tmp_path, factor):
    model = create_model("resnet8").eval()
    prof = make_profile(tmp_path, model, int8_factor=factor)
    dev = DeviceSettings(name="hand", profile=prof)
    loaded = type("Loaded", (), {"model": model, "input_size": SIZE})()
    fp32, note = _predict(dev, loaded, 1)
    int8, note8 = _predict(dev, loaded, 1, "int8")
    assert note is None and note8 is None
    assert (int8 < fp32) if factor < 1 else (int8 > fp32)


def test_deploy_predicts_nothing_for_int8_without_int8_rows(tmp_path):
    model = create_model("resnet8").eval()
    dev = DeviceSettings(name="hand", profile=make_profile(tmp_path, model))
    loaded = type("Loaded", (), {"model": model, "input_size": SIZE})()
    pred, note = _predict(dev, loaded, 1, "int8")
    assert pred is None and "int8" in note


def test_deploy_prices_a_pruned_run_as_prune_planned_it(tmp_path):
    """A pruned run's model is priced as its plan on the base structure, the controller's
    price, not as a new structure (which may pick another table or calibration)."""
    from edgeprune.cost.latency import LatencyPredictor
    from edgeprune.surgery import apply_plan_
    from edgeprune.surgery.io import LoadedModel

    model = create_model("resnet8").eval()
    prof = make_profile(tmp_path, model)
    groups = prunable_layers(model, SIZE)
    cost = CostModel(model, groups, SIZE, LatencyPredictor.from_model(model, SIZE, prof))
    torch.manual_seed(0)
    scores = {g.name: torch.rand(g.channels) for g in groups}
    budget = Budget(latency_ratio=0.5, device="hand")
    args = (model, groups, scores, budget, cost, droppable_groups(model))
    res = decide(*args, torch.randn(1, *SIZE), log=lambda m: None)
    pruned = apply_plan_(create_model("resnet8").eval(), res.plan, torch.randn(1, *SIZE))
    loaded = LoadedModel("resnet8", pruned, res.plan, SIZE, None, "pruned_dir")
    pred, note = _predict(DeviceSettings(name="hand", profile=prof), loaded, 1)
    assert note is None
    assert pred == pytest.approx(cost.metrics(res.allocation.widths)["latency_ms"])
