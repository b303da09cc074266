"""The deploy report: report.json, report.csv and report.md, written atomically."""

from __future__ import annotations

import csv
import io
import json
import math
import os

from edgeprune.fileio import atomic_write_text

PRIMARY_KEYS = (
    "batch",
    "latency_ms_median",
    "latency_ms_p90",
    "latency_ms_p99",
    "throughput_ips",
    "predicted_latency_ms",
    "dense_latency_ms_median",
    "speedup",
    "ratio",
    "ratio_ci95",
    "ratio_rounds",
    "ratio_stop",
)
CSV_META = ("model", "device", "runtime", "params", "flops", "onnx_size_bytes")
CSV_ROW = (
    "batch",
    "latency_ms_median",
    "latency_ms_p90",
    "latency_ms_p99",
    "latency_ms_mean",
    "throughput_ips",
    "n_runs",
    "predicted_latency_ms",
    "dense_latency_ms_median",
    "dense_latency_ms_p90",
    "dense_throughput_ips",
    "speedup",
    "ratio",
    "ratio_ci95_lo",
    "ratio_ci95_hi",
    "ratio_rounds",
    "ratio_stop",
)


def batch_row(
    batch: int, res: dict, dense: dict | None, predicted: float | None, interval=None
) -> dict:
    """One report row: the model's timing at ``batch`` and, if given, the dense one and the
    ratio model/dense with its 95% interval (``runtimes.interval.RatioInterval``: median of
    per-round ratios, interval, rounds, spread, why timing stopped)."""
    row = {
        "batch": int(batch),
        "latency_ms_median": res.get("latency_ms_median"),
        "latency_ms_p90": res.get("latency_ms_p90"),
        "latency_ms_p99": res.get("latency_ms_p99"),
        "latency_ms_mean": res.get("latency_ms_mean"),
        "throughput_ips": res.get("throughput_ips"),
        "n_runs": res.get("n_runs"),
        "predicted_latency_ms": predicted,
    }
    if dense is not None:
        d_med, med = dense.get("latency_ms_median"), res.get("latency_ms_median")
        row.update(
            dense_latency_ms_median=d_med,
            dense_latency_ms_p90=dense.get("latency_ms_p90"),
            dense_throughput_ips=dense.get("throughput_ips"),
            speedup=(d_med / med) if d_med and med else None,
        )
    if interval is not None:
        row.update(
            ratio=interval.median,
            ratio_ci95=[interval.lo, interval.hi],
            ratio_ci95_lo=interval.lo,
            ratio_ci95_hi=interval.hi,
            ratio_halfwidth=interval.halfwidth,
            ratio_rounds=interval.n_rounds,
            ratio_spread=interval.spread,
            ratio_stop=interval.stop,
        )
    return row


def build_report(meta: dict, rows: list[dict]) -> dict:
    """Report dict: ``meta`` fields, the first batch size's row at top level, all in ``results``."""
    if not rows:
        raise ValueError("a deploy report needs at least one batch row")
    report = dict(meta)
    for key in PRIMARY_KEYS:
        if key in rows[0]:
            report[key] = rows[0][key]
    report.setdefault("predicted_latency_ms", None)
    report["results"] = rows
    return report


def _clean(obj):
    """JSON-safe: NaN/inf become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def render_csv(report: dict) -> str:
    """One CSV line per batch size with the model-level columns repeated."""
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(CSV_META + CSV_ROW), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in report["results"]:
        writer.writerow({**{k: report.get(k) for k in CSV_META}, **row})
    return buf.getvalue()


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def render_markdown(report: dict) -> str:
    """A short human-readable summary."""
    ident = report.get("device_identity") or {}
    device = " ".join(
        str(ident[k]) for k in ("hostname", "machine", "cpu", "board") if ident.get(k)
    )
    lines = [
        f"# Deploy report: {report.get('model')} on {report.get('device')}",
        "",
        f"- runtime: {report.get('runtime')} {report.get('runtime_version') or ''}".rstrip()
        + f" ({report.get('precision', 'fp32')}, threads={report.get('threads')})",
        f"- device: {device or '-'}",
        f"- params: {_fmt(report.get('params'))}, FLOPs (MACs): {_fmt(report.get('flops'))}, "
        f"ONNX: {_fmt(report.get('onnx_size_bytes'))} bytes",
    ]
    if report.get("device_check_max_abs_diff") is not None:
        lines.append(
            "- outputs on the device vs torch on the host: max |diff| "
            f"{report['device_check_max_abs_diff']:.3g}"
        )
    lines.append("")
    dense = any("speedup" in r for r in report["results"])
    head = ["batch", "median ms", "p90 ms", "p99 ms", "img/s", "predicted ms"]
    if dense:
        head += ["dense median ms", "speedup"]
    ratio = any("ratio" in r for r in report["results"])
    if ratio:
        head += ["ratio (95% interval, rounds)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["results"]:
        cells = [
            r["batch"],
            r.get("latency_ms_median"),
            r.get("latency_ms_p90"),
            r.get("latency_ms_p99"),
            r.get("throughput_ips"),
            r.get("predicted_latency_ms"),
        ]
        if dense:
            cells += [r.get("dense_latency_ms_median"), r.get("speedup")]
        if ratio:
            cells.append(_ratio_cell(r))
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    layers = report.get("layers") or []
    if layers:
        lines += [
            "",
            f"## Slowest layers (batch {report['results'][0]['batch']})",
            "",
            "| module | ms | ops |",
            "|---|---|---|",
        ]
        lines += [f"| {x['module']} | {x['ms']:.4f} | {x['ops']} |" for x in layers[:10]]
    for note in report.get("notes") or []:
        lines.append(f"\nNote: {note}")
    lines.append("")
    lines.append(
        "Absolute times hold for the device above only; compare ratios taken in the same run."
    )
    return "\n".join(lines) + "\n"


def _ratio_cell(row: dict) -> str:
    """``0.512 [0.505, 0.519], 812 rounds (narrow)`` ('-' without an interval)."""
    if row.get("ratio") is None:
        return "-"
    lo, hi = row["ratio_ci95"]
    return (
        f"{row['ratio']:.3f} [{lo:.3f}, {hi:.3f}], {row['ratio_rounds']} rounds "
        f"({row['ratio_stop']})"
    )


def write_report(out_dir: str, report: dict) -> dict[str, str]:
    """Write report.json, report.csv and report.md into ``out_dir`` (each atomically)."""
    os.makedirs(out_dir, exist_ok=True)
    clean = _clean(report)
    paths = {ext: os.path.join(out_dir, f"report.{ext}") for ext in ("json", "csv", "md")}
    atomic_write_text(paths["json"], json.dumps(clean, indent=2, sort_keys=False) + "\n")
    atomic_write_text(paths["csv"], render_csv(clean))
    atomic_write_text(paths["md"], render_markdown(clean))
    return paths
