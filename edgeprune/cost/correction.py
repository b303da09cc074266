"""A per-device correction on top of the calibrated latency table (issue 19).

The table prices each op in a chain of its own kind; in a network the runtime also pays
for what the table cannot see: layout reorders between blocked and plain kernels (a conv
whose input and output channel counts fall in different alignment classes), per-op
overhead (more ops per millisecond of work), half-aligned channel counts and depthwise
layers. The correction multiplies the calibrated total by ``exp(sum(w_i * f_i))`` where
``f`` are scale-free features of the model under its widths (:func:`features`) and ``w``
is fitted per device on the measured ratios of random pruned variants to their dense model
(:func:`fit_correction`), by least squares (numpy) with a small ridge term.

Stored in the device profile (``correction:``) and applied by ``LatencyPredictor``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from edgeprune.errors import UserError

FEATURES = (
    "ops_per_ms",  # executed ops per table millisecond (per-op overhead)
    "unaligned_share",  # table-ms share of ops with a channel count off the alignment
    "half_unaligned_share",  # ... off half the alignment (no vector lane fits evenly)
    "transition_share",  # ... of convs whose input and output alignment differ (reorders)
    "depthwise_share",  # ... of grouped/depthwise convs
    "narrow_share",  # ... of ops with fewer channels than the alignment
)
RIDGE = 1e-3
SAMPLES_PER_FEATURE = 3  # a fit needs this many measured variants per varying feature
MAX_FACTOR = 2.0  # a fit that moves any fitted variant's ratio by more than this is refused


@dataclass(frozen=True)
class Correction:
    """Fitted weights of the multiplicative correction, with how well the fit did."""

    features: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    n: int = 0  # measured variants the fit kept (load-spike outliers dropped)
    models: tuple[str, ...] = ()  # model structures they came from
    fit_ratio_err_before_pct: float = 0.0  # median |ratio error| on them without ...
    fit_ratio_err_after_pct: float = 0.0  # ... and with the correction
    date: str = ""

    def log_factor(self, f: Mapping[str, float]) -> float:
        return sum(w * f[name] for name, w in zip(self.features, self.weights, strict=True))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"], d["weights"], d["models"] = (
            list(self.features),
            list(self.weights),
            list(self.models),
        )
        return d

    @classmethod
    def from_dict(cls, d: Mapping, where: str = "device profile") -> Correction:
        """From a profile's YAML; malformed data is one UserError sentence."""
        from edgeprune.config_io import from_dict

        what = f"{where}: correction"
        if not isinstance(d, Mapping):
            raise UserError(f"{what} must be a mapping, got {type(d).__name__}")
        data = {k: v for k, v in d.items() if v is not None}
        for key in ("features", "weights", "models"):
            if key in data and not isinstance(data[key], list | tuple):
                raise UserError(f"{what}: '{key}' must be a list")
            if key in data:
                data[key] = tuple(data[key])
        c = from_dict(cls, data, what, noun="field")
        unknown = [f for f in c.features if f not in FEATURES]
        if unknown:
            raise UserError(
                f"{what}: unknown feature '{unknown[0]}' (known: {', '.join(FEATURES)})"
            )
        if len(c.features) != len(c.weights):
            raise UserError(f"{what}: features and weights must have the same length")
        if not all(isinstance(w, int | float) and math.isfinite(w) for w in c.weights):
            raise UserError(f"{what}: every weight must be a finite number")
        return c


