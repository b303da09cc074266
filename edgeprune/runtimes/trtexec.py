"""Parser for trtexec console output (TensorRT 8.0 - 10.x) and the trtexec command line."""

from __future__ import annotations

import re

_STAT = re.compile(r"(min|max|mean|median|percentile\((\d+(?:\.\d+)?)%\))\s*=\s*([-+\d.eE]+)\s*ms")
_LABELS = {
    "Latency": "latency_ms",
    "End-to-End Host Latency": "e2e_latency_ms",
    "Host Latency": "latency_ms",
    "Enqueue Time": "enqueue_ms",
    "H2D Latency": "h2d_ms",
    "GPU Compute Time": "gpu_compute_ms",
    "GPU Compute": "gpu_compute_ms",
    "D2H Latency": "d2h_ms",
}
_PREFIX = re.compile(r"^(?:\[[^\]]*\]\s*)*\[I\]\s*")
_BANNER = re.compile(r"&&&& (RUNNING|PASSED|FAILED) TensorRT\.trtexec \[TensorRT v(\d+)\]")


def decode_version_code(code: str) -> str:
    """'8401' -> '8.4.1', '101601' -> '10.16.1' (trtexec banner codes); dotted strings pass."""
    code = code.strip()
    if not code.isdigit():
        return code
    n = int(code)
    if n >= 100000:  # TensorRT >= 10: major*10000 + minor*100 + patch
        return f"{n // 10000}.{n // 100 % 100}.{n % 100}"
    return f"{n // 1000}.{n // 100 % 10}.{n % 100}"  # TensorRT 8.x: major*1000 + minor*100 + patch


def _stats(text: str) -> dict:
    out = {}
    for m in _STAT.finditer(text):
        pct = m.group(2)
        if pct and "." in pct:
            pct = pct.rstrip("0").rstrip(".")
        key = f"p{pct}" if pct else m.group(1)
        out[key] = float(m.group(3))
    return out


def parse_trtexec(text: str) -> dict:
    """Summary of a trtexec log: throughput (qps), latency stats (ms), version, GPU, status.

    Raises ValueError when the log has no performance summary.
    """
    res: dict = {"tensorrt_version": None, "device_name": None, "passed": None, "warnings": []}
    in_summary = False
    for raw in text.splitlines():
        line = raw.rstrip()
        m = _BANNER.search(line)
        if m:
            res["tensorrt_version"] = res["tensorrt_version"] or decode_version_code(m.group(2))
            if m.group(1) != "RUNNING":
                res["passed"] = m.group(1) == "PASSED"
            continue
        body = _PREFIX.sub("", line, count=1) if "[I]" in line else None
        if "[W]" in line and in_summary:
            res["warnings"].append(line.split("[W]", 1)[1].strip())
        if body is None:
            continue
        if body.startswith("TensorRT version:"):
            res["tensorrt_version"] = decode_version_code(body.split(":", 1)[1])
        elif body.startswith("Selected Device:"):
            res["device_name"] = body.split(":", 1)[1].strip()
        elif body.startswith("=== Performance summary ==="):
            in_summary = True
        elif in_summary and ":" in body:
            label, _, rest = body.partition(":")
            label = label.strip()
            if label == "Throughput":
                res["throughput_qps"] = float(rest.split()[0])
            elif label in _LABELS and "=" in rest:
                res[_LABELS[label]] = _stats(rest)
            elif label == "Total Host Walltime":
                res["total_host_walltime_s"] = float(rest.split()[0])
            elif label == "Total GPU Compute Time":
                res["total_gpu_compute_s"] = float(rest.split()[0])
    if "throughput_qps" not in res or "latency_ms" not in res:
        raise ValueError("no trtexec performance summary (Throughput/Latency lines) found")
    return res


def trtexec_result(parsed: dict, batch: int) -> dict:
    """A parsed trtexec summary in the agent's result keys (throughput in images/s)."""
    lat = parsed["latency_ms"]
    qps = parsed["throughput_qps"]
    wall = parsed.get("total_host_walltime_s")
    return {
        "runtime": "tensorrt",
        "runtime_version": parsed.get("tensorrt_version"),
        "batch": int(batch),
        "latency_ms_mean": lat.get("mean"),
        "latency_ms_median": lat.get("median"),
        "latency_ms_p90": lat.get("p90"),
        "latency_ms_p99": lat.get("p99"),
        "latency_ms_min": lat.get("min"),
        "gpu_compute_ms_median": parsed.get("gpu_compute_ms", {}).get("median"),
        "throughput_ips": qps * batch,
        "n_runs": int(round(qps * wall)) if wall else None,
        "device": {"gpu": parsed.get("device_name")},
    }


def trtexec_argv(
    trtexec: str,
    *,
    onnx: str | None = None,
    engine: str,
    shapes: str,
    fp16: bool = False,
    int8: bool = False,
    build: bool = True,
    duration_s: float = 3.0,
    warmup_ms: int = 200,
    iterations: int = 10,
) -> list[str]:
    """trtexec command: build from ``onnx`` and save ``engine`` (``build``), or load ``engine``.

    ``int8``: the ONNX model carries Q/DQ nodes (edgeprune.quant); ``--int8`` lets TensorRT
    build them as INT8 kernels with their own scales (explicit quantization: no calibration
    cache); ``--best`` is never used, so no precision is picked that the model does not ask.
    """
    argv = [trtexec]
    argv += [f"--onnx={onnx}", f"--saveEngine={engine}"] if build else [f"--loadEngine={engine}"]
    argv += [
        f"--shapes={shapes}",
        f"--warmUp={int(warmup_ms)}",
        f"--duration={max(1, int(round(duration_s)))}",
        f"--iterations={int(iterations)}",
    ]
    if fp16 and build:
        argv.append("--fp16")
    if int8 and build:
        argv.append("--int8")
    return argv
