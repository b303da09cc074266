"""Per-layer predicted latency of a run's model (where the time goes), from the device table."""

from __future__ import annotations

import os

from edgeprune.report.rundirs import Run


def latency_breakdown(run: Run) -> dict[str, float] | None:
    """Layer/op name -> predicted ms on the run's device (None without device or model)."""
    device, model = run.report.get("device"), run.report.get("model")
    if not device or not model:
        return None
    from edgeprune.cost.latency import LatencyPredictor
    from edgeprune.devices.profile import load_profile
    from edgeprune.surgery import load_model

    spec = run.path if os.path.isfile(os.path.join(run.path, "model.json")) else model
    if spec == model and run.row.get("method") != "dense":
        return None  # a pruned run without its saved model
    lm = load_model(spec)
    pred = LatencyPredictor.from_model(lm.model, lm.input_size, load_profile(device)).predict()
    out: dict[str, float] = {}
    for c in pred.per_layer:
        out[c.name] = out.get(c.name, 0.0) + c.latency_ms
    return out


def stage_of(layer: str) -> str:
    """Coarse stage of a layer name: 'layer2.3.conv1' -> 'layer2'."""
    return layer.split(".")[0]
