"""One comparison row per run: built from a run's report.json (pure arithmetic, no I/O)."""

from __future__ import annotations

import csv
import io
import json
import math

ROW_COLUMNS = (
    "model",
    "method",
    "budget",
    "status",
    "precision",
    "device",
    "measured_latency_ms",
    "dense_latency_ms",
    "latency_ratio",
    "predicted_latency_ms",
    "params",
    "params_ratio",
    "flops",
    "flops_ratio",
    "speedup",
    "flops_reduction",
    "speedup_vs_flops",
    "top1",
    "pretrained_top1",
    "budget_met",
    "recovery_epochs",
    "wall_s",
    "method_s",
    "verify_s",
    "recovery_s",
    "seed",
    "device_table",
    "device_provenance",
    "versions",
    "run_dir",
    "message",
)


def _ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is 0."""
    if a is None or b is None or not b or _nan(a) or _nan(b):
        return None
    return float(a) / float(b)


def _nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


def speedup_vs_flops(
    dense_ms: float | None, ms: float | None, dense_flops: float | None, flops: float | None
) -> float | None:
    """Measured speedup divided by the FLOPs reduction factor (1.0: time falls with FLOPs)."""
    speedup, reduction = _ratio(dense_ms, ms), _ratio(dense_flops, flops)
    return _ratio(speedup, reduction)


def budget_label(budget: dict | None) -> str:
    """'0.5x latency', '0.8ms latency', '0.5x flops'... from a Budget dict."""
    if not budget:
        return "-"
    parts = []
    for key, unit, what in (
        ("latency_ratio", "x", "latency"),
        ("latency_ms", "ms", "latency"),
        ("flops_ratio", "x", "flops"),
        ("flops", "", "flops"),
        ("params_ratio", "x", "params"),
        ("params", "", "params"),
        ("weight_mb", "MB", "weights"),
        ("activation_mb", "MB", "activations"),
        ("max_acc_drop", "pt", "acc-drop"),
    ):
        if budget.get(key) is not None:
            parts.append(f"{budget[key]:g}{unit} {what}")
    return ", ".join(parts) or "-"


def build_row(report: dict, meta: dict | None = None) -> dict:
    """The CSV row of one run from its report.json (``meta`` adds/overrides columns)."""
    d, p = report.get("dense", {}), report.get("pruned", {})
    timings = report.get("timings", {})
    measured = report.get("measured_latency_ms")
    dense_ms = d.get("latency_ms") if measured is not None else None
    row = {
        "model": report.get("model"),
        "method": report.get("method"),
        "budget": budget_label(report.get("budget")),
        "status": "ok",
        # the deployed model.onnx's precision (chosen by --precision auto); older: fp32
        "precision": report.get("precision") or "fp32",
        "device": report.get("device"),
        "measured_latency_ms": measured,
        "dense_latency_ms": dense_ms,
        "latency_ratio": report.get("latency_ratio", _ratio(measured, dense_ms)),
        "predicted_latency_ms": report.get("predicted_latency_ms"),
        "params": p.get("params"),
        "params_ratio": _ratio(p.get("params"), d.get("params")),
        "flops": p.get("flops"),
        "flops_ratio": _ratio(p.get("flops"), d.get("flops")),
        "speedup": _ratio(dense_ms, measured),
        "flops_reduction": _ratio(d.get("flops"), p.get("flops")),
        "speedup_vs_flops": speedup_vs_flops(dense_ms, measured, d.get("flops"), p.get("flops")),
        "top1": p.get("top1"),
        "pretrained_top1": d.get("top1"),
        "budget_met": report.get("budget_met"),
        "recovery_epochs": report.get("recovery_epochs"),
        "wall_s": report.get("wall_time_s"),
        "method_s": timings.get("method_s", report.get("controller_decision_s")),
        "verify_s": timings.get("verify_s"),
        "recovery_s": timings.get("recovery_s"),
        "seed": report.get("seed"),
        "device_table": report.get("device_table"),
        "versions": _versions_text(report.get("versions")),
    }
    row.update(meta or {})
    return {k: row.get(k) for k in ROW_COLUMNS}


# report.json fields: name -> (required?, what it holds); a run always has the required ones
_NUMBER = "number"
REPORT_FIELDS: dict[str, tuple[bool, str]] = {
    "model": (True, "str"),
    "method": (True, "str"),
    "dense": (True, "dict"),
    "pruned": (True, "dict"),
    "budget": (False, "dict"),
    "device": (False, "str"),
    "measured_latency_ms": (False, _NUMBER),
    "latency_ratio": (False, _NUMBER),
    "predicted_latency_ms": (False, _NUMBER),
    "budget_met": (False, "bool"),
    "recovery_epochs": (False, "int"),
    "seed": (False, "int"),
    "wall_time_s": (False, _NUMBER),
    "timings": (False, "dict"),
    "layers": (False, "list"),
}
MODEL_FIELDS = ("params", "flops", "top1", "latency_ms")  # numbers (or null) in dense/pruned
ROW_FIELDS: dict[str, tuple[bool, str]] = {"method": (True, "str"), "status": (True, "str")}
_KINDS = {
    "str": ((str,), "a string"),
    "dict": ((dict,), "an object"),
    "list": ((list,), "a list"),
    "bool": ((bool,), "true or false"),
    "int": ((int,), "an integer"),
    _NUMBER: ((int, float), "a number"),
}


def _fits(value, kind: str) -> bool:
    types, _ = _KINDS[kind]
    return isinstance(value, types) and (kind == "bool" or not isinstance(value, bool))


def record_problem(record, fields: dict[str, tuple[bool, str]]) -> str | None:
    """What is wrong with a run's JSON record (missing or mistyped field), or None."""
    if not isinstance(record, dict):
        return f"holds {type(record).__name__ if record is not None else 'null'}, not an object"
    for name, (required, kind) in fields.items():
        value = record.get(name)
        if value is None:
            if required:
                return f"has no {name!r} (not a run's report)"
            continue
        if not _fits(value, kind):
            return f"field {name!r} is {value!r}, expected {_KINDS[kind][1]}"
    return None


