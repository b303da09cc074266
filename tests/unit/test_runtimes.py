"""Runtime registry and capabilities, time_models, settings, TensorRT absence, layer
breakdown, light imports; verify, sweep and deploy time through time_models."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgeprune.errors import UserError
from edgeprune.runtimes import (
    AgentSettings,
    DeviceSession,
    TensorRTUnavailable,
    get_runtime,
    list_runtimes,
    register_runtime,
    runtime_names,
    time_models,
)
from edgeprune.runtimes.ort import layer_breakdown
from edgeprune.targets import LocalTarget


def test_runtime_registry_dispatch_by_name():
    assert runtime_names() == ["ort", "ort-cuda", "tensorrt"]
    assert list_runtimes("ort*") == ["ort", "ort-cuda"]
    for name in runtime_names():
        rt = get_runtime(name)
        assert rt.name == name and all(str(f).endswith(".py") for f in rt.support_files())
        assert rt.description and rt.device_requirements[0] == "numpy"
    with pytest.raises(UserError, match="unknown runtime 'tvm'"):
        get_runtime("tvm")


def test_registry_capabilities_and_requirements():
    ort, cuda, trt = (get_runtime(n) for n in ("ort", "ort-cuda", "tensorrt"))
    assert ort.capabilities.profiles_per_op and cuda.capabilities.profiles_per_op
    assert not trt.capabilities.profiles_per_op and not trt.capabilities.times_interleaved
    assert ort.capabilities.checks_outputs and not trt.capabilities.checks_outputs
    assert cuda.device_requirements == ("numpy", "onnxruntime-gpu")
    assert cuda.provider == "CUDAExecutionProvider" and ort.provider == "CPUExecutionProvider"
    assert trt.provider is None and trt.system_site_packages and not cuda.system_site_packages
    assert cuda.resolve_provider("CPUExecutionProvider") == "CUDAExecutionProvider"
    with pytest.raises(UserError, match="ort-cuda"):
        cuda.resolve_provider("OpenVINOExecutionProvider")


def test_duplicate_runtime_registration_raises():
    class Again:
        name = "ort"

    with pytest.raises(ValueError, match="'ort' is already registered"):
        register_runtime(Again)
    assert runtime_names() == ["ort", "ort-cuda", "tensorrt"]


def test_registry_is_what_profiles_and_tables_accept(tmp_path):
    """Profile validation and latency tables take exactly the registered names."""
    from edgeprune.cost.latency_table import validate_table_frame
    from edgeprune.devices.profile import load_profile

    for name in [*runtime_names(), "tvm"]:
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"name: {name}\nidentity:\n  arch: x86_64\n  runtime: {name}\n")
        if name == "tvm":
            with pytest.raises(UserError, match="unknown runtime 'tvm'.*ort, ort-cuda, tensorrt"):
                load_profile(str(path))
        else:
            assert load_profile(str(path)).identity.runtime == name
    import pandas as pd

    row = {
        "op": "conv",
        "c_in": 8,
        "c_out": 8,
        "kernel": 3,
        "stride": 1,
        "groups": 1,
        "h_in": 8,
        "w_in": 8,
        "batch": 1,
        "threads": 1,
        "dtype": "float32",
        "latency_ms_median": 0.1,
        "latency_ms_p90": 0.1,
        "n_runs": 10,
    }
    rows = [{**row, "runtime": n} for n in runtime_names()]
    validate_table_frame(pd.DataFrame(rows), "t.csv")
    with pytest.raises(UserError, match="unknown runtime"):
        validate_table_frame(pd.DataFrame([{**row, "runtime": "tvm"}]), "t.csv")


ORT_CUDA_PROFILE = """\
name: jetson
identity:
  arch: aarch64
  runtime: ort-cuda
  threads: 2
connection:
  kind: ssh
  host: jetson.local
  user: nv
