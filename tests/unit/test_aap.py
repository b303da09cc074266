"""Unit tests of AAP: attention, thresholds, the policy state machine, rewinding, resume."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from edgeprune.errors import UserError
from edgeprune.methods import BudgetOracle, Checkpointer, MethodContext, get_method
from edgeprune.methods.aap import AAPConfig
from edgeprune.methods.aap import loop as aap_loop
from edgeprune.methods.aap.attention import attention_map, collect_attention
from edgeprune.methods.aap.policy import PolicyConfig, advance, initial_state
from edgeprune.methods.aap.schedule import head_config, tail_config
from edgeprune.methods.aap.thresholds import (
    conv_costs,
    droppable_convs,
    layer_thresholds,
    shares,
    threshold_plan,
)
from edgeprune.models import create_model
from edgeprune.surgery import Plan, apply_plan_, prunable_layers
from edgeprune.surgery.graph import PrunableGroup
from edgeprune.surgery.plan import compose_plans

SIZE = (3, 32, 32)


def _model(seed: int = 0):
    torch.manual_seed(seed)
    m = create_model("resnet8").eval()
    for mod in m.modules():  # non-trivial BN statistics, so some channels go quiet after ReLU
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.bias.data.uniform_(-1.0, 0.5)
    return m


# --- attention -------------------------------------------------------------------------


def test_attention_functions_on_a_hand_made_activation():
    a = torch.tensor([[[[1.0, -2.0], [0.0, 3.0]], [[0.0, 0.0], [0.0, 4.0]]]])  # (1, 2, 2, 2)
    assert attention_map(a, "mean", 1).tolist() == [[1.5, 1.0]]
    assert attention_map(a, "max", 1).tolist() == [[3.0, 4.0]]
    assert attention_map(a, "sum", 1).tolist() == [[6.0, 4.0]]
    assert attention_map(a, "mean", 2).tolist() == [[3.5, 4.0]]  # (1 + 4 + 0 + 9) / 4
    assert attention_map(a, "max", 2).tolist() == [[9.0, 16.0]]
    with pytest.raises(ValueError):
        attention_map(a, "median")


def test_stream_attention_is_taken_after_the_residual_add_and_relu():
    m, x = _model(), torch.randn(6, *SIZE, generator=torch.Generator().manual_seed(1))
    groups = prunable_layers(m, SIZE)
    att = collect_attention(m, groups, [x[:4], x[4:]], x[:1], "mean", 1.0)
    with torch.no_grad():
        stem = F.relu(m.bn1(m.conv1(x)))
        block = m.layer1[0]
        inner = F.relu(block.bn1(block.conv1(stem)))
        out = block(stem)  # relu(bn2(conv2(inner)) + stem): the stream after the add
        before_add = block.bn2(block.conv2(inner))

    def mean_att(t):
        return attention_map(t).mean(0)

    expected_stream = (mean_att(stem) + mean_att(out)) / 2  # members conv1, layer1.0.conv2
    torch.testing.assert_close(att["conv1"], expected_stream.float())
    torch.testing.assert_close(att["layer1.0.conv1"], mean_att(inner).float())
    alternative = (mean_att(stem) + mean_att(F.relu(before_add))) / 2
    assert not torch.allclose(att["conv1"], alternative.float())


def test_attention_uses_all_calibration_batches_equally():
    m, x = _model(), torch.randn(8, *SIZE, generator=torch.Generator().manual_seed(2))
    groups = prunable_layers(m, SIZE)
    whole = collect_attention(m, groups, [x], x[:1])
    split = collect_attention(m, groups, [x[:2], x[2:]], x[:1])
    for g in groups:
        torch.testing.assert_close(whole[g.name], split[g.name])


# --- thresholds --------------------------------------------------------------------------


def test_layer_thresholds_are_global_times_share():
    assert layer_thresholds(0.5, {"a": 0.2, "b": 0.05}) == {"a": 0.1, "b": 0.025}
    m = _model()
    groups = prunable_layers(m, SIZE)
    costs = conv_costs(m, torch.randn(1, *SIZE))
    total = sum(p.numel() for p in m.parameters())
    w = shares({k: v[0] for k, v in costs.items()}, total, groups)
    conv1 = m.conv1.weight.numel() + m.layer1[0].conv2.weight.numel()  # the stream's members
    assert w["conv1"] == pytest.approx(conv1 / 2 / total)  # mean of the members' T_i
    summed = shares({k: v[0] for k, v in costs.items()}, total, groups, "sum")
    assert summed["conv1"] == pytest.approx(conv1 / total)
    assert w["layer3.0.conv1"] == pytest.approx(16 * 32 * 9 / total)
    assert costs["layer3.0.conv1"][1] == 16 * 32 * 9 * 8 * 8  # MACs: 8x8 output
    assert sum(w.values()) < 1


def test_a_stream_threshold_is_the_mean_of_its_members_thresholds():
    """Hand-made: a stream of 2 convs (costs 30 and 10 of 100) and a plain layer (60).
    T = 1: the members' T_i are 0.3 and 0.1, so the stream's is 0.2 (the sum rule: 0.4)."""
    from edgeprune.surgery.graph import PrunableGroup

    groups = [
        PrunableGroup("s.a", ("s.a", "s.b"), 4, True),
        PrunableGroup("p", ("p",), 4, False),
    ]
    per_conv = {"s.a": 30.0, "s.b": 10.0, "p": 60.0}
    w = shares(per_conv, 100.0, groups)
    assert w == {"s.a": pytest.approx(0.2), "p": pytest.approx(0.6)}
    thr = layer_thresholds(1.0, w)
    att = {"s.a": torch.tensor([0.1, 0.25, 0.35, 0.5]), "p": torch.tensor([0.5, 0.7, 0.9, 1.0])}
    plan = threshold_plan(att, thr, groups, set())
    assert plan.keep == {"s.a": [1, 2, 3], "p": [1, 2, 3]}  # 0.25 > 0.2 stays
    summed = layer_thresholds(1.0, shares(per_conv, 100.0, groups, "sum"))
    assert summed["s.a"] == pytest.approx(0.4)
    assert threshold_plan(att, summed, groups, set()).keep["s.a"] == [3]  # 2x as aggressive


def test_budget_runs_start_T_and_lambda_from_the_attention_distribution():
    """T[1] prunes the init_quantile share of attention / w_i; lambda reaches the next."""
    ratios = torch.arange(1, 101, dtype=torch.double)  # filters pruned at T = 1 ... 100
    t1, lam = aap_loop.init_from_ratios(ratios, 0.05)
    assert t1 == pytest.approx(5.95) and lam == pytest.approx(10.9 - 5.95)
    assert int((ratios <= t1).sum()) == 5  # round 1 prunes 5% of the filters
    s = initial_state(PolicyConfig(), 1000.0, t1, lam)
    assert (s.T, s.lam, s.accepted[0]) == (t1, lam, pytest.approx(t1 - lam))
    paper = initial_state(PolicyConfig(), 1000.0)
    assert (paper.T, paper.lam) == (0.0, 0.01)
    cpu = initial_state(PolicyConfig(lam0=1.5), 1000.0, t1, None)  # an explicit lambda wins
    assert (cpu.T, cpu.lam, cpu.accepted[0]) == (t1, 1.5, pytest.approx(t1 - 1.5))


def test_the_first_threshold_is_raised_until_the_aligned_plan_removes_filters():
    """With a 16-channel alignment, T[1] at the 5% quantile (4 filters of layer a under it)
    removes nothing; T[1] moves up to 15, where 16 of a's filters fall under it."""
    groups = [PrunableGroup("a", ("a",), 32, False), PrunableGroup("b", ("b",), 32, False)]
    att = {"a": torch.arange(32.0), "b": 100 + torch.arange(32.0) / 2}
    weights = {"a": 1.0, "b": 1.0}
    ratios = aap_loop.attention_ratios(att, weights)
    t1, _ = aap_loop.init_from_ratios(ratios, 0.05)
    assert 3 < t1 < 4  # filters 0..3 of a

    def removes(t, align):
        plan = threshold_plan(att, layer_thresholds(t, weights), groups, set(), align=align)
        return bool(plan.keep)

    assert not removes(t1, 16) and not removes(14.99, 16) and removes(15.0, 16)
    assert aap_loop.first_pruning_threshold(ratios, t1, lambda t: removes(t, 16)) == 15.0
    assert aap_loop.first_pruning_threshold(ratios, t1, lambda t: removes(t, 1)) == t1
    assert aap_loop.first_pruning_threshold(ratios, t1, lambda t: False) == t1  # never: as is


