"""Latency predictor: a model's latency on a device from the device's latency table.

``predict_latency(model_or_plan, profile)`` traces the model (or the base model a plan
applies to), sums the table entry of every executed op and adds the modelled remainder
(per-inference runtime overhead and what the table's in-context marginal costs miss),
fitted per device and model structure on a few end-to-end measurements::

    total_ms = scale * sum(aligned ops) + scale_unaligned * sum(other ops) + offset_ms

("aligned": both channel counts multiples of the profile's ``channel_alignment``; the
runtime's blocked kernels run those, and their in-network cost relative to chain-measured
costs differs from that of the others; both scales come from the Calibration.)

Fast path for a budget controller, which re-prices many width configurations: trace once,
then only look up numbers (about 10 microseconds per op; no model is rebuilt)::

    from edgeprune.cost.latency import LatencyPredictor
    pred = LatencyPredictor.from_model(model, (3, 32, 32), load_profile("xeon"))
    pred.total_ms({"layer1.0.conv1": 9, "layer2.0.conv1": 0})   # float
    pred.predict(widths)                                        # Prediction with breakdown

``widths`` maps conv layer names to output channel counts (missing names keep the traced
width); 0 drops the layer and the residual add of its block. Equivalent function form:
``ops = extract_ops(model, input_size)`` then ``predict_ops(ops, profile, widths)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeprune.cost.latency_table import LatencyTable, load_table_csv
from edgeprune.cost.ops import LayerOp, extract_ops, resolve_op
from edgeprune.errors import UserError

if TYPE_CHECKING:
    from edgeprune.cost.calibration import Calibration

_TABLE_CACHE: dict[tuple, LatencyTable] = {}
_FRAME_CACHE: dict[tuple, object] = {}


@dataclass(frozen=True)
class OpCost:
    """One op's share of a prediction."""

    name: str
    op: str
    c_in: int
    c_out: int
    latency_ms: float


@dataclass(frozen=True)
class Prediction:
    """Predicted end-to-end latency and where it comes from."""

    total_ms: float
    table_ms: float
    remainder_ms: float
    per_layer: tuple[OpCost, ...]
    device: str
    estimated: bool
    calibration: str
    precision: str = "fp32"

    def to_dict(self) -> dict:
        return {
            "precision": self.precision,
            "total_ms": self.total_ms,
            "table_ms": self.table_ms,
            "remainder_ms": self.remainder_ms,
            "device": self.device,
            "estimated": self.estimated,
            "calibration": self.calibration,
            "per_layer": [c.__dict__ for c in self.per_layer],
        }


def ops_signature(ops: Sequence[LayerOp]) -> str:
    """``EXACT:FAMILIES``: hashes of a model's structure (not its widths) and of the set of
    op families it uses; they choose which calibration applies. The add a dropped residual
    block leaves behind (no branch: the block's constant output plus the shortcut) counts as
    the adds already at its size, so a pruned variant keeps its dense model's families."""
    text = ";".join(f"{o.name}:{o.op}:{o.kernel}:{o.stride}:{o.h_in}" for o in ops)
    fams = ";".join(sorted(_families(ops)))
    return (
        hashlib.sha1(text.encode()).hexdigest()[:16]
        + ":"
        + hashlib.sha1(fams.encode()).hexdigest()[:12]
    )


def _families(ops: Sequence[LayerOp]) -> set[str]:
    """The op families of ``ops``; a bypass add (no branch) only at a size no other add has."""

    def bypass(o: LayerOp) -> bool:
        return o.op == "add" and o.branch is None

    add_sizes = {(o.stride, o.h_in) for o in ops if o.op == "add" and not bypass(o)}
    return {
        f"{o.op}:{o.kernel}:{o.stride}:{o.h_in}"
        for o in ops
        if not bypass(o) or (o.stride, o.h_in) not in add_sizes
    }


def _profile_frame(profile, paths):
    """The validated rows of all a profile's tables (cached by file and mtime)."""
    import pandas as pd

    from edgeprune.cost.latency_table import validate_table_frame

    key = tuple((str(p), p.stat().st_mtime if p.exists() else 0) for p in paths)
    frame = _FRAME_CACHE.get(key)
    if frame is None:
        if len(paths) == 1:
            frame = load_table_csv(str(paths[0]), profile.channel_alignment).raw
        else:
            frames = [load_table_csv(str(p), profile.channel_alignment).raw for p in paths]
            frame = validate_table_frame(
                pd.concat(frames, ignore_index=True), f"latency tables of '{profile.name}'"
            )
        _FRAME_CACHE[key] = frame
    return key, frame


