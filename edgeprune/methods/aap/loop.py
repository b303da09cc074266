"""AAP's iterative structured pruning (Algorithm 1) driven by the adaptive policy.

Each round: attention of the current model's filters on a fixed calibration draw, prune
(physically, ``apply_plan_``) every filter under its layer's threshold, rewind (LR schedule
to epoch k; weights to epoch k optionally), retrain, evaluate against the target, let the
policy accept or roll back and set the next threshold. The whole state (policy, history,
snapshots of acceptable rounds: plan on the original + weights) is checkpointed after every
round, so a resumed run continues at the next round and repeats what the killed one did.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from edgeprune.budget.verdict import verdict
from edgeprune.errors import UserError
from edgeprune.methods.aap.attention import calibration_batches, collect_attention
from edgeprune.methods.aap.config import AAPConfig
from edgeprune.methods.aap.policy import (
    PolicyConfig,
    PolicyState,
    advance,
    initial_state,
    last_acceptable,
)
from edgeprune.methods.aap.schedule import head_config, tail_config
from edgeprune.methods.aap.thresholds import (
    conv_costs,
    droppable_convs,
    layer_thresholds,
    shares,
    threshold_plan,
)
from edgeprune.methods.base import IterativeResult, MethodContext
from edgeprune.surgery import Plan, apply_plan_, prunable_layers, resolve_plan
from edgeprune.surgery.graph import PrunableGroup
from edgeprune.surgery.plan import compose_plans

if TYPE_CHECKING:
    from edgeprune.devices.profile import DeviceProfile

_SIZE_KEY = {"params": "params", "flops": "flops", "latency": "latency_ms"}
_GOAL_OF = {
    "latency_ms": "latency",
    "flops": "flops",
    "params": "params",
    "weight_bytes": "params",
    "activation_bytes": "params",
}


def policy_config(cfg: AAPConfig) -> PolicyConfig:
    return PolicyConfig(
        cfg.t0,
        cfg.lam0,
        cfg.max_rollbacks,
        cfg.converge_tol,
        cfg.converge_rounds,
        cfg.converge_after_rollback,
        cfg.max_rounds,
        cfg.lam_rule,
    )


def resolve_goal(goal: str, targets: dict) -> list[str]:
    """``auto``: the budget's metrics (latency > FLOPs > memory); params without one."""
    if goal != "auto":
        return goal.split("+")
    found = [_GOAL_OF[k] for k in ("latency_ms", "flops", "params", "weight_bytes") if k in targets]
    found += ["params"] if "activation_bytes" in targets else []
    return list(dict.fromkeys(found)) or ["params"]


def classify(
    metrics: dict,
    acc_loss: float | None,
    targets: dict,
    max_acc_drop: float | None,
    tol: float = 0.0,
) -> tuple[bool, bool]:
    """(acceptable, candidate) of a round; ``tol``: the latency tolerance when the round's
    latency was measured (0: a prediction, judged exactly).

    Accuracy target (Algorithm 2): acceptable iff the loss is within it. Resource targets
    (Algorithms 3-4, ours for latency; all of them at once for multi-objective): a round
    that has not reached every target yet is acceptable (keep pruning); one that has is a
    candidate and counts as a violation, so the policy rolls back and approaches the target
    more slowly: the result is the most accurate candidate, the least over-pruned model.
    """
    acc_ok = max_acc_drop is None or acc_loss is None or acc_loss <= max_acc_drop
    if not acc_ok:
        return False, False
    if not targets:
        return True, True
    reached = verdict(metrics, targets, tol).met
    return not reached, reached


@dataclass
class _Run:
    """What one AAP run needs besides its checkpointed state."""

    cfg: AAPConfig
    ctx: MethodContext
    original: nn.Module
    groups: list[PrunableGroup]
    input_size: tuple[int, ...]
    targets: dict
    max_acc_drop: float | None
    goal: list[str]
    profile: DeviceProfile | None = None
    calib: list[torch.Tensor] = field(default_factory=list)

    @property
    def size_key(self) -> str:
        return _SIZE_KEY[self.goal[0]]

    def log(self, msg: str) -> None:
        self.ctx.log(f"aap: {msg}")


