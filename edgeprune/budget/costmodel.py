"""Prices a width assignment on every budget metric, incrementally per group.

The controller never measures: it asks this cost model, which combines static counts
computed from the executed-op list and, only when it is given one (a latency budget on a
device), the device's latency predictor (table-based). Without a predictor nothing is priced
in latency (``latency_ms`` is NaN) and no latency table is needed. ``counted(plan)`` gives
the exact counts of a plan applied to the model, for landing count budgets.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass

from edgeprune.cost.ops import LayerOp, extract_ops, resolve_op, width_sources
from edgeprune.surgery.graph import PrunableGroup

METRICS = ("latency_ms", "params", "flops", "weight_bytes", "activation_bytes")


@dataclass(frozen=True)
class OpPrice:
    """Static cost of one op at given channel counts."""

    params: float
    flops: float
    activation_bytes: float
    weight_bytes: float = 0.0  # as deployed (fp32: 4 per param; int8: see _weight_bytes)


def _weight_bytes(weights: float, extra: float, co: int, precision: str) -> float:
    """Bytes of a layer's ``weights`` (quantized at int8: 1 byte each plus a scale and a zero
    point per output channel, as ``edgeprune.cost.counting.int8_weight_bytes``) and of its
    ``extra`` params (bias, norm: float32 at every precision)."""
    if precision != "int8":
        return 4.0 * (weights + extra)
    from edgeprune.cost.counting import INT8_CHANNEL_BYTES, INT8_WEIGHT_BYTES

    return INT8_WEIGHT_BYTES * weights + INT8_CHANNEL_BYTES * co + 4.0 * extra


def _static(op: LayerOp, ci: int, co: int, precision: str = "fp32") -> OpPrice:
    if ci == 0 or co == 0:
        return OpPrice(0.0, 0.0, 0.0)
    h_out = max(1, math.ceil(op.h_in / max(1, op.stride)))
    w_out = max(1, math.ceil(op.w_in / max(1, op.stride)))
    if op.out_hw:  # a traced conv's real output size (unpadded convs are smaller)
        h_out, w_out = op.out_hw
    area = op.kernel * (op.kernel_w or op.kernel)  # 1x7 is 7 taps, not 49
    act = 4.0 * (ci * op.h_in * op.w_in + co * h_out * w_out)
    extra = op.extra_params * co
    if op.op == "conv":
        groups = op.groups if op.groups > 1 else 1  # group count is kept when pruned
        weights = (ci // groups) * co * area
        wb = _weight_bytes(weights, extra, co, precision)
        return OpPrice(weights + extra, weights * h_out * w_out, act, wb)
    if op.op == "dwconv":
        weights = co * area
        wb = _weight_bytes(weights, extra, co, precision)
        return OpPrice(weights + extra, weights * h_out * w_out, act, wb)
    if op.op == "linear":
        tokens = op.h_in * op.w_in
        wb = _weight_bytes(ci * co, extra, co, precision)
        return OpPrice(ci * co + extra, ci * co * tokens, 4.0 * tokens * (ci + co), wb)
    if op.op == "layernorm":
        return OpPrice(float(extra), 0.0, act, 4.0 * extra)
    return OpPrice(0.0, 0.0, act)


class CostModel:
    """Metrics of a model under group widths (group name -> kept channels); weight bytes
    as deployed at ``precision`` (fp32 | int8)."""

    def __init__(
        self,
        model,
        groups: list[PrunableGroup],
        input_size,
        predictor=None,
        precision: str = "fp32",
    ) -> None:
        self.precision = "int8" if precision == "int8" else "fp32"
        self.groups = {g.name: g for g in groups}
        self.predictor = predictor
        self.model, self.input_size = model, tuple(input_size) if input_size else None
        self.ops = list(predictor.ops) if predictor is not None else extract_ops(model, input_size)
        self.by_name = {o.name: o for o in self.ops}
        # per op: the convs whose widths set its channels (through concats)
        self.sources = [
            width_sources(o.c_in_from, self.by_name) | width_sources(o.c_out_from, self.by_name)
            for o in self.ops
        ]
        self.affected = {g.name: self._affected_ops(g) for g in groups}
        self.neighbours = self._neighbours()

    def _affected_ops(self, g: PrunableGroup) -> list[int]:
        convs = set(g.convs)
        hit = {i for i, s in enumerate(self.sources) if s & convs}
        hit |= {i for i, o in enumerate(self.ops) if o.name in convs}
        names = {self.ops[i].name for i in hit}
        hit |= {i for i, o in enumerate(self.ops) if o.op == "add" and o.branch in names}
        return sorted(hit)

    def _neighbours(self) -> dict[str, set[str]]:
        owners: dict[int, set[str]] = {}
        for name, idx in self.affected.items():
            for i in idx:
                owners.setdefault(i, set()).add(name)
        return {
            name: set().union(*(owners[i] for i in idx)) if idx else {name}
            for name, idx in self.affected.items()
        }

    def conv_widths(self, widths: Mapping[str, int]) -> dict[str, int]:
        """Group widths expanded to every conv of each group (the predictor's keys)."""
        return {c: int(w) for g, w in widths.items() for c in self.groups[g].convs}

    def _op_metrics(self, i: int, cw: Mapping[str, int]) -> tuple[float, OpPrice]:
        """(calibrated latency share in ms, static price) of op ``i`` under conv widths."""
        op = self.ops[i]
        ci, co = resolve_op(op, cw, self.by_name)
        lat = self.predictor.calibrated_op_ms(op, cw) if self.predictor is not None and ci else 0.0
        return lat, _static(op, ci, co, self.precision)

    def metrics(self, widths: Mapping[str, int]) -> dict[str, float]:
        """Every metric for a full width assignment."""
        cw = self.conv_widths(widths)
        lat = params = flops = wbytes = 0.0
        act = 0.0
        for i in range(len(self.ops)):
            op_lat, price = self._op_metrics(i, cw)
            lat += op_lat
            params += price.params
            flops += price.flops
            wbytes += price.weight_bytes
            act = max(act, price.activation_bytes)
        out = {"params": params, "flops": flops, "weight_bytes": wbytes}
        out["activation_bytes"] = act
        out["latency_ms"] = float("nan")
        if self.predictor is not None:  # as ``LatencyPredictor.total_ms`` prices it
            offset = self.predictor.calibration.offset_ms
            out["latency_ms"] = (lat + offset) * self.predictor.correction_factor(cw)
        return out

    def delta(self, widths: dict[str, int], group: str, new_width: int) -> dict[str, float]:
        """Change of latency/params/FLOPs/weights when ``group`` goes to ``new_width`` (latency:
        the calibrated table's change before the profile's correction, a ranking signal;
        ``metrics`` prices the result whole)."""
        cw = self.conv_widths(widths)
        before = [self._op_metrics(i, cw) for i in self.affected[group]]
        for c in self.groups[group].convs:
            cw[c] = int(new_width)
        after = [self._op_metrics(i, cw) for i in self.affected[group]]
        d_lat = sum(a[0] for a in after) - sum(b[0] for b in before)
        d_par = sum(a[1].params for a in after) - sum(b[1].params for b in before)
        d_flo = sum(a[1].flops for a in after) - sum(b[1].flops for b in before)
        d_wb = sum(a[1].weight_bytes for a in after) - sum(b[1].weight_bytes for b in before)
        return {
            "latency_ms": d_lat,
            "params": d_par,
            "flops": d_flo,
            "weight_bytes": d_wb,
        }

    def counted(self, plan) -> dict[str, float]:
        """Exact counts (params, FLOPs, weight and activation bytes) of ``plan`` applied
        to a copy of the model: what a count budget is finally judged on."""
        import torch

        from edgeprune.cost import count
        from edgeprune.surgery import apply_plan_

        if self.model is None:
            raise ValueError("this cost model was built without its model")
        size = self.input_size or (3, 32, 32)
        slim = copy.deepcopy(self.model)
        if plan.keep:
            apply_plan_(slim, plan, torch.zeros(1, *size))
        c = count(slim, size, precision=self.precision)
        return {
            "params": float(c.params),
            "flops": float(c.flops),
            "weight_bytes": float(c.weight_bytes),
            "activation_bytes": float(c.peak_activation_bytes),
        }
