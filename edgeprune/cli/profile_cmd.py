"""`edgeprune profile`: measure a device's latency table, or validate its predictions.

edgeprune profile --device local --model resnet56 [--out DIR]
edgeprune profile --device rpi3 --host pi@10.0.0.5 --key ~/.ssh/id_ed25519 --model resnet56
edgeprune profile --validate --device xeon --model resnet56 --samples 30 --json fid.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from edgeprune.cli.ssh_args import add_ssh_args, ssh_options_from_args


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "profile",
        help="measure a device's per-layer latency table (or --validate its predictions)",
        description="Measure per-layer latency tables on a device, or validate predictions.",
    )
    p.add_argument("--device", required=True, help="profile name (xeon, rpi3, gpu, local) or YAML")
    p.add_argument("--model", action="append", default=[], help="registry model (repeatable)")
    p.add_argument("--out", help="output folder (default: the user data dir)")
    p.add_argument("--threads", type=int, help="override the profile's thread count")
    p.add_argument("--min-time", type=float, default=0.6, help="seconds per timed batch")
    p.add_argument("--calibrate", type=int, default=8, help="random variants for calibration")
    p.add_argument("--validate", action="store_true", help="compare predictions with measurements")
    p.add_argument("--samples", type=int, default=30, help="random variants for --validate")
    p.add_argument("--seed", type=int, default=0, help="first seed of the random variants")
    p.add_argument("--json", help="write the --validate figures to this JSON file")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_ssh_args(p)
    return p


def _runner(args, profile, settings):
    from edgeprune.devices.hosts import remote_python
    from edgeprune.devices.sweep import local_runner, remote_runner

    if args.host:
        from edgeprune.targets import make_target

        target = make_target(args.host, args.key, ssh_options_from_args(args))
        python = remote_python(
            args.remote_python, args.host, profile.connection.python, args.ssh_config
        )
        return remote_runner(target, settings, python), target
    return local_runner(settings, profile.identity.provider), None


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from edgeprune.devices.profile import user_profiles_dir
    from edgeprune.devices.profiling import base_profile_for
    from edgeprune.errors import UserError, require

    require("onnxruntime", "onnx")
    require("onnx", "onnx")
    _check_outputs(args)
    if not args.model:
        raise UserError("name at least one --model to profile or validate")
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be >= 1")
    from edgeprune.models import list_models

    known = set(list_models())
    for m in args.model:
        if m not in known and not m.startswith("torchvision:"):
            raise UserError(f"unknown model '{m}' (see edgeprune.models.list_models)")
    if args.validate:
        return _validate(args)
    base = base_profile_for(args.device, args.host, args.key)
    if args.threads:
        base = replace(base, identity=replace(base.identity, threads=args.threads))
    settings = _settings(args, base)
    if base.identity.runtime != "ort" or base.identity.provider != "CPUExecutionProvider":
        raise UserError(
            f"profiling runtime {base.identity.runtime}/{base.identity.provider} is not "
            "supported yet; only ONNX Runtime CPU sweeps are implemented"
        )
    runner, target = _runner(args, base, settings)
    from edgeprune.devices.profiling import ProfileRequest, host_label, profile_device

    out = args.out or str(user_profiles_dir())
    req = ProfileRequest(
        device=args.device,
        models=tuple(args.model),
        out_dir=out,
        sweep=settings,
        command="edgeprune profile " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
        calibrate_variants=args.calibrate,
        progress=not args.no_progress,
    )
    try:
        prof, measured, skipped = profile_device(req, runner, host_label(base), base)
    finally:
        if target is not None:
            target.close()
    print(f"measured {measured} configurations ({skipped} resumed from a previous run)")
    print(f"wrote {prof.path} and {prof.table_paths()[0]}")
    for name in args.model:
        cal = prof.calibration.get(name)
        if cal is None:
            print(f"calibration {name}: none (run with --calibrate N > 0)")
            continue
        print(
            f"calibration {name}: total = {cal.scale:.3f} x aligned ops + "
            f"{cal.scale_unaligned or cal.scale:.3f} x other ops + {cal.offset_ms:.4f} ms "
            f"(median fit error {cal.fit_err_pct:.1f}% on {cal.n} end-to-end runs)"
        )
    print(prof.status_line())
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """A bad --out (a profile folder a sweep adds to) or --json fails before any work."""
    from edgeprune.fileio import check_writable_dir, check_writable_file

    if args.out and not args.validate:  # --validate reads its profile from --out
        check_writable_dir(args.out)
    if args.json:
        check_writable_file(args.json, "--json")


def _settings(args, prof):
    from edgeprune.devices.sweep import SweepSettings

    return SweepSettings(
        threads=prof.identity.threads,
        batch=prof.identity.batch,
        min_time_s=args.min_time,
        runtime=prof.identity.runtime,
    )


def _validate(args) -> int:
    from edgeprune.devices.endtoend import fidelity_stats, make_variants, measure_variants
    from edgeprune.devices.profile import load_profile
    from edgeprune.errors import UserError

    prof = load_profile(args.out + f"/{args.device}.yaml" if args.out else args.device)
    if args.threads:
        from dataclasses import replace

        prof = replace(prof, identity=replace(prof.identity, threads=args.threads))
    print(prof.status_line())
    if args.samples < 1:
        raise UserError("--samples must be >= 1")
    from edgeprune.cost.latency import profile_table

    profile_table(prof)  # a clear error now when the device has no table
    if prof.connection.kind == "ssh" and not args.host:
        raise UserError(f"device '{prof.name}' is reached over SSH; pass --host USER@HOST[:PORT]")
    runner, target = _runner(args, prof, _settings(args, prof))
    report = {}
    try:
        for name in args.model:
            variants, size = make_variants(name, args.samples, args.seed)
            res = measure_variants(variants, size, runner, prof, progress=not args.no_progress)
            stats = fidelity_stats(res)
            stats.update(
                model=name,
                device=prof.name,
                estimated=prof.estimated,
                variants=[v.to_dict() for v in res],
            )
            report[name] = stats
            print(
                f"{name} on {prof.name}: {stats['samples']} variants, median |err| "
                f"{stats['median_abs_err_pct']:.1f}%, p95 {stats['p95_abs_err_pct']:.1f}%, "
                f"within 5%: {stats['within_5pct']:.0%}, within 10%: {stats['within_10pct']:.0%}"
                f" (vs dense ratio: median |err| {stats['ratio_median_abs_err_pct']:.1f}%)"
            )
    finally:
        if target is not None:
            target.close()
    if args.json:
        from edgeprune.fileio import atomic_write_text

        first = report[args.model[0]]
        doc = {
            k: first[k]
            for k in (
                "median_abs_err_pct",
                "p95_abs_err_pct",
                "within_5pct",
                "within_10pct",
                "samples",
            )
        }
        doc["models"] = report
        atomic_write_text(args.json, json.dumps(doc, indent=2))
        print(f"wrote {args.json}")
    return 0
