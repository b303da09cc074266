"""Prunability of every torchvision classifier (issue 16): l1 at a FLOPs budget, and the edge
CNNs at a measured latency budget on this host.

Each model is pruned from random init, without data or recovery, through the prune workflow
in a child process with a timeout (a hang or crash is a row); the rows go to
OUT/prunability-MODE.csv (finished models are skipped on a rerun) and
OUT/prunability-MODE.md.

    python benchmarks/prunability.py --out runs/prunability --skip-larger-than 150e6
    python benchmarks/prunability.py --out runs/prunability --latency   # the edge CNNs, 0.7x
    python benchmarks/prunability.py --out runs/prunability --models 'resnet*,mobilenet*'
"""

from __future__ import annotations

import argparse

from edgeprune.workflows.prunability import (
    EDGE_CNNS,
    PrunabilityConfig,
    classifier_names,
    run_prunability,
)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/prunability")
    p.add_argument(
        "--models",
        default=None,
        help="glob pattern(s), comma-separated (default: every torchvision classifier; "
        "with --latency: the edge CNNs)",
    )
    p.add_argument(
        "--latency",
        action="store_true",
        help="the second table: --device local --latency-budget (measured ratio)",
    )
    p.add_argument("--budget", type=float, help="ratio of dense (default 0.6 FLOPs, 0.7 latency)")
    p.add_argument("--device", default="local", help="device profile for --latency")
    p.add_argument("--timeout-s", type=float, default=900.0, help="per model")
    p.add_argument(
        "--skip-larger-than",
        type=float,
        default=None,
        metavar="PARAMS",
        help="give models with more parameters a 'skipped' row (e.g. 150e6)",
    )
    p.add_argument("--verify-min-time", type=float, default=2.0, help="seconds per timing")
    p.add_argument(
        "--rerun",
        default="",
        help="statuses to run again instead of resuming them, e.g. 'timeout,crashed'",
    )
    p.add_argument("--keep-outputs", action="store_true", help="keep weights.pt and model.onnx")
    p.add_argument(
        "--recheck-parity",
        action="store_true",
        help="also rebuild each pruned model from its files and re-run model.onnx in ORT",
    )
    p.add_argument(
        "--jobs", type=int, default=1, help="models at once (FLOPs only: timings need 1)"
    )
    return p


def main(args: argparse.Namespace):
    if args.models:
        models = classifier_names(args.models)
    else:
        models = list(EDGE_CNNS) if args.latency else classifier_names()
    cfg = PrunabilityConfig(
        out=args.out,
        models=tuple(models),
        mode="latency" if args.latency else "flops",
        ratio=args.budget or (0.7 if args.latency else 0.6),
        device=args.device,
        timeout_s=args.timeout_s,
        skip_larger_than=args.skip_larger_than,
        verify_min_time_s=args.verify_min_time,
        rerun=tuple(s.strip() for s in args.rerun.split(",") if s.strip()),
        keep_outputs=args.keep_outputs,
        recheck_parity=args.recheck_parity,
        jobs=1 if args.latency else args.jobs,
    )

    def show(row) -> None:
        extra = f" {row.message}" if row.message else ""
        ratio = "" if row.flops_ratio is None else f" FLOPs {row.flops_ratio:.3f}x"
        if row.measured_ratio is not None:
            ratio += f" measured {row.measured_ratio:.3f}x"
        wall = "" if row.wall_s is None else f" ({row.wall_s:.0f} s)"
        print(f"{row.model}: {row.status}{ratio}{wall}{extra}", flush=True)

    rows = run_prunability(cfg, on_row=show)
    from edgeprune.report.prunability import summary_lines

    for line in summary_lines(rows):
        print(line)
    return rows


if __name__ == "__main__":
    main(get_args_parser().parse_args())
