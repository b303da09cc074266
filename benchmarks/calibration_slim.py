"""Does a device's calibration hold for slim and block-dropping structures?

    EDGEPRUNE_HOME=DIR python benchmarks/calibration_slim.py --device local --model resnet56 \
        --structure runs/q10/aap03/aap-structure --save-measurements DIR/cal-slim

The calibration (``edgeprune.devices.endtoend.fit_calibration``) turns table sums into a
model's latency. Before session 11 it was fitted on dense + uniform 0.3/0.55/0.8 + random
variants that keep every block at >= 20% width; the 0.3x budgets prune far past that. This
script times, interleaved with the dense model, three sets of variants on the device:

- ``mid``: the old calibration set (the same seeds);
- ``slim``: uniform 0.15 and random variants with layers down to 10% and a quarter of the
  residual blocks dropped (the new calibration adds these);
- ``eval``: other slim, block-dropping variants (seeds the fits never see), plus the pruned
  structures given with ``--structure`` (what the methods actually make);

and fits calibrations on the same timings: on ``mid`` by least squares in milliseconds (the
old calibration), on ``mid`` + ``slim`` that way and by relative errors (the new one), and
with random slim variants whose widths are multiples of 16 (``aligned``) added. Each is scored on ``eval`` by the
error of the latency ratio to the dense model timed in the same run: median |error|, and
the median signed error (positive: the prediction is pessimistic, i.e. the model runs
faster than predicted and a budget run prunes more than it needs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="local")
    p.add_argument("--model", default="resnet56")
    p.add_argument("--samples", type=int, default=6, help="random variants per fit set")
    p.add_argument("--eval-samples", type=int, default=12, help="random slim eval variants")
    p.add_argument("--structure", action="append", default=[], help="pruned-model dir")
    p.add_argument("--min-time", type=float, default=0.6, help="seconds per timed batch")
    p.add_argument("--save-measurements", help="folder to keep the timings in")
    p.add_argument("--reuse", help="folder of timings (--save-measurements) to score again")
    p.add_argument("--json", help="write the figures here")
    return p


SETS = ("mid", "slim", "aligned", "eval")


def _variant_sets(args):
    from edgeprune.devices.endtoend import (
        CALIBRATION_UNIFORM,
        SLIM_DROP_PROB,
        SLIM_KEEP_FRAC,
        make_variants,
    )
    from edgeprune.surgery.io import load_pruned

    old_uniform = tuple(r for r in CALIBRATION_UNIFORM if r >= 0.3)
    mid, size = make_variants(args.model, args.samples, 1000, uniform=old_uniform)
    slim, _ = make_variants(
        args.model,
        args.samples,
        3000,
        SLIM_DROP_PROB,
        uniform=(0.15,),
        min_keep_frac=SLIM_KEEP_FRAC,
    )
    aligned, _ = make_variants(
        args.model, args.samples, 4000, SLIM_DROP_PROB, min_keep_frac=SLIM_KEEP_FRAC, align=16
    )
    ev, _ = make_variants(args.model, args.eval_samples, 5000, 0.4, min_keep_frac=SLIM_KEEP_FRAC)
    ev = ev[1:]
    for path in args.structure:
        model, _meta, plan = load_pruned(path)
        ev.append(
            (f"structure:{os.path.basename(os.path.dirname(os.path.abspath(path)))}", model, plan)
        )
    sets = dict(zip(SETS, (mid[1:], slim[1:], aligned[1:], ev), strict=True))
    return sets, mid[0], size


def _measure(args, profile):
    from edgeprune.devices.endtoend import measure_variants, recorded_variants
    from edgeprune.devices.sweep import make_runner, sweep_settings
    from edgeprune.fileio import atomic_write_text

    out = {}
    if args.reuse:  # the recorded rows carry their table sums: no model is rebuilt
        for name in SETS:
            path = os.path.join(args.reuse, f"{name}.json")
            if os.path.isfile(path):
                out[name] = recorded_variants(json.load(open(path))["variants"])
        return out
    sets, dense, size = _variant_sets(args)
    runner = make_runner(sweep_settings(profile, args.min_time))
    for name, variants in sets.items():
        res = measure_variants([dense, *variants], size, runner, profile, per_run=5)
        out[name] = res
        if args.save_measurements:
            os.makedirs(args.save_measurements, exist_ok=True)
            doc = {"variants": [v.to_dict() for v in res]}
            path = os.path.join(args.save_measurements, f"{name}.json")
            atomic_write_text(path, json.dumps(doc, indent=1))
    return out


def _ratio_errors(model: str, cal, points) -> list[float]:
    """Signed relative errors of the predicted ratio to the dense model (+: pessimistic)."""
    from edgeprune.devices.endtoend import ratio_samples

    return [r.predicted_ratio / r.measured_ratio - 1 for r in ratio_samples(model, points, cal)]


def main(args: argparse.Namespace) -> int:
    from statistics import median

    import onnxruntime as ort

    from edgeprune.devices.endtoend import dense_point, fit_calibration, quiet_runs
    from edgeprune.devices.profile import load_profile

    profile = load_profile(args.device)
    print(profile.status_line())
    data = _measure(args, profile)
    sig = "study"

    mid, slim = quiet_runs(data["mid"]), quiet_runs(data["slim"])
    aligned = quiet_runs(data.get("aligned", []))
    wide = mid + slim + aligned
    fits = {
        "old: mid, absolute": fit_calibration(mid, dense_point(mid), sig, relative=False),
        "mid + slim, absolute": fit_calibration(
            mid + slim, dense_point(mid + slim), sig, relative=False
        ),
        "new: mid + slim, relative": fit_calibration(mid + slim, dense_point(mid + slim), sig),
        "mid + slim + aligned slim, relative": fit_calibration(wide, dense_point(wide), sig),
    }
    if args.model in profile.calibration:  # what `edgeprune profile` fitted, in its own run
        fits[f"the profile's ({profile.calibration[args.model].date})"] = profile.calibration[
            args.model
        ]
    groups = {
        "eval (random slim, blocks dropped)": [
            v for v in data["eval"] if not v.label.startswith("structure:")
        ],
        "method structures": [v for v in data["eval"] if v.label.startswith("structure:")],
        "mid (fit set of the old)": data["mid"],
    }
    report = {
        "device": profile.name,
        "cpu": profile.identity.cpu,
        "isa": list(profile.identity.isa),
        "host": platform.node(),
        "onnxruntime": ort.__version__,
        "fits": {k: c.to_dict() for k, c in fits.items()},
        "scores": {},
    }
    print("\n| calibration | scale / unaligned | offset (ms) | " + " | ".join(
        f"{g}: median abs / signed ratio err" for g in groups
    ) + " |")  # fmt: skip
    print("|---|---|---|" + "---|" * len(groups))
    for name, cal in fits.items():
        cells = []
        for g, pts in groups.items():
            errs = _ratio_errors(args.model, cal, pts)
            if not errs:
                cells.append("-")
                continue
            a, s = median(abs(e) for e in errs), median(errs)
            report["scores"].setdefault(name, {})[g] = {"n": len(errs), "abs": a, "signed": s}
            cells.append(f"{a:.1%} / {s:+.1%} (n={len(errs)})")
        print(
            f"| {name} | {cal.scale:.3f} / {cal.scale_unaligned or cal.scale:.3f} "
            f"| {cal.offset_ms:.3f} | " + " | ".join(cells) + " |"
        )
    for v in groups["method structures"]:
        print(
            f"{v.label}: measured ratio {v.measured_ms / v.dense_measured_ms:.3f}; predicted "
            + ", ".join(
                f"{n.split(':')[0]} {1 + e:.3f}x of it"
                for n, e in zip(
                    fits, [_ratio_errors(args.model, c, [v])[0] for c in fits.values()], strict=True
                )
            )
        )
    if args.json:
        from edgeprune.fileio import atomic_write_text

        report["variants"] = {k: [v.to_dict() for v in pts] for k, pts in data.items()}
        atomic_write_text(args.json, json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