def test_lambda_reset_rule_does_not_compound_over_rollbacks():
    cfg = PolicyConfig(lam0=0.08, converge_rounds=99)
    for rule, lams in (("paper", [0.04, 0.01]), ("reset", [0.04, 0.02])):
        c = PolicyConfig(**{**cfg.__dict__, "lam_rule": rule})
        s = advance(initial_state(c, 100.0), c, True, 90.0)  # round 1 acceptable
        s = advance(s, c, False, 50.0)  # violation: roll back to 1, C = 0 -> lambda / 2
        assert s.lam == pytest.approx(lams[0])
        s = advance(s, c, False, 50.0)  # again, C = 1 -> / 4 of the current or of the first
        assert s.lam == pytest.approx(lams[1])


def test_threshold_plan_keeps_above_threshold_and_never_empties_a_plain_layer():
    m = _model()
    groups = prunable_layers(m, SIZE)
    att = {g.name: torch.linspace(0, 1, g.channels) for g in groups}
    att["layer2.0.conv2"] = torch.zeros(16)  # dead stream: not droppable, keeps its best
    thr = {g.name: 0.5 for g in groups}
    thr["layer1.0.conv1"] = 2.0  # everything below: the block goes
    plan = threshold_plan(att, thr, groups, droppable_convs(m))
    assert plan.keep["conv1"] == [4, 5, 6, 7]  # linspace(0, 1, 8) > 0.5
    assert plan.keep["layer1.0.conv1"] == []
    assert len(plan.keep["layer2.0.conv2"]) == 1
    no_drop = threshold_plan(att, thr, groups, droppable_convs(m), allow_block_drop=False)
    assert no_drop.keep["layer1.0.conv1"] == [7]
    zero_t = threshold_plan(att, {g.name: 0.0 for g in groups}, groups, set())
    assert zero_t.keep["conv1"] == list(range(1, 8))  # T = 0 removes the never-active filter