def report_problem(report) -> str | None:
    """What is wrong with a report.json (fields a run has, their types), or None."""
    problem = record_problem(report, REPORT_FIELDS)
    if problem is not None:
        return problem
    for part in ("dense", "pruned"):
        for name in MODEL_FIELDS:
            v = report[part].get(name)
            if v is not None and not _fits(v, _NUMBER):
                return f"field '{part}.{name}' is {v!r}, expected a number"
    return None


def with_measurement(row: dict, dense_ms: float, ms: float) -> dict:
    """The row with a latency measured by the harness (dense and slim in one run)."""
    flops_red = row.get("flops_reduction")
    speedup = _ratio(dense_ms, ms)
    return {
        **row,
        "measured_latency_ms": ms,
        "dense_latency_ms": dense_ms,
        "latency_ratio": _ratio(ms, dense_ms),
        "speedup": speedup,
        "speedup_vs_flops": _ratio(speedup, flops_red),
    }


def status_row(model: str, method: str, budget: str, status: str, message: str = "") -> dict:
    """A row for a run that produced no model (not available, error)."""
    row = {k: None for k in ROW_COLUMNS}
    row.update(model=model, method=method, budget=budget, status=status, message=message)
    return row


def _versions_text(versions) -> str | None:
    if not versions:
        return None
    if isinstance(versions, str):
        return versions
    return ";".join(f"{k}={v}" for k, v in sorted(versions.items()))


def rows_to_csv(rows: list[dict]) -> str:
    """CSV text with ROW_COLUMNS (dicts/lists as JSON, None as empty)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(ROW_COLUMNS), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in ROW_COLUMNS})
    return buf.getvalue()


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return v