def profile_precisions(profile) -> tuple[str, ...]:
    """The precisions the profile's tables measured (``()`` without a table): a device
    offers int8 only where its table has int8 rows."""
    from edgeprune.cost.latency_table import table_precisions

    paths = profile.table_paths()
    if not paths:
        return ()
    return table_precisions(_profile_frame(profile, paths)[1])


def no_precision(profile, precision: str, model: str | None = None) -> str:
    """The one sentence for a device whose table has no rows of ``precision``."""
    return (
        f"the latency table of device '{profile.name}' has no {precision} measurements; "
        f"measure them with 'edgeprune profile --device {profile.name} --model "
        f"{model or 'MODEL'}'"
    )


def profile_table(profile, precision: str = "fp32", model: str | None = None) -> LatencyTable:
    """The (cached) latency table of a profile at ``precision``; ``UserError`` if it has
    none, or no rows of that precision."""
    paths = profile.table_paths()
    if not paths:
        raise UserError(
            f"device '{profile.name}' has no latency table; measure one with "
            f"'edgeprune profile --device {profile.name} --model MODEL'"
        )
    key, frame = _profile_frame(profile, paths)
    key += (profile.channel_alignment, precision)
    table = _TABLE_CACHE.get(key)
    if table is None:
        if precision not in profile_precisions(profile):
            raise UserError(no_precision(profile, precision, model))
        source = (
            f"latency table {paths[0]}"
            if len(paths) == 1
            else f"latency tables of '{profile.name}'"
        )
        table = LatencyTable(frame, profile.channel_alignment, source, precision)
        _TABLE_CACHE[key] = table
    return table


def calibration_key(name: str, precision: str = "fp32") -> str:
    """The key of a calibration in a profile: the model name, ``@int8`` for int8."""
    return name if precision == "fp32" else f"{name}@{precision}"


def pick_calibration(profile, signature: str, precision: str = "fp32"):
    """The calibration for a structure at ``precision`` (int8 ones are keyed ``NAME@int8``
    and fitted on int8 end-to-end measurements; fp32 ones are never used for int8): same
    structure, else same op families (a pruned variant with dropped blocks, or ResNet-20 vs
    -56), else ``default``, else none."""
    from edgeprune.cost.calibration import Calibration

    suffix = "" if precision == "fp32" else f"@{precision}"
    mine = {
        k: c
        for k, c in profile.calibration.items()
        if (k.endswith(suffix) if suffix else "@" not in k)
    }
    for key, cal in mine.items():
        if cal.signature and cal.signature == signature:
            return key, cal
    fam = signature.split(":")[-1]
    for key, cal in mine.items():
        if ":" in cal.signature and cal.signature.split(":")[-1] == fam:
            return key, cal
    default = calibration_key("default", precision)
    if default in mine:
        return default, mine[default]
    return "none", Calibration()


def unpriced(op: LayerOp, device: str, model: str | None = None) -> str:
    """The one sentence for an op a device's table cannot price: the op and the command
    that profiles it."""
    what = f"{op.name} ({op.module or op.op})"
    if op.op != "unknown":
        g = f" groups={op.groups}" if op.op == "conv" and op.groups > 1 else ""
        k = f"{op.kernel}x{op.kernel_w}" if op.kernel_w else f"{op.kernel}"
        what += f" as {op.op}{g} k={k} s={op.stride} at {op.h_in}x{op.w_in}"
    return (
        f"the latency table of device '{device}' cannot price layer {what}; profile it with "
        f"'edgeprune profile --device {device} --model {model or 'MODEL'}'"
    )


