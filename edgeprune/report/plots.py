"""The report's PNG plots (matplotlib, the optional ``plot`` extra; imported on use)."""

from __future__ import annotations

import pandas as pd

from edgeprune.report.pareto import pareto_front
from edgeprune.report.rundirs import Run

DPI = 110


def _plt():
    from edgeprune.errors import require

    mpl = require("matplotlib", "plot")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> str:
    from edgeprune.fileio import atomic_write

    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=DPI))
    fig.clear()
    return path


def accuracy_vs_latency(df: pd.DataFrame, path: str) -> str | None:
    """Top-1 vs measured latency, Pareto front per method.

    The x axis is each model's latency as a ratio to dense timed interleaved with it in the
    same run (absolute ms on a shared machine drift between runs); predicted ms when no run
    was measured.
    """
    plt = _plt()
    d = df[df["status"] == "ok"].copy()
    if d["latency_ratio"].notna().any():
        x, xlabel = d["latency_ratio"], "measured latency (x dense, timed interleaved with it)"
    else:
        x, xlabel = d["predicted_latency_ms"], "predicted latency (ms)"
    d = d.assign(x=x).dropna(subset=["x", "top1"])
    if d.empty:
        return None
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for method, g in d.groupby("method", sort=True):
        marker = "*" if method == "dense" else "o"
        pts = ax.plot(g["x"], 100 * g["top1"], marker, label=method, ms=10 if marker == "*" else 6)
        front = g.iloc[pareto_front(list(zip(g["x"], g["top1"], strict=True)))]
        ax.plot(front["x"], 100 * front["top1"], "-", color=pts[0].get_color(), alpha=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("top-1 (%)")
    ax.set_title("accuracy vs latency (lines: Pareto front per method)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def channels(runs: list[Run], path: str) -> str | None:
    """Per-layer channels: dense (bars) and each run (lines)."""
    plt = _plt()
    with_layers = [r for r in runs if r.report.get("layers")]
    if not with_layers:
        return None
    base = with_layers[0].report["layers"]
    fig, ax = plt.subplots(figsize=(max(6, 0.18 * len(base)), 4))
    ax.bar(range(len(base)), [lay["before"] for lay in base], color="0.85", label="dense")
    for r in with_layers:
        if r.row.get("method") == "dense":
            continue
        ax.plot([lay["after"] for lay in r.report["layers"]], ".-", lw=1, label=r.label)
    ax.set_xlabel("prunable layer (group) index")
    ax.set_ylabel("output channels")
    ax.set_title("channels per layer before (bars) and after pruning")
    ax.legend(fontsize=6, ncol=2)
    return _save(fig, path)


def latency_breakdown(per_run: dict[str, dict[str, float]], path: str) -> str | None:
    """Predicted ms per layer from the device table, for dense and each run."""
    plt = _plt()
    if not per_run:
        return None
    layers = list(next(iter(per_run.values())).keys())
    fig, ax = plt.subplots(figsize=(max(6, 0.14 * len(layers)), 4))
    for label, ms in per_run.items():
        style = {"color": "0.6", "lw": 2} if label == "dense" else {"lw": 1}
        ax.plot([ms.get(n, 0.0) for n in layers], ".-", label=label, **style)
    ax.set_xlabel("op index (model order; dropped layers at 0)")
    ax.set_ylabel("predicted ms (device table)")
    ax.set_title("where the time goes: per-layer latency")
    ax.legend(fontsize=6, ncol=2)
    return _save(fig, path)


def predicted_vs_measured(df: pd.DataFrame, path: str) -> str | None:
    """Predicted vs measured latency of every measured run, with y = x."""
    plt = _plt()
    d = df.dropna(subset=["predicted_latency_ms", "measured_latency_ms"])
    if d.empty:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for method, g in d.groupby("method", sort=True):
        ax.plot(g["predicted_latency_ms"], g["measured_latency_ms"], "o", label=method)
    lo = float(min(d["predicted_latency_ms"].min(), d["measured_latency_ms"].min()))
    hi = float(max(d["predicted_latency_ms"].max(), d["measured_latency_ms"].max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.set_xlabel("predicted latency (ms)")
    ax.set_ylabel("measured latency (ms)")
    ax.set_title("cost model fidelity")
    ax.legend(fontsize=7)
    return _save(fig, path)


def training_curves(histories: dict[str, list[dict]], path: str) -> str | None:
    """Recovery training loss and (val) top-1 per epoch, one line per run."""
    plt = _plt()
    histories = {k: v for k, v in histories.items() if v}
    if not histories:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for label, hist in histories.items():
        ep = [h["epoch"] for h in hist]
        a1.plot(ep, [h.get("train_loss") for h in hist], "o-", label=label)
        acc = [h.get("val_top1", h.get("train_top1")) for h in hist]
        a2.plot(ep, [100 * a if a is not None else None for a in acc], "o-", label=label)
    a1.set(xlabel="epoch", ylabel="train loss", title="recovery: loss")
    a2.set(xlabel="epoch", ylabel="top-1 (%)", title="recovery: val (else train) top-1")
    a2.legend(fontsize=6)
    return _save(fig, path)


def aap_rounds(rounds: dict[str, list[dict]], path: str) -> str | None:
    """AAP round by round (the paper's Figure 2b): accuracy loss, and params / FLOPs /
    predicted and measured latency as ratios to dense; one colour per run, rolled-back
    rounds hollow."""
    plt = _plt()
    rounds = {k: v for k, v in rounds.items() if len(v) > 1}
    if not rounds:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.8))
    for label, recs in rounds.items():
        dense, rest = recs[0], recs[1:]
        r = [h["round"] for h in rest]
        color = a1.plot(r, [h.get("acc_loss") for h in rest], "-", lw=1, label=label)[0]
        color = color.get_color()
        for x, h in zip(r, rest, strict=True):
            face = "none" if h["outcome"] == "violation" else color
            a1.plot(x, h.get("acc_loss"), "o", color=color, mfc=face)
        for key, style in _AAP_SIZES:
            if dense.get(key):
                ys = [h[key] / dense[key] if h.get(key) else None for h in rest]
                a2.plot(r, ys, style, color=color, lw=1)
        meas = [_measured_ratio(h) for h in rest]
        if any(m is not None for m in meas):
            a2.plot(r, meas, "o-", color=color, ms=3, lw=1.5)
    for key, style in _AAP_SIZES:  # the legend of the line styles
        a2.plot([], [], style, color="0.3", label=key.replace("_ms", ""))
    a2.plot([], [], "o-", color="0.3", ms=3, label="measured latency")
    a1.set(xlabel="round", ylabel="val top-1 loss (points)", title="AAP: accuracy loss")
    a2.set(xlabel="round", ylabel="x dense", title="AAP: size per round")
    a1.legend(fontsize=6)
    a2.legend(fontsize=6)
    return _save(fig, path)


_AAP_SIZES = (("params", ":"), ("flops", "--"), ("predicted_latency_ms", "-."))


def _measured_ratio(h: dict) -> float | None:
    ms, dense = h.get("measured_latency_ms"), h.get("dense_measured_latency_ms")
    return ms / dense if ms and dense else None
