"""int8 table rows are net of the Quantize/Dequantize boundary each micro model pays once
(a real int8 model pays it once in all): the boundary of the job's input shape is timed in
the same batch and subtracted instead of the fp32 baseline (issue 18)."""

import os

import numpy as np
import onnxruntime as ort
import pytest

from edgeprune.devices import micro
from edgeprune.devices.sweep import Job, SweepSettings, int8_twins, read_partial, run_sweep

BASE, BOUNDARY, MODEL = 0.01, 0.05, 0.30


def _runner(seen):
    """Scripted timings by model: baseline, Q/DQ boundary, everything else."""

    def run(paths):
        seen.append([os.path.basename(p) for p in paths])
        out = []
        for p in paths:
            name = os.path.basename(p)
            ms = BASE if name == "baseline.onnx" else BOUNDARY if name.startswith("qdq_") else MODEL
            out.append({"latency_ms_median": ms, "latency_ms_p90": ms, "n_runs": 20})
        return out

    return run


def test_int8_rows_subtract_the_boundary_of_their_input_shape(tmp_path):
    jobs = int8_twins(
        [Job("single", "linear", 64, 10, 1, 1, 1, 1), Job("single", "conv", 8, 8, 3, 1, 8, 8)],
        ("fp32", "int8"),
    )
    seen: list = []
    s = SweepSettings(models_per_batch=8, precisions=("fp32", "int8"))
    assert run_sweep(jobs, tmp_path / "t.csv.partial", _runner(seen), s, progress=False) == (4, 0)
    df = read_partial(tmp_path / "t.csv.partial")
    got = {(r.op, r.precision): r.latency_ms_median for r in df.itertuples()}
    assert got[("linear", "fp32")] == pytest.approx(MODEL - BASE)
    assert got[("conv", "fp32")] == pytest.approx(MODEL - BASE)
    assert got[("linear", "int8")] == pytest.approx(MODEL - BOUNDARY)
    assert got[("conv", "int8")] == pytest.approx(MODEL - BOUNDARY)
    # one boundary per distinct input shape of the batch's int8 jobs, none for fp32
    assert sorted(n for n in seen[0] if n.startswith("qdq_")) == [
        "qdq_1x64.onnx",
        "qdq_1x8x8x8.onnx",
    ]


def test_fp32_batches_time_no_boundary(tmp_path):
    seen: list = []
    run_sweep(
        [Job("single", "conv", 8, 8, 3, 1, 8, 8)],
        tmp_path / "t.csv.partial",
        _runner(seen),
        SweepSettings(),
        progress=False,
    )
    assert not [n for n in seen[0] if n.startswith("qdq_")]


def test_the_boundary_model_runs_and_rounds_to_the_int8_grid(tmp_path):
    path = micro.save(micro.qdq_boundary((1, 4, 2, 2))[0], str(tmp_path / "b.onnx"))
    assert micro.input_shape(path) == (1, 4, 2, 2)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.linspace(-2, 2, 16, dtype=np.float32).reshape(1, 4, 2, 2)
    (y,) = sess.run(None, {"x": x})
    assert y.shape == x.shape
    assert np.abs(y - x).max() <= 0.05 / 2 + 1e-6  # quantized by the 0.05 step, not dropped
    assert not np.allclose(y, x)