class LatencyPredictor:
    """Prices one traced model structure under any widths, from a profile's table.

    Refuses, in one sentence (:func:`unpriced`), a model with an op the table cannot
    price: a layer extraction does not know (``unknown``) or an op family never profiled.
    """

    def __init__(
        self,
        ops: Sequence[LayerOp],
        profile,
        table: LatencyTable | None = None,
        model_name: str | None = None,
        precision: str = "fp32",
        calibration: tuple[str, Calibration] | None = None,
    ):
        self.ops = list(ops)
        self.profile = profile
        self.precision = precision
        self.table = table if table is not None else profile_table(profile, precision, model_name)
        self.by_name = {o.name: o for o in self.ops}
        for o in self.ops:
            if not self._priceable(o):
                raise UserError(unpriced(o, profile.name, model_name))
        self.signature = ops_signature(self.ops)
        self.calibration_name, self.calibration = calibration or pick_calibration(
            profile, self.signature, precision
        )
        # edgeprune.cost.correction: fitted on fp32 measurements, applied to fp32 only
        self.correction = getattr(profile, "correction", None) if precision == "fp32" else None

    @classmethod
    def from_model(
        cls,
        model,
        input_size: Sequence[int],
        profile,
        model_name: str | None = None,
        precision: str = "fp32",
    ) -> LatencyPredictor:
        ops = extract_ops(model, input_size, batch=profile.identity.batch)
        return cls(ops, profile, model_name=model_name, precision=precision)

    def for_variant(self, model, input_size: Sequence[int]) -> LatencyPredictor:
        """A predictor of ``model``, a pruned variant of this one's model, with this one's
        table and calibration: pruning that empties a whole stage (every conv at one size
        gone) changes the op families, and must not switch the variant to ``default``."""
        ops = extract_ops(model, input_size, batch=self.profile.identity.batch)
        pin = (self.calibration_name, self.calibration)
        return type(self)(ops, self.profile, self.table, precision=self.precision, calibration=pin)

    def _priceable(self, op: LayerOp) -> bool:
        if op.op == "unknown":
            return False
        if op.op == "add":  # priced after a k x k conv, or any conv at that size
            return any(
                self.table.has_family("add", k, 1, op.h_in, op.w_in) for k in (op.kernel, 3, 1)
            )
        return self.table.has_family(
            op.op, op.kernel, op.stride, op.h_in, op.w_in, op.groups, op.kernel_w
        )

    def op_cost(self, op: LayerOp, widths: Mapping[str, int] | None = None) -> float:
        """Table latency (ms) of one op under ``widths``; 0 for a removed op."""
        ci, co = resolve_op(op, widths, self.by_name)
        if ci == 0:
            return 0.0
        k = op.kernel
        if op.op == "add" and not self.table.has_family("add", k, 1, op.h_in, op.w_in):
            # an add fed by no conv (e.g. a bypassed block's bias): price it after any conv
            k = next(
                (kk for kk in (3, 1) if self.table.has_family("add", kk, 1, op.h_in, op.w_in)), k
            )
        kw = op.kernel_w if op.op != "add" else 0  # 1x7: priced as measured, not as 7x7
        return self.table.lookup(op.op, ci, co, k, op.stride, op.h_in, op.w_in, op.groups, kw)

    def not_predicted(self, widths: Mapping[str, int] | None = None) -> list[str]:
        """One line per op whose price under ``widths`` is not inside its measured rows
        (channels extrapolated, or an add priced after another kernel's conv): the ops the
        prediction is least sure of."""
        out = []
        for o in self.ops:
            ci, co = resolve_op(o, widths, self.by_name)
            if ci == 0:
                continue
            kw = o.kernel_w if o.op != "add" else 0
            why = self.table.inexact(o.op, ci, co, o.kernel, o.stride, o.h_in, o.w_in, o.groups, kw)
            if o.op == "add" and not self.table.has_family("add", o.kernel, 1, o.h_in, o.w_in):
                why = f"no add after a {o.kernel}x{o.kernel} conv measured (priced after another)"
            if why:
                out.append(f"{o.name} ({o.op} {ci}->{co} k={o.kernel} at {o.h_in}x{o.w_in}): {why}")
        return out

    def table_ms(self, widths: Mapping[str, int] | None = None) -> float:
        return sum(self.op_cost(o, widths) for o in self.ops)

    def calibrated_op_ms(self, op: LayerOp, widths: Mapping[str, int] | None = None) -> float:
        """One op's share of ``total_ms`` (its table cost times its class's scale); the
        shares of all ops plus ``calibration.offset_ms`` equal ``total_ms``."""
        ci, co = resolve_op(op, widths, self.by_name)
        if ci == 0:
            return 0.0
        cal = self.calibration
        align = self.table.alignment
        aligned = ci % align == 0 and co % align == 0
        scale = cal.scale if aligned else (cal.scale_unaligned or cal.scale)
        return scale * self.op_cost(op, widths)

    def split_ms(self, widths: Mapping[str, int] | None = None) -> tuple[float, float]:
        """Table sums of (aligned, unaligned) ops under ``widths``."""
        a = u = 0.0
        align = self.table.alignment
        for o in self.ops:
            ci, co = resolve_op(o, widths, self.by_name)
            if ci == 0:
                continue
            cost = self.op_cost(o, widths)
            if ci % align == 0 and co % align == 0:
                a += cost
            else:
                u += cost
        return a, u

    def total_ms(self, widths: Mapping[str, int] | None = None) -> float:
        """Predicted end-to-end latency (ms), no breakdown: the controller's inner loop
        (the calibrated table sums times the profile's fitted correction, if it has one)."""
        return self.base_ms(widths) * self.correction_factor(widths)

    def correction_factor(self, widths: Mapping[str, int] | None = None) -> float:
        """The profile's fitted correction of the calibrated total under ``widths`` (1.0
        without one)."""
        if self.correction is None or not self.correction.weights:
            return 1.0
        import math

        from edgeprune.cost.correction import features

        return math.exp(self.correction.log_factor(features(self, widths)))

    def base_ms(self, widths: Mapping[str, int] | None = None) -> float:
        """The calibrated table sums alone, without the profile's correction."""
        return self.calibration.apply(*self.split_ms(widths))

    def predict(self, widths: Mapping[str, int] | None = None) -> Prediction:
        costs = []
        for o in self.ops:
            ci, co = resolve_op(o, widths, self.by_name)
            lat = self.op_cost(o, widths)
            costs.append(OpCost(o.name, o.op, ci, co, lat))
        table = sum(c.latency_ms for c in costs)
        total = self.total_ms(widths)
        return Prediction(
            total_ms=total,
            table_ms=table,
            remainder_ms=total - table,
            per_layer=tuple(costs),
            device=self.profile.name,
            estimated=self.profile.estimated,
            calibration=self.calibration_name,
            precision=self.precision,
        )


