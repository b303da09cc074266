"""The device agent refuses an execution provider it cannot run instead of timing the CPU."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgeprune.runtimes.agent import agent_script

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _tiny_model(path) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 4, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _agent(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, agent_script(), *args], capture_output=True, text=True, timeout=120
    )


def test_unavailable_provider_is_an_error_line(tmp_path):
    missing = "CUDAExecutionProvider"
    if missing in ort.get_available_providers():
        pytest.skip("this host has CUDA: the provider is available")
    path = tmp_path / "m.onnx"
    _tiny_model(path)
    res = _agent("--provider", missing, "--min-time", "0.01", "--min-runs", "2", str(path))
    assert res.returncode == 3
    error = json.loads(res.stdout.strip().splitlines()[-1])["error"]
    assert missing in error and "not available on this device" in error


def test_cpu_provider_still_times(tmp_path):
    path = tmp_path / "m.onnx"
    _tiny_model(path)
    res = _agent("--min-time", "0.01", "--min-runs", "2", "--warmup", "1", str(path))
    assert res.returncode == 0, res.stderr
    row = json.loads(res.stdout.strip().splitlines()[-1])
    assert row["provider"] == "CPUExecutionProvider" and row["latency_ms_median"] > 0
    assert "isa" in row["device"] and "versions" in row["device"]