# --- policy (Algorithm 2) ----------------------------------------------------------------


def test_scripted_rounds_drive_T_lambda_rollbacks_and_termination():
    cfg = PolicyConfig(max_rollbacks=2, converge_rounds=2, max_rounds=50)
    s = initial_state(cfg, 1000.0)
    assert (s.T, s.lam) == (0.0, 0.01)
    s = advance(s, cfg, True, 900.0)  # round 1 acceptable
    assert (s.current, s.T, s.lam) == (1, 0.01, 0.01)
    s = advance(s, cfg, True, 800.0)  # round 2
    assert (s.current, s.T) == (2, pytest.approx(0.02))
    s = advance(s, cfg, False, 700.0)  # round 3 violates: back to 2, lam / 2^(0+1)
    assert (s.current, s.lam, s.rollbacks) == (2, 0.005, {2: 1})
    assert s.T == pytest.approx(0.01 + 0.005)  # T[2] (the T round 2 pruned with) + lam
    s = advance(s, cfg, False, 750.0)  # round 4 violates: back to 2 again, lam / 2^(1+1)
    assert (s.current, s.lam, s.rollbacks) == (2, 0.005 / 4, {2: 2})
    assert s.T == pytest.approx(0.01 + 0.00125)
    s = advance(s, cfg, False, 790.0)  # round 5: 2 used twice -> unacceptable; back to 1
    assert s.unacceptable == (2,) and s.current == 1
    assert s.lam == pytest.approx(0.00125 / 2) and s.T == pytest.approx(0.0 + 0.000625)
    s = advance(s, cfg, True, 899.5)  # round 6: change 0.06% <= 0.1%: stable 1
    assert (s.current, s.stable, s.done) == (6, 1, False)
    s = advance(s, cfg, True, 899.4)  # round 7: stable 2 -> converged
    assert s.done and s.reason == "converged" and s.round == 7


