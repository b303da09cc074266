"""Runtime table, settings, TensorRT absence, layer breakdown, light imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgeprune.errors import UserError
from edgeprune.runtimes import (
    RUNTIMES,
    AgentSettings,
    DeviceSession,
    TensorRTUnavailable,
    get_runtime,
    runtime_names,
)
from edgeprune.runtimes.ort import layer_breakdown
from edgeprune.targets import LocalTarget


def test_runtime_table_dispatch_by_name():
    assert runtime_names() == ["ort", "tensorrt"]
    for name in RUNTIMES:
        rt = get_runtime(name)
        assert rt.name == name and all(str(f).endswith(".py") for f in rt.support_files())
    with pytest.raises(UserError, match="unknown runtime 'tvm'"):
        get_runtime("tvm")


def test_settings_validate_and_roundtrip():
    st = AgentSettings(threads=2, batch=4, interleave=True)
    assert AgentSettings.from_dict({**st.to_dict(), "unknown": 1}) == st
    assert st.timeout_s(2) > 300
    for bad in (
        {"threads": 0},
        {"batch": 0},
        {"opt_level": "max"},
        {"precision": "int4"},
        {"min_time_s": -1},
    ):
        with pytest.raises(UserError):
            AgentSettings(**bad)


def test_tensorrt_absence_is_one_sentence(tmp_path, monkeypatch):
    import shutil

    if shutil.which("trtexec"):
        pytest.skip("trtexec is installed here")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    rt = get_runtime("tensorrt")
    monkeypatch.setattr("edgeprune.runtimes.tensorrt.TRTEXEC_CANDIDATES", ("no-trtexec-here",))
    with DeviceSession(LocalTarget(), rt, [str(model)], python=sys.executable) as s:
        workdir = s.workdir
        with pytest.raises(TensorRTUnavailable) as info:
            s.run(AgentSettings())
    msg = str(info.value)
    assert msg.startswith("TensorRT is not available on local") and "\n" not in msg
    import os

    assert not os.path.exists(workdir)  # the run dir is removed on failure too


def test_layer_breakdown_groups_by_module():
    nodes = [
        {"node": "/layer1/layer1.0/conv1/Conv", "op": "Conv", "ms": 0.2},
        {"node": "/layer1/layer1.0/relu/Relu", "op": "Relu", "ms": 0.01},
        {"node": "/layer1/layer1.0/Add", "op": "Add", "ms": 0.05},
        {"node": "/layer1/layer1.0/conv1/Conv_token_2", "op": "Conv", "ms": 0.1},
        {"node": "ReorderOutput_1", "op": "ReorderOutput", "ms": 0.03},
    ]
    rows = layer_breakdown(nodes)
    assert rows[0]["module"] == "layer1.0.conv1" and rows[0]["ms"] == pytest.approx(0.3)
    assert {r["module"] for r in rows} == {"layer1.0.conv1", "layer1.0.relu", "layer1.0", "(graph)"}


def test_import_edgeprune_stays_light():
    code = (
        "import sys, edgeprune, edgeprune.runtimes, edgeprune.targets, edgeprune.export, "
        "edgeprune.report.deploy_report, edgeprune.cli.deploy_cmd; "
        "print(sorted(m for m in ('onnx','onnxruntime','paramiko','tensorrt','matplotlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tensorrt_runtime_plumbing_with_replayed_trtexec(tmp_path, monkeypatch):
    """A stand-in trtexec replays a recorded TensorRT 10.16 log: checks argv and parsing."""
    import os
    from pathlib import Path

    import torch

    from edgeprune.export import export_onnx

    log = Path(__file__).resolve().parents[3] / "shared/docs/device-facts"
    log = log / "trtexec-10.16.1-trt-samples-hackathon-cn-h100.log"
    if not log.is_file():
        pytest.skip("recorded trtexec log not found")
    fake = tmp_path / "trtexec"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv.txt\ncat {log}\n')
    fake.chmod(0o755)
    monkeypatch.setattr("edgeprune.runtimes.tensorrt.TRTEXEC_CANDIDATES", (str(fake),))
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten())
    onnx_path = export_onnx(m, (3, 8, 8), str(tmp_path / "m.onnx")).path
    st = AgentSettings(batch=4, precision="fp16", min_time_s=2.0)
    with DeviceSession(LocalTarget(), get_runtime("tensorrt"), [onnx_path], "no-python-here") as s:
        rows = s.run(st)
    argv = (tmp_path / "argv.txt").read_text().split()
    assert argv[0].startswith("--onnx=") and argv[0].endswith("/m.onnx")
    assert "--shapes=input:4x3x8x8" in argv and "--fp16" in argv and "--duration=2" in argv
    assert any(a.startswith("--saveEngine=") and a.endswith("m.b4.fp16.engine") for a in argv)
    (row,) = rows
    assert row["runtime_version"] == "10.16.1" and row["engine_built_with"] == "trtexec"
    assert row["throughput_ips"] == pytest.approx(4 * 15374.3)
    assert row["latency_ms_median"] == pytest.approx(0.0440674)
    assert row["device"]["gpu"] == "NVIDIA H100 PCIe" and os.path.exists(onnx_path)
