"""Measure a pruned model against its dense twin on the device (one interleaved run, with
the device profile's runtime)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import torch.nn as nn


@dataclass(frozen=True)
class Measurement:
    """Latency of dense and pruned measured in the same interleaved run on the device."""

    dense_ms: float
    pruned_ms: float
    n_runs: int
    host: str

    @property
    def ratio(self) -> float:
        return self.pruned_ms / self.dense_ms


def make_measurer(
    device: str,
    input_size,
    min_time_s: float = 3.0,
    host: str | None = None,
    *,
    key: str | None = None,
    ssh=None,
    python: str | None = None,
):
    """A function (dense, pruned) -> Measurement that times both models on ``device``
    (over SSH with ``key``, ``ssh`` options and ``python`` when it is remote)."""
    from edgeprune.devices.hosts import remote_python
    from edgeprune.devices.settings import device_settings
    from edgeprune.export.onnx_export import ExportConfig, export_onnx
    from edgeprune.runtimes import check_capabilities, time_models
    from edgeprune.targets import make_target

    dev = device_settings(device)
    settings = dev.run_settings(interleave=True, min_time_s=min_time_s, min_runs=50, warmup=20)
    runtime = check_capabilities(dev.runtime, settings, n_models=2)  # before any export
    where = host or dev.host
    ssh_config = getattr(ssh, "ssh_config", None)
    python = remote_python(python, where, dev.python, ssh_config)  # else `device setup`'s
    key = key or dev.key

    def measure(dense: nn.Module, pruned: nn.Module) -> Measurement:
        with tempfile.TemporaryDirectory(prefix="edgeprune-verify-") as tmp:
            paths = [os.path.join(tmp, "dense.onnx"), os.path.join(tmp, "pruned.onnx")]
            cfg = ExportConfig(dynamic_batch=False)
            export_onnx(dense.eval(), input_size, paths[0], cfg)
            export_onnx(pruned.eval(), input_size, paths[1], cfg)
            target = make_target(where, key=key, options=ssh)
            try:
                res = time_models(target, paths, runtime, settings, python)
            finally:
                target.close()
        return Measurement(
            float(res[0]["latency_ms_median"]),
            float(res[1]["latency_ms_median"]),
            int(res[1]["n_runs"]),
            where or "local",
        )

    return measure
