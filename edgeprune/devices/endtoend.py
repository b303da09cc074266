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
from dataclasses import dataclass

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

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def make_variants(
    model_name: str,
    n: int,
    seed0: int,
    drop_block_prob: float = 0.0,
    uniform: Sequence[float] = (),
):
    """(label, model, plan): dense first, then ``uniform`` keep ratios, then ``n`` random."""
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
            min_keep_frac=0.2,
            input_size=size,
            drop_block_prob=drop_block_prob,
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
                    Variant(
                        label,
                        pred.table_ms(),
                        st["latency_ms_median"],
                        dense_ms,
                        pred.total_ms(),
                        dense_pred.total_ms(),
                        pred.split_ms()[0],
                    )
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


SCALE_BAND = (0.4, 2.5)
CALIBRATION_UNIFORM = (0.3, 0.55, 0.8)


def fit_calibration(points: Sequence[Variant], dense: Variant, signature: str) -> Calibration:
    """Fit ``total = scale * aligned + scale_unaligned * unaligned + offset_ms``.

    Every measurement is first rescaled by its run's dense measurement to the median dense
    level (removing machine-load drift between runs); the dense model itself is a point.
    Non-negative least squares; falls back to one scale when the classes are not separable.
    """
    import numpy as np

    level = float(np.median([p.dense_measured_ms for p in points]))
    pts = [dense, *points]
    y = np.array([p.measured_ms * level / p.dense_measured_ms for p in pts])
    a = np.array([p.table_aligned_ms for p in pts])
    u = np.array([p.table_ms - p.table_aligned_ms for p in pts])
    one = np.ones_like(y)
    coef = _nnls(np.stack([a, u, one], axis=1), y)
    if coef is None or not (SCALE_BAND[0] <= coef[0] <= SCALE_BAND[1]) or coef[1] <= 0:
        coef = _nnls(np.stack([a + u, one], axis=1), y)
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


def calibrate(
    model_name: str,
    profile,
    runner: Runner,
    n: int = 6,
    progress: bool = True,
    precision: str = "fp32",
):
    """Measure dense, three uniform and ``n`` random variants of a model at ``precision``
    (int8: all quantized, priced on the int8 rows); fit that precision's calibration."""
    variants, size = make_variants(model_name, n, seed0=1000, uniform=CALIBRATION_UNIFORM)
    dense = variants[0]
    per_run = max(1, (len(variants) + 1) // 3)  # >= 3 runs, each with its own dense reference
    points = measure_variants(variants, size, runner, profile, per_run, progress, precision)
    dp = LatencyPredictor.from_model(dense[1], size, profile, precision=precision)
    level = float(sorted(p.dense_measured_ms for p in points)[len(points) // 2])
    dense_point = Variant("dense", dp.table_ms(), level, level, 0.0, 0.0, dp.split_ms()[0])
    sig = ops_signature(extract_ops(dense[1], size))
    return fit_calibration(points, dense_point, sig), points


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
