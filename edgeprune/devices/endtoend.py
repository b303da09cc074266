"""End-to-end measurements of pruned variants: calibration of the remainder and fidelity.

Random variants (``edgeprune.surgery.random_plan``) are exported to ONNX and timed in
batches interleaved with the dense model (spinning off, the one timing routine), so every
variant is measured under the same machine conditions as its dense reference.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from edgeprune.cost.latency import LatencyPredictor, ops_signature
from edgeprune.cost.ops import extract_ops
from edgeprune.devices.profile import Calibration

Runner = Callable[[list[str]], list[dict]]


@dataclass(frozen=True)
class Variant:
    """One measured variant: table sum, measured latency and the dense one of its run."""

    label: str
    table_ms: float
    measured_ms: float
    dense_measured_ms: float
    predicted_ms: float = 0.0
    dense_predicted_ms: float = 0.0
    table_aligned_ms: float = 0.0
    dense_table_ms: float = 0.0
    dense_table_aligned_ms: float = 0.0
    features: dict = field(default_factory=dict)  # edgeprune.cost.correction.features
    dense_features: dict = field(default_factory=dict)
    base_ms: float = 0.0  # predicted without the profile's correction
    dense_base_ms: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def make_variants(
    model_name: str,
    n: int,
    seed0: int,
    drop_block_prob: float = 0.0,
    uniform: Sequence[float] = (),
    min_keep_frac: float = 0.2,
    align: int = 1,
):
    """(label, model, plan): dense first, then ``uniform`` keep ratios, then ``n`` random
    (each layer keeps at least ``min_keep_frac``, rounded up to ``align``; a residual block is
    dropped with ``drop_block_prob``)."""
    from edgeprune.models import create_model, model_input_size
    from edgeprune.surgery import apply_plan_, example_input_for, random_plan, uniform_plan

    base = create_model(model_name).eval()
    size = model_input_size(model_name)
    out = [("dense", base, None)]
    example = example_input_for(base, size)
    for ratio in uniform:
        plan = uniform_plan(base, ratio, input_size=size)
        m = apply_plan_(copy.deepcopy(base), plan, example)
        out.append((f"uniform{ratio:g}", m.eval(), plan))
    for i in range(n):
        plan = random_plan(
            base,
            seed=seed0 + i,
            min_keep_frac=min_keep_frac,
            input_size=size,
            drop_block_prob=drop_block_prob,
            align=align,
        )
        m = apply_plan_(copy.deepcopy(base), plan, example)
        out.append((f"seed{seed0 + i}", m.eval(), plan))
    return out, size


def measure_variants(
    variants,
    input_size,
    runner: Runner,
    profile,
    per_run: int = 5,
    progress: bool = True,
    precision: str = "fp32",
) -> list[Variant]:
    """Export and time variants (each run: dense + ``per_run`` variants, interleaved); at
    ``int8`` every model (the dense one too) is quantized to QDQ and priced on int8 rows."""
    from edgeprune.export.onnx_export import ExportConfig, export_onnx
    from edgeprune.log import progress as show_progress

    dense_label, dense_model, _ = variants[0]
    rest = variants[1:] or [variants[0]]
    cfg = ExportConfig(dynamic_batch=False, batch=profile.identity.batch, parity=False)
    results: list[Variant] = []
    dense_pred = LatencyPredictor.from_model(dense_model, input_size, profile, precision=precision)
    with tempfile.TemporaryDirectory(prefix="edgeprune-e2e-") as tmp:

        def export(model, path: str) -> None:
            export_onnx(model, input_size, path, cfg)
            if precision == "int8":
                _quantize_in_place(path, input_size, profile.identity.batch)

        dense_path = os.path.join(tmp, "dense.onnx")
        export(dense_model, dense_path)
        bar = show_progress(
            len(rest), "end-to-end", unit="variant", enabled=progress, area="profile"
        )
        for start in range(0, len(rest), per_run):
            chunk = rest[start : start + per_run]
            paths, preds = [dense_path], []
            for j, (_label, model, _) in enumerate(chunk):
                p = os.path.join(tmp, f"v{start + j}.onnx")
                export(model, p)
                paths.append(p)
                preds.append(
                    LatencyPredictor.from_model(model, input_size, profile, precision=precision)
                )
            stats = runner(paths)
            dense_ms = stats[0]["latency_ms_median"]
            for (label, _, _), pred, st in zip(chunk, preds, stats[1:], strict=True):
                results.append(
                    variant_of(label, pred, dense_pred, st["latency_ms_median"], dense_ms)
                )
            bar.update(len(chunk))
        bar.close()
    return results


def _quantize_in_place(path: str, input_size, batch: int) -> None:
    """Replace an fp32 ONNX file by its int8 QDQ twin (random calibration: timing only)."""
    from edgeprune.quant.calibration import random_batches
    from edgeprune.quant.ptq import quantize_onnx

    fp32 = path + ".fp32.onnx"
    os.replace(path, fp32)
    quantize_onnx(fp32, path, random_batches(tuple(input_size), 2 * batch, batch_size=batch))
    os.unlink(fp32)


def variant_of(label: str, pred, dense_pred, measured_ms: float, dense_ms: float) -> Variant:
    """A measured variant with everything its prediction and correction need."""
    from edgeprune.cost.correction import features

    return Variant(
        label,
        pred.table_ms(),
        measured_ms,
        dense_ms,
        pred.total_ms(),
        dense_pred.total_ms(),
        pred.split_ms()[0],
        dense_pred.table_ms(),
        dense_pred.split_ms()[0],
        features(pred),
        features(dense_pred),
        pred.base_ms(),
        dense_pred.base_ms(),
    )


def ratio_samples(model: str, variants: Sequence[Variant], cal: Calibration | None = None):
    """The correction's fit samples from measured variants: predicted ratios under ``cal``
    (None: the uncorrected predictions the variants were measured with)."""
    from edgeprune.cost.correction import RatioSample

    out = []
    for v in variants:
        if not v.features or v.measured_ms <= 0 or v.dense_measured_ms <= 0:
            continue
        pv, pd = v.base_ms, v.dense_base_ms
        if cal is not None:
            pv = cal.apply(v.table_aligned_ms, v.table_ms - v.table_aligned_ms)
            pd = cal.apply(v.dense_table_aligned_ms, v.dense_table_ms - v.dense_table_aligned_ms)
        r = v.measured_ms / v.dense_measured_ms
        out.append(RatioSample(model, v.features, v.dense_features, pv / pd, r))
    return out


QUIET_SLACK = 1.25


def quiet_runs(variants: Sequence[Variant], slack: float = QUIET_SLACK) -> list[Variant]:
    """The variants of runs whose dense time is within ``slack`` of the fastest dense time
    of the same model: a run hit by other load is slower, never faster, and its ratios are
    not the model's (on this shared VM the dense time moved 3-7x within one run)."""
    if not variants:
        return []
    fastest = min(v.dense_measured_ms for v in variants)
    return [v for v in variants if v.dense_measured_ms <= slack * fastest]


