"""PAAM vs L1 on CIFAR ResNet-56 under one latency budget and one recovery budget.

    python benchmarks/paam_resnet56.py --device xeon --latency-budget 0.5x \\
        --epochs 2 --out runs/bench-paam --json runs/bench-paam/summary.json

Both methods start from the shared pretrained ResNet-56, are pruned for the same budget
on the same device (verified by measurement), recovered with the same SGD fine-tune
(``--epochs``, ``--lr``, cosine) and evaluated on test-a. PAAM's own schedule (warm-up,
cycles of AN/CNN phases) is set with ``--paam-opt`` and runs before the controller; the
defaults here are a CPU-sized schedule. The paper's full schedule (50 warm-up from
scratch, 10 cycles of 3 AN + 6 CNN epochs, 300 fine-tune epochs) needs a GPU:
``--paam-opt cycles=10 --paam-opt an_epochs=3 --paam-opt cnn_epochs=6 --epochs 300 --lr 0.1``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

CPU_SCHEDULE = ["cycles=2", "an_epochs=1", "cnn_epochs=1"]


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="../shared/weights/cifar10/resnet56-4bfd9763.th")
    p.add_argument("--data-root", default="../shared/data/cifar10-jpeg")
    p.add_argument("--device", default="xeon")
    p.add_argument("--latency-budget", default="0.5x")
    p.add_argument("--epochs", type=int, default=2, help="recovery epochs (both methods)")
    p.add_argument("--lr", type=float, default=0.01, help="recovery learning rate")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--limit-batches", type=int, help="cap batches per phase (smoke runs)")
    p.add_argument(
        "--paam-opt",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help=f"PAAM option (repeatable; default: {' '.join(CPU_SCHEDULE)})",
    )
    p.add_argument("--methods", default="paam,l1", help="comma-separated methods to run")
    p.add_argument("--no-verify", action="store_true", help="skip on-device verification")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/bench-paam")
    p.add_argument("--json", help="write the summary rows here")
    return p


def _config(args: argparse.Namespace, method: str):
    from edgeprune.budget import Budget
    from edgeprune.budget.budget import parse_latency
    from edgeprune.config_io import parse_options
    from edgeprune.workflows.prune import PruneConfig

    ms, ratio = parse_latency(args.latency_budget)
    opts = parse_options(args.paam_opt or CPU_SCHEDULE) if method == "paam" else {}
    return PruneConfig(
        model="resnet56",
        out=os.path.join(args.out, method),
        method=method,
        budget=Budget(latency_ms=ms, latency_ratio=ratio, device=args.device),
        weights=args.weights,
        device=args.device,
        data_root=args.data_root,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        limit_batches=args.limit_batches,
        verify=not args.no_verify,
        method_options=opts,
        seed=args.seed,
        overwrite=True,  # a benchmark re-run replaces its run dir
    )


def _row(method: str, report: dict) -> dict:
    d, p = report["dense"], report["pruned"]
    return {
        "method": method,
        "latency_ratio_measured": report.get("latency_ratio"),
        "params_reduction": 1 - p["params"] / d["params"],
        "flops_reduction": 1 - p["flops"] / d["flops"],
        "top1_dense": d.get("top1"),
        "top1_pruned": p.get("top1"),
        "budget_met": report["budget_met"],
        "wall_time_s": report["wall_time_s"],
    }


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def main(args: argparse.Namespace) -> int:
    from edgeprune.fileio import atomic_write_text
    from edgeprune.workflows.prune import run_prune

    rows = []
    print(
        "| method | measured latency ratio | params -% | FLOPs -% | top-1 dense | top-1 pruned "
        "| budget met | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        row = _row(method, run_prune(_config(args, method)).to_dict())
        rows.append(row)
        print("| " + " | ".join(_fmt(v) for v in row.values()) + " |", flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        summary = {"args": vars(args), "rows": rows}
        atomic_write_text(args.json, json.dumps(summary, indent=2, default=str))
    return 0 if all(r["budget_met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