def test_stability_before_any_rollback_does_not_stop_the_run():
    cfg = PolicyConfig(converge_rounds=2)
    s = initial_state(cfg, 100.0)
    for _ in range(5):  # nothing pruned yet: the size does not change
        s = advance(s, cfg, True, 100.0)
    assert not s.done and s.T == pytest.approx(0.05)
    literal = PolicyConfig(converge_rounds=2, converge_after_rollback=False)
    s = advance(advance(initial_state(literal, 100.0), literal, True, 100.0), literal, True, 100)
    assert s.done and s.reason == "converged"


def test_rollbacks_exhausting_the_dense_round_stop_and_max_rounds_stop():
    cfg = PolicyConfig(max_rollbacks=1)
    s = advance(initial_state(cfg, 10.0), cfg, False, 5.0)
    assert s.current == 0 and s.lam == 0.005 and not s.done
    s = advance(s, cfg, False, 6.0)
    assert s.done and "no acceptable" in s.reason
    capped = PolicyConfig(max_rounds=2)
    s = advance(advance(initial_state(capped, 10.0), capped, True, 9.0), capped, True, 8.0)
    assert s.done and s.reason == "max_rounds"
    with pytest.raises(ValueError):
        advance(s, capped, True, 7.0)


def test_policy_state_round_trips_through_a_dict():
    cfg = PolicyConfig()
    s = advance(advance(initial_state(cfg, 10.0), cfg, True, 9.0), cfg, False, 5.0)
    from edgeprune.methods.aap.policy import PolicyState

    d = {**s.to_dict(), "accepted": {str(k): v for k, v in s.accepted.items()}}
    assert PolicyState.from_dict(d) == s


def test_classify_accuracy_and_resource_targets():
    ok, cand = aap_loop.classify({"flops": 50}, 0.5, {}, 1.0)
    assert (ok, cand) == (True, True)
    assert aap_loop.classify({"flops": 50}, 1.5, {}, 1.0) == (False, False)
    assert aap_loop.classify({"flops": 70}, None, {"flops": 60}, None) == (True, False)
    assert aap_loop.classify({"flops": 60}, None, {"flops": 60}, None) == (False, True)
    two = {"flops": 60, "params": 10}  # multi-objective: both targets must be reached
    assert aap_loop.classify({"flops": 50, "params": 11}, None, two, None) == (True, False)
    assert aap_loop.classify({"flops": 50, "params": 9}, 2.0, two, 1.0) == (False, False)
    assert aap_loop.resolve_goal("auto", {"latency_ms": 1, "params": 2}) == ["latency", "params"]
    assert aap_loop.resolve_goal("auto", {}) == ["params"]
    assert aap_loop.resolve_goal("params+flops", {}) == ["params", "flops"]


# --- rewinding, options -------------------------------------------------------------------


def test_lr_rewinding_segments_follow_the_dense_schedule():
    cfg = AAPConfig()  # E = 182, k = 136, milestones 91, 136
    tail = tail_config(cfg, None, 0)
    assert (tail.epochs, tail.schedule, tail.lr) == (46, "constant", pytest.approx(0.001))
    mid = tail_config(AAPConfig(rewind_epoch=100, round_epochs=4), 2, 0)
    assert (mid.epochs, mid.schedule, mid.lr, mid.limit_batches) == (
        4,
        "step",
        pytest.approx(0.01),
        2,
    )
    assert mid.milestones == pytest.approx(((136 - 100) / 82,))
    head = head_config(cfg, None, 0)
    assert head.epochs == 136 and head.lr == 0.1 and head.milestones == pytest.approx((91 / 136,))
    assert tail_config(AAPConfig(round_epochs=0), None, 0) is None


def test_options_are_checked():
    assert get_method("aap", lam0=0.1, milestones=[1, 2]).config.milestones == (1, 2)
    with pytest.raises(UserError, match="no option 'bogus'"):
        get_method("aap", bogus=1)
    with pytest.raises(UserError):
        AAPConfig(attention="median")
    with pytest.raises(UserError):
        AAPConfig(goal="energy")


