"""ONNX Runtime static INT8 quantization: QDQ format, per-channel int8 weights, uint8
activations, calibrated on batches the caller supplies.

TensorRT (>= 8) builds INT8 engines from the same Q/DQ nodes (explicit quantization), so one
file serves both runtimes.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from edgeprune.errors import UserError, require
from edgeprune.fileio import atomic_write
from edgeprune.quant import CALIBRATION_METHODS

log = logging.getLogger(__name__)


def _calibration_method(method: str):
    q = require("onnxruntime.quantization", "onnx")
    table = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }
    if method not in table:
        raise UserError(
            f"unknown calibration method {method!r}; expected one of "
            f"{', '.join(CALIBRATION_METHODS)}"
        )
    return table[method]


class _Reader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over float32 NCHW batches."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self.input_name = input_name
        self._it: Iterator[np.ndarray] = iter(batches)
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        if batch is None:
            return None
        self.count += int(batch.shape[0])
        return {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    def rewind(self) -> None:  # pragma: no cover - single pass is all quantize_static needs
        raise NotImplementedError


def _input_name(path: str | os.PathLike) -> str:
    onnx = require("onnx", "onnx")
    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in inits)


def _preprocess(src: str, dst: str) -> str:
    """``quant_pre_process`` (shape inference + ORT's graph optimizations, as the ORT docs
    advise before quantizing); falls back to the model as exported when it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(src, dst, skip_symbolic_shape=False)
        return dst
    except Exception as exc:  # noqa: BLE001 - pre-processing is an optimization, not a must
        log.info("quantization pre-processing skipped (%s: %s)", type(exc).__name__, exc)
        return src


def quantize_onnx(
    fp32_path: str | os.PathLike,
    int8_path: str | os.PathLike,
    calibration_batches: Iterable[np.ndarray],
    *,
    method: str = "minmax",
    per_channel: bool = True,
) -> None:
    """Write the INT8 QDQ model of ``fp32_path`` to ``int8_path`` (atomically).

    Weights: int8, symmetric, per output channel (``per_channel``); activations: uint8,
    ranges calibrated with ``method`` (minmax | entropy | percentile) on
    ``calibration_batches`` (float32 NCHW arrays, preprocessed as the model expects).
    """
    calib = _calibration_method(method)
    q = require("onnxruntime.quantization", "onnx")
    fp32_path = Path(fp32_path)
    if not fp32_path.is_file():
        raise UserError(f"no ONNX model at {fp32_path}")
    it = iter(calibration_batches)
    first = next(it, None)
    if first is None:
        raise UserError("quantization needs at least one calibration batch")
    reader = _Reader(_input_name(fp32_path), itertools.chain([first], it))
    with tempfile.TemporaryDirectory(prefix="edgeprune-quant-") as work:
        src = _preprocess(str(fp32_path), os.path.join(work, "pre.onnx"))

        def write(tmp: str) -> None:
            q.quantize_static(
                src,
                tmp,
                reader,
                quant_format=q.QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=q.QuantType.QUInt8,
                weight_type=q.QuantType.QInt8,
                calibrate_method=calib,
                extra_options={"CalibTensorRangeSymmetric": False},
            )

        atomic_write(int8_path, write)
    log.info(
        "int8 model written to %s (%d calibration images, %s)", int8_path, reader.count, method
    )


def count_qdq(path: str | os.PathLike) -> dict[str, int]:
    """Number of QuantizeLinear / DequantizeLinear nodes in an ONNX model."""
    onnx = require("onnx", "onnx")
    nodes = onnx.load(str(path), load_external_data=False).graph.node
    return {
        op: sum(1 for n in nodes if n.op_type == op)
        for op in ("QuantizeLinear", "DequantizeLinear")
    }


def is_int8(path: str | os.PathLike) -> bool:
    """Whether the ONNX model holds Q/DQ nodes (an INT8 model in explicit quantization)."""
    c = count_qdq(path)
    return c["QuantizeLinear"] > 0 and c["DequantizeLinear"] > 0
