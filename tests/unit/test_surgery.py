"""Surgery invariant: pruning equals gating the removed channels to zero after their BN."""

import copy

import pytest
import torch

from edgeprune.errors import UserError
from edgeprune.models import create_model
from edgeprune.surgery import (
    Plan,
    apply_plan_,
    attach_gates_,
    load_model,
    load_pruned,
    prunable_layers,
    random_plan,
    save_pruned,
    uniform_plan,
)
from edgeprune.surgery.blocks import find_blocks


def _randomize_bn_(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model.eval()


def _gated_reference(model, plan, x):
    """Original model with removed channels forced to 0 after their BN; dropped blocks fully."""
    groups = prunable_layers(model, tuple(x.shape[1:]))
    keep = dict(plan.keep)
    for block, spec in find_blocks(model).items():
        inner = [f"{block}.{c}" for c in spec.inner_convs]
        if any(keep.get(c) == [] for c in inner):
            keep.update({c: [] for c in inner})
    ref = copy.deepcopy(model)
    gates = attach_gates_(ref, groups, x)
    with torch.no_grad():
        for g in groups:
            kept = keep.get(g.name, list(range(g.channels)))
            gates.gates[g.name].zero_()
            gates.gates[g.name][kept] = 1.0
        return ref(x)


def _pruned_output(model, plan, x):
    pruned = apply_plan_(copy.deepcopy(model), plan, x)
    with torch.no_grad():
        return pruned.eval()(x), pruned


CASES = [
    ("resnet56", (3, 32, 32), 0.2),
    ("vgg16_bn_cifar", (3, 32, 32), 0.0),
    ("mobilenetv2_cifar", (3, 32, 32), 0.3),
    ("torchvision:resnet50", (3, 96, 96), 0.0),
]


@pytest.mark.parametrize("name,size,drop", CASES)
def test_pruned_equals_gated_original(name, size, drop):
    torch.manual_seed(0)
    model = _randomize_bn_(create_model(name))
    x = torch.randn(2, *size)
    plan = random_plan(model, seed=3, drop_block_prob=drop, input_size=size)
    ref = _gated_reference(model, plan, x)
    out, pruned = _pruned_output(model, plan, x)
    scale = ref.abs().max().item()
    assert (out - ref).abs().max().item() <= 1e-5 * max(1.0, scale)
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())


def test_resnet50_bottleneck_block_drop():
    model = _randomize_bn_(create_model("torchvision:resnet50"))
    x = torch.randn(1, 3, 64, 64)
    plan = Plan({"layer3.2.conv1": [], "layer1.1.conv2": []})
    ref = _gated_reference(model, plan, x)
    out, pruned = _pruned_output(model, plan, x)
    assert type(pruned.layer3[2]).__name__ == "BlockBypass"
    assert (out - ref).abs().max().item() <= 1e-5 * max(1.0, ref.abs().max().item())


def test_zeroed_filters_fold_into_next_bias():
    """A channel masked by zeroing its conv filter still carries relu(BN bias): fold it."""
    model = _randomize_bn_(create_model("vgg16_bn_cifar"))
    conv = model.features[0]
    removed = [0, 3, 5]
    with torch.no_grad():
        conv.weight[removed] = 0
        model.features[1].bias[removed] = 1.0  # BN output stays positive: relu passes it
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    keep = [i for i in range(conv.out_channels) if i not in removed]
    out, _ = _pruned_output(model, Plan({"features.0": keep}), x)
    # exact away from zero-padded borders: the logits stay close
    rel = ((out - ref).norm() / ref.norm()).item()
    assert rel < 0.05
    # without folding the error is larger
    import edgeprune.surgery.apply as apply_mod

    orig = apply_mod._fold_constant_channels_
    apply_mod._fold_constant_channels_ = lambda *a: None
    try:
        out_nofold, _ = _pruned_output(model, Plan({"features.0": keep}), x)
    finally:
        apply_mod._fold_constant_channels_ = orig
    assert ((out_nofold - ref).norm() / ref.norm()).item() > rel


def test_fold_into_linear_is_exact():
    model = _randomize_bn_(create_model("vgg_tiny"))
    last = model.features[-3]
    with torch.no_grad():
        last.weight[[1, 2]] = 0
        model.features[-2].bias[[1, 2]] = 1.0
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    keep = [i for i in range(last.out_channels) if i not in (1, 2)]
    out, _ = _pruned_output(model, Plan({"features.8": keep}), x)
    assert torch.allclose(out, ref, atol=1e-5)


def test_residual_blocks_removed_whole():
    model = _randomize_bn_(create_model("resnet8"))
    x = torch.randn(2, 3, 32, 32)
    plan = Plan({"layer2.0.conv1": [], "layer1.0.conv1": [1, 2]})
    out, pruned = _pruned_output(model, plan, x)
    assert type(pruned.layer2[0]).__name__ == "BlockBypass"
    assert torch.allclose(out, _gated_reference(model, plan, x), atol=1e-5)


