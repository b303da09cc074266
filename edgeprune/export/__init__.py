"""ONNX export with a parity check against torch (``export_onnx``)."""

from edgeprune.export.onnx_export import (
    ExportConfig,
    ExportParityError,
    ExportResult,
    export_onnx,
    node_module,
    parity_check,
)

__all__ = [
    "ExportConfig",
    "ExportParityError",
    "ExportResult",
    "export_onnx",
    "node_module",
    "parity_check",
]