def layer_weights(run: _Run, model: nn.Module, groups: list[PrunableGroup]) -> dict[str, float]:
    """w_i: the groups' shares of the goal metric(s) in ``model`` (averaged over goals)."""
    costs = conv_costs(model, run.ctx.example_input)
    out = {g.name: 0.0 for g in groups}
    for goal in run.goal:
        if goal == "latency" and run.profile is not None:
            pred = _latency_predictor(run, model).predict()
            per = {c.name: c.latency_ms for c in pred.per_layer}
            part = shares(per, pred.total_ms, groups, run.cfg.stream_threshold)
        else:
            i = 0 if goal == "params" else 1
            per = {k: float(v[i]) for k, v in costs.items()}
            part = shares(per, _model_total(model, run, i), groups, run.cfg.stream_threshold)
        for k, v in part.items():
            out[k] += v / len(run.goal)
    return out


def _latency_predictor(run: _Run, model: nn.Module):
    """``model``'s predictor: a variant of the run's dense predictor (its calibration) when
    the context has one, else traced on its own."""
    dense = getattr(run.ctx.cost_model, "predictor", None)
    if dense is not None:
        return dense.for_variant(model, run.input_size)
    from edgeprune.cost.latency import LatencyPredictor

    return LatencyPredictor.from_model(model, run.input_size, run.profile)


def _model_total(model: nn.Module, run: _Run, i: int) -> float:
    from edgeprune.cost import count

    c = count(model, run.input_size)
    return float(c.params if i == 0 else c.flops)


def _metrics(run: _Run, model: nn.Module) -> dict:
    if run.ctx.oracle is not None:
        m = dict(run.ctx.oracle.metrics(model))
    else:
        from edgeprune.cost import count

        c = count(model, run.input_size)
        m = {"params": c.params, "flops": c.flops, "latency_ms": math.nan}
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in m.items()}


def _eval_loader(ctx: MethodContext):
    return ctx.val_loader if ctx.val_loader is not None else ctx.train_loader


def accuracy(run: _Run, model: nn.Module) -> float | None:
    """Top-1 on the validation loader (else the training loader), on a fixed draw."""
    loader = _eval_loader(run.ctx)
    if loader is None:
        return None
    from edgeprune.train import evaluate

    limit = run.cfg.eval_batches or run.ctx.limit_batches
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.cfg.seed)
        gen = getattr(loader, "generator", None)
        if isinstance(gen, torch.Generator):
            gen.manual_seed(run.cfg.seed)
        return float(evaluate(model, loader, limit_batches=limit, progress=False).top1)


def _train(run: _Run, model: nn.Module, tcfg) -> None:
    if tcfg is None or run.ctx.train_loader is None:
        return
    from edgeprune.train import train

    train(model, run.ctx.train_loader, tcfg)
    model.eval()


def retrain(run: _Run, model: nn.Module, r: int) -> None:
    """Retrain a pruned model from the rewound LR schedule (epochs k..E, or round_epochs)."""
    limit = run.cfg.round_batches or run.ctx.limit_batches
    _train(run, model, tail_config(run.cfg, limit, run.cfg.seed + r))


def rebuild(run: _Run, snap: dict) -> nn.Module:
    """The model of a snapshot: the original, pruned by its plan, with its weights."""
    model = copy.deepcopy(run.original)
    if snap["plan"]["keep"]:
        apply_plan_(model, Plan.from_dict(snap["plan"]), run.ctx.example_input)
    if snap["state"] is not None:
        model.load_state_dict(snap["state"])
    return model.eval()


def widths(run: _Run, plan: Plan) -> dict[str, int]:
    """Kept channels per group of the original model."""
    res = resolve_plan(plan, run.groups)
    return {g.name: len(res.get(g.name, range(g.channels))) for g in run.groups}


def _snap(plan: Plan, model: nn.Module | None) -> dict:
    state = None if model is None else {k: v.clone() for k, v in model.state_dict().items()}
    return {"plan": plan.to_dict(), "state": state}