def predict_ops(
    ops: Sequence[LayerOp], profile, widths: Mapping[str, int] | None = None
) -> Prediction:
    """Predict from an op list (``extract_ops``) with optional width overrides."""
    return LatencyPredictor(ops, profile).predict(widths)


def widths_from_plan(plan, model, input_size: Sequence[int] | None = None) -> dict[str, int]:
    """Conv output widths a ``Plan`` gives ``model`` (every conv of a coupled group)."""
    from edgeprune.surgery import prunable_layers

    keep = getattr(plan, "keep", None)
    if keep is None:
        raise UserError("expected a model or a Plan with 'keep' indices")
    widths: dict[str, int] = {}
    for g in prunable_layers(model, tuple(input_size) if input_size else None):
        if g.name in keep:
            for conv in g.convs:
                widths[conv] = len(keep[g.name])
    return widths


def predict_latency(
    model_or_plan,
    profile,
    *,
    model=None,
    input_size: Sequence[int] | None = None,
    precision: str = "fp32",
    model_name: str | None = None,
) -> Prediction:
    """Predicted latency of a (pruned) model, or of ``plan`` applied to base ``model``, run
    at ``precision`` (``int8``: priced on the table's int8 rows and int8 calibration; a
    table without them is one ``UserError`` naming the command that measures them).

    ``input_size`` is (C, H, W); by default 3x32x32, or what ``edgeprune.models`` says
    for a registered model name. ``profile`` is a ``DeviceProfile``
    (``edgeprune.devices.profile.load_profile(name)``); ``model_name`` picks that model's
    own table where the profile holds several.
    """
    if hasattr(model_or_plan, "model") and hasattr(model_or_plan, "input_size"):
        input_size = input_size or model_or_plan.input_size  # a LoadedModel
        model_or_plan = model_or_plan.model
    if hasattr(model_or_plan, "keep"):
        if model is None:
            raise UserError("predicting a plan needs the base model (model=...)")
        size = tuple(input_size) if input_size else _input_size_of(model)
        widths = widths_from_plan(model_or_plan, model, size)
        base = model
    else:
        widths, base = None, model_or_plan
        size = tuple(input_size) if input_size else _input_size_of(base)
    pred = LatencyPredictor.from_model(base, size, profile, model_name, precision=precision)
    return pred.predict(widths)


def _input_size_of(model) -> tuple[int, int, int]:
    size = getattr(model, "edgeprune_input_size", None)
    return tuple(size) if size else (3, 32, 32)