def test_composed_plan_rebuilds_the_sequentially_pruned_model():
    m, ex = _model(), torch.randn(1, *SIZE)
    groups = prunable_layers(m, SIZE)
    p1 = Plan({"conv1": [0, 2, 3, 5, 7], "layer2.0.conv1": list(range(0, 16, 2))})
    step1 = apply_plan_(copy.deepcopy(m), p1, ex)
    g1 = prunable_layers(step1, SIZE)
    p2 = Plan({"layer1.0.conv1": [], "layer3.0.conv2": list(range(10))})
    step2 = apply_plan_(copy.deepcopy(step1), p2, ex)
    cum = compose_plans(groups, p1, g1, p2)
    rebuilt = apply_plan_(copy.deepcopy(m), cum, ex)
    rebuilt.load_state_dict(step2.state_dict())  # same structure, strict
    torch.testing.assert_close(rebuilt(ex), step2(ex))


# --- the loop: resume -------------------------------------------------------------------


def _loader(n: int = 16, batch: int = 4) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    x = torch.randn(n, *SIZE, generator=g) + y.view(-1, 1, 1, 1) * 0.1
    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, generator=g)


def _ctx(tmp_path, resume: bool = False) -> MethodContext:
    from edgeprune.cost import count

    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "state.pt"

    def metrics(model):
        c = count(model, SIZE)
        return {"params": c.params, "flops": c.flops, "latency_ms": float("nan")}

    def save(state):
        torch.save(state, str(path) + ".tmp")
        (tmp_path / "state.pt.tmp").replace(path)

    def load():
        return torch.load(path, weights_only=True) if path.exists() else None

    dense = metrics(_model())
    oracle = BudgetOracle(metrics, {"flops": 0.5 * dense["flops"]}, dense)
    return MethodContext(
        torch.randn(1, *SIZE, generator=torch.Generator().manual_seed(0)),
        train_loader=_loader(),
        limit_batches=1,
        oracle=oracle,
        checkpoint=Checkpointer(save, load),
        resume=resume,
        log=lambda _msg: None,
    )


OPTS = dict(max_rounds=3, round_epochs=1, lam0=0.5, lr=0.01, milestones=[91, 136])


def _history(result):
    keys = ("round", "T", "lam", "removed", "acc", "params", "flops", "outcome", "widths")
    return [{k: r.get(k) for k in keys} for r in result.diagnostics["rounds"]]


def test_resume_after_a_kill_mid_round_reproduces_the_history(tmp_path, monkeypatch):
    groups = prunable_layers(_model(), SIZE)
    ref = get_method("aap", **OPTS).run(_model(), groups, _ctx(tmp_path / "a"))
    assert len(ref.diagnostics["rounds"]) == 4  # dense + max_rounds
    assert any(r["removed"] for r in ref.diagnostics["rounds"][1:])

    real, calls = aap_loop.retrain, {"n": 0}

    def dying(run, model, r):
        calls["n"] += 1
        if calls["n"] == 3:  # killed while retraining round 2 (call 1: the dense baseline)
            raise KeyboardInterrupt
        real(run, model, r)

    monkeypatch.setattr(aap_loop, "retrain", dying)
    with pytest.raises(KeyboardInterrupt):
        get_method("aap", **OPTS).run(_model(), groups, _ctx(tmp_path / "b"))
    saved = torch.load(tmp_path / "b" / "state.pt", weights_only=True)
    assert saved["policy"]["round"] == 1
    monkeypatch.setattr(aap_loop, "retrain", real)
    resumed = get_method("aap", **OPTS).run(_model(), groups, _ctx(tmp_path / "b", True))
    assert _history(resumed) == _history(ref)
    assert resumed.plan.keep == ref.plan.keep
    x = torch.randn(2, *SIZE)
    torch.testing.assert_close(resumed.model(x), ref.model(x))
    assert resumed.diagnostics["layer_sparsity"] == ref.diagnostics["layer_sparsity"]


def test_resume_refuses_other_options(tmp_path):
    groups = prunable_layers(_model(), SIZE)
    get_method("aap", **{**OPTS, "max_rounds": 1}).run(_model(), groups, _ctx(tmp_path / "a"))
    with pytest.raises(UserError, match="other options"):
        get_method("aap", **OPTS).run(_model(), groups, _ctx(tmp_path / "a", True))