def init_state(run: _Run) -> dict:
    """Round 0: the dense model (trained first with ``train_dense``), its accuracy and size."""
    dense, w_k, trained = run.original, None, False
    if run.cfg.train_dense:
        dense = copy.deepcopy(run.original)
        _train(run, dense, head_config(run.cfg, run.ctx.limit_batches, run.cfg.seed))
        w_k = _snap(Plan(), dense)["state"]
        retrain(run, dense, 0)
        trained = True
    elif run.cfg.retrain_dense and run.ctx.train_loader is not None:
        dense = copy.deepcopy(run.original)
        retrain(run, dense, 0)  # the baseline gets the retraining every round gets
        trained = True
    acc0 = accuracy(run, dense)
    if run.max_acc_drop is not None and acc0 is None:
        raise UserError("AAP's accuracy target needs data: give --data-root")
    metrics = _metrics(run, dense)
    if metrics.get(run.size_key) is None:
        raise UserError(f"AAP's {run.goal[0]} goal needs a device: give --device")
    pcfg = policy_config(run.cfg)
    record = {"round": 0, "T": None, "acc": acc0, "acc_loss": 0.0 if acc0 is not None else None}
    record.update(_metric_fields(metrics), outcome="dense", widths=widths(run, Plan()))
    t1 = lam1 = None
    init_t, init_lam = attention_init(run.cfg, run.targets)
    if init_t or init_lam:
        t1, lam1 = initial_threshold(run, dense)
        t1 = t1 if init_t else run.cfg.t0
        lam1 = lam1 if init_lam else run.cfg.lam0
        record["init"] = {"T1": t1, "lam1": lam1, "quantile": run.cfg.init_quantile}
        src = {True: " (from the attention)", False: " (given)"}
        run.log(f"budget run: T starts at {t1:.5g}{src[init_t]}, lambda {lam1:.5g}{src[init_lam]}")
    return {
        "config": run.cfg.to_dict(),
        "acc0": acc0,
        "policy": initial_state(pcfg, float(metrics[run.size_key]), t1, lam1).to_dict(),
        "snapshots": {0: _snap(Plan(), dense if trained else None)},
        "rewind": w_k,
        "best": None,
        "history": [record],
    }


