"""Unit tests of PAAM on tiny models (resnet8, vgg_tiny) and tiny synthetic data."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from edgeprune.errors import UserError
from edgeprune.methods import (
    Checkpointer,
    IterativePruner,
    MethodContext,
    Scorer,
    WidthRule,
    get_method,
)
from edgeprune.methods.paam import (
    KQAN,
    PAAMConfig,
    ScoreBank,
    VanillaAN,
    build_attention,
    by_budget,
    by_ratio,
    by_theta,
    leaky_exp,
)
from edgeprune.methods.paam.schedule import an_phase_, cnn_phase_
from edgeprune.models import create_model
from edgeprune.surgery import prunable_layers

EXAMPLE = torch.zeros(1, 3, 32, 32)


def _loader(n: int = 16, batch: int = 8) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=False)


def _ctx(**kw) -> MethodContext:
    kw = {"train_loader": _loader(), "limit_batches": 2, "log": lambda _m: None, **kw}
    return MethodContext(EXAMPLE, **kw)


def _setup(name: str = "resnet8", **opts):
    torch.manual_seed(0)
    model = create_model(name)
    groups = prunable_layers(model, (3, 32, 32))
    cfg = PAAMConfig(**opts)
    nets = build_attention(model, groups, cfg)
    return model, groups, cfg, nets


# -- the leaky-exponential -------------------------------------------------------------


def test_leaky_exp_values_and_gradients_on_both_sides_of_zero():
    a = 0.05
    x = torch.tensor([-3.0, -0.5, 0.0, 0.5, 4.0, 500.0], requires_grad=True)
    y = leaky_exp(x, a)
    expected = [math.exp(-3), math.exp(-0.5), 1.0, 1 + a * 0.5, 1 + a * 4, 1 + a * 500]
    assert torch.allclose(y, torch.tensor(expected))
    y.sum().backward()
    grads = [math.exp(-3), math.exp(-0.5), a, a, a, a]
    assert torch.allclose(x.grad, torch.tensor(grads))
    assert torch.isfinite(x.grad).all()  # no exp overflow leaking through the other branch


def test_leaky_exp_is_continuous_at_zero_and_positive():
    x = torch.linspace(-30, 30, 2001)
    y = leaky_exp(x, 0.01)
    assert (y > 0).all()
    assert abs(float(leaky_exp(torch.tensor(-1e-6), 0.01)) - 1.0) < 1e-5


# -- the attention networks ------------------------------------------------------------


@pytest.mark.parametrize("variant", ["vanilla", "kq"])
def test_attention_networks_give_f_scores_starting_at_one(variant):
    model, groups, cfg, nets = _setup(variant=variant)
    bank = ScoreBank(model, groups, nets, EXAMPLE)
    scores = bank.scores()
    assert set(scores) == {g.name for g in groups}
    for g in groups:
        assert scores[g.name].shape == (g.channels,)
        assert torch.allclose(scores[g.name], torch.ones(g.channels))
    torch.manual_seed(1)
    with torch.no_grad():  # move away from the start: scores stay in (0, 1 + eps]
        for p in nets.parameters():
            p.add_(0.05 * torch.randn_like(p))
    for s in bank.scores().values():
        assert (s > 0).all() and (s <= 1 + 0.05).all()
    assert any((s < 0.999).any() for s in bank.scores().values())
    bank.remove()


def test_vanilla_and_kq_shapes_follow_the_paper():
    van = VanillaAN(filters=8, row=27, a=0.01)
    assert van.weight.shape == (8 * 27, 8)  # W^F in R^{(F*C*K*K) x F}
    kq = KQAN(filters=8, row=27, d=8, a=0.01, alpha=2.0)
    assert kq.wq.shape == kq.wk.shape == (27, 8)  # W^Q, W^K in R^{(C*K*K) x d}, d = F
    w = torch.randn(8, 27)
    with torch.no_grad():
        kq.wk.copy_(torch.randn(27, 8))
    q, k = w @ kq.wq, w @ kq.wk
    ref = leaky_exp((q @ k.T).mean(1) / (2.0 * math.sqrt(8)), 0.01)
    assert torch.allclose(kq(w), ref)


def test_vanilla_too_big_is_one_clear_sentence():
    model = create_model("resnet8")
    groups = prunable_layers(model, (3, 32, 32))
    with pytest.raises(UserError, match="variant=kq"):
        build_attention(model, groups, PAAMConfig(max_an_params=1000))
    build_attention(model, groups, PAAMConfig(variant="kq", max_an_params=100_000))


def test_gates_removed_restore_the_plain_cnn():
    model, groups, _cfg, nets = _setup()
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    ref = model(x)
    bank = ScoreBank(model, groups, nets, EXAMPLE)
    bank.set_binary({g.name: torch.zeros(g.channels) for g in groups})
    assert not torch.allclose(model(x), ref)
    bank.remove()
    assert torch.allclose(model(x), ref)


# -- the phases ------------------------------------------------------------------------


def _cnn_state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_an_phase_leaves_the_cnn_unchanged_and_trains_the_an():
    model, groups, cfg, nets = _setup(an_epochs=1, an_lr=1e-2)
    bank = ScoreBank(model, groups, nets, EXAMPLE)
    before, an_before = _cnn_state(model), copy.deepcopy(nets.state_dict())
    weights = {g.name: 1.0 for g in groups}
    an_phase_(bank, weights, cfg, _ctx())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. BN running stats
    assert any(not torch.equal(an_before[k], v) for k, v in nets.state_dict().items())
    bank.remove()


def test_cnn_phase_leaves_the_an_unchanged_and_trains_the_cnn():
    model, groups, cfg, nets = _setup(cnn_epochs=1)
    bank = ScoreBank(model, groups, nets, EXAMPLE)
    before, an_before = _cnn_state(model), copy.deepcopy(nets.state_dict())
    masks = by_ratio(bank.scores(), groups, 0.5).masks
    cnn_phase_(bank, masks, cfg, _ctx())
    assert all(torch.equal(an_before[k], v) for k, v in nets.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert bank.mode == "analog"
    bank.remove()


def _mean_score_after_an_phase(lam: float) -> float:
    model, groups, cfg, nets = _setup(an_epochs=2, an_lr=5e-3, lam=lam)
    bank = ScoreBank(model, groups, nets, EXAMPLE)
    an_phase_(bank, {g.name: 1.0 for g in groups}, cfg, _ctx())
    s = torch.cat(list(bank.scores().values()))
    bank.remove()
    return float(s.mean())


def test_scores_shrink_as_lambda_grows():
    means = [_mean_score_after_an_phase(lam) for lam in (0.0, 1e-2, 1e-1)]
    assert means[0] > means[1] > means[2]
    assert means[2] < 0.95


# -- binarization ----------------------------------------------------------------------


def _random_scores(groups, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {gr.name: torch.rand(gr.channels, generator=g) * 0.98 + 0.01 for gr in groups}


@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 0.7])
def test_binarization_keeps_exactly_the_requested_share(p):
    groups = prunable_layers(create_model("resnet8"), (3, 32, 32))
    scores = _random_scores(groups)
    n = sum(g.channels for g in groups)
    b = by_ratio(scores, groups, p, droppable={g.name for g in groups})  # no keep-one guard
    kept = sum(b.kept().values())
    assert kept == round((1 - p) * n)
    assert b.p == pytest.approx(1 - kept / n)
    flat = torch.cat([scores[g.name] for g in groups])
    kept_scores = torch.cat([scores[g.name][b.masks[g.name] > 0] for g in groups])
    dropped = torch.cat([scores[g.name][b.masks[g.name] == 0] for g in groups])
    assert kept_scores.min() >= b.theta
    if dropped.numel():
        assert dropped.max() < kept_scores.min()
    assert flat.numel() == n


def test_binarization_by_theta_keeps_scores_at_or_above_theta():
    groups = prunable_layers(create_model("vgg_tiny"), (3, 32, 32))
    scores = _random_scores(groups, seed=3)
    b = by_theta(scores, groups, 0.5)
    for g in groups:
        assert torch.equal(b.masks[g.name] > 0, scores[g.name] >= 0.5)


def test_binarization_by_budget_finds_the_largest_count_meeting_it():
    groups = prunable_layers(create_model("resnet8"), (3, 32, 32))
    scores = _random_scores(groups, seed=5)
    b = by_budget(scores, groups, lambda widths: sum(widths.values()) <= 50)
    assert sum(b.kept().values()) == 50


def test_an_emptied_layer_keeps_its_best_filter_unless_its_block_may_go():
    groups = prunable_layers(create_model("resnet8"), (3, 32, 32))
    scores = {g.name: torch.full((g.channels,), 0.9) for g in groups}
    scores["layer1.0.conv1"] = torch.linspace(0.0, 0.1, 8)
    b = by_theta(scores, groups, 0.5)
    assert b.kept()["layer1.0.conv1"] == 1 and b.masks["layer1.0.conv1"][-1] == 1
    b = by_theta(scores, groups, 0.5, droppable={"layer1.0.conv1"})
    assert b.kept()["layer1.0.conv1"] == 0


# -- options ---------------------------------------------------------------------------


def test_options_from_cli_strings_and_defaults_are_the_papers():
    cfg = PAAMConfig.from_dict(
        {"lam": "1e-4", "cycles": "2", "variant": "kq", "freeze_bn_stats": "false"}
    )
    assert cfg.lam == 1e-4 and cfg.cycles == 2 and cfg.variant == "kq" and not cfg.freeze_bn_stats
    d = PAAMConfig()
    assert (d.an_lr, d.cnn_lr, d.an_epochs, d.cnn_epochs, d.cycles) == (1e-6, 1e-3, 3, 6, 10)
    assert (d.lam, d.theta) == (5e-4, 0.5)
    with pytest.raises(UserError, match="no option 'lambda'"):
        get_method("paam", **{"lambda": 1.0})
    with pytest.raises(UserError, match="variant"):
        get_method("paam", variant="big")
    with pytest.raises(UserError, match="cycles"):
        get_method("paam", cycles="many")
    assert isinstance(get_method("paam"), Scorer)
    assert isinstance(get_method("paam", final="binarize"), IterativePruner)


# -- the method end to end (synthetic data) ----------------------------------------------


def _memory_checkpointer() -> tuple[Checkpointer, dict]:
    store: dict = {}

    def save(state: dict) -> None:
        store["state"] = copy.deepcopy(state)

    return Checkpointer(save, lambda: store.get("state")), store


def _opts(**kw) -> dict:
    return dict(cycles=1, an_epochs=1, cnn_epochs=1, an_lr=1e-3, device="cpu", **kw)


def test_method_scores_diagnostics_and_clean_model():
    model, groups = create_model("resnet8"), None
    groups = prunable_layers(model, (3, 32, 32))
    ckpt, store = _memory_checkpointer()
    method = get_method("paam", **_opts(variant="kq"))
    scored = method.score(model, groups, _ctx(checkpoint=ckpt))
    scores = scored.scores
    assert scored.rule is WidthRule.THRESHOLD
    assert {k: v.shape[0] for k, v in scores.items()} == {g.name: g.channels for g in groups}
    assert not model.training and not model._forward_pre_hooks
    assert all(not m._forward_hooks for m in model.modules())  # every gate hook removed
    diag = scored.diagnostics
    assert diag["balance"] == "flops" and diag["binarize"] == "theta"
    assert diag["layer_weights"]["conv1"] == 16.0 and diag["layer_weights"]["layer3.0.conv2"] == 1.0
    (rec,) = diag["cycles"]
    assert sum(rec["histogram"]["counts"]) == sum(g.channels for g in groups)
    assert set(rec["kept"]) == {g.name for g in groups} and rec["theta"] == 0.5
    assert store["state"]["done_cycles"] == 1


def test_resume_continues_after_the_saved_cycle():
    ckpt, store = _memory_checkpointer()
    torch.manual_seed(0)
    model = create_model("resnet8")
    groups = prunable_layers(model, (3, 32, 32))
    first = get_method("paam", **_opts()).score(model, groups, _ctx(checkpoint=ckpt)).scores
    other = create_model("resnet8")
    logs: list[str] = []
    ctx = _ctx(checkpoint=ckpt, resume=True, log=logs.append)
    again = get_method("paam", **_opts()).score(other, groups, ctx).scores
    assert any("resumed after 1 of 1" in m for m in logs)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in model.state_dict().items())
    with pytest.raises(UserError, match="other options"):
        get_method("paam", **_opts(lam=1.0)).score(other, groups, ctx)


def test_paper_mode_binarizes_and_prunes():
    model = create_model("vgg_tiny")
    groups = prunable_layers(model, (3, 32, 32))
    method = get_method("paam", **_opts(final="binarize", binarize="ratio", prune_ratio=0.5))
    res = method.run(copy.deepcopy(model), groups, _ctx())
    kept = res.diagnostics["final"]["kept"]
    assert sum(kept.values()) == round(0.5 * sum(g.channels for g in groups))
    for g in groups:
        assert res.model.get_submodule(g.name).out_channels == kept[g.name]
        assert len(res.plan.keep.get(g.name, range(g.channels))) == kept[g.name]


def test_without_data_is_one_clear_sentence():
    model = create_model("vgg_tiny")
    groups = prunable_layers(model, (3, 32, 32))
    with pytest.raises(UserError, match="--data-root"):
        get_method("paam").score(model, groups, MethodContext(EXAMPLE))


# -- issue #20: the paper's equations with numbers, the switches of a budget run ----------


def test_eq1_vanilla_scores_on_a_hand_made_input():
    """S = phi(vec(F) W^F): F = [[1, 2], [3, -1]] (2 filters, rows of 2), a = 0.1.
    vec(F) = (1, 2, 3, -1); W^F columns (1, 0, 0, 0) and (0, 0, -1, 0) give logits 1 and
    -3, so S = (1 + 0.1 * 1, e^-3) = (1.1, 0.049787)."""
    an = VanillaAN(filters=2, row=2, a=0.1)
    with torch.no_grad():
        an.weight.zero_()
        an.weight[0, 0] = 1.0
        an.weight[2, 1] = -1.0
    s = an(torch.tensor([[1.0, 2.0], [3.0, -1.0]]))
    assert s.tolist() == pytest.approx([1.1, math.exp(-3.0)], rel=1e-6)


def test_eq6_penalty_is_lambda_times_weighted_l1_of_the_scores():
    """lam * sum_l w_l ||S_l||_1 with hand-set scores: 5e-4 * (2 * 1.5 + 1 * 0.75) = 1.875e-3."""
    model, groups, cfg, nets = _setup()
    bank = ScoreBank(model, groups[:2], nets, EXAMPLE)
    a, b = groups[0].name, groups[1].name
    bank.current = {a: torch.tensor([0.5, -1.0]), b: torch.tensor([0.25, 0.5])}
    pen = cfg.lam * bank.penalty({a: 2.0, b: 1.0})
    bank.remove()
    assert float(pen) == pytest.approx(5e-4 * (2 * 1.5 + 1 * 0.75))


def test_a_residual_streams_attention_network_sees_every_members_filters():
    model, groups, cfg, nets = _setup(group_weights="all")
    assert PAAMConfig().group_weights == "all"  # the default
    stream = next(g for g in groups if g.residual and len(g.convs) > 1)
    from edgeprune.methods.paam.attention import an_key, group_filters

    x = group_filters(model, stream, "all")
    rows = [model.get_submodule(c).weight[0].numel() for c in stream.convs]
    assert x.shape == (stream.channels, sum(rows))
    assert nets[an_key(stream.name)].weight.shape == (stream.channels * sum(rows), stream.channels)
    first = build_attention(model, groups, PAAMConfig(group_weights="first"))
    assert first[an_key(stream.name)].weight.shape[0] == stream.channels * rows[0]
    # divided by the member count, so the logits move at one conv's pace under Adam
    parts = [model.get_submodule(c).weight.detach().flatten(1) for c in stream.convs]
    assert torch.equal(x, torch.cat(parts, dim=1) / len(parts))
    assert torch.equal(group_filters(model, stream, "first"), parts[0])


def test_final_scores_are_those_the_last_cnn_phase_trained_with():
    torch.manual_seed(0)
    model = create_model("resnet8")
    groups = prunable_layers(model, (3, 32, 32))
    ckpt, store = _memory_checkpointer()
    trained = get_method("paam", **_opts(variant="kq")).score(model, groups, _ctx(checkpoint=ckpt))
    saved = store["state"]["trained_scores"]
    assert all(torch.equal(trained.scores[k], saved[k]) for k in saved)
    torch.manual_seed(0)
    model = create_model("resnet8")
    re = get_method("paam", **_opts(variant="kq", final_scores="recomputed"))
    again = re.score(model, groups, _ctx()).scores
    assert any(not torch.equal(again[k], saved[k]) for k in saved)  # the CNN phase moved them


def test_gate_after_bn_equals_gating_the_bn_folded_conv_output():
    """PAAM Eq. 3 / one-step Eq. 2 scale the conv's output; with BN folded into the conv
    (inference) that output IS the post-BN map, so gating after BN is the same thing. Gating
    before BN would be undone by BN's batch statistics in training (shown for s > 0)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    bn = torch.nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.uniform_(-1.0, 1.0)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    bn.eval()
    s = torch.tensor([0.0, 0.3, 1.0, 2.5]).view(1, 4, 1, 1)
    x = torch.randn(2, 3, 8, 8)
    gated_after_bn = s * bn(conv(x))
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    folded = torch.nn.Conv2d(3, 4, 3, padding=1, bias=True)
    with torch.no_grad():
        folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        folded.bias.copy_(bn.bias - bn.running_mean * scale)
    assert torch.allclose(gated_after_bn, s * folded(x), atol=1e-5)
    bn.train()
    pos = torch.tensor([0.5, 0.3, 1.0, 2.5]).view(1, 4, 1, 1)
    assert torch.allclose(bn(pos * conv(x)), bn(conv(x)), atol=1e-3)  # before BN: no effect
