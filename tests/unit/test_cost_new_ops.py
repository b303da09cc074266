"""Cost model on mobile/transformer-style ops: count budgets without any device table, op
extraction of the new kinds, the predictor pricing them (or refusing in one sentence), and
count budgets landing at or under their limit on exact counts."""

import copy

import pytest
import torch
from hand_profiles import hand_profile, hand_table
from torch import nn

from edgeprune.budget import Budget
from edgeprune.budget.allocator import allocate
from edgeprune.budget.controller import threshold_allocate, uniform_allocate
from edgeprune.budget.costmodel import CostModel
from edgeprune.cost import count
from edgeprune.cost.latency import LatencyPredictor
from edgeprune.cost.ops import extract_ops
from edgeprune.errors import UserError
from edgeprune.methods.l1 import l1_group_scores
from edgeprune.models import create_model
from edgeprune.surgery import apply_plan_, prunable_layers

SIZE = (3, 16, 16)


class SE(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(c // r, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        return self.gate(self.fc2(self.act(self.fc1(self.pool(x))))) * x


class SENet(nn.Module):
    """MobileNetV3-like: conv, depthwise conv, SE with Hardsigmoid, Hardswish."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        self.dw = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16), nn.ReLU()
        )
        self.se = SE(16)
        self.pw = nn.Sequential(nn.Conv2d(16, 24, 1, bias=False), nn.BatchNorm2d(24))
        self.act = nn.Hardswish()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        x = self.act(self.pw(self.se(self.dw(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


class LNNet(nn.Module):
    """ConvNeXt-like: depthwise 7x7, channels-last LayerNorm, Linear-GELU-Linear, add."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 2, stride=2)
        self.dw = nn.Conv2d(16, 16, 7, padding=3, groups=16)
        self.norm = nn.LayerNorm(16)
        self.fc1 = nn.Linear(16, 32)
        self.gelu = nn.GELU()
        self.fc2 = nn.Linear(32, 16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.fc2(self.gelu(self.fc1(self.norm(y)))).permute(0, 3, 1, 2)
        return self.head((x + y).mean((2, 3)))


class GroupedNet(nn.Module):
    """RegNet/ResNeXt-like: a grouped 3x3 conv between 1x1 convs."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.g = nn.Sequential(
            nn.Conv2d(16, 32, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(32), nn.ReLU()
        )
        self.c2 = nn.Sequential(nn.Conv2d(32, 16, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.c2(self.g(self.c1(x)))), 1))


class TinyVGG(nn.Module):
    """vgg*_bn-like: biased convs + BN, max pools, a 2x2 adaptive pool, flatten, 2 linears."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(nn.Linear(32 * 4, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _hand_profile(tmp_path, ops, drop_op=None):
    """A profile whose hand-made table prices every job of ``ops`` as 0.001 ms x c_in."""
    return hand_profile(tmp_path, hand_table(ops, lambda key, _: 0.001 * key.c_in, None, drop_op))


def _exact(model, plan, size=SIZE):
    slim = apply_plan_(copy.deepcopy(model), plan, torch.zeros(1, *size))
    return count(slim, size)


# (b) op extraction -------------------------------------------------------------------


def test_extraction_yields_the_new_op_kinds_with_their_shapes():
    se = {o.op: o for o in extract_ops(SENet().eval(), SIZE)}
    assert (se["hardsigmoid"].c_in, se["hardsigmoid"].h_in) == (16, 1)
    assert (se["mul"].c_in, se["mul"].h_in, se["mul"].w_in) == (16, 16, 16)
    assert se["mul"].c_out_from == "stem.0"  # the map's width, not the SE's squeezed one
    assert (se["hardswish"].c_in, se["hardswish"].module) == (24, "Hardswish")

    ln = extract_ops(LNNet().eval(), SIZE)
    norm = next(o for o in ln if o.op == "layernorm")
    assert (norm.c_in, norm.h_in, norm.w_in, norm.name) == (16, 8, 8, "norm")
    gelu = next(o for o in ln if o.op == "gelu")
    assert (gelu.c_in, gelu.h_in) == (32, 8)
    fc1 = next(o for o in ln if o.name == "fc1")
    assert (fc1.op, fc1.c_in, fc1.c_out, fc1.h_in * fc1.w_in) == ("linear", 16, 32, 64)

    g = next(o for o in extract_ops(GroupedNet().eval(), SIZE) if o.name == "g.0")
    assert (g.op, g.groups, g.c_in, g.c_out) == ("conv", 4, 16, 32)


def test_extraction_of_shuffle_and_concat():
    class Shuffle(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 1)
            self.b = nn.Conv2d(3, 8, 1)

        def forward(self, x):
            y = torch.cat([self.a(x), self.b(x)], 1)
            n, c, h, w = y.shape
            y = y.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
            return y

    ops = {o.op: o for o in extract_ops(Shuffle().eval(), SIZE)}
    assert (ops["concat"].c_in, ops["concat"].kernel) == (16, 2)
    assert (ops["shuffle"].c_in, ops["shuffle"].kernel, ops["shuffle"].h_in) == (16, 2, 16)


def test_an_unknown_layer_is_an_op_not_an_error():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.GroupNorm(2, 8), nn.Conv2d(8, 4, 1))
    unknown = [o for o in extract_ops(model.eval(), SIZE) if o.op == "unknown"]
    assert [(o.name, o.module) for o in unknown] == [("1", "GroupNorm")]


# (a) a FLOPs budget without any device or table ------------------------------------------


@pytest.mark.parametrize("net", [SENet, GroupedNet], ids=["se", "grouped"])
def test_flops_budget_prunes_without_a_device(net):
    model = net().eval()
    groups = prunable_layers(model, SIZE)
    cost = CostModel(model, groups, SIZE, None)  # no predictor: nothing prices latency
    assert cost.metrics({g.name: g.channels for g in groups})["latency_ms"] != 0  # NaN
    alloc = allocate(cost, groups, l1_group_scores(model, groups), Budget(flops_ratio=0.6))
    assert _exact(model, alloc.plan).flops <= 0.6 * count(model, SIZE).flops


# (c) the predictor prices the new ops, or refuses in one sentence --------------------------


@pytest.mark.parametrize("net", [SENet, LNNet, GroupedNet], ids=["se", "layernorm", "grouped"])
def test_predictor_prices_new_ops_from_a_hand_made_table(tmp_path, net):
    model = net().eval()
    ops = extract_ops(model, SIZE)
    pred = LatencyPredictor(ops, _hand_profile(tmp_path, ops))
    dense = pred.predict()
    assert dense.table_ms == pytest.approx(sum(0.001 * o.c_in for o in ops))
    kinds = {c.op for c in dense.per_layer}
    assert kinds & {"mul", "hardsigmoid", "hardswish", "layernorm", "gelu", "conv"}


def test_predictor_reprices_a_grouped_conv_at_other_widths(tmp_path):
    ops = extract_ops(GroupedNet().eval(), SIZE)
    pred = LatencyPredictor(ops, _hand_profile(tmp_path, ops))
    c2 = next(o for o in ops if o.name == "c2.0")
    assert pred.op_cost(c2, {"g.0": 16}) == pytest.approx(0.001 * 16)


def test_predictor_refuses_an_op_it_cannot_price_in_one_sentence(tmp_path):
    ops = extract_ops(SENet().eval(), SIZE)
    with pytest.raises(UserError) as err:
        LatencyPredictor(ops, _hand_profile(tmp_path, ops, drop_op="hardsigmoid"), None, "senet")
    msg = str(err.value)
    assert msg.count(". ") == 0 and "\n" not in msg
    assert "se.gate (Hardsigmoid)" in msg
    assert "'edgeprune profile --device hand --model senet'" in msg

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.GroupNorm(2, 8))
    ops = extract_ops(model.eval(), SIZE)
    with pytest.raises(UserError, match=r"cannot price layer 1 \(GroupNorm\); profile it"):
        LatencyPredictor(ops, _hand_profile(tmp_path, ops))


# (d) count budgets land at or under ----------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.6, 0.45])
@pytest.mark.parametrize("rule", ["allocate", "uniform", "threshold"])
def test_flops_and_params_budgets_land_at_or_under_on_vgg_like(ratio, rule):
    model = TinyVGG().eval()
    groups = prunable_layers(model, SIZE)
    cost = CostModel(model, groups, SIZE, None)
    scores = l1_group_scores(model, groups)
    dense = count(model, SIZE)
    for budget, metric in (
        (Budget(flops_ratio=ratio), "flops"),
        (Budget(params_ratio=ratio), "params"),
    ):
        if rule == "allocate":
            alloc = allocate(cost, groups, scores, budget)
        elif rule == "uniform":
            alloc = uniform_allocate(cost, groups, scores, budget)
        else:
            alloc = threshold_allocate(cost, groups, scores, budget, set(), _cfg())
        got = getattr(_exact(model, alloc.plan), metric)
        assert got <= ratio * getattr(dense, metric), (rule, metric, got / getattr(dense, metric))
        assert alloc.landing["counted"][metric] == got


def _cfg():
    from edgeprune.budget.allocator import AllocatorConfig

    return AllocatorConfig()


def test_flops_budget_lands_at_or_under_on_resnet_like():
    model = create_model("resnet8").eval()
    size = (3, 32, 32)
    groups = prunable_layers(model, size)
    cost = CostModel(model, groups, size, None)
    scores = l1_group_scores(model, groups)
    dense = count(model, size)
    for ratio in (0.7, 0.5):
        alloc = allocate(cost, groups, scores, Budget(flops_ratio=ratio))
        assert _exact(model, alloc.plan, size).flops <= ratio * dense.flops


def test_cost_model_counts_a_flattened_linear_exactly():
    """The 0.61x-for-0.6x cause: a linear after a flatten re-prices all its inputs."""
    model = TinyVGG().eval()
    groups = prunable_layers(model, SIZE)
    cost = CostModel(model, groups, SIZE, None)
    widths = {g.name: max(1, g.channels // 2) for g in groups}
    alloc = allocate(cost, groups, l1_group_scores(model, groups), Budget(flops_ratio=1.0))
    assert cost.metrics(alloc.widths)["flops"] == _exact(model, alloc.plan).flops
    half = {g: sorted(range(w)) for g, w in widths.items()}
    from edgeprune.surgery import Plan

    exact = _exact(model, Plan(half))
    m = cost.metrics(widths)
    assert m["flops"] == exact.flops
    assert m["params"] == exact.params
