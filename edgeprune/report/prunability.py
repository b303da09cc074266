"""The prunability table: one row per (torchvision model, budget), as CSV and Markdown.

Rows come from ``edgeprune.workflows.prunability``; this module only holds, reads, writes
and renders them (issue 16's "every torchvision classifier" table).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields

# what a row's status can be; "ok" means pruned, budget met and ONNX/ORT parity held
STATUSES = (
    "ok",
    "budget missed",
    "infeasible",
    "unsupported",
    "parity failed",
    "error",
    "timeout",
    "crashed",
    "skipped",
)
TRANSFORMER_PREFIXES = ("vit_", "swin_", "maxvit")


def family(model: str) -> str:
    """'transformer' for ViT, Swin and MaxViT, else 'cnn'."""
    name = model.split(":", 1)[-1]
    return "transformer" if name.startswith(TRANSFORMER_PREFIXES) else "cnn"


@dataclass
class PrunabilityRow:
    """One model pruned under one budget (or why not)."""

    model: str
    mode: str  # "flops" or "latency"
    budget: str  # e.g. "0.6x"
    status: str
    message: str = ""  # the tool's sentence, the exception, or why skipped
    params_before: int | None = None
    params_after: int | None = None
    flops_before: int | None = None
    flops_after: int | None = None
    budget_met: bool | None = None
    onnx_parity: bool | None = None  # model.onnx re-run in ORT against the saved model
    parity_max_abs_diff: float | None = None
    dense_ms: float | None = None  # measured on the device (latency mode)
    pruned_ms: float | None = None
    measured_ratio: float | None = None
    predicted_ratio: float | None = None
    profile_s: float | None = None  # latency table sweep for this model (latency mode)
    wall_s: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model, self.mode, self.budget)

    @property
    def flops_ratio(self) -> float | None:
        return _ratio(self.flops_after, self.flops_before)

    @property
    def params_ratio(self) -> float | None:
        return _ratio(self.params_after, self.params_before)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_csv(cls, d: dict[str, str]) -> PrunabilityRow:
        """A row as read back from the CSV (empty cells are None)."""
        kw: dict = {}
        for f in fields(cls):
            v = d.get(f.name, "")
            if v == "" or v is None:
                kw[f.name] = "" if f.type == "str" else None
            elif f.type.startswith("int"):
                kw[f.name] = int(float(v))
            elif f.type.startswith("float"):
                kw[f.name] = float(v)
            elif f.type.startswith("bool"):
                kw[f.name] = v == "True"
            else:
                kw[f.name] = v
        return cls(**kw)


def _ratio(a, b) -> float | None:
    return None if a is None or not b else a / b


COLUMNS = [f.name for f in fields(PrunabilityRow)]


def rows_to_csv(rows: list[PrunabilityRow]) -> str:
    """The rows as CSV text (header = the row's fields)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.to_dict().items()})
    return buf.getvalue()


def read_csv(path: str) -> list[PrunabilityRow]:
    """Rows from a CSV written by ``rows_to_csv`` ([] when the file does not exist)."""
    import os

    if not os.path.isfile(path):
        return []
    with open(path, newline="") as fh:
        return [PrunabilityRow.from_csv(d) for d in csv.DictReader(fh)]


def write_csv(path: str, rows: list[PrunabilityRow]) -> None:
    """Write the rows to ``path`` atomically."""
    from edgeprune.fileio import atomic_write_text

    atomic_write_text(path, rows_to_csv(rows))


def _m(n: int | None, unit: float = 1e6, digits: int = 1) -> str:
    return "" if n is None else f"{n / unit:.{digits}f}"


def _x(r: float | None) -> str:
    return "" if r is None else f"{r:.3f}x"


def _status(r: PrunabilityRow) -> str:
    if r.status in ("ok", "budget missed") or not r.message:
        return r.status
    return f"{r.status}: {r.message}"


def _parity(r: PrunabilityRow) -> str:
    if r.onnx_parity is None:
        return ""
    if not r.onnx_parity:
        return "no"
    diff = "" if r.parity_max_abs_diff is None else f" ({r.parity_max_abs_diff:.1e})"
    return "yes" + diff


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def flops_table(rows: list[PrunabilityRow]) -> str:
    """The FLOPs-budget table in Markdown (GMACs, M params)."""
    head = (
        "| model | status | MACs before → after (G) | FLOPs ratio | params before → after (M) "
        "| ONNX + ORT parity (max abs diff) | wall s |\n|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        macs = f"{_m(r.flops_before, 1e9, 2)} → {_m(r.flops_after, 1e9, 2)}"
        params = f"{_m(r.params_before)} → {_m(r.params_after)}"
        if r.flops_before is None:
            macs = params = ""
        wall = "" if r.wall_s is None else f"{r.wall_s:.0f}"
        cells = [r.model, _status(r), macs, _x(r.flops_ratio), params, _parity(r), wall]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return head + "\n".join(lines) + "\n"


def latency_table(rows: list[PrunabilityRow]) -> str:
    """The latency-budget table in Markdown (measured on the device, interleaved)."""
    head = (
        "| model | status | dense → pruned ms (measured) | measured ratio | predicted ratio "
        "| FLOPs ratio | parity | profile s | wall s |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        ms = "" if r.dense_ms is None else f"{r.dense_ms:.2f} → {r.pruned_ms or 0:.2f}"
        prof = "" if r.profile_s is None else f"{r.profile_s:.0f}"
        wall = "" if r.wall_s is None else f"{r.wall_s:.0f}"
        cells = [
            r.model,
            _status(r),
            ms,
            _x(r.measured_ratio),
            _x(r.predicted_ratio),
            _x(r.flops_ratio),
            _parity(r),
            prof,
            wall,
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return head + "\n".join(lines) + "\n"


def summary_lines(rows: list[PrunabilityRow]) -> list[str]:
    """Counts: ok rows per family and mode, and the status tally."""
    out = []
    for mode in ("flops", "latency"):
        sel = [r for r in rows if r.mode == mode]
        if not sel:
            continue
        for fam in ("cnn", "transformer"):
            fr = [r for r in sel if family(r.model) == fam]
            if not fr:
                continue
            ok = sum(r.status == "ok" for r in fr)
            tried = sum(r.status != "skipped" for r in fr)
            what = "CNN classifiers" if fam == "cnn" else "transformers"
            out.append(
                f"{mode} budget: {ok} of {len(fr)} {what} pruned under the budget with ONNX/ORT "
                f"parity ({tried} tried, {len(fr) - tried} skipped)"
            )
        tally: dict[str, int] = {}
        for r in sel:
            tally[r.status] = tally.get(r.status, 0) + 1
        out.append(f"{mode} statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    return out


def render_markdown(rows: list[PrunabilityRow], header: str = "") -> str:
    """The whole report: header, summary, then one table per mode that has rows."""
    parts = [header] if header else []
    parts.append("\n".join(f"- {s}" for s in summary_lines(rows)) + "\n")
    flops = [r for r in rows if r.mode == "flops"]
    lat = [r for r in rows if r.mode == "latency"]
    if flops:
        parts.append(f"### FLOPs budget {flops[0].budget}\n\n" + flops_table(flops))
    if lat:
        parts.append(f"### Latency budget {lat[0].budget} (measured)\n\n" + latency_table(lat))
    return "\n".join(parts)