def attention_ratios(attention: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """Every filter's attention / w_i: the global T at which it is pruned (T_i = T * w_i)."""
    parts = [attention[g] / max(w, 1e-30) for g, w in weights.items() if g in attention]
    return torch.cat([p.flatten().double() for p in parts]).sort().values


def init_from_ratios(ratios: torch.Tensor, q: float) -> tuple[float, float]:
    """(T[1], lambda): T[1] prunes about the share ``q`` of the filters, lambda about
    another ``q`` (the next quantile), never 0."""
    t1 = float(torch.quantile(ratios, q))
    nxt = float(torch.quantile(ratios, min(0.99, 2 * q)))
    lam = nxt - t1
    if lam <= 0:
        lam = max(float(ratios[-1]) - t1, abs(t1), 1e-12) * q
    return t1, lam


def attention_init(cfg: AAPConfig, targets: dict) -> tuple[bool, bool]:
    """(T[1] from the attention, lambda from the attention): budget runs with
    ``init_from_attention``; each of ``t0``/``lam0`` left at the paper's value is derived, an
    explicit one wins (the cpu preset's lambda 1.5 keeps its step, T[1] still starts pruning)."""
    paper = AAPConfig.__dataclass_fields__
    on = bool(cfg.init_from_attention and targets)
    return (
        on and cfg.t0 == paper["t0"].default,
        on and cfg.lam0 == paper["lam0"].default,
    )


def initial_threshold(run: _Run, dense: nn.Module) -> tuple[float, float]:
    """Ours, budget runs: T[1] and lambda from the dense model's attention distribution; T[1]
    is raised to where the round's plan removes something (a channel alignment keeps a layer
    whole until ``align`` of its filters fall under its threshold)."""
    groups = prunable_layers(dense, run.input_size)
    att = collect_attention(
        dense, groups, run.calib, run.ctx.example_input, run.cfg.attention, run.cfg.p
    )
    weights = layer_weights(run, dense, groups)
    ratios = attention_ratios(att, weights)
    t1, lam = init_from_ratios(ratios, run.cfg.init_quantile)
    droppable, align = droppable_convs(dense), _alignment(run)

    def removes(t: float) -> bool:
        thresholds = layer_thresholds(t, weights)
        plan = threshold_plan(att, thresholds, groups, droppable, run.cfg.allow_block_drop, align)
        return bool(plan.keep)

    return first_pruning_threshold(ratios, t1, removes), lam


def first_pruning_threshold(
    ratios: torch.Tensor, t: float, removes: Callable[[float], bool]
) -> float:
    """``t`` if ``removes(t)``, else the smallest of the sorted ``ratios`` above it for which
    ``removes`` holds (it is monotone in T: bisection); ``t`` when none does."""
    if removes(t):
        return t
    above = ratios[ratios > t]
    if len(above) == 0 or not removes(float(above[-1])):
        return t
    lo, hi = 0, len(above) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if removes(float(above[mid])):
            hi = mid
        else:
            lo = mid + 1
    return float(above[lo])


def _metric_fields(m: dict) -> dict:
    return {
        "params": m.get("params"),
        "flops": m.get("flops"),
        "predicted_latency_ms": m.get("latency_ms"),
    }


def _prune(run: _Run, state: dict, s: PolicyState) -> tuple[nn.Module, Plan, Plan, dict]:
    """Attention + thresholds on the current model; returns (model, local, cumulative, info)."""
    base_snap = state["snapshots"][s.current]
    base = rebuild(run, base_snap)
    groups = prunable_layers(base, run.input_size)
    att = collect_attention(
        base, groups, run.calib, run.ctx.example_input, run.cfg.attention, run.cfg.p
    )
    thr = layer_thresholds(s.T, layer_weights(run, base, groups))
    local = threshold_plan(
        att, thr, groups, droppable_convs(base), run.cfg.allow_block_drop, _alignment(run)
    )
    base_plan = Plan.from_dict(base_snap["plan"])
    if not local.keep:
        return base, local, base_plan, {"removed": 0}
    cum = compose_plans(run.groups, base_plan, groups, local)
    if run.cfg.rewind_weights:  # the kept filters restart from epoch-k weights
        w_k = state["rewind"]  # None: the loaded weights stand for W_k
        dense_k = rebuild(run, {"plan": Plan().to_dict(), "state": w_k})
        model = apply_plan_(dense_k, cum, run.ctx.example_input)
    else:
        model = apply_plan_(base, local, run.ctx.example_input)
    removed = sum(g.channels - len(local.keep.get(g.name, range(g.channels))) for g in groups)
    return model, local, cum, {"removed": removed}


def _alignment(run: _Run) -> int:
    """The device's channel alignment under a latency goal (option align=auto), else 1."""
    if run.cfg.align != "auto":
        return max(1, int(run.cfg.align))
    if "latency" not in run.goal or run.profile is None:
        return 1
    return max(1, int(getattr(run.profile, "channel_alignment", 1) or 1))


def _measure(run: _Run, model: nn.Module) -> tuple[float | None, float | None]:
    oracle = run.ctx.oracle
    if not run.cfg.measure_rounds or oracle is None or oracle.measure is None:
        return None, None
    dense_ms, ms = oracle.measure(model)
    return float(dense_ms), float(ms)


def judged_metrics(
    run: _Run, metrics: dict, dense_ms: float | None, measured: float | None
) -> dict:
    """The metrics a latency target is judged on: the measured ratio to dense (interleaved on
    the device) times the dense model's predicted latency, when the round was measured; the
    prediction alone otherwise. The device decides, as in the controller's verify loop."""
    dense_pred = (run.ctx.oracle.dense_metrics or {}).get("latency_ms") if run.ctx.oracle else None
    if measured is None or not dense_ms or dense_pred is None or "latency_ms" not in run.targets:
        return metrics
    return {**metrics, "latency_ms": measured / dense_ms * float(dense_pred)}


def run_round(run: _Run, state: dict) -> dict:
    """One pruning round; returns the new state (the old one is left as it was)."""
    state = {**state, "snapshots": dict(state["snapshots"]), "history": list(state["history"])}
    pcfg = policy_config(run.cfg)
    s = PolicyState.from_dict(state["policy"])
    r = s.round + 1
    model, local, cum, info = _prune(run, state, s)
    if info["removed"] == 0 and run.cfg.skip_unchanged:
        acc = next(h["acc"] for h in reversed(state["history"]) if h["round"] == s.current)
    else:
        retrain(run, model, r)
        acc = accuracy(run, model)
    metrics = _metrics(run, model)
    dense_ms, measured = _measure(run, model)
    acc_loss = None if acc is None or state["acc0"] is None else (state["acc0"] - acc) * 100
    judged = judged_metrics(run, metrics, dense_ms, measured)
    tol = run.ctx.oracle.tolerance if measured is not None else 0.0
    ok, candidate = classify(judged, acc_loss, run.targets, run.max_acc_drop, tol)
    nxt = advance(s, pcfg, ok, float(metrics[run.size_key]))
    record = {"round": r, "T": s.T, "lam": s.lam, "from_round": s.current, **info}
    record.update(acc=acc, acc_loss=acc_loss, **_metric_fields(metrics))
    record.update(measured_latency_ms=measured, dense_measured_latency_ms=dense_ms)
    record.update(judged_latency_ms=judged.get("latency_ms"))
    record.update(outcome="acceptable" if ok else "violation", candidate=candidate)
    record.update(next_T=nxt.T, next_lam=nxt.lam, next_from_round=nxt.current)
    record.update(widths=widths(run, cum), stop=nxt.reason or None)
    state["history"].append(record)
    if ok:
        state["snapshots"][r] = _snap(cum, model)
    for k in nxt.unacceptable:
        state["snapshots"].pop(k, None)
    if candidate and _better(run, record, state["best"]):
        state["best"] = {"round": r, "record": record, **_snap(cum, model)}
    state["policy"] = nxt.to_dict()
    run.log(
        f"round {r}: T={s.T:.5g} removed {info['removed']} filters, {run.size_key}="
        f"{metrics[run.size_key]:.4g}{_measured(dense_ms, measured)}, acc loss={_fmt(acc_loss)}"
        f" -> {record['outcome']}; "
        f"next T={nxt.T:.5g} lam={nxt.lam:.3g} from round {nxt.current}"
    )
    return state


def _measured(dense_ms: float | None, ms: float | None) -> str:
    return "" if ms is None or not dense_ms else f" (measured {ms / dense_ms:.3f}x dense)"


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}pp"


