"""Find and read run directories: bench output dirs and single prune run dirs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from edgeprune.errors import UserError
from edgeprune.report.rows import ROW_FIELDS, build_row, record_problem, report_problem


@dataclass
class Run:
    """One run: its CSV row, its report.json (if any) and its directory."""

    row: dict
    report: dict = field(default_factory=dict)
    path: str = ""

    @property
    def label(self) -> str:
        b = self.row.get("budget") or "-"
        return str(self.row.get("method")) if b == "-" else f"{self.row.get('method')} @ {b}"


def _read_json(path: str, check=None):
    """The JSON in ``path`` (None when there is no such file); unreadable JSON, or JSON
    ``check(value)`` finds a problem with, is one UserError naming the file."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as fh:
            value = json.load(fh)
    except (OSError, ValueError):
        raise UserError(f"{path} is not readable JSON") from None
    problem = check(value) if check is not None else None
    if problem:
        raise UserError(f"{path} {problem}")
    return value


def _single(path: str) -> Run | None:
    """A run dir holding report.json (and maybe the bench's row.json)."""
    report = _read_json(os.path.join(path, "report.json"), report_problem)
    row = _read_json(os.path.join(path, "row.json"), lambda r: record_problem(r, ROW_FIELDS))
    if report is None and row is None:
        return None
    return Run(row or build_row(report, {"run_dir": path}), report or {}, path)


def load_runs(paths: list[str]) -> list[Run]:
    """Every run under ``paths`` (a bench OUT dir expands to its runs/*)."""
    runs: list[Run] = []
    for p in paths:
        if not os.path.isdir(p):
            raise UserError(f"{p} is not a directory")
        sub = os.path.join(p, "runs")
        if os.path.isdir(sub):
            found = [_single(os.path.join(sub, n)) for n in sorted(os.listdir(sub))]
        else:
            found = [_single(p)]
        found = [r for r in found if r is not None]
        if not found:
            raise UserError(f"{p} holds no report.json (neither a prune run nor a bench output)")
        runs += found
    return runs


def training_history(run_dir: str) -> list[dict]:
    """Per-epoch records saved by the train loop in ``run_dir/recovery/last.pt`` (or [])."""
    path = os.path.join(run_dir, "recovery", "last.pt")
    if not os.path.isfile(path):
        return []
    import pickle

    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(
            f"{path} cannot be read as plain tensors (edgeprune writes plain ones): it is "
            "corrupt or holds pickled objects whose loading could run code, so it was refused"
        ) from None
    except Exception:  # an unreadable checkpoint only loses its curve
        return []
    history = ckpt.get("history", []) if isinstance(ckpt, dict) else []
    return list(history) if isinstance(history, list) else []


def aap_rounds(run_dir: str) -> list[dict]:
    """AAP's per-round records from ``run_dir/diagnostics.json`` (or [] for other runs)."""
    try:
        diag = _read_json(os.path.join(run_dir, "diagnostics.json"))
    except UserError:  # unreadable diagnostics only lose their plot
        return []
    if not isinstance(diag, dict) or diag.get("method") != "aap":
        return []
    return [r for r in diag.get("rounds") or [] if isinstance(r, dict)]
