"""ONNX export: checker, dynamic/static batch, parity check, atomic write, node names."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeprune.export import ExportConfig, ExportParityError, export_onnx, node_module, parity_check


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        return self.head(self.stem(x).mean((2, 3)))


def _ort(path):
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def test_export_dynamic_batch_and_parity(tmp_path):
    path = str(tmp_path / "m.onnx")
    res = export_onnx(Tiny(), (3, 16, 16), path)
    assert res.size_bytes == os.path.getsize(path) and res.max_abs_diff < 1e-4
    sess = _ort(path)
    out = sess.run(None, {"input": np.zeros((3, 3, 16, 16), np.float32)})[0]
    assert out.shape == (3, 10)
    import onnx

    model = onnx.load(path)
    assert model.opset_import[0].version == 17
    names = [n.name for n in model.graph.node]
    assert any(n.startswith("/stem/stem.0/Conv") for n in names)  # module paths kept


def test_export_static_batch(tmp_path):
    path = str(tmp_path / "m.onnx")
    export_onnx(Tiny(), (3, 16, 16), path, ExportConfig(dynamic_batch=False, batch=2, opset=13))
    dims = _ort(path).get_inputs()[0].shape
    assert dims == [2, 3, 16, 16]


def test_fix_batch_makes_a_dynamic_export_static_with_the_same_outputs(tmp_path):
    from edgeprune.export.onnx_export import fix_batch

    path = str(tmp_path / "m.onnx")
    export_onnx(Tiny().eval(), (3, 16, 16), path)
    x = np.random.default_rng(0).random((1, 3, 16, 16), np.float32)
    sess = _ort(path)
    assert isinstance(sess.get_inputs()[0].shape[0], str)  # dynamic before
    before = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    fix_batch(path, 1)
    sess = _ort(path)
    assert sess.get_inputs()[0].shape == [1, 3, 16, 16]
    assert sess.get_outputs()[0].shape == [1, 10]
    after = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)
    assert [f for f in os.listdir(tmp_path) if f != "m.onnx"] == []  # no temp file left


def test_parity_failure_is_loud_and_leaves_no_file(tmp_path, monkeypatch):
    path = str(tmp_path / "m.onnx")
    export_onnx(Tiny(), (3, 16, 16), path)
    x = np.ones((1, 3, 16, 16), np.float32)
    with pytest.raises(ExportParityError, match="differs from torch"):
        parity_check(path, x, np.full((1, 10), 100.0, np.float32))
    with pytest.raises(ExportParityError, match="shape"):
        parity_check(path, x, np.zeros((1, 11), np.float32))

    import edgeprune.export.onnx_export as ex

    def bad(*a, **k):
        raise ExportParityError("forced")

    monkeypatch.setattr(ex, "parity_check", bad)
    target = tmp_path / "new.onnx"
    with pytest.raises(ExportParityError):
        export_onnx(Tiny(), (3, 16, 16), str(target))
    assert os.listdir(tmp_path) == ["m.onnx"]  # nothing half-written


@pytest.mark.parametrize(
    "node,want",
    [
        ("/layer1/layer1.0/conv1/Conv", "layer1.0.conv1"),
        ("/layer1/layer1.0/Add", "layer1.0"),
        ("/conv1/Conv", "conv1"),
        ("/features/features.3/features.3.conv/features.3.conv.0/Conv", "features.3.conv.0"),
        ("/Flatten", ""),
        ("Identity_3", ""),
    ],
)
def test_node_module(node, want):
    assert node_module(node) == want


def test_node_module_reused_scope():
    names = {"", "layer1", "layer1.0", "layer1.0.relu"}
    assert node_module("/layer1/layer1.0/relu_1/Relu", names) == "layer1.0.relu"
    assert node_module("/layer1/layer1.0/relu_1/Relu") == "layer1.0.relu_1"


def test_export_config_roundtrip():
    cfg = ExportConfig(opset=13, dynamic_batch=False)
    assert ExportConfig.from_dict(cfg.to_dict()) == cfg
    torch.manual_seed(0)


def test_check_file_lets_the_agent_find_a_wrong_output(tmp_path):
    from edgeprune.deploy_agent.edgeprune_agent import run_models

    from edgeprune.workflows.deploy import _device_check_note

    path = str(tmp_path / "m.onnx")
    res = export_onnx(Tiny(), (3, 16, 16), path, ExportConfig(check_file=True))
    assert res.check_path == str(tmp_path / "m.check.npz")
    fast = dict(warmup=1, min_time_s=0.01, min_runs=2)
    good = run_models([path], **fast)[0]
    assert good["check_max_abs_diff"] < 1e-5 and good["check_output_scale"] > 0
    assert _device_check_note(good, "ort", ExportConfig()) is None

    with np.load(res.check_path) as ref:
        x, y = ref["input"], ref["output"]
    np.savez(res.check_path, input=x, output=y + 0.5)  # a device that computes something else
    bad = run_models([path], **fast)[0]
    assert bad["check_max_abs_diff"] == pytest.approx(0.5, abs=1e-4)
    assert "differ from the host's" in _device_check_note(bad, "ort", ExportConfig())
    os.unlink(res.check_path)
    assert "check_max_abs_diff" not in run_models([path], **fast)[0]
    assert "not checked" in _device_check_note({}, "tensorrt", ExportConfig())
