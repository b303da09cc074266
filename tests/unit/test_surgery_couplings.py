"""Surgery per coupling family on tiny models: pruned == original with removed channels gated
to 0 after their BN (or, under LayerNorm, == the original restricted to the kept channels),
and the pruned model exports to ONNX with ORT parity."""

import copy

import pytest
import torch
import torch.nn as nn
from torchvision.models.convnext import CNBlock, LayerNorm2d
from torchvision.models.shufflenetv2 import InvertedResidual as ShuffleUnit
from torchvision.ops import SqueezeExcitation

from edgeprune.errors import UserError
from edgeprune.surgery import Plan, apply_plan_, attach_gates_, prunable_layers, random_plan
from edgeprune.surgery.apply import kept_whole
from edgeprune.surgery.plan import fit_to_step, resolve_plan

SIZE = (3, 32, 32)


def _cbr(cin, cout, k=1, stride=1, groups=1, act=nn.ReLU):
    return [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        act(),
    ]


class GroupedBlockNet(nn.Module):
    """A ResNeXt/RegNet bottleneck: 1x1 -> grouped 3x3 (4 groups) -> 1x1, plus the input."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(*_cbr(3, 8, 3))
        self.a = nn.Sequential(*_cbr(8, 16))
        self.b = nn.Sequential(*_cbr(16, 16, 3, groups=4))
        self.c = nn.Sequential(*_cbr(16, 8)[:2])
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.c(self.b(self.a(x))) + x)
        return self.fc(x.mean((2, 3)))


class SEBlockNet(nn.Module):
    """A MobileNetV3 block: expand -> depthwise -> SE (Hardsigmoid, multiply) -> project."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(*_cbr(3, 8, 3, act=nn.Hardswish))
        self.expand = nn.Sequential(*_cbr(8, 24, act=nn.Hardswish))
        self.dw = nn.Sequential(*_cbr(24, 24, 3, groups=24, act=nn.Hardswish))
        self.se = SqueezeExcitation(24, 8, scale_activation=nn.Hardsigmoid)
        self.project = nn.Sequential(*_cbr(24, 8)[:2])
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        x = self.project(self.se(self.dw(self.expand(x)))) + x
        return self.fc(x.mean((2, 3)))


class ShuffleNetTiny(nn.Module):
    """Two ShuffleNetV2 units (split, branches, concat, channel shuffle)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(*_cbr(3, 16, 3))
        self.units = nn.Sequential(ShuffleUnit(16, 32, 2), ShuffleUnit(32, 32, 1))
        self.head = nn.Sequential(*_cbr(32, 16))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.head(self.units(self.stem(x))).mean((2, 3)))


class InceptionTiny(nn.Module):
    """Inception branches (1x1 | 1x1->3x3 | pool->1x1) concatenated, read by one 1x1."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(*_cbr(3, 8, 3))
        self.b1 = nn.Sequential(*_cbr(8, 4))
        self.b2 = nn.Sequential(*_cbr(8, 6), *_cbr(6, 6, 3))
        self.b3 = nn.Sequential(nn.MaxPool2d(3, 1, 1), *_cbr(8, 2))
        self.mix = nn.Sequential(*_cbr(12, 8))
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        x = torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1)
        return self.fc(self.mix(x).mean((2, 3)))


class ConvNeXtTiny(nn.Module):
    """Patchify stem + LayerNorm2d, two ConvNeXt blocks (dw 7x7, permute, LN, Linear MLP)."""

    def __init__(self, width=16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 4, 4), LayerNorm2d(width, eps=1e-6))
        self.blocks = nn.Sequential(CNBlock(width, 0.5, 0.0), CNBlock(width, 0.5, 0.0))
        self.norm = LayerNorm2d(width, eps=1e-6)
        self.fc = nn.Linear(width, 10)

    def forward(self, x):
        return self.fc(self.norm(self.blocks(self.stem(x))).mean((2, 3)))


