"""Budget adherence of the controller on a device, and latency-aware vs FLOPs allocation.

For each (model, latency budget) the L1 method is pruned (structure only, no recovery),
verified on the device (interleaved against dense) and the report's numbers collected.
With --compare-flops the same budget is also allocated by FLOPs (ranking moves by FLOPs
saved instead of predicted latency). Also times the bare allocator (decision time).

    python benchmarks/budget_adherence.py --device xeon --out runs/bench-budget \\
        --case resnet56:0.3x,0.5x,0.7x --case torchvision:mobilenet_v2:0.5x \\
        --case torchvision:resnet50:0.5x --compare-flops
"""

from __future__ import annotations

import argparse
import json
import os
import time

from edgeprune.budget import Budget
from edgeprune.budget.allocator import AllocatorConfig
from edgeprune.budget.controller import ControllerConfig
from edgeprune.workflows.prune import PruneConfig, run_prune

WEIGHTS = {"resnet56": "../shared/weights/cifar10/resnet56-4bfd9763.th"}


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="xeon")
    p.add_argument(
        "--case", action="append", required=True, help="MODEL:B1,B2 (e.g. resnet56:0.5x)"
    )
    p.add_argument("--compare-flops", action="store_true")
    p.add_argument("--verify-min-time", type=float, default=3.0)
    p.add_argument("--out", default="runs/bench-budget")
    return p


def _cases(specs: list[str]) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        model, _, budgets = spec.rpartition(":")
        out += [(model, b) for b in budgets.split(",")]
    return out


def _decision_time(model: str, device: str, budget: Budget) -> float:
    """Seconds for the allocator alone (table lookups, no measurement), median of 3."""
    from edgeprune.budget.allocator import allocate
    from edgeprune.budget.costmodel import CostModel
    from edgeprune.cost.latency import LatencyPredictor
    from edgeprune.devices.profile import load_profile
    from edgeprune.methods.l1 import l1_group_scores
    from edgeprune.surgery import load_model, prunable_layers
    from edgeprune.surgery.blocks import droppable_groups

    lm = load_model(model)
    groups = prunable_layers(lm.model, lm.input_size)
    pred = LatencyPredictor.from_model(lm.model, lm.input_size, load_profile(device))
    cost = CostModel(lm.model, groups, lm.input_size, pred)
    scores = l1_group_scores(lm.model, groups)
    droppable = droppable_groups(lm.model)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        allocate(cost, groups, scores, budget, droppable)
        times.append(time.perf_counter() - t)
    return sorted(times)[1]


def main(args: argparse.Namespace) -> list[dict]:
    rows = []
    for model, b in _cases(args.case):
        ratio = float(b.rstrip("x"))
        budget = Budget(latency_ratio=ratio, device=args.device)
        for objective in ["latency", "flops"] if args.compare_flops else ["latency"]:
            out = os.path.join(args.out, f"{model.replace(':', '_')}-{b}-{objective}")
            cfg = PruneConfig(
                model=model,
                out=out,
                budget=budget,
                weights=WEIGHTS.get(model),
                device=args.device,
                verify_min_time_s=args.verify_min_time,
                controller=ControllerConfig(allocator=AllocatorConfig(objective=objective)),
                overwrite=True,  # a benchmark re-run replaces its run dir
            )
            r = run_prune(cfg).to_dict()
            rows.append(_row(model, ratio, objective, r))
            if objective == "latency":
                rows[-1]["decision_s"] = _decision_time(model, args.device, budget)
            print(json.dumps(rows[-1]), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "adherence.json"), "w") as fh:
        json.dump(rows, fh, indent=1)
    return rows


def _row(model: str, ratio: float, objective: str, r: dict) -> dict:
    return {
        "model": model,
        "budget": ratio,
        "allocation": objective,
        "measured_ratio": r["latency_ratio"],
        "ratio_over_budget": r["latency_ratio"] / ratio,
        "predicted_ms": r["predicted_latency_ms"],
        "measured_ms": r["measured_latency_ms"],
        "dense_ms": r["dense"]["latency_ms"],
        "attempts": len(r["verification"]),
        "flops_kept": r["pruned"]["flops"] / r["dense"]["flops"],
        "params_kept": r["pruned"]["params"] / r["dense"]["params"],
        "dropped_blocks": len(r["dropped_blocks"]),
        "budget_met": r["budget_met"],
    }


if __name__ == "__main__":
    main(get_args_parser().parse_args())