def features(predictor, widths: Mapping[str, int] | None = None) -> dict[str, float]:
    """The scale-free features of ``predictor``'s model under ``widths`` (see FEATURES)."""
    from edgeprune.cost.ops import resolve_op

    align = max(1, predictor.table.alignment)
    half = max(1, align // 2)
    total = n = unal = half_unal = trans = dw = narrow = 0.0
    for o in predictor.ops:
        ci, co = resolve_op(o, widths, predictor.by_name)
        if ci == 0:
            continue
        cost = predictor.op_cost(o, widths)
        total += cost
        n += 1
        if ci % align or co % align:
            unal += cost
        if ci % half or co % half:
            half_unal += cost
        if o.op == "conv" and (ci % align == 0) != (co % align == 0):
            trans += cost
        if o.op == "conv" and o.groups > 1:
            dw += cost
        if min(ci, co) < align:
            narrow += cost
    t = total or 1.0
    return {
        "ops_per_ms": n / t,
        "unaligned_share": unal / t,
        "half_unaligned_share": half_unal / t,
        "transition_share": trans / t,
        "depthwise_share": dw / t,
        "narrow_share": narrow / t,
    }


@dataclass(frozen=True)
class RatioSample:
    """One measured variant for the fit: its features and its dense model's, the predicted
    (uncorrected) and the measured ratio to dense from the same run."""

    model: str
    features: Mapping[str, float]
    dense_features: Mapping[str, float]
    predicted_ratio: float
    measured_ratio: float


def fit_correction(samples: Sequence[RatioSample], date: str = "") -> Correction:
    """Least-squares weights ``w`` for ``log(measured/predicted ratio) = w . (f - f_dense)``.

    Each feature is scaled to unit spread before a small ridge term; a feature that does
    not vary gets weight 0; points more than 3 MADs off the first fit are dropped and the
    fit repeated. The before/after errors are over all samples. Raises UserError with
    fewer than 4 samples.
    """
    import numpy as np

    if len(samples) < 4:
        raise UserError(
            f"fitting a latency correction needs >= 4 measured variants, got {len(samples)}"
        )
    x = np.array([[s.features[f] - s.dense_features[f] for f in FEATURES] for s in samples])
    y = np.array([math.log(s.measured_ratio / s.predicted_ratio) for s in samples])
    w = _ridge(x, y)
    # a timing hit by a load spike is not a structure to learn: refit without the points
    # more than 3 robust standard deviations (MAD) off the first fit
    r = y - x @ w
    mad = 1.4826 * float(np.median(np.abs(r - np.median(r))))
    inliers = np.abs(r - np.median(r)) <= max(3 * mad, 0.02)
    if inliers.sum() >= 4 and not inliers.all():
        w = _ridge(x[inliers], y[inliers])
    before = np.abs(np.expm1(-y)) * 100  # |pred - meas| / meas of the ratio
    after = np.abs(np.expm1(-(y - x @ w))) * 100
    return Correction(
        FEATURES,
        tuple(round(float(v), 6) for v in w),
        int(inliers.sum()),
        tuple(sorted({s.model for s in samples})),
        round(float(np.median(before)), 2),
        round(float(np.median(after)), 2),
        date,
    )


def why_not_fit(samples: Sequence[RatioSample]) -> str | None:
    """Why a correction fitted on ``samples`` should not be used (None: use it).

    Too few variants for its varying features (an exact fit of noise: 4 runs and 6
    features once moved a calibration scale by 7e7), a fit that does not beat the table
    on the variants it did not see (leave-one-out), or one that moves a fitted variant's
    ratio by more than ``MAX_FACTOR``."""
    import numpy as np

    x = np.array([[s.features[f] - s.dense_features[f] for f in FEATURES] for s in samples])
    k = int((x.std(axis=0) > 1e-9).sum())
    need = SAMPLES_PER_FEATURE * k + 1
    if len(samples) < max(need, 4):
        return f"{len(samples)} quiet variants for {k} varying features (needs >= {need})"
    y = np.array([math.log(s.measured_ratio / s.predicted_ratio) for s in samples])
    w = _ridge(x, y)
    if np.max(np.abs(x @ w)) > math.log(MAX_FACTOR):
        return f"the fit moves a variant's ratio by more than {MAX_FACTOR:g}x"
    held_out = []
    for i in range(len(samples)):
        rest = np.arange(len(samples)) != i
        wi = _ridge(x[rest], y[rest])
        held_out.append(abs(math.expm1(-(y[i] - x[i] @ wi))) * 100)
    before = float(np.median(np.abs(np.expm1(-y)) * 100))
    after = float(np.median(held_out))
    if after >= before:
        return f"left-out variants' ratio error {after:.1f}% is not below the table's {before:.1f}%"
    return None


def _ridge(x, y):
    """Least squares with a small ridge on unit-spread features (constant ones get 0)."""
    import numpy as np

    spread = x.std(axis=0)
    keep = spread > 1e-9
    xs = x[:, keep] / spread[keep]
    k = xs.shape[1]
    a = xs.T @ xs + RIDGE * len(y) * np.eye(k)
    w_s = np.linalg.solve(a, xs.T @ y) if k else np.zeros(0)
    w = np.zeros(x.shape[1])
    w[keep] = w_s / spread[keep]
    return w


def rebase_calibration(cal, factor: float):
    """``cal`` scaled by ``1 / factor``: a model's dense prediction stays what its
    calibration fitted once the correction (``factor`` on the dense model) applies."""
    from dataclasses import replace

    return replace(
        cal,
        scale=cal.scale / factor,
        scale_unaligned=cal.scale_unaligned / factor,
        offset_ms=cal.offset_ms / factor,
    )
