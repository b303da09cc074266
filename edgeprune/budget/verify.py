"""Measure a pruned model against its dense twin on the device (one interleaved run, with
the device profile's runtime), with a 95% interval on their ratio.

At ``precision`` int8 the pruned model is timed as its int8 QDQ ONNX (quantized on random
inputs: calibration sets ranges, not the graph ORT runs) against the DENSE FP32 model, so a
latency budget stays relative to the dense fp32 model whatever precision is chosen."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch.nn as nn

from edgeprune.runtimes.interval import RatioInterval

DEFAULT_HALFWIDTH = 0.015  # time until the ratio's 95% interval is within +-1.5% ...
DEFAULT_MAX_TIME_S = 12.0  # ... or this many seconds have passed


@dataclass(frozen=True)
class Measurement:
    """Latency of dense and pruned measured in the same interleaved run on the device, and
    the interval of pruned/dense (None where the runtime cannot interleave)."""

    dense_ms: float
    pruned_ms: float
    n_runs: int
    host: str
    interval: RatioInterval | None = None
    order: str = "dense_first"  # which model ran first in each round
    identity: dict = field(default_factory=dict)  # the device agent's identity of the host
    sessions: tuple[Measurement, ...] = ()  # the separate sessions combined (if several)

    @property
    def ratio(self) -> float:
        """Pruned / dense: the median of per-round ratios when interleaved."""
        return self.interval.median if self.interval else self.pruned_ms / self.dense_ms

    @property
    def ratio_upper(self) -> float:
        """The upper end of the ratio's 95% interval (the ratio itself without one)."""
        return self.interval.hi if self.interval else self.ratio

    @property
    def pruned_ms_upper(self) -> float:
        """The pruned latency at the ratio's upper bound (for budgets in milliseconds)."""
        return self.pruned_ms * self.ratio_upper / self.ratio if self.ratio else self.pruned_ms

    def to_dict(self) -> dict:
        """For report.json: latencies, the ratio and its interval, order, rounds, host."""
        return {
            "dense_latency_ms": self.dense_ms,
            "pruned_latency_ms": self.pruned_ms,
            "ratio": self.ratio,
            "interval": self.interval.to_dict() if self.interval else None,
            "order": self.order,
            "n_runs": self.n_runs,
            "host": self.host,
            "sessions": [s.to_dict() for s in self.sessions],
        }


def combine(sessions: list[Measurement]) -> Measurement:
    """One Measurement from separate sessions of the same pair: median latencies, the
    sessions' combined interval (``combine_sessions``), all of them kept."""
    import statistics

    from edgeprune.runtimes.interval import combine_sessions

    if len(sessions) == 1:
        return sessions[0]
    ivs = [s.interval for s in sessions]
    return Measurement(
        statistics.median(s.dense_ms for s in sessions),
        statistics.median(s.pruned_ms for s in sessions),
        sum(s.n_runs for s in sessions),
        sessions[0].host,
        combine_sessions(ivs) if all(ivs) else None,
        "alternating, " + sessions[0].order,
        sessions[0].identity,
        tuple(sessions),
    )


@dataclass(frozen=True)
class Checks:
    """How a plan's latency is checked on the device: ``quick`` (one session, what the
    controller steers by) and ``confirm`` (separate fresh sessions, the order swapped: a
    plan is accepted only when this also meets the budget, since one session cannot see
    the session-to-session spread). Called, it is ``quick``."""

    quick: Callable[[nn.Module, nn.Module], Measurement]
    confirm: Callable[[nn.Module, nn.Module], Measurement] | None = None

    def __call__(self, dense: nn.Module, pruned: nn.Module) -> Measurement:
        return self.quick(dense, pruned)


