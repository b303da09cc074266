"""Distillation in recovery (issue 17): one method at one budget, the standard recovery with
each ``--distill`` mode (and optionally ``--candidates K``), same seed, top-1 on test-a.

    python benchmarks/distill_recovery.py --model resnet56 \
        --weights ../shared/weights/cifar10/resnet56-4bfd9763.th --method l1 --device xeon \
        --latency-budget 0.5x --data-root ../shared/data/cifar10-jpeg --epochs 1 \
        --distill none,kd --out runs/distill-r56

Latency is predicted from the device's table (no on-device verification): enough to compare
accuracy at one fixed structure. Every run gets ``standard_recovery()`` (the bench's).
"""

from __future__ import annotations

import argparse
import json
import os
import time


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet56")
    p.add_argument("--weights")
    p.add_argument("--method", default="l1")
    p.add_argument("--device", default="xeon")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--latency-budget")
    how.add_argument("--flops-budget")
    p.add_argument("--data-root", required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit-batches", type=int)
    p.add_argument("--distill", default="none,kd", help="comma list of modes, run in order")
    p.add_argument("--alpha", type=float, default=0.9, help="the teacher's share (default 0.9)")
    p.add_argument("--alpha-end", type=float, help="anneal the share to this by the last step")
    p.add_argument("--adjust", action="store_true", help="correct the teacher's wrong answers")
    p.add_argument("--candidates", type=int, default=1)
    p.add_argument("--candidate-batches", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    return p


def main(args: argparse.Namespace) -> list[dict]:
    from edgeprune.budget import budget_from_args
    from edgeprune.train import DistillConfig
    from edgeprune.workflows.bench import standard_recovery
    from edgeprune.workflows.prune import PruneConfig, run_prune

    budget = budget_from_args(args)  # --latency-budget or --flops-budget, on --device
    rows = []
    for mode in [m.strip() for m in args.distill.split(",") if m.strip()]:
        distill = DistillConfig(
            mode=mode, alpha=args.alpha, alpha_end=args.alpha_end, adjust=args.adjust
        )
        variant = f"a{args.alpha}" + (f"-{args.alpha_end}" if args.alpha_end is not None else "")
        variant += "-adj" if args.adjust else ""
        name = f"{args.method}-{mode}-{variant}-k{args.candidates}"
        cfg = PruneConfig(
            model=args.model,
            out=os.path.join(args.out, name),
            method=args.method,
            budget=budget,
            weights=args.weights,
            device=args.device,
            data_root=args.data_root,
            epochs=args.epochs,
            limit_batches=args.limit_batches,
            verify=False,
            seed=args.seed,
            overwrite=True,
            recovery=standard_recovery(),
            distill=distill,
            candidates=args.candidates,
            candidate_batches=args.candidate_batches,
        )
        t0 = time.time()
        rep = run_prune(cfg).to_dict()
        row = {
            "run": name,
            "distill": distill.to_dict() if distill.enabled else "none",
            "candidates": args.candidates,
            "dense_top1": rep["dense"]["top1"],
            "top1": rep["pruned"]["top1"],
            "predicted_latency_ratio": rep["predicted_latency_ms"]
            / rep["dense"]["predicted_latency_ms"],
            "flops_ratio": rep["pruned"]["flops"] / rep["dense"]["flops"],
            "params_ratio": rep["pruned"]["params"] / rep["dense"]["params"],
            "recovery_s": (rep.get("timings") or {}).get("recovery_s"),
            "wall_s": time.time() - t0,
            "load_after": os.getloadavg()[0],
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main(get_args_parser().parse_args())
