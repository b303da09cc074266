"""The CIFAR ResNet-56 comparison table on this machine, and its plots.

Every method x latency budgets {0.3x, 0.5x, 0.7x} on the ``xeon`` profile (ONNX Runtime,
batch 1, measured interleaved against dense), the standard 1-epoch recovery (SGD Nesterov,
wd 5e-4, batch 128, one-cycle LR peaking at 0.02, random crop + flip), top-1 on the test
split, plus the dense model given the same recovery; then ``edgeprune report`` on it. The
methods' own training follows each method's ``short_schedule`` (a CPU budget, not the
papers').
Interrupted runs resume (re-run the same command)::

    python benchmarks/resnet56_table.py --out runs/r56-table --report benchmarks/r56-table
"""

from __future__ import annotations

import argparse

from edgeprune.methods import list_methods, short_schedules
from edgeprune.report.compare import make_report
from edgeprune.workflows.bench import BenchConfig, run_bench

WEIGHTS = "../shared/weights/cifar10/resnet56-4bfd9763.th"
DATA = "../shared/data/cifar10-jpeg"


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="xeon")
    p.add_argument("--methods", default=",".join(list_methods()), help="comma list (default: all)")
    p.add_argument("--budgets", default="0.3x,0.5x,0.7x")
    p.add_argument("--recovery", type=int, default=1, help="recovery epochs")
    p.add_argument("--weights", default=WEIGHTS)
    p.add_argument("--data-root", default=DATA)
    p.add_argument("--limit-batches", type=int, help="smoke runs only")
    p.add_argument("--verify-min-time", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/r56-table")
    p.add_argument("--report", default="benchmarks/r56-table", help="report + PNG folder")
    return p


def main(args: argparse.Namespace) -> dict:
    cfg = BenchConfig(
        model="resnet56",
        out=args.out,
        methods=tuple(m for m in args.methods.split(",") if m),
        budgets=tuple(b for b in args.budgets.split(",") if b),
        budget_kind="latency",
        device=args.device,
        weights=args.weights,
        data_root=args.data_root,
        recovery_epochs=args.recovery,
        limit_batches=args.limit_batches,
        seed=args.seed,
        verify_min_time_s=args.verify_min_time,
        method_options=short_schedules(),
    )
    run_bench(cfg)
    files = make_report([args.out], args.report)
    print("\n".join(f"{k}: {v}" for k, v in files.items()))
    return files


if __name__ == "__main__":
    main(get_args_parser().parse_args())
