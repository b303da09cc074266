"""Prediction fidelity of a device's latency table on random pruned variants.

    python benchmarks/profile_fidelity.py --device xeon --model resnet56 --samples 30 \
        --json fidelity.json

For each model: ``--samples`` random variants (``edgeprune.surgery.random_plan``) are
exported to ONNX and timed interleaved with the dense model; the predictor's total is
compared with the measured median. Prints a Markdown table row per model (absolute error,
and error of the latency ratio to the dense model measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="xeon")
    p.add_argument("--model", action="append", default=[], help="registry model (repeatable)")
    p.add_argument("--samples", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-time", type=float, default=0.6, help="seconds per timed batch")
    p.add_argument(
        "--uniform",
        type=float,
        nargs="*",
        default=[],
        help="also time uniform keep ratios (e.g. 0.9 0.6 0.5) against dense",
    )
    p.add_argument("--json", help="write all figures and per-variant numbers here")
    return p


def main(args: argparse.Namespace) -> int:
    import onnxruntime as ort
    import torch

    from edgeprune.devices.endtoend import fidelity_stats, make_variants, measure_variants
    from edgeprune.devices.profile import load_profile
    from edgeprune.devices.sweep import make_runner, sweep_settings

    prof = load_profile(args.device)
    print(prof.status_line())
    runner = make_runner(sweep_settings(prof, args.min_time))
    report = {
        "device": prof.name,
        "host": platform.node(),
        "cpu": prof.identity.cpu,
        "threads": prof.identity.threads,
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "models": {},
    }
    print("| model | samples | median abs err | p95 | within 5% | within 10% | ratio median err |")
    print("|---|---|---|---|---|---|---|")
    for name in args.model or ["resnet56"]:
        variants, size = make_variants(name, args.samples, args.seed)
        res = measure_variants(variants, size, runner, prof)
        st = fidelity_stats(res)
        report["models"][name] = {**st, "variants": [v.to_dict() for v in res]}
        print(
            f"| {name} | {st['samples']} | {st['median_abs_err_pct']:.1f}% | "
            f"{st['p95_abs_err_pct']:.1f}% | {st['within_5pct']:.0%} | {st['within_10pct']:.0%} "
            f"| {st['ratio_median_abs_err_pct']:.1f}% |",
            flush=True,
        )
    if args.uniform:
        print("\n| model | uniform keep | predicted / dense | measured / dense |")
        print("|---|---|---|---|")
    for name in (args.model or ["resnet56"]) if args.uniform else []:
        variants, size = make_variants(name, 0, 0, uniform=args.uniform)
        res = measure_variants(variants, size, runner, prof, per_run=len(args.uniform))
        rows = []
        for v in res:
            pr, mr = v.predicted_ms / v.dense_predicted_ms, v.measured_ms / v.dense_measured_ms
            rows.append({"label": v.label, "predicted_ratio": pr, "measured_ratio": mr})
            print(f"| {name} | {v.label.removeprefix('uniform')} | {pr:.2f} | {mr:.2f} |")
        report["models"][name]["uniform"] = rows
    if args.json:
        from edgeprune.fileio import atomic_write_text

        atomic_write_text(args.json, json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
