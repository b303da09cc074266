"""INT8 post-training quantization (ONNX Runtime static, QDQ) and the int8-vs-fp32 rule.

Typical use::

    from edgeprune.quant.ptq import quantize_onnx
    from edgeprune.quant.calibration import calibration_batches
    quantize_onnx("model_fp32.onnx", "model.onnx", calibration_batches(root, 256))

Nothing here is imported by ``import edgeprune``; onnxruntime is imported inside functions.
"""

from __future__ import annotations

PRECISIONS: tuple[str, ...] = ("fp32", "int8")
CALIBRATION_METHODS: tuple[str, ...] = ("minmax", "entropy", "percentile")
