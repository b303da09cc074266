"""Hand-made device profiles for unit tests: a latency table with a row for every key the
profiling sweep would measure for some ops, priced by a formula, and a profile reading it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from edgeprune.cost.latency_table import OpKey
from edgeprune.devices.profile import DeviceProfile, Identity, Provenance, TableRef, save_profile
from edgeprune.devices.sweep import TABLE_COLUMNS, plan_jobs

_BASE_MS = {"conv": 0.01, "add": 0.002, "pad_shortcut": 0.003, "pool": 0.001, "linear": 0.004}


def bilinear_cost(op: str, ci: int, co: int, k: int, s: int, h: int, w: int) -> float:
    """A latency in ms bilinear in (ci, co), so grid interpolation reproduces it exactly
    (a CIFAR ResNet's ops only)."""
    return _BASE_MS[op] + ci * co * k * k * h * w / 1e7 + (ci + co) * 1e-4


def hand_table(
    ops: Sequence,
    latency: Callable[[OpKey, str], float],
    precisions: Sequence[str] | None = None,
    drop_op: str | None = None,
) -> pd.DataFrame:
    """One row per key of ``plan_jobs(ops, alignment=1)`` and precision, at ``latency(key,
    precision)`` ms; ``precisions`` None: rows without a precision (read as fp32, priced as
    ``"fp32"``); rows of op ``drop_op`` left out."""
    rows = []
    for job in plan_jobs(ops, alignment=1):
        for op, ci, co, k, s, h, w in job.keys():
            if op == drop_op:
                continue
            groups = ci if op == "dwconv" else job.groups
            key = OpKey(op, ci, co, k, s, h, w, groups, job.kernel_w)
            for p in precisions or (None,):
                lat = latency(key, p or "fp32")
                row = key._asdict() | dict(batch=1, runtime="ort", threads=1, dtype="float32")
                row |= dict(latency_ms_median=lat, latency_ms_p90=lat, n_runs=1)
                row |= dict(method="hand", chain=1) | ({"precision": p} if p else {})
                rows.append(row)
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def hand_profile(
    root,
    table: pd.DataFrame,
    stem: str = "hand",
    calibration: dict | None = None,
    provenance: Provenance | None = None,
) -> DeviceProfile:
    """A saved profile named ``hand`` (``root/{stem}.yaml``) whose one table is ``table``
    (``root/{stem}.csv``); estimated by hand unless ``provenance`` says otherwise."""
    table.to_csv(root / f"{stem}.csv", index=False)
    prof = DeviceProfile(
        name="hand",
        identity=Identity(arch="x86_64", threads=1),
        channel_alignment=1,
        tables=(
            TableRef(
                f"{stem}.csv", provenance or Provenance("estimated", method="hand-made test table")
            ),
        ),
        calibration=calibration or {},
        path=str(root / f"{stem}.yaml"),
    )
    save_profile(prof, prof.path)
    return prof