def test_bad_plans_refused():
    model = create_model("resnet8")
    with pytest.raises(UserError, match="0 channels"):
        apply_plan_(model, Plan({"conv1": []}))
    with pytest.raises(UserError, match="residual add"):
        apply_plan_(model, Plan({"conv1": [0, 1], "layer1.0.conv2": [0, 2]}))
    with pytest.raises(UserError, match="not a prunable conv"):
        apply_plan_(model, Plan({"nope": [0]}))
    with pytest.raises(UserError, match="has 8"):
        apply_plan_(model, Plan({"layer1.0.conv1": [0, 9]}))
    # non-strict: coupled layers are made consistent (union)
    apply_plan_(model, Plan({"conv1": [0, 1], "layer1.0.conv2": [0, 2]}), strict=False)
    assert model.conv1.out_channels == 3


def test_plan_json_roundtrip_and_reload(tmp_path):
    model = _randomize_bn_(create_model("resnet8"))
    plan = random_plan(model, seed=1, drop_block_prob=0.3)
    plan.save_json(tmp_path / "plan.json")
    assert Plan.load_json(tmp_path / "plan.json").keep == plan.keep
    pruned = apply_plan_(copy.deepcopy(model), plan)
    save_pruned(tmp_path / "m", "resnet8", pruned, plan)
    reloaded, meta, plan2 = load_pruned(tmp_path / "m")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(pruned.eval()(x), reloaded(x))
    assert plan2.keep == plan.keep and meta["model"] == "resnet8"
    lm = load_model(str(tmp_path / "m"))
    assert lm.source == "pruned_dir" and lm.plan.keep == plan.keep


def test_reload_keeps_folded_biases(tmp_path):
    model = _randomize_bn_(create_model("vgg_tiny"))
    with torch.no_grad():
        model.features[0].weight[[0]] = 0
        model.features[1].bias[0] = 1.0
    plan = Plan({"features.0": list(range(1, 8))})
    pruned = apply_plan_(copy.deepcopy(model), plan)
    assert pruned.features[4].bias is not None
    save_pruned(tmp_path / "m", "vgg_tiny", pruned, plan)
    reloaded, _, _ = load_pruned(tmp_path / "m")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(pruned.eval()(x), reloaded(x))


def test_uniform_plan_widths():
    model = create_model("resnet8")
    plan = uniform_plan(model, 0.5)
    assert plan.widths()["conv1"] == 4 and plan.widths()["layer3.0.conv1"] == 16


def test_gates_remove_cleanly():
    model = create_model("resnet8").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    gates = attach_gates_(model, prunable_layers(model), x, init=0.5)
    with torch.no_grad():
        assert not torch.allclose(model(x), ref)
    gates.remove()
    with torch.no_grad():
        assert torch.equal(model(x), ref)


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2_cifar"])
def test_repruning_and_plan_composition(name):
    """Pruning a pruned model (blocks already removed) equals one composed plan."""
    from edgeprune.surgery.plan import compose_plans

    model = _randomize_bn_(create_model(name))
    x = torch.randn(2, 3, 32, 32)
    p1 = random_plan(model, seed=1, drop_block_prob=0.3, min_keep_frac=0.5)
    m1 = apply_plan_(copy.deepcopy(model), p1, x)
    p2 = random_plan(m1, seed=2, drop_block_prob=0.3, min_keep_frac=0.5)
    m2 = apply_plan_(copy.deepcopy(m1), p2, x)
    composed = compose_plans(prunable_layers(model), p1, prunable_layers(m1), p2)
    m3 = apply_plan_(copy.deepcopy(model), composed, x)
    with torch.no_grad():
        assert torch.allclose(m2.eval()(x), m3.eval()(x), atol=1e-5)


def test_blocks_with_conv_shortcuts_are_not_droppable():
    from edgeprune.surgery.blocks import droppable_groups

    r50 = droppable_groups(create_model("torchvision:resnet50"))
    assert "layer1.1.conv1" in r50 and "layer2.0.conv1" not in r50
    assert "layer2.0.conv1" in droppable_groups(create_model("resnet20"))  # option-A shortcut
    with pytest.raises(UserError, match="learned .conv. shortcut"):
        apply_plan_(
            create_model("torchvision:resnet18"),
            Plan({"layer2.0.conv1": []}),
            torch.randn(1, 3, 64, 64),
        )


def test_a_stream_channel_is_zeroed_only_when_every_member_filter_is():
    """Every conv of a coupled residual stream counts, not only the group's root."""
    import torch_pruning as tp

    from edgeprune.models import create_model
    from edgeprune.surgery.apply import _zeroed_root_channels

    model = create_model("resnet8").eval()
    example = torch.randn(1, 3, 32, 32)
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    group = dg.get_pruning_group(model.conv1, tp.prune_conv_out_channels, idxs=[0])
    members = [
        it.dep.target.module
        for it in group.items
        if it.dep.handler == tp.prune_conv_out_channels
        and isinstance(it.dep.target.module, torch.nn.Conv2d)
    ]
    assert len(members) > 1  # the stem and the stage's block outputs share the stream
    with torch.no_grad():
        model.conv1.weight[0].zero_()
    assert _zeroed_root_channels(group) == set()  # the other members still produce channel 0
    with torch.no_grad():
        for conv in members:
            conv.weight[0].zero_()
    assert _zeroed_root_channels(group) == {0}
