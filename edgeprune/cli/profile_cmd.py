"""`edgeprune profile`: measure a device's latency table, or validate its predictions.

edgeprune profile --device local --model resnet56 [--out DIR]
edgeprune profile --device rpi3 --host pi@10.0.0.5 --key ~/.ssh/id_ed25519 --model resnet56
edgeprune profile --validate --device xeon --model resnet56 --samples 30 --json fid.json
"""

from __future__ import annotations

import argparse
import shlex
import sys

from edgeprune.cli.args import (
    add_device_args,
    add_model_args,
    add_output_args,
    add_ssh_args,
    add_timing_args,
    ssh_options_from_args,
)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "profile",
        help="measure a device's per-layer latency table (or --validate its predictions)",
        description="Measure per-layer latency tables on a device, or validate predictions.",
    )
    add_model_args(p, repeatable=True, help="registry model whose layer shapes to measure")
    add_device_args(p, required=True, note="its table is measured or validated")
    p.add_argument("--threads", type=int, help="override the profile's thread count")
    p.add_argument("--calibrate", type=int, default=8, help="random variants for calibration")
    p.add_argument("--validate", action="store_true", help="compare predictions with measurements")
    p.add_argument("--samples", type=int, default=30, help="random variants for --validate")
    p.add_argument("--seed", type=int, default=0, help="first seed of the random variants")
    p.add_argument("--json", help="write the --validate figures to this JSON file")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--fp32-only",
        action="store_true",
        help="measure fp32 rows only (by default ONNX Runtime devices get int8 QDQ twins too)",
    )
    add_timing_args(p, min_time=0.6)
    add_ssh_args(p)
    add_output_args(p, required=False, help="profile folder (default: the user data dir)")
    return p


def config_from_args(args: argparse.Namespace):
    """The ProfileConfig these flags describe."""
    from edgeprune.workflows.profile import ProfileConfig

    return ProfileConfig(
        device=args.device,
        models=tuple(args.model),
        out=args.out,
        threads=args.threads,
        min_time_s=args.min_time,
        calibrate=args.calibrate,
        validate=args.validate,
        samples=args.samples,
        seed=args.seed,
        json_path=args.json,
        progress=not args.no_progress,
        fp32_only=args.fp32_only,
        host=args.host,
        key=args.key,
        ssh=ssh_options_from_args(args) if args.host else None,
        remote_python=args.remote_python,
        ssh_config=args.ssh_config,
        command="edgeprune profile " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
    )


def run(args: argparse.Namespace) -> int:
    from edgeprune.workflows.profile import run_profile, summary

    for line in summary(run_profile(config_from_args(args))):
        print(line)
    return 0
