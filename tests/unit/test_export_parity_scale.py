"""Parity tolerance relative to the output's magnitude (issue 16: a random-init Inception-v3
puts out logits near 1e12; float32 rounding differs between torch and ORT by ~1e-7 of that)."""

import numpy as np
import pytest
import torch
from torch import nn

from edgeprune.export.onnx_export import (
    SCALE_RTOL,
    ExportConfig,
    ExportParityError,
    export_onnx,
    parity_check,
)


class Huge(nn.Module):
    """Logits of magnitude ~1e12, one of them exactly 0 (where rtol gives no slack)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 4)
        with torch.no_grad():
            self.fc.weight.copy_(torch.arange(48.0).reshape(4, 12) * 1e10)
            self.fc.weight[0] = 0.0
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(x.flatten(1)[:, :12])


def test_huge_outputs_export_and_a_real_difference_still_fails(tmp_path):
    path = str(tmp_path / "m.onnx")
    export_onnx(Huge(), (3, 4, 4), path, ExportConfig(dynamic_batch=False))  # parity on
    x = np.ones((1, 3, 4, 4), np.float32)
    ref = Huge()(torch.from_numpy(x)).detach().numpy().astype(np.float64)
    scale = np.abs(ref).max()
    assert scale > 1e12 and ref[0, 0] == 0.0
    near = ref.copy()
    near[0, 0] += 0.5 * SCALE_RTOL * scale  # rounding-sized, on the element that is 0
    assert parity_check(path, x, near) == pytest.approx(0.5 * SCALE_RTOL * scale, rel=1e-3)
    far = ref.copy()
    far[0, 0] += 1e-3 * scale  # a wrong element, small against the largest output
    with pytest.raises(ExportParityError, match=r"for outputs up to \d\.\d+e\+12"):
        parity_check(path, x, far)


def test_ordinary_outputs_keep_the_absolute_tolerance(tmp_path):
    path = str(tmp_path / "m.onnx")
    export_onnx(nn.Sequential(nn.Flatten(), nn.Linear(48, 3)), (3, 4, 4), path)
    x = np.zeros((1, 3, 4, 4), np.float32)
    import onnxruntime as ort

    out = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with pytest.raises(ExportParityError, match="atol=0.0001"):
        parity_check(path, x, out + 2e-4)
