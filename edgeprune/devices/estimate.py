"""Estimated latency tables for devices we cannot reach (Raspberry Pi 3B+).

A roofline-style model of ONNX Runtime on 4x Cortex-A53 @ 1.4 GHz, filled in on the same
grid a real sweep would measure, so the predictor has one code path::

    latency = per_op_ms + max(flops / (gflops * eff), bytes / bandwidth)

* compute: direct 3x3/1x1 convs reach 11.9 GFLOPS median at 1.2 GHz (AutoTVM-tuned,
  tophub bcm2837 log, 181 workloads, flat in layer size) -> 13.9 at 1.4 GHz; depthwise
  2.3 -> 2.7 GFLOPS; channels are padded to the 4-lane NEON width (the step structure);
* memory: 2.1 GB/s (tinymembench NEON read, single thread, Pi 3B+) for every tensor read
  and written (weights included);
* ``eff`` and ``per_op_ms`` are calibrated so CIFAR ResNet-56 takes 56.7 ms
  (AAP: 17.63 img/s, PyTorch, batch 1, Pi 3B+). That number is PyTorch, not ONNX Runtime:
  absolute values are a conservative guess; ratios between variants are what matter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from edgeprune.cost.ops import LayerOp
from edgeprune.devices.sweep import TABLE_COLUMNS, Job, plan_jobs
from edgeprune.search import bisect_float


@dataclass(frozen=True)
class CpuModel:
    """Roofline parameters of a CPU for one runtime configuration."""

    conv_gflops: float = 11.9 * 1.4 / 1.2
    dw_gflops: float = 2.3 * 1.4 / 1.2
    bandwidth_gbs: float = 2.1
    lanes: int = 4
    eff: float = 1.0
    per_op_ms: float = 0.05
    threads: int = 4


def _pad(c: int, lanes: int) -> int:
    return int(math.ceil(c / lanes) * lanes)


def op_latency_ms(
    op: str, ci: int, co: int, k: int, s: int, h: int, w: int, m: CpuModel, groups: int = 1
) -> float:
    """Modelled latency of one op in ms (``groups``: a grouped conv's group count)."""
    ho, wo = max(1, math.ceil(h / s)), max(1, math.ceil(w / s))
    if op == "conv":
        g = max(1, groups)
        flops = 2.0 * _pad(ci // g, m.lanes) * _pad(co, m.lanes) * k * k * ho * wo
        bytes_ = 4.0 * (ci * h * w + co * ho * wo + ci // g * co * k * k)
        comp = flops / (m.conv_gflops * m.eff * 1e6)
    elif op == "dwconv":
        flops = 2.0 * _pad(ci, m.lanes) * k * k * ho * wo
        bytes_ = 4.0 * (ci * h * w + ci * ho * wo + ci * k * k)
        comp = flops / (m.dw_gflops * m.eff * 1e6)
    elif op == "linear":  # on h*w tokens (1 after a flatten)
        flops = 2.0 * ci * co * h * w
        bytes_ = 4.0 * ((ci + co) * h * w + ci * co)
        comp = flops / (m.conv_gflops * m.eff * 1e6)
    else:  # add, pad_shortcut, pools, activations, mul, shuffle, concat, layernorm: memory
        comp = 0.0
        n_out = co * ho * wo if op != "pool" else co
        bytes_ = 4.0 * (ci * h * w * (2 if op == "add" else 1) + n_out)
    mem = bytes_ / (m.bandwidth_gbs * 1e6)
    return m.per_op_ms + max(comp, mem)


def estimate_rows(jobs: Sequence[Job], m: CpuModel, batch: int = 1) -> list[dict]:
    """Table rows for every key of ``jobs`` from the model."""
    rows = []
    for job in jobs:
        for op, ci, co, k, s, h, w in job.keys():
            lat = batch * op_latency_ms(op, ci, co, k, s, h, w, m, job.groups)
            rows.append(
                {
                    "op": op,
                    "c_in": ci,
                    "c_out": co,
                    "kernel": k,
                    "stride": s,
                    "groups": ci if op == "dwconv" else job.groups,
                    "h_in": h,
                    "w_in": w,
                    "batch": batch,
                    "runtime": "ort",
                    "threads": m.threads,
                    "dtype": "float32",
                    "latency_ms_median": round(lat, 6),
                    "latency_ms_p90": round(lat * 1.05, 6),
                    "n_runs": 0,
                    "method": "estimated",
                    "chain": 0,
                }
            )
    return rows


def model_total_ms(ops: Sequence[LayerOp], m: CpuModel) -> float:
    """Modelled end-to-end latency of a dense op list."""
    return sum(
        op_latency_ms(o.op, o.c_in, o.c_out, o.kernel, o.stride, o.h_in, o.w_in, m, o.groups)
        for o in ops
        if o.op != "unknown"
    )


def calibrate_to(ops: Sequence[LayerOp], target_ms: float, m: CpuModel) -> CpuModel:
    """Scale compute efficiency so the dense model matches a published latency."""
    from dataclasses import replace

    def fast_enough(eff: float) -> bool:
        return model_total_ms(ops, replace(m, eff=eff)) <= target_ms

    lo, hi = bisect_float(fast_enough, 0.01, 10.0, 60, geometric=True)
    return replace(m, eff=math.sqrt(lo * hi))


def estimated_table(op_lists: Sequence[Sequence[LayerOp]], m: CpuModel, alignment: int):
    """A DataFrame over the sweep grid of every op list."""
    import pandas as pd

    jobs, seen = [], set()
    for ops in op_lists:
        for j in plan_jobs(ops, alignment, coarse=True):
            if j not in seen:
                seen.add(j)
                jobs.append(j)
    df = pd.DataFrame(estimate_rows(jobs, m), columns=list(TABLE_COLUMNS))
    return df.drop_duplicates(subset=["op", "c_in", "c_out", "kernel", "stride", "h_in", "w_in"])


AAP_RESNET56_MS = 1000.0 / 17.63  # AAP, PyTorch, Raspberry Pi 3B+, batch 1
AAP_VGG16_MS = 1000.0 / 1.77
RPI3_MODELS = ("resnet56", "vgg16_bn_cifar")


def build_rpi3_table(out_csv: str, alignment: int = 4) -> dict:
    """Write the estimated rpi3 table; returns the calibration and cross-checks."""
    from edgeprune.devices.profiling import model_ops
    from edgeprune.devices.sweep import write_csv_atomic

    traced = model_ops(RPI3_MODELS)
    m = calibrate_to(traced["resnet56"][0], AAP_RESNET56_MS, CpuModel())
    df = estimated_table([ops for ops, _ in traced.values()], m, alignment)
    from pathlib import Path

    write_csv_atomic(df, Path(out_csv))
    checks = {name: round(model_total_ms(ops, m), 2) for name, (ops, _) in traced.items()}
    return {
        "eff": round(m.eff, 4),
        "per_op_ms": m.per_op_ms,
        "rows": len(df),
        "models_ms": checks,
        "aap_resnet56_ms": round(AAP_RESNET56_MS, 2),
        "aap_vgg16_ms": round(AAP_VGG16_MS, 1),
    }


if __name__ == "__main__":  # python -m edgeprune.devices.estimate OUT.csv
    import json
    import sys

    print(json.dumps(build_rpi3_table(sys.argv[1])))
