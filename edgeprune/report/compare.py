"""``edgeprune report``: Markdown + self-contained HTML (PNGs embedded) from run dirs."""

from __future__ import annotations

import base64
import html
import os

import pandas as pd

from edgeprune.report.rows import ROW_COLUMNS
from edgeprune.report.rundirs import Run, aap_rounds, load_runs, training_history

SUMMARY = (
    "method",
    "budget",
    "status",
    "precision",
    "measured_latency_ms",
    "latency_ratio",
    "predicted_latency_ms",
    "params",
    "flops_ratio",
    "speedup",
    "speedup_vs_flops",
    "top1",
    "method_s",
    "recovery_s",
    "budget_met",
)
PLOT_TITLES = {
    "accuracy_vs_latency": "Accuracy vs measured latency",
    "channels": "Channels per layer, before and after",
    "latency_breakdown": "Where the time goes (per-layer latency, device table)",
    "predicted_vs_measured": "Predicted vs measured latency",
    "training_curves": "Recovery training curves",
    "aap_rounds": "AAP round by round (accuracy loss and size per round)",
}


def rows_frame(runs: list[Run]) -> pd.DataFrame:
    """All runs' rows as a DataFrame with ROW_COLUMNS."""
    df = pd.DataFrame([r.row for r in runs], columns=list(ROW_COLUMNS))
    for col in ("measured_latency_ms", "predicted_latency_ms", "top1", "latency_ratio"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub Markdown table (no extra dependency)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = [_fmt(r[c]).replace("|", "\\|") for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def make_plots(runs: list[Run], df: pd.DataFrame, out: str) -> dict[str, str]:
    """Every plot that has data; name -> PNG path."""
    from edgeprune.report import plots
    from edgeprune.report.breakdown import latency_breakdown

    ok = [r for r in runs if r.row.get("status") == "ok"]
    breakdowns = {r.label: b for r in ok if (b := latency_breakdown(r))}
    histories = {r.label: training_history(r.path) for r in ok}
    made = {
        "accuracy_vs_latency": plots.accuracy_vs_latency(df, _png(out, "accuracy_vs_latency")),
        "channels": plots.channels(ok, _png(out, "channels")),
        "latency_breakdown": plots.latency_breakdown(breakdowns, _png(out, "latency_breakdown")),
        "predicted_vs_measured": plots.predicted_vs_measured(
            df, _png(out, "predicted_vs_measured")
        ),
        "training_curves": plots.training_curves(histories, _png(out, "training_curves")),
        "aap_rounds": plots.aap_rounds(
            {r.label: rr for r in ok if (rr := aap_rounds(r.path))}, _png(out, "aap_rounds")
        ),
    }
    return {k: v for k, v in made.items() if v}


def _png(out: str, name: str) -> str:
    return os.path.join(out, f"{name}.png")


def render_markdown(df: pd.DataFrame, pngs: dict[str, str], note: str = "") -> str:
    """The Markdown report (images referenced by file name)."""
    parts = ["# edgeprune report", "", _header(df), ""]
    if note:
        parts += [note, ""]
    parts += ["## Results", "", markdown_table(df[list(SUMMARY)]), ""]
    parts += [f"- {line}" for line in not_completed(df)] + [""]
    for name, path in pngs.items():
        parts += [f"## {PLOT_TITLES[name]}", "", f"![{name}]({os.path.basename(path)})", ""]
    return "\n".join(parts)


def render_html(df: pd.DataFrame, pngs: dict[str, str], note: str = "") -> str:
    """A self-contained HTML report (PNGs embedded as base64)."""
    body = [f"<h1>edgeprune report</h1><p>{html.escape(_header(df))}</p>"]
    if note:
        body.append(f"<p>{html.escape(note)}</p>")
    body.append("<h2>Results</h2>" + df[list(SUMMARY)].to_html(index=False, na_rep=""))
    body += [f"<p>{html.escape(line)}</p>" for line in not_completed(df)]
    for name, path in pngs.items():
        with open(path, "rb") as fh:
            data = base64.b64encode(fh.read()).decode("ascii")
        body.append(
            f"<h2>{PLOT_TITLES[name]}</h2><img alt='{name}' src='data:image/png;base64,{data}'>"
        )
    style = "body{font-family:sans-serif;max-width:1100px;margin:auto}table{font-size:12px}"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>edgeprune report</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )


def not_completed(df: pd.DataFrame) -> list[str]:
    """One line per row that is not ``ok``: what it was and why (e.g. an infeasible budget)."""
    bad = df[df["status"] != "ok"]
    return [f"{r.method} at {r.budget}: {r.status}: {r.message}" for r in bad.itertuples()]


def _header(df: pd.DataFrame) -> str:
    models = ", ".join(sorted({str(m) for m in df["model"].dropna()}))
    devices = ", ".join(sorted({str(d) for d in df["device"].dropna()})) or "no device"
    prov = ", ".join(sorted({str(p) for p in df["device_provenance"].dropna()}))
    text = f"{len(df)} runs of {models} on {devices}"
    return text + (f" (latency table: {prov})" if prov else "")


def make_report(paths: list[str], out: str, plots: bool = True) -> dict[str, str]:
    """Write report.md, report.html, results.csv (and PNGs) to ``out``; returns the paths."""
    from edgeprune.fileio import atomic_write_text
    from edgeprune.report.rows import rows_to_csv

    if plots:
        from edgeprune.errors import require

        require("matplotlib", "plot")  # one sentence naming the extra, before any output
    runs = load_runs(paths)
    os.makedirs(out, exist_ok=True)
    df = rows_frame(runs)
    pngs = make_plots(runs, df, out) if plots else {}
    note = "" if plots else "Plots skipped (--no-plots)."
    files = {
        "csv": os.path.join(out, "results.csv"),
        "markdown": os.path.join(out, "report.md"),
        "html": os.path.join(out, "report.html"),
    }
    atomic_write_text(files["csv"], rows_to_csv([r.row for r in runs]))
    atomic_write_text(files["markdown"], render_markdown(df, pngs, note))
    atomic_write_text(files["html"], render_html(df, pngs, note))
    return {**files, **pngs}
