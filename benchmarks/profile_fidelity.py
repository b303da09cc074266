"""Prediction fidelity of a device's latency table on random pruned variants.

    python benchmarks/profile_fidelity.py --device xeon --model resnet56 --samples 30 \
        --json fidelity.json

For each model: ``--samples`` random variants (``edgeprune.surgery.random_plan``) are
exported to ONNX and timed interleaved with the dense model; the predictor's total is
compared with the measured median. Prints a Markdown table row per model: the error of the
latency ratio to the dense model measured in the same run (the headline), the absolute
error beside it, and the machine's load average before and after the model's timings.

With ``--fit-model`` (repeatable) the device's correction (``edgeprune.cost.correction``)
is first fitted on ``--fit-samples`` other random variants (seeds from ``--fit-seed``) of
those models, and every evaluated model is scored on the same timings before and after the
correction; a model not among ``--fit-model`` is a held-out family. ``--save-measurements
DIR`` keeps each model's timings (``fit-NAME.json``, ``eval-NAME.json``) and ``--reuse DIR``
scores such timings again instead of measuring.
"""

from __future__ import annotations

import argparse
import json
import os
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
    p.add_argument("--fit-model", action="append", default=[], help="fit the correction on it")
    p.add_argument("--fit-samples", type=int, default=20, help="random variants per fit model")
    p.add_argument("--fit-seed", type=int, default=2000, help="first seed of the fit variants")
    p.add_argument("--reuse", help="folder of fit-/eval-NAME.json timings to score again")
    p.add_argument("--save-measurements", help="folder to keep each model's timings in")
    p.add_argument("--save-profile", help="write the profile with the fitted correction here")
    p.add_argument("--json", help="write all figures and per-variant numbers here")
    return p


def _short(name: str) -> str:
    return name.removeprefix("torchvision:")


class _Timings:
    """Measures variants once (or reads them back from ``--reuse``)."""

    def __init__(self, args, profile):
        self.args, self.profile, self._runner = args, profile, None

    def runner(self):
        if self._runner is None:
            from edgeprune.devices.sweep import make_runner, sweep_settings

            self._runner = make_runner(sweep_settings(self.profile, self.args.min_time))
        return self._runner

    def get(self, kind: str, name: str, n: int, seed: int):
        """(variants, input size, measured variants, load averages before/after)."""
        from edgeprune.devices.endtoend import (
            machine_load,
            make_variants,
            measure_variants,
            recorded_variants,
        )

        path = os.path.join(self.args.reuse or "", f"{kind}-{_short(name)}.json")
        if self.args.reuse and os.path.isfile(path):
            doc = json.load(open(path))
            entry = doc["models"][name]
            rec = recorded_variants(entry["variants"])
            if rec and rec[0].features:  # rows that carry their features: no rebuild needed
                return None, None, rec, entry.get("load", [])
            variants, size = make_variants(name, n, seed)
            return variants, size, rec, entry.get("load", [])
        variants, size = make_variants(name, n, seed)
        before = machine_load()
        res = measure_variants(variants, size, self.runner(), self.profile)
        load = [before, machine_load()]
        if self.args.save_measurements:
            from edgeprune.fileio import atomic_write_text

            os.makedirs(self.args.save_measurements, exist_ok=True)
            doc = {"models": {name: {"load": load, "variants": [v.to_dict() for v in res]}}}
            out = os.path.join(self.args.save_measurements, f"{kind}-{_short(name)}.json")
            atomic_write_text(out, json.dumps(doc, indent=1))
        return variants, size, res, load


def main(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import onnxruntime as ort
    import torch

    from edgeprune.devices.endtoend import (
        fidelity_stats,
        fit_device_correction,
        make_variants,
        measure_variants,
        quiet_runs,
        rescore,
        rescore_recorded,
    )

    def score(name, variants, size, rec, profile):
        if variants is None:
            return rescore_recorded(name, rec, profile)
        return rescore(variants, size, rec, profile)

    from edgeprune.devices.profile import load_profile, save_profile

    prof = load_profile(args.device)
    print(prof.status_line())
    base = replace(prof, correction=None)  # the table and calibration alone
    timings = _Timings(args, base)
    report = {
        "device": prof.name,
        "host": platform.node(),
        "cpu": prof.identity.cpu,
        "isa": list(prof.identity.isa),
        "threads": prof.identity.threads,
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "fit_models": list(args.fit_model),
        "models": {},
    }
    corrected = None
    if args.fit_model:
        points = {}
        for name in args.fit_model:
            variants, size, rec, load = timings.get("fit", name, args.fit_samples, args.fit_seed)
            points[name] = score(name, variants, size, rec, base)
            report.setdefault("fit_load", {})[name] = load
        corrected = fit_device_correction(base, points)
        report["correction"] = corrected.correction.to_dict() if corrected.correction else None
        print(f"correction: {report['correction']}")
        if args.save_profile and corrected.correction:
            save_profile(corrected, args.save_profile)
    print(
        "\n| model | role | samples | load (1 min) | ratio median err | ratio within ±10% "
        "| quiet runs: n, ratio median err, within ±10% | abs median err | abs within ±10% |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.model or ["resnet56"]:
        variants, size, rec, load = timings.get("eval", name, args.samples, args.seed)
        role = "fit" if name in args.fit_model else ("held out" if args.fit_model else "-")
        entry = {"role": role, "load": load}
        scored0 = score(name, variants, size, rec, base)
        before = fidelity_stats(scored0)
        quiet0 = quiet_runs(scored0)
        entry.update(before=before, quiet_before=fidelity_stats(quiet0) if quiet0 else None)
        after = quiet_after = None
        if corrected is not None and corrected.correction:
            scored = score(name, variants, size, rec, corrected)
            after = fidelity_stats(scored)
            quiet_after = fidelity_stats(quiet_runs(scored))
            entry.update(after=after, quiet_after=quiet_after)
            entry["variants"] = [v.to_dict() for v in scored]
        else:
            entry["variants"] = [v.to_dict() for v in scored0]
        report["models"][name] = entry
        loads = "-".join(f"{x[0]:.1f}" for x in load if x) or "not recorded"

        def cell(key: str, pct: bool, a=after, b=before) -> str:
            fmt = "{:.0%}" if pct else "{:.1f}%"
            return fmt.format(b[key]) + (" → " + fmt.format(a[key]) if a else "")

        qb, qa = entry["quiet_before"], quiet_after
        quiet = (
            f"{qb['samples']}: {cell('ratio_median_abs_err_pct', False, qa, qb)}, "
            f"{cell('ratio_within_10pct', True, qa, qb)}"
            if qb
            else "-"
        )
        print(
            f"| {name} | {role} | {before['samples']} | {loads} "
            f"| {cell('ratio_median_abs_err_pct', False)} | {cell('ratio_within_10pct', True)} "
            f"| {quiet} | {cell('median_abs_err_pct', False)} | {cell('within_10pct', True)} |",
            flush=True,
        )
    if args.uniform:
        print("\n| model | uniform keep | predicted / dense | measured / dense |")
        print("|---|---|---|---|")
    for name in (args.model or ["resnet56"]) if args.uniform else []:
        scoring = corrected if corrected is not None and corrected.correction else base
        variants, size = make_variants(name, 0, 0, uniform=args.uniform)
        res = measure_variants(variants, size, timings.runner(), scoring, per_run=len(args.uniform))
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