def fit_device_correction(profile, points: dict[str, Sequence[Variant]]):
    """Fit the device's correction on every model's measured variants from quiet runs
    (:func:`quiet_runs`; ratios under the model's calibration) and rebase each model's calibration so its dense prediction is unchanged.

    Returns the profile with ``correction`` and the rebased calibrations; unchanged when
    the correction does not improve the fitted ratio error.
    """
    import math
    from dataclasses import replace

    from edgeprune.cost.correction import fit_correction, rebase_calibration, why_not_fit

    samples = []
    for name, pts in points.items():
        samples += ratio_samples(name, quiet_runs(pts), profile.calibration.get(name))
    reason = why_not_fit(samples) if len(samples) >= 4 else f"{len(samples)} quiet variants"
    if reason is not None:
        from edgeprune.log import get_logger

        get_logger("profile").info("no latency correction fitted: %s", reason)
        return replace(profile, correction=None)
    corr = fit_correction(samples, _dt.date.today().isoformat())
    if corr.fit_ratio_err_after_pct >= corr.fit_ratio_err_before_pct:
        return replace(profile, correction=None)
    calib = dict(profile.calibration)
    for name, pts in points.items():
        dense_f = next((p.dense_features for p in pts if p.dense_features), None)
        if dense_f is not None and name in calib:
            calib[name] = rebase_calibration(calib[name], math.exp(corr.log_factor(dense_f)))
    return replace(profile, calibration=calib, correction=corr)


