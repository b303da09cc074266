"""The run report: what one prune run (or a bench's dense row) produced, as ``report.json``.

One type for every run directory: ``edgeprune prune`` and the bench's dense row build a
``RunReport`` and write it with ``write_run_report``; ``edgeprune report`` and the bench rows
read the same keys back (``edgeprune.report.rows.build_row``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from typing import Any

REPORT_FILE = "report.json"


@dataclass(frozen=True)
class ModelStats:
    """Size, accuracy and latency of one model of a run (the dense or the pruned one)."""

    params: int
    flops: int
    weight_bytes: int
    top1: float | None = None
    latency_ms: float | None = None  # measured (dense: the prediction when not measured)
    predicted_latency_ms: float | None = None  # dense only
    peak_activation_bytes: int | None = None  # pruned only

    def to_dict(self) -> dict[str, Any]:
        d = {
            "latency_ms": self.latency_ms,
            "predicted_latency_ms": self.predicted_latency_ms,
            "params": self.params,
            "flops": self.flops,
            "weight_bytes": self.weight_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "top1": self.top1,
        }
        # the two optional keys appear only where they belong (as report.json always had)
        for key in ("predicted_latency_ms", "peak_activation_bytes"):
            if d[key] is None:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelStats:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# keys of a prune run only: a dense row (``verification`` None) has no controller or method
_PRUNE_ONLY = (
    "latency_checked_by",
    "verification",
    "dropped_blocks",
    "controller_decision_s",
    "versions",
    "method_recovery",
    "timings",
)
# measured runs only: absent where nothing was measured (or the hosts agree)
_WHEN_SET = ("latency_ratio_ci95", "measurements", "host_note", "diagnostics", "quantization")
_WHEN_SET += ("precision_choice", "latency_not_predicted")


@dataclass(frozen=True)
class RunReport:
    """One run's report.json: the models before and after, the budget and its verdict."""

    model: str
    method: str  # a method name, or "dense" for the bench's dense row
    dense: ModelStats
    pruned: ModelStats
    device: str | None = None
    device_table: str | None = None  # "measured" / "estimated" (None without a device)
    budget: dict = field(default_factory=dict)  # Budget.to_dict() ({} for the dense row)
    predicted_latency_ms: float | None = None
    measured_latency_ms: float | None = None
    latency_ratio: float | None = None  # measured pruned / dense
    budget_met: bool | None = None
    layers: list = field(default_factory=list)  # {layer, convs, before, after} per group
    recovery_epochs: int = 0
    wall_time_s: float | None = None
    seed: int = 0
    # prune runs only (see _PRUNE_ONLY)
    latency_checked_by: str | None = None  # "measured" / "predicted" (None: no latency)
    verification: list | None = None  # the controller's attempts (None: a dense row)
    dropped_blocks: list | None = None
    controller_decision_s: float | None = None
    versions: dict | None = None
    method_recovery: dict | None = None
    timings: dict | None = None  # method_s, verify_s, recovery_s
    # the 95% interval of latency_ratio (the final verification's, else the search's)
    latency_ratio_ci95: list | None = None
    # budget.verify.Measurement.to_dict() of the controller's accepted plan ("search") and
    # of the independent final verification ("final", fresh sessions, pruned first)
    measurements: dict | None = None
    host_note: str | None = None  # the verifying host is not the one the table came from
    diagnostics: str | None = None  # the method's diagnostics file, beside report.json
    # the deployable model.onnx's precision; int8: how it was quantized and how it compares
    # with fp32 (edgeprune.quant: method, calibration images, agreement, top-1 of both)
    precision: str = "fp32"
    quantization: dict | None = None
    # --precision auto/int8 under a latency budget: per precision the predicted ratio, the
    # measured ratio with its interval, the val score, and the rule that chose
    precision_choice: dict | None = None
    # under a latency budget: the ops the predictor priced beyond its measured rows
    # (channels extrapolated, a substitute family), one line each; [] for none
    latency_not_predicted: list | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report.json document (the keys ``edgeprune report`` reads)."""
        d: dict[str, Any] = {
            "model": self.model,
            "method": self.method,
            "device": self.device,
            "device_table": self.device_table,
            "budget": dict(self.budget),
            "dense": self.dense.to_dict(),
            "pruned": self.pruned.to_dict(),
            "predicted_latency_ms": self.predicted_latency_ms,
            "measured_latency_ms": self.measured_latency_ms,
            "latency_ratio": self.latency_ratio,
            "budget_met": self.budget_met,
            "latency_checked_by": self.latency_checked_by,
            "verification": self.verification,
            "dropped_blocks": self.dropped_blocks,
            "layers": list(self.layers),
            "recovery_epochs": self.recovery_epochs,
            "controller_decision_s": self.controller_decision_s,
            "wall_time_s": self.wall_time_s,
            "seed": self.seed,
            "versions": self.versions,
            "method_recovery": self.method_recovery,
            "timings": self.timings,
            "latency_ratio_ci95": self.latency_ratio_ci95,
            "measurements": self.measurements,
            "host_note": self.host_note,
            "diagnostics": self.diagnostics,
            "precision": self.precision,
            "quantization": self.quantization,
            "precision_choice": self.precision_choice,
            "latency_not_predicted": self.latency_not_predicted,
        }
        for key in _PRUNE_ONLY if self.verification is None else ():
            del d[key]
        for key in _WHEN_SET:
            if d[key] is None:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunReport:
        """A RunReport from a report.json document (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)} - {"dense", "pruned"}
        kw = {k: v for k, v in d.items() if k in names}
        dense, pruned = d.get("dense") or {}, d.get("pruned") or {}
        return cls(dense=ModelStats.from_dict(dense), pruned=ModelStats.from_dict(pruned), **kw)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """``obj`` as indented JSON at ``path``, atomically (NaN/inf and tensors as floats)."""
    from edgeprune.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=1, default=float))


def write_run_report(run_dir: str | os.PathLike, report: RunReport) -> str:
    """Write ``run_dir/report.json`` atomically; returns its path."""
    path = os.path.join(run_dir, REPORT_FILE)
    write_json(path, report.to_dict())
    return path