def test_weight_rewinding_restarts_kept_filters_from_the_rewind_weights(tmp_path, monkeypatch):
    groups = prunable_layers(_model(), SIZE)
    monkeypatch.setattr(aap_loop, "retrain", lambda run, model, r: None)  # isolate the rewind
    opts = {**OPTS, "max_rounds": 2, "rewind_weights": True}
    res = get_method("aap", **opts).run(_model(), groups, _ctx(tmp_path))
    assert res.plan.keep  # something was pruned
    expected = apply_plan_(_model(), res.plan, torch.randn(1, *SIZE))  # dense weights, pruned
    for k, v in expected.state_dict().items():
        torch.testing.assert_close(res.model.state_dict()[k], v)


def test_threshold_plan_rounds_to_alignment():
    import torch

    from edgeprune.methods.aap.thresholds import threshold_plan
    from edgeprune.surgery.graph import PrunableGroup

    g = PrunableGroup("c", ("c",), 32, False)
    att = torch.arange(32, dtype=torch.float)  # filters 0..12 are below the threshold
    plain = threshold_plan({"c": att}, {"c": 12.5}, [g], set())
    aligned = threshold_plan({"c": att}, {"c": 12.5}, [g], set(), align=16)
    assert len(plain.keep["c"]) == 19 and "c" not in aligned.keep  # 19 -> 32: nothing pruned
    aligned8 = threshold_plan({"c": att}, {"c": 12.5}, [g], set(), align=8)
    assert aligned8.keep["c"] == list(range(8, 32))  # the 24 best filters


def test_round_batches_caps_each_rounds_retraining(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(aap_loop, "_train", lambda run, model, tcfg: seen.append(tcfg))
    opts = {**OPTS, "max_rounds": 2, "round_batches": 3}
    get_method("aap", **opts).run(_model(), prunable_layers(_model(), SIZE), _ctx(tmp_path))
    assert [t.limit_batches for t in seen] == [3, 3, 3]  # not the pipeline's limit (1)
    with pytest.raises(UserError, match="round_batches"):
        AAPConfig(round_batches=0)


def test_a_latency_target_is_judged_on_the_measured_ratio():
    oracle = BudgetOracle(lambda m: {}, {"latency_ms": 5.0}, {"latency_ms": 10.0})
    ctx = MethodContext(torch.zeros(1, *SIZE), oracle=oracle)
    run = aap_loop._Run(AAPConfig(), ctx, _model(), [], SIZE, oracle.targets, None, ["latency"])
    predicted = {"latency_ms": 7.0, "params": 1}
    judged = aap_loop.judged_metrics(run, predicted, dense_ms=4.0, measured=1.6)
    assert judged == {"latency_ms": pytest.approx(4.0), "params": 1}  # 0.4x of dense
    assert aap_loop.classify(judged, None, run.targets, None) == (False, True)
    assert aap_loop.classify(predicted, None, run.targets, None) == (True, False)
    assert aap_loop.judged_metrics(run, predicted, None, None) == predicted  # not measured


@pytest.mark.parametrize("retrain_dense", [True, False])
def test_the_dense_baseline_gets_one_rounds_retraining(tmp_path, retrain_dense, monkeypatch):
    calls = []
    monkeypatch.setattr(aap_loop, "retrain", lambda run, model, r: calls.append(r))
    opts = {**OPTS, "max_rounds": 2, "retrain_dense": retrain_dense}
    get_method("aap", **opts).run(_model(), prunable_layers(_model(), SIZE), _ctx(tmp_path))
    assert calls == ([0, 1, 2] if retrain_dense else [1, 2])
    saved = torch.load(tmp_path / "state.pt", weights_only=True)
    assert (saved["snapshots"][0]["state"] is not None) == retrain_dense


def test_attention_init_only_in_budget_runs_and_explicit_values_win():
    assert aap_loop.attention_init(AAPConfig(), {"flops": 1.0}) == (True, True)
    assert aap_loop.attention_init(AAPConfig(), {}) == (False, False)  # accuracy: the paper's
    # an explicit lambda (the cpu preset's 1.5) wins, T[1] still comes from the attention
    assert aap_loop.attention_init(AAPConfig(lam0=2.0), {"flops": 1.0}) == (True, False)
    assert aap_loop.attention_init(AAPConfig(t0=0.5), {"flops": 1.0}) == (False, True)
    off = AAPConfig(init_from_attention=False)
    assert aap_loop.attention_init(off, {"flops": 1}) == (False, False)
