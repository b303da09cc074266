"""AAP on CIFAR ResNet-56 (shared weights): latency 0.5x on xeon, next to L1 with the same
training budget, plus an accuracy-guaranteed run. Thin: the logic is edgeprune.prune.

    python benchmarks/aap_resnet56.py --data-root ../shared/data/cifar10-jpeg \
        --weights ../shared/weights/cifar10/resnet56-4bfd9763.th --out /tmp/aap-bench \
        --round-epochs 1 --limit-batches 50 --max-rounds 20 --lam0 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import time


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="xeon")
    p.add_argument("--latency", type=float, default=0.5, help="latency budget (x dense)")
    p.add_argument("--max-acc-drop", type=float, default=1.0, help="accuracy-guaranteed run")
    p.add_argument("--round-epochs", type=int, default=1, help="AAP retraining per round")
    p.add_argument("--max-rounds", type=int, default=20)
    p.add_argument("--lam0", type=float, default=0.01, help="AAP's lambda (paper: 0.01)")
    p.add_argument("--limit-batches", type=int, default=None)
    p.add_argument("--epochs", type=int, default=0, help="final recovery epochs (both methods)")
    p.add_argument("--skip", nargs="*", default=[], choices=["latency", "l1", "accuracy"])
    return p


def _run(args, name: str, method: str, budget, epochs: int, opts: dict) -> dict:
    from edgeprune.prune import PruneConfig, run_prune

    cfg = PruneConfig(
        model="resnet56",
        weights=args.weights,
        out=os.path.join(args.out, name),
        method=method,
        budget=budget,
        device=args.device,
        data_root=args.data_root,
        epochs=epochs,
        limit_batches=args.limit_batches,
        method_options=opts,
    )
    t0 = time.time()
    rep = run_prune(cfg)
    rounds = None
    diag = os.path.join(cfg.out, "diagnostics.json")
    if method == "aap" and os.path.isfile(diag):
        with open(diag) as fh:
            rounds = len(json.load(fh)["rounds"]) - 1
    d, p = rep["dense"], rep["pruned"]
    return {
        "run": name,
        "rounds": rounds,
        "latency_ratio_measured": rep.get("latency_ratio"),
        "params_ratio": p["params"] / d["params"],
        "flops_ratio": p["flops"] / d["flops"],
        "top1_dense": d["top1"],
        "top1": p["top1"],
        "budget_met": rep["budget_met"],
        "wall_s": time.time() - t0,
    }


def main(args: argparse.Namespace) -> list[dict]:
    from edgeprune.budget import Budget

    aap = {"round_epochs": args.round_epochs, "max_rounds": args.max_rounds, "lam0": args.lam0}
    aap["device"] = args.device  # per-layer latency shares (until the pipeline passes a profile)
    lat = Budget(latency_ratio=args.latency, device=args.device)
    rows = []
    if "latency" not in args.skip:
        rows.append(_run(args, "aap-latency", "aap", lat, args.epochs, aap))
    if "l1" not in args.skip:  # the same training: AAP's retraining epochs + final recovery
        done = rows[0]["rounds"] * args.round_epochs if rows else args.max_rounds
        rows.append(_run(args, "l1-latency", "l1", lat, args.epochs + done, {}))
    if "accuracy" not in args.skip:
        acc = {**aap, "max_acc_drop": args.max_acc_drop}
        rows.append(
            _run(args, "aap-accuracy", "aap", Budget(max_acc_drop=args.max_acc_drop), 0, acc)
        )
    for r in rows:
        print(json.dumps(r))
    return rows


if __name__ == "__main__":
    main(get_args_parser().parse_args())