def _better(run: _Run, rec: dict, best: dict | None) -> bool:
    """Accuracy target only: the smallest model; resource targets: the most accurate one
    (without accuracy: the least pruned, i.e. the closest to the target)."""
    if best is None:
        return True
    old, key = best["record"], run.size_key
    if not run.targets:
        return (rec[_fkey(key)], -(rec["acc"] or 0)) < (old[_fkey(key)], -(old["acc"] or 0))
    if rec["acc"] is not None and old["acc"] is not None and rec["acc"] != old["acc"]:
        return rec["acc"] > old["acc"]
    return rec[_fkey(key)] > old[_fkey(key)]


def _fkey(size_key: str) -> str:
    return "predicted_latency_ms" if size_key == "latency_ms" else size_key


def final_result(run: _Run, state: dict) -> IterativeResult:
    """The chosen model (best candidate, else the last acceptable round) and diagnostics."""
    s = PolicyState.from_dict(state["policy"])
    best = state["best"]
    if best is not None:
        snap, rnd, met = best, best["round"], True
    else:
        rnd = last_acceptable(s)
        snap, met = state["snapshots"][rnd], False
    model = rebuild(run, snap)
    plan = Plan.from_dict(snap["plan"])
    rec = next(h for h in state["history"] if h["round"] == rnd)
    w = widths(run, plan)
    diag = {
        "method": "aap",
        "config": state["config"],
        "goal": "+".join(run.goal),
        "targets": run.targets,
        "max_acc_drop": run.max_acc_drop,
        "dense": state["history"][0],
        "rounds": state["history"],
        "final": {**rec, "chosen_round": rnd, "target_met": met, "stop_reason": s.reason},
        "layer_sparsity": {g.name: 1 - w[g.name] / g.channels for g in run.groups},
        "policy": s.to_dict(),
    }
    plan.meta.update(method="aap", round=rnd)
    return IterativeResult(model, plan, diag)


def make_run(cfg: AAPConfig, original: nn.Module, groups, ctx: MethodContext) -> _Run:
    """Resolve targets, goal and device profile for one run."""
    targets = dict(ctx.oracle.targets) if ctx.oracle is not None else {}
    drop = cfg.max_acc_drop
    if drop is None:
        drop = ctx.oracle.max_acc_drop if ctx.oracle is not None else None
    if not targets and drop is None:
        raise UserError(
            "AAP needs a target: a latency/FLOPs/params/memory budget or an accuracy drop"
        )
    goal = resolve_goal(cfg.goal, targets)
    run = _Run(
        cfg,
        ctx,
        original.eval(),
        list(groups),
        tuple(ctx.example_input.shape[1:]),
        targets,
        drop,
        goal,
        ctx.device_profile,
    )
    if "latency" in goal and run.profile is None:
        run.log(
            "no device profile reached AAP: latency shares use FLOPs shares (--opt device=NAME)"
        )
    return run


def run_aap(
    original: nn.Module, groups: list[PrunableGroup], ctx: MethodContext, cfg: AAPConfig
) -> IterativeResult:
    """Run AAP to termination (resuming from ``ctx.checkpoint`` when ``ctx.resume``)."""
    run = make_run(cfg, original, groups, ctx)
    run.calib = calibration_batches(
        ctx.train_loader, cfg.attn_batches, cfg.attn_seed, ctx.example_input
    )
    state = ctx.checkpoint.load() if (ctx.resume and ctx.checkpoint) else None
    if state is not None and state.get("config") != cfg.to_dict():
        raise UserError("the saved AAP state was made with other options; rerun without --resume")
    if state is None:
        state = init_state(run)
        _save(ctx, state)
    else:
        run.log(f"resuming after round {state['policy']['round']}")
    while not state["policy"]["done"]:
        state = run_round(run, state)
        _save(ctx, state)
    return final_result(run, state)


def _save(ctx: MethodContext, state: dict) -> None:
    if ctx.checkpoint is not None:
        ctx.checkpoint.save(state)