def _randomize_(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
    return model.eval()


def _gated(model, plan, x):
    """The original with every removed channel gated to 0 after its BN (or its conv)."""
    groups = prunable_layers(model, SIZE)
    keep = resolve_plan(plan, groups)
    ref = copy.deepcopy(model)
    gates = attach_gates_(ref, groups, x)
    with torch.no_grad():
        for g in groups:
            gates.gates[g.name].zero_()
            gates.gates[g.name][keep.get(g.name, list(range(g.channels)))] = 1.0
        return ref(x)


def _check_export(model, tmp_path):
    from edgeprune.export.onnx_export import export_onnx

    res = export_onnx(model, SIZE, str(tmp_path / "m.onnx"))  # raises on a parity miss
    assert res.max_abs_diff is not None and res.max_abs_diff < 1e-4


def _params(model):
    return sum(p.numel() for p in model.parameters())


GATED = [GroupedBlockNet, SEBlockNet, ShuffleNetTiny, InceptionTiny]


@pytest.mark.parametrize("cls", GATED, ids=lambda c: c.__name__)
@pytest.mark.parametrize("seed", [0, 1])
def test_pruned_equals_gated(cls, seed, tmp_path):
    torch.manual_seed(seed)
    model = _randomize_(cls())
    x = torch.randn(2, *SIZE)
    plan = random_plan(model, seed=seed, min_keep_frac=0.3, input_size=SIZE)
    ref = _gated(model, plan, x)
    pruned = apply_plan_(copy.deepcopy(model), plan, x).eval()
    with torch.no_grad():
        out = pruned(x)
    assert (out - ref).abs().max().item() <= 1e-5 * max(1.0, ref.abs().max().item())
    assert _params(pruned) < _params(model)
    _check_export(pruned, tmp_path)


def test_grouped_conv_keeps_groups_and_equal_counts():
    model = _randomize_(GroupedBlockNet())
    groups = {g.name: g for g in prunable_layers(model, SIZE)}
    assert groups["a.0"].step == 4 and groups["b.0"].step == 4 and groups["stem.0"].step == 1
    # 11 planned channels, unevenly spread: rounded down to 2 per conv group, planned first
    plan = Plan({"a.0": [0, 1, 2, 4, 5, 8, 9, 10, 11, 12, 15]})
    pruned = apply_plan_(copy.deepcopy(model), plan)
    assert (
        pruned.b[0].groups == 4 and pruned.b[0].in_channels == 8 and pruned.a[0].out_channels == 8
    )
    assert fit_to_step(plan.keep["a.0"], 16, 4) == [0, 1, 4, 5, 8, 9, 12, 15]
    assert fit_to_step([3], 16, 4) == [3, 4, 8, 12]  # at least one per group
    # positions differ between conv groups: each filter keeps the inputs kept in its group
    x = torch.randn(2, *SIZE)
    plan = Plan({"a.0": [1, 2, 3, 4, 5, 8, 9, 10, 15]})  # -> [1, 2, 4, 5, 8, 9, 12, 15]
    pruned = apply_plan_(copy.deepcopy(model), plan, x).eval()
    with torch.no_grad():
        assert torch.allclose(pruned(x), _gated(model, plan, x), atol=1e-5)


def test_se_hidden_width_and_multiply_coupling():
    model = _randomize_(SEBlockNet())
    groups = {g.name: g for g in prunable_layers(model, SIZE)}
    assert set(groups["expand.0"].convs) == {"expand.0", "dw.0", "se.fc2"}  # the multiply
    assert groups["se.fc1"].channels == 8  # the SE's hidden width is its own group
    pruned = apply_plan_(copy.deepcopy(model), Plan({"expand.0": list(range(10)), "se.fc1": [1]}))
    assert pruned.se.fc2.out_channels == 10 and pruned.se.fc1.out_channels == 1


def test_shuffled_channels_kept_whole_and_said(caplog):
    model = _randomize_(ShuffleNetTiny())
    names = {g.name for g in prunable_layers(model, SIZE)}
    whole = {k.module: k.reason for k in kept_whole(model, SIZE)}
    assert "units.0.branch2.0" in names and "stem.0" in names  # inner widths, the stem
    assert "units.1.branch2.5" in whole and "units.0.branch1.2" in whole
    assert not names & set(whole)
    plan = Plan({"units.0.branch2.0": [0, 1]})
    apply_plan_(copy.deepcopy(model), plan)
    assert {"module": "units.1.branch2.5", "reason": whole["units.1.branch2.5"]} in plan.meta[
        "kept_whole"
    ]
    with pytest.raises(UserError, match="cannot be pruned: .*"):
        apply_plan_(copy.deepcopy(model), Plan({"units.1.branch2.5": [0]}))


def test_concat_consumer_follows_offsets():
    model = _randomize_(InceptionTiny())
    plan = Plan({"b1.0": [1, 3], "b2.3": [0, 2, 5], "b3.1": [1]})
    pruned = apply_plan_(copy.deepcopy(model), plan)
    kept_in = [1, 3] + [4 + i for i in (0, 2, 5)] + [10 + 1]
    assert torch.equal(pruned.mix[0].weight, model.mix[0].weight[:, kept_in])


def test_classifier_conv_outputs_kept_whole():
    model = nn.Sequential(
        *_cbr(3, 8, 3), nn.Conv2d(8, 10, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    assert [g.name for g in prunable_layers(model.eval(), SIZE)] == ["0"]
    assert kept_whole(model, SIZE)[0].module == "3"


def _sliced(model, width, keep):
    """A fresh ConvNeXtTiny of ``width`` holding the original's weights at ``keep``."""
    ref = ConvNeXtTiny(width)
    for blk in ref.blocks:  # the MLP's hidden width (4 x 16) is not pruned
        blk.block[3], blk.block[5] = nn.Linear(width, 64), nn.Linear(64, width)
    idx = torch.tensor(keep)
    state = {}
    for k, v in model.state_dict().items():
        for dim, n in enumerate(v.shape):
            if n == 16:
                v = v.index_select(dim, idx)
        state[k] = v
    ref.load_state_dict(state)
    return ref.eval()


def test_convnext_layernorm_pruned_with_channels(tmp_path):
    """Under a LayerNorm over channels, pruned == the original restricted to the kept channels
    (LN statistics change with the channel set, so gating is not the reference here)."""
    model = _randomize_(ConvNeXtTiny())
    groups = prunable_layers(model, SIZE)
    assert [g.name for g in groups] == ["stem.0"]
    assert set(groups[0].convs) == {"stem.0", "blocks.0.block.0", "blocks.1.block.0"}
    keep = [0, 2, 3, 7, 8, 11, 13, 14, 15]
    x = torch.randn(2, *SIZE)
    pruned = apply_plan_(copy.deepcopy(model), Plan({"stem.0": keep}), x).eval()
    assert pruned.blocks[0].block[2].weight.shape == (9,)  # LN weight/bias follow
    assert pruned.blocks[0].layer_scale.shape == (9, 1, 1)
    with torch.no_grad():
        assert torch.allclose(pruned(x), _sliced(model, 9, keep)(x), atol=1e-5)
    _check_export(pruned, tmp_path)


def test_transformers_are_refused_in_one_sentence():
    """A model with token attention is out of scope: refused before tracing, not broken."""

    class TinyViT(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(3, 16, 4, stride=4)
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            t = self.patch(x).flatten(2).transpose(1, 2)
            t, _ = self.attn(t, t, t)
            return self.head(t.mean(1))

    with pytest.raises(UserError, match=r"attn \(MultiheadAttention\) is an attention layer"):
        prunable_layers(TinyViT(), (3, 32, 32))