def rescore(variants, input_size, recorded: Sequence[Variant], profile) -> list[Variant]:
    """``recorded`` measurements of ``variants`` (``make_variants``) predicted under
    ``profile``: the same timings scored with and without a correction."""
    dense = LatencyPredictor.from_model(variants[0][1], input_size, profile)
    by_label = {v.label: v for v in recorded}
    out = []
    for label, model, _ in variants[1:]:
        r = by_label.get(label)
        if r is not None:
            pred = LatencyPredictor.from_model(model, input_size, profile)
            out.append(variant_of(label, pred, dense, r.measured_ms, r.dense_measured_ms))
    return out


def rescore_recorded(name: str, recorded: Sequence[Variant], profile) -> list[Variant]:
    """:func:`rescore` without rebuilding the variants, for recorded rows that carry their
    table sums and features (``Variant.to_dict``): only the dense model is traced, to
    carry the profile's (rebased) calibration over; the correction is applied to the rest."""
    import math
    from dataclasses import replace

    from edgeprune.models import create_model, model_input_size

    size = model_input_size(name)
    dense = LatencyPredictor.from_model(create_model(name).eval(), size, profile)
    corr = profile.correction if profile.correction and profile.correction.weights else None
    out = []
    for v in recorded:
        k = dense.base_ms() / v.dense_base_ms
        cv = math.exp(corr.log_factor(v.features)) if corr else 1.0
        cd = math.exp(corr.log_factor(v.dense_features)) if corr else 1.0
        out.append(
            replace(
                v,
                base_ms=v.base_ms * k,
                dense_base_ms=v.dense_base_ms * k,
                predicted_ms=v.base_ms * k * cv,
                dense_predicted_ms=v.dense_base_ms * k * cd,
            )
        )
    return out


def recorded_variants(rows: Sequence[dict]) -> list[Variant]:
    """Measured variants from a fidelity JSON's ``variants`` list (label and timings)."""
    names = set(Variant.__dataclass_fields__)
    if rows and all(r.get("features") for r in rows):  # everything a rescore needs
        return [Variant(**{k: v for k, v in r.items() if k in names}) for r in rows]
    return [
        Variant(str(r["label"]), 0.0, float(r["measured_ms"]), float(r["dense_measured_ms"]))
        for r in rows
    ]


def machine_load() -> list[float]:
    """The 1, 5 and 15 minute load averages ([] where the OS does not say)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def emulation_note(identity: dict | None) -> str | None:
    """One sentence when the agent's identity says the device is emulated (qemu)."""
    board = str((identity or {}).get("board") or "")
    if "qemu" in board.lower() or "emulated" in board.lower():
        return (
            f"the device is emulated ({board.split('(')[0].strip()}): emulated timing cannot be "
            "trusted, so these errors say nothing about the real device's latency"
        )
    return None


SCALE_BAND = (0.4, 2.5)
CALIBRATION_UNIFORM = (0.15, 0.3, 0.55, 0.8)
SLIM_KEEP_FRAC = 0.1  # the slim calibration variants: layers down to 10% ...
SLIM_DROP_PROB = 0.25  # ... and a quarter of the residual blocks dropped


def fit_calibration(
    points: Sequence[Variant], dense: Variant, signature: str, relative: bool = True
) -> Calibration:
    """Fit ``total = scale * aligned + scale_unaligned * unaligned + offset_ms``.

    Every measurement is first rescaled by its run's dense measurement to the median dense
    level (removing machine-load drift between runs); the dense model itself is a point.
    Non-negative least squares on relative errors (each row divided by its measurement: a
    budget is a ratio, and in absolute terms the large variants' noise would set the offset
    that decides the slim models' price); falls back to one scale when the classes are not
    separable. ``relative=False``: plain least squares in milliseconds (before session 11).
    """
    import numpy as np

    level = float(np.median([p.dense_measured_ms for p in points]))
    pts = [dense, *points]
    y = np.array([p.measured_ms * level / p.dense_measured_ms for p in pts])
    a = np.array([p.table_aligned_ms for p in pts])
    u = np.array([p.table_ms - p.table_aligned_ms for p in pts])
    one = np.ones_like(y)
    w = (1.0 / y if relative else np.ones_like(y))[:, None]
    coef = _nnls(np.stack([a, u, one], axis=1) * w, y * w[:, 0])
    if coef is None or not (SCALE_BAND[0] <= coef[0] <= SCALE_BAND[1]) or coef[1] <= 0:
        coef = _nnls(np.stack([a + u, one], axis=1) * w, y * w[:, 0])
        coef = (float(np.clip(coef[0], *SCALE_BAND)) if coef is not None else 1.0, 0.0)
        off = float(np.median(y - coef[0] * (a + u)))
        coef = (coef[0], 0.0, off)
    cal = Calibration(float(coef[0]), float(coef[2]), float(coef[1]), len(pts), signature)
    pred = np.array([cal.apply(ai, ui) for ai, ui in zip(a, u, strict=True)])
    err = float(np.median(np.abs(pred - y) / y) * 100)
    return Calibration(
        cal.scale,
        cal.offset_ms,
        cal.scale_unaligned,
        len(pts),
        signature,
        round(err, 2),
        _dt.date.today().isoformat(),
    )


