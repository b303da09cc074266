"""AAP on CIFAR ResNet-56 (shared weights): each policy end to end, and L1 with the same
training. Thin: the logic is edgeprune.workflows.prune; every run resumes (rerun the same command).

Runs (``--runs``): ``latency`` (0.5x of dense, measured on the device each round), ``l1``
(the same latency budget, recovered for the final epochs plus as many epochs as AAP's
rounds retrained), ``accuracy`` (smallest model within ``--max-acc-drop`` points on the
held-out val split), ``params`` and ``flops`` (0.5x of dense, shorter rounds)::

    python benchmarks/aap_resnet56.py --out runs/aap-r56 --latency-run runs/r56-table/runs/aap-latency-0.5x
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

WEIGHTS = "../shared/weights/cifar10/resnet56-4bfd9763.th"
DATA = "../shared/data/cifar10-jpeg"
RUNS = ("latency", "l1", "accuracy", "params", "flops")
BATCHES_PER_EPOCH = 390  # 50k images, batch 128


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", default=DATA)
    p.add_argument("--weights", default=WEIGHTS)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="xeon")
    p.add_argument("--runs", default=",".join(RUNS), help=f"some of {','.join(RUNS)}")
    p.add_argument("--latency", type=float, default=0.5, help="latency budget (x dense)")
    p.add_argument("--ratio", type=float, default=0.5, help="params / FLOPs budgets (x dense)")
    p.add_argument("--max-acc-drop", type=float, default=1.0, help="accuracy-guaranteed run")
    p.add_argument("--max-rounds", type=int, default=12)
    p.add_argument("--small-round-batches", type=int, default=30, help="params/FLOPs runs")
    p.add_argument("--recovery", type=int, default=1, help="final recovery epochs")
    p.add_argument("--latency-run", help="an AAP latency run dir to reuse (e.g. the table's)")
    p.add_argument("--limit-batches", type=int, default=None, help="smoke runs only")
    return p


def _run(args, name: str, method: str, budget, epochs: int, opts: dict) -> dict:
    from edgeprune.workflows.bench import standard_recovery
    from edgeprune.workflows.prune import PruneConfig, run_prune

    out = os.path.join(args.out, name)
    cfg = PruneConfig(
        model="resnet56",
        weights=args.weights,
        out=out,
        method=method,
        budget=budget,
        device=args.device,
        data_root=args.data_root,
        epochs=epochs,
        limit_batches=args.limit_batches,
        method_options=opts,
        recovery=standard_recovery(),
        resume=os.path.isfile(os.path.join(out, "config.json")),  # continue a run
    )
    t0 = time.time()
    run_prune(cfg)
    return {**summarize(out), "wall_s": time.time() - t0}


def summarize(run_dir: str) -> dict:
    """One row from a prune run dir: the bench row (``build_row``) plus AAP's rounds."""
    from edgeprune.report.rows import build_row

    with open(os.path.join(run_dir, "report.json")) as fh:
        row = build_row(json.load(fh))
    keep = ("method", "latency_ratio", "params_ratio", "flops_ratio", "pretrained_top1", "top1")
    out = {"run": os.path.basename(run_dir.rstrip("/")), **{k: row[k] for k in keep}}
    out.update(budget_met=row["budget_met"], recovery_epochs=row["recovery_epochs"])
    out["wall_s"] = row["wall_s"]
    diag = os.path.join(run_dir, "diagnostics.json")
    if row["method"] == "aap" and os.path.isfile(diag):
        with open(diag) as fh:
            dg = json.load(fh)
        final = dg["final"]
        out.update(
            rounds=len(dg["rounds"]) - 1,
            chosen_round=final["chosen_round"],
            stop=final["stop_reason"],
            val_acc_loss_pp=final.get("acc_loss"),
        )
    return out


def main(args: argparse.Namespace) -> list[dict]:
    from edgeprune.budget import Budget
    from edgeprune.methods import method_class

    todo = [r for r in args.runs.split(",") if r]
    base = {**method_class("aap").short_schedule, "max_rounds": args.max_rounds}
    lat = Budget(latency_ratio=args.latency, device=args.device)
    rows = []
    if args.latency_run:
        rows.append(summarize(args.latency_run))
    elif "latency" in todo:
        rows.append(_run(args, "aap-latency", "aap", lat, args.recovery, base))
    if "l1" in todo:  # the same training: AAP's retraining rounds + the final recovery
        rounds = rows[0]["rounds"] if rows else args.max_rounds
        extra = math.ceil(rounds * base["round_batches"] / BATCHES_PER_EPOCH)
        rows.append(
            _run(
                args, f"l1-latency-{extra}+{args.recovery}ep", "l1", lat, args.recovery + extra, {}
            )
        )
    if "accuracy" in todo:  # judged before any final recovery, so none is given
        acc = Budget(max_acc_drop=args.max_acc_drop)
        rows.append(_run(args, "aap-accuracy", "aap", acc, 0, base))
    small = {**base, "round_batches": args.small_round_batches}
    if "params" in todo:
        rows.append(_run(args, "aap-params", "aap", Budget(params_ratio=args.ratio), 0, small))
    if "flops" in todo:
        rows.append(_run(args, "aap-flops", "aap", Budget(flops_ratio=args.ratio), 0, small))
    for r in rows:
        print(json.dumps(r))
    return rows


if __name__ == "__main__":
    main(get_args_parser().parse_args())