def measurement_from_rows(
    rows: list[dict], pruned_first: bool, host: str, target_halfwidth: float | None
) -> Measurement:
    """A Measurement from the two result rows of ``time_models`` (in upload order)."""
    from edgeprune.runtimes.timing import pair_interval

    pruned, dense = (rows[0], rows[1]) if pruned_first else (rows[1], rows[0])
    return Measurement(
        float(dense["latency_ms_median"]),
        float(pruned["latency_ms_median"]),
        int(pruned["n_runs"]),
        host,
        pair_interval(pruned, dense, target_halfwidth),
        "pruned_first" if pruned_first else "dense_first",
        dict(rows[0].get("device") or {}),
    )


@dataclass(frozen=True)
class MeasureSettings:
    """How long to time a pair: at least ``min_time_s``, then until the interval's
    half-width is ``halfwidth`` or ``max_time_s`` has passed; which model runs first; in
    how many separate sessions (fresh processes, the order swapped each time)."""

    min_time_s: float = 3.0
    halfwidth: float = DEFAULT_HALFWIDTH
    max_time_s: float = DEFAULT_MAX_TIME_S
    pruned_first: bool = False
    sessions: int = 1

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def quantize_for_timing(path: str, input_size) -> None:
    """Replace an fp32 ONNX file by its int8 QDQ model (random calibration: timing only)."""
    from edgeprune.quant.calibration import random_batches
    from edgeprune.quant.ptq import quantize_onnx

    fp32 = path + ".fp32.onnx"
    os.replace(path, fp32)
    quantize_onnx(fp32, path, random_batches(tuple(input_size), 2, batch_size=1))
    os.unlink(fp32)


def make_measurer(
    device: str,
    input_size,
    min_time_s: float | MeasureSettings = 3.0,
    host: str | None = None,
    *,
    key: str | None = None,
    ssh=None,
    python: str | None = None,
    precision: str = "fp32",
):
    """A function (dense, pruned) -> Measurement that times both models on ``device``
    (over SSH with ``key``, ``ssh`` options and ``python`` when it is remote); every call
    starts fresh sessions. ``min_time_s`` may be a full ``MeasureSettings``. At ``precision``
    int8 the pruned model runs quantized, the dense one in fp32."""
    from edgeprune.devices.hosts import remote_python
    from edgeprune.devices.settings import device_settings
    from edgeprune.export.onnx_export import ExportConfig, export_onnx
    from edgeprune.runtimes import check_capabilities, time_models
    from edgeprune.targets import make_target

    ms = min_time_s if isinstance(min_time_s, MeasureSettings) else MeasureSettings(min_time_s)
    dev = device_settings(device)
    settings = dev.run_settings(interleave=True, min_time_s=ms.min_time_s, min_runs=50, warmup=20)
    settings = replace(settings, halfwidth=ms.halfwidth, max_time_s=ms.max_time_s)
    runtime = check_capabilities(dev.runtime, settings, n_models=2)  # before any export
    where = host or dev.host
    ssh_config = getattr(ssh, "ssh_config", None)
    python = remote_python(python, where, dev.python, ssh_config)  # else `device setup`'s
    key = key or dev.key

    def measure(dense: nn.Module, pruned: nn.Module) -> Measurement:
        with tempfile.TemporaryDirectory(prefix="edgeprune-verify-") as tmp:
            paths = [os.path.join(tmp, f"{k}.onnx") for k in ("pruned", "dense")]
            cfg = ExportConfig(dynamic_batch=False)
            export_onnx(pruned.eval(), input_size, paths[0], cfg)
            export_onnx(dense.eval(), input_size, paths[1], cfg)
            if precision == "int8":
                quantize_for_timing(paths[0], input_size)
            runs = []
            for i in range(max(1, ms.sessions)):
                first = ms.pruned_first != (i % 2 == 1)  # the order swaps every session
                target = make_target(where, key=key, options=ssh)
                try:
                    order = paths if first else paths[::-1]
                    res = time_models(target, order, runtime, settings, python)
                finally:
                    target.close()
                half = ms.halfwidth or None
                runs.append(measurement_from_rows(res, first, where or "local", half))
        return combine(runs)

    return measure
