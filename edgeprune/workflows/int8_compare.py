"""fp32 vs int8 (PTQ) of one model: top-1 of both through ONNX Runtime and their latency
ratio timed interleaved by the device agent (benchmarks/int8_ptq.py)."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class CompareConfig:
    """What to compare and how to time it."""

    model: str
    out: str
    weights: str | None = None
    data_root: str | None = None
    test_images: int | None = None  # None: the whole test split
    threads: int = 2
    min_time_s: float = 10.0
    halfwidth: float = 0.015
    max_time_s: float = 60.0
    method: str = "minmax"
    calibration_images: int = 256


def compare_int8(cfg: CompareConfig, log=print) -> dict:
    """Export, quantize, score both on the test split, time both interleaved; the result."""
    from edgeprune.data import build_loader
    from edgeprune.export.onnx_export import export_onnx
    from edgeprune.quant import deployable as dq
    from edgeprune.runtimes import time_models
    from edgeprune.runtimes.settings import AgentSettings
    from edgeprune.surgery import load_model
    from edgeprune.targets import make_target

    os.makedirs(cfg.out, exist_ok=True)
    loaded = load_model(cfg.model, cfg.weights)
    fp32, int8 = os.path.join(cfg.out, "model_fp32.onnx"), os.path.join(cfg.out, "model.onnx")
    export_onnx(loaded.model, loaded.input_size, fp32)
    qcfg = dq.QuantConfig(method=cfg.method, calibration_images=cfg.calibration_images)
    t0 = time.time()
    calib, check, source = dq.inputs_for(cfg.data_root, loaded.input_size, qcfg)
    res = dq.make_int8(fp32, int8, calib, check, qcfg, source)
    res["quantize_s"] = time.time() - t0
    log(dq.agreement_line(res))
    if cfg.data_root:
        test = build_loader(cfg.data_root, "test", 250, shuffle=False, limit=cfg.test_images)
        res.update(dq.score_both(fp32, int8, test, None, "test"))
        log(f"test top-1 fp32 {res['test_top1_fp32']:.4f} int8 {res['test_top1_int8']:.4f}")
    settings = AgentSettings(
        threads=cfg.threads,
        interleave=True,
        min_time_s=cfg.min_time_s,
        halfwidth=cfg.halfwidth,
        max_time_s=cfg.max_time_s,
    )
    res["load_before"] = os.getloadavg()
    rows = time_models(make_target(None), [fp32, int8], "ort", settings, sys.executable)
    res["load_after"] = os.getloadavg()
    res["fp32_ms_median"] = rows[0]["latency_ms_median"]
    res["int8_ms_median"] = rows[1]["latency_ms_median"]
    res["ratio_interval"] = rows[1].get("ratio_interval")
    res["timing"] = {k: v for k, v in settings.to_dict().items()}
    res["ort"] = rows[0].get("runtime_version")
    return res
