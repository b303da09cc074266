"""trtexec output parser on every recorded log in ../shared/docs/device-facts (TRT 8.4 - 10.16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeprune.runtimes.trtexec import (
    decode_version_code,
    parse_trtexec,
    trtexec_argv,
    trtexec_result,
)

FACTS = Path(__file__).resolve().parents[2].parent / "shared" / "docs" / "device-facts"
# file -> (version, device, qps, latency median, p90 (None: only p99 printed), p99, gpu median)
EXPECTED = {
    "trtexec-10.16.1-trt-samples-hackathon-cn-h100.log": (
        "10.16.1",
        "NVIDIA H100 PCIe",
        15374.3,
        0.0440674,
        0.0450439,
        0.0512695,
        0.0361328,
    ),
    "trtexec-8.4.1-trt-samples-hackathon-cn-gtx1070.log": (
        "8.4.1",
        "NVIDIA GeForce GTX 1070",
        5888.57,
        0.161438,
        None,
        0.178589,
        0.153687,
    ),
    "trtexec-8.5.2-aicast-jetson-orinnano-summary.log": (
        "8.5.2",
        None,
        97.8649,
        10.7972,
        10.9329,
        10.9744,
        10.1851,
    ),
    "trtexec-8.6.0-trt-samples-hackathon-cn-rtx3090.log": (
        "8.6.0",
        "NVIDIA GeForce RTX 3090",
        21009.2,
        0.0517578,
        0.0532227,
        0.0630798,
        0.0439453,
    ),
}


def test_every_shared_log_is_covered():
    if not FACTS.is_dir():
        pytest.skip(f"shared device facts not found at {FACTS}")
    assert {p.name for p in FACTS.glob("trtexec-*.log")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parse_recorded_log(name):
    path = FACTS / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    version, device, qps, median, p90, p99, gpu = EXPECTED[name]
    p = parse_trtexec(path.read_text())
    assert p["tensorrt_version"] == version
    assert p["device_name"] == device
    assert p["passed"] is True
    assert p["throughput_qps"] == pytest.approx(qps)
    assert p["latency_ms"]["median"] == pytest.approx(median)
    assert p["latency_ms"].get("p90") == (pytest.approx(p90) if p90 else None)
    assert p["latency_ms"]["p99"] == pytest.approx(p99)
    assert p["gpu_compute_ms"]["median"] == pytest.approx(gpu)
    assert p["total_host_walltime_s"] > 0 and p["total_gpu_compute_s"] > 0
    row = trtexec_result(p, batch=4)
    assert row["throughput_ips"] == pytest.approx(4 * qps)
    assert row["latency_ms_median"] == pytest.approx(median)
    assert row["runtime"] == "tensorrt" and row["runtime_version"] == version


def test_unstable_warning_is_kept():
    p = parse_trtexec((FACTS / "trtexec-8.6.0-trt-samples-hackathon-cn-rtx3090.log").read_text())
    assert any("unstable" in w for w in p["warnings"])


def test_older_end_to_end_line_and_failed_banner():
    log = (
        "&&&& RUNNING TensorRT.trtexec [TensorRT v8001] # trtexec --onnx=m.onnx\n"
        "[01/01/2022-00:00:00] [I] TensorRT version: 8001\n"
        "[01/01/2022-00:00:00] [I] === Performance summary ===\n"
        "[01/01/2022-00:00:00] [I] Throughput: 24.7474 qps\n"
        "[01/01/2022-00:00:00] [I] Latency: min = 40.1 ms, max = 41.5 ms, mean = 40.4 ms, "
        "median = 40.3 ms, percentile(99%) = 41.2 ms\n"
        "[01/01/2022-00:00:00] [I] End-to-End Host Latency: min = 40.2 ms, max = 42 ms, "
        "mean = 40.5 ms, median = 40.4 ms, percentile(99%) = 41.9 ms\n"
        "&&&& FAILED TensorRT.trtexec [TensorRT v8001] # trtexec --onnx=m.onnx\n"
    )
    p = parse_trtexec(log)
    assert p["tensorrt_version"] == "8.0.1" and p["passed"] is False
    assert p["e2e_latency_ms"]["median"] == pytest.approx(40.4)
    assert p["latency_ms"]["p99"] == pytest.approx(41.2)


def test_missing_summary_raises():
    with pytest.raises(ValueError, match="performance summary"):
        parse_trtexec("[I] [TRT] building...\n&&&& FAILED TensorRT.trtexec [TensorRT v8600]\n")


@pytest.mark.parametrize(
    "code,version",
    [
        ("8401", "8.4.1"),
        ("8600", "8.6.0"),
        ("8502", "8.5.2"),
        ("101601", "10.16.1"),
        ("100900", "10.9.0"),
        ("8001", "8.0.1"),
        ("8.6.1", "8.6.1"),
    ],
)
def test_decode_version_code(code, version):
    assert decode_version_code(code) == version


def test_trtexec_argv_build_and_load():
    build = trtexec_argv(
        "trtexec",
        onnx="/w/m.onnx",
        engine="/w/m.engine",
        shapes="input:8x3x32x32",
        fp16=True,
        duration_s=2.4,
        iterations=20,
    )
    assert build[:3] == ["trtexec", "--onnx=/w/m.onnx", "--saveEngine=/w/m.engine"]
    assert "--fp16" in build and "--duration=2" in build and "--iterations=20" in build
    load = trtexec_argv(
        "/usr/src/tensorrt/bin/trtexec", engine="/w/m.engine", shapes="input:1x3x32x32", build=False
    )
    assert "--loadEngine=/w/m.engine" in load and "--fp16" not in load