def _nnls(x, y):
    """Least squares with non-negative coefficients (tiny active-set loop)."""
    import numpy as np

    active = list(range(x.shape[1]))
    for _ in range(x.shape[1]):
        if not active:
            return None
        c, *_ = np.linalg.lstsq(x[:, active], y, rcond=None)
        if (c >= 0).all():
            out = np.zeros(x.shape[1])
            out[active] = c
            return out
        active.pop(int(np.argmin(c)))
    return None


def calibration_variants(model_name: str, n: int):
    """The calibration's variants of a model: dense, uniform keep ratios from 0.15 to 0.8,
    ``n - n // 2`` random mid-width variants (every layer >= 20%) and ``n // 2`` slim ones
    (layers down to 10%, a quarter of the residual blocks dropped), so that the fit spans
    the structures a 0.3x budget makes, not only mild ones."""
    variants, size = make_variants(model_name, n - n // 2, 1000, uniform=CALIBRATION_UNIFORM)
    if n // 2:
        slim, _ = make_variants(
            model_name, n // 2, 3000, SLIM_DROP_PROB, min_keep_frac=SLIM_KEEP_FRAC
        )
        variants += [(f"slim-{label}", m, plan) for label, m, plan in slim[1:]]
    return variants, size


def calibrate(
    model_name: str,
    profile,
    runner: Runner,
    n: int = 6,
    progress: bool = True,
    precision: str = "fp32",
):
    """Measure the calibration variants of a model (:func:`calibration_variants`) at
    ``precision`` (int8: all quantized, priced on the int8 rows); fit that precision's
    calibration."""
    variants, size = calibration_variants(model_name, n)
    dense = variants[0]
    per_run = max(1, (len(variants) + 1) // 3)  # >= 3 runs, each with its own dense reference
    points = measure_variants(variants, size, runner, profile, per_run, progress, precision)
    sig = ops_signature(extract_ops(dense[1], size))
    return fit_calibration(points, dense_point(points), sig), points


def dense_point(points: Sequence[Variant]) -> Variant:
    """The dense model as a calibration point, at the median dense time of ``points``' runs
    (every point carries the dense model's table sums)."""
    level = float(sorted(p.dense_measured_ms for p in points)[len(points) // 2])
    p = points[0]
    return Variant("dense", p.dense_table_ms, level, level, 0.0, 0.0, p.dense_table_aligned_ms)


def fidelity_stats(variants: Sequence[Variant]) -> dict:
    """Median/p95 absolute error (%) and shares within 5%/10%, absolute and as ratios."""
    import numpy as np

    pred = np.array([v.predicted_ms for v in variants])
    meas = np.array([v.measured_ms for v in variants])
    err = np.abs(pred - meas) / meas * 100
    ratio_pred = pred / np.array([v.dense_predicted_ms for v in variants])
    ratio_meas = meas / np.array([v.dense_measured_ms for v in variants])
    rerr = np.abs(ratio_pred - ratio_meas) / ratio_meas * 100
    return {
        "samples": int(len(variants)),
        "median_abs_err_pct": round(float(np.median(err)), 2),
        "p95_abs_err_pct": round(float(np.percentile(err, 95)), 2),
        "within_5pct": round(float(np.mean(err <= 5)), 3),
        "within_10pct": round(float(np.mean(err <= 10)), 3),
        "ratio_median_abs_err_pct": round(float(np.median(rerr)), 2),
        "ratio_p95_abs_err_pct": round(float(np.percentile(rerr, 95)), 2),
        "ratio_within_10pct": round(float(np.mean(rerr <= 10)), 3),
        "measured_ms_range": [round(float(meas.min()), 4), round(float(meas.max()), 4)],
    }