"""


def test_ort_cuda_profile_resolves_to_cuda_settings(tmp_path, monkeypatch):
    from edgeprune.devices.profile import load_profile
    from edgeprune.devices.settings import device_settings
    from edgeprune.devices.sweep import sweep_settings

    path = tmp_path / "jetson.yaml"
    path.write_text(ORT_CUDA_PROFILE)
    prof = load_profile(str(path))  # passes validation
    assert prof.identity.runtime == "ort-cuda"
    dev = device_settings(str(path))
    assert dev.runtime == "ort-cuda" and get_runtime(dev.runtime).name == "ort-cuda"
    assert dev.run.provider == "CUDAExecutionProvider" and dev.run.threads == 2
    assert dev.host == "nv@jetson.local"
    assert dev.run_settings(interleave=True, threads=None).provider == "CUDAExecutionProvider"
    sweep = sweep_settings(prof)
    assert sweep.runtime == "ort-cuda" and sweep.run.provider == "CUDAExecutionProvider"
    bad = tmp_path / "bad.yaml"
    bad.write_text(ORT_CUDA_PROFILE.replace("threads: 2", "provider: OpenVINOExecutionProvider"))
    with pytest.raises(UserError, match="identity.provider: runtime 'ort-cuda' runs on CUDA"):
        load_profile(str(bad))


class NoUpload:
    """A target that fails the test if anything is uploaded or run."""

    name = "nowhere"

    def __getattr__(self, attr):
        raise AssertionError(f"target.{attr} used before the capability check")


def test_time_models_refuses_a_missing_capability_in_one_sentence(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    st = AgentSettings(interleave=True)
    with pytest.raises(UserError) as info:
        time_models(NoUpload(), [str(model), str(model)], "tensorrt", st)
    msg = str(info.value)
    assert msg == (
        "runtime 'tensorrt' cannot time models interleaved "
        "(it lacks the times_interleaved capability)"
    )
    with pytest.raises(UserError, match="'tensorrt' cannot break latency down per layer"):
        time_models(NoUpload(), [str(model)], "tensorrt", AgentSettings(profile_nodes=True))


def test_time_models_runs_the_named_runtime(tmp_path, monkeypatch):
    """Dispatch by name: the runtime's own ``run`` times the models; files are fetched."""
    from edgeprune.runtimes.ort import OrtCudaRuntime

    seen = {}

    def fake_run(self, session, settings):
        seen["runtime"], seen["provider"] = self.name, settings.provider
        out = session.remote("m.opt.onnx")
        open(out, "w").write("graph")  # noqa: SIM115 - a LocalTarget file
        return [{"latency_ms_median": 1.0, "optimized_model": "m.opt.onnx"}]

    monkeypatch.setattr(OrtCudaRuntime, "run", fake_run)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    st = AgentSettings(provider="CUDAExecutionProvider", save_optimized=True)
    fetched = tmp_path / "got.onnx"
    rows = time_models(
        LocalTarget(), [str(model)], "ort-cuda", st, fetch={"optimized_model": str(fetched)}
    )
    assert rows[0]["latency_ms_median"] == 1.0 and seen == {
        "runtime": "ort-cuda",
        "provider": "CUDAExecutionProvider",
    }
    assert fetched.read_text() == "graph"


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


def _record_time_models(monkeypatch, where):
    calls = []

    def fake(target, paths, runtime, settings, python="python3", **kw):
        name = runtime if isinstance(runtime, str) else runtime.name
        calls.append((name, settings))
        return [
            {"latency_ms_median": 2.0 - i, "latency_ms_p90": 2.0, "n_runs": 9, "model": "m"}
            for i in range(len(paths))
        ]

    monkeypatch.setattr(where, fake)
    return calls


def test_verify_times_with_the_profiles_runtime(tmp_path, monkeypatch):
    import torch

    from edgeprune.budget.verify import make_measurer

    path = tmp_path / "cuda.yaml"
    path.write_text(
        ORT_CUDA_PROFILE.replace("connection:\n  kind: ssh\n", "connection:\n  kind: local\n")
    )
    calls = _record_time_models(monkeypatch, "edgeprune.runtimes.time_models")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    m = make_measurer(str(path), (3, 8, 8), min_time_s=0.1)(net, net)
    assert m.ratio == pytest.approx(0.5)
    ((name, st),) = calls
    assert name == "ort-cuda" and st.provider == "CUDAExecutionProvider" and st.interleave


def test_verify_refuses_tensorrt_before_any_export(tmp_path):
    from edgeprune.budget.verify import make_measurer

    path = tmp_path / "trt.yaml"
    path.write_text("name: trt\nidentity:\n  arch: x86_64\n  runtime: tensorrt\n")
    with pytest.raises(UserError, match="'tensorrt' cannot time models interleaved"):
        make_measurer(str(path), (3, 8, 8))


def test_sweep_runner_times_with_the_profiles_runtime(tmp_path, monkeypatch):
    from edgeprune.devices.profile import load_profile
    from edgeprune.devices.sweep import make_runner, sweep_settings

    path = tmp_path / "jetson.yaml"
    path.write_text(ORT_CUDA_PROFILE)
    calls = _record_time_models(monkeypatch, "edgeprune.runtimes.time_models")
    runner = make_runner(sweep_settings(load_profile(str(path))), target=LocalTarget())
    assert len(runner(["a.onnx", "b.onnx"])) == 2
    ((name, st),) = calls
    assert name == "ort-cuda" and st.provider == "CUDAExecutionProvider" and st.interleave
    trt = tmp_path / "trt.yaml"
    trt.write_text("name: trt\nidentity:\n  arch: x86_64\n  runtime: tensorrt\n")
    with pytest.raises(UserError, match="'tensorrt' cannot time models interleaved"):
        make_runner(sweep_settings(load_profile(str(trt))), target=NoUpload())


def test_profile_refuses_a_runtime_without_per_op_tables(tmp_path, monkeypatch):
    from edgeprune.workflows.profile import ProfileConfig, run_profile

    trt = tmp_path / "trt.yaml"
    trt.write_text("name: trt\nidentity:\n  arch: x86_64\n  runtime: tensorrt\n")
    cfg = ProfileConfig(device=str(trt), models=("resnet8",), out=str(tmp_path / "out"))
    with pytest.raises(UserError, match="'tensorrt' cannot measure per-op latency tables"):
        run_profile(cfg)


def test_deploy_benchmarks_through_time_models(tmp_path, monkeypatch):
    from edgeprune.workflows import deploy

    path = tmp_path / "cuda.yaml"
    path.write_text(
        ORT_CUDA_PROFILE.replace("connection:\n  kind: ssh\n", "connection:\n  kind: local\n")
    )
    calls = _record_time_models(monkeypatch, "edgeprune.runtimes.time_models")
    monkeypatch.setattr(deploy, "_host_versions", lambda: {})
    cfg = deploy.DeployConfig(
        model="resnet8", device=str(path), out=str(tmp_path / "out"), batches=(1, 2)
    )
    report = deploy.run_deploy(cfg, progress=lambda msg: None)
    assert [(n, st.batch) for n, st in calls] == [("ort-cuda", 1), ("ort-cuda", 2)]
    assert all(st.provider == "CUDAExecutionProvider" for _, st in calls)
    assert calls[0][1].save_optimized and not calls[1][1].save_optimized
    assert report["runtime"] == "ort-cuda" and report["provider"] is None  # the fake's rows
    trt = deploy.DeployConfig(
        model="resnet8",
        device=str(path),
        out=str(tmp_path / "trt"),
        runtime="tensorrt",
        profile_layers=True,
        compare_dense=True,
    )
    calls.clear()
    report = deploy.run_deploy(trt, progress=lambda msg: None)
    assert [n for n, _ in calls] == ["tensorrt"] and not calls[0][1].interleave
    assert not calls[0][1].profile_nodes and not calls[0][1].save_optimized
    assert any("one after the other" in n for n in report["notes"])
    assert any("tensorrt has no output check" in n for n in report["notes"])
