"""torch -> ONNX with a fixed opset, ``onnx.checker`` and a parity check in ONNX Runtime.

The legacy TorchScript exporter (``dynamo=False``) is used on purpose: it names nodes
after module paths (``/layer1/layer1.0/conv1/Conv``), so per-node timings map back to
layers (see ``node_module``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass

from edgeprune.errors import UserError, require

INPUT_NAME = "input"
OUTPUT_NAME = "output"


class ExportParityError(UserError):
    """ONNX Runtime and torch disagree beyond the tolerance."""


@dataclass(frozen=True)
class ExportConfig:
    """How to export: opset, batch handling and the parity tolerance."""

    opset: int = 17
    dynamic_batch: bool = True
    batch: int = 1
    atol: float = 1e-4
    rtol: float = 1e-3
    parity: bool = True
    seed: int = 0
    # also write X.check.npz (the input and torch's output) for the device agent's check
    check_file: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ExportConfig:
        return cls(**d)


@dataclass(frozen=True)
class ExportResult:
    """What was written and how close ONNX Runtime came to torch."""

    path: str
    opset: int
    size_bytes: int
    input_shape: tuple
    max_abs_diff: float | None
    check_path: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d


def export_onnx(
    model, input_size: tuple, path: str, config: ExportConfig | None = None
) -> ExportResult:
    """Export ``model`` (eval mode) for inputs (C, H, W) to ``path`` atomically.

    The file appears only after ``onnx.checker`` and the parity check both passed.
    """
    import torch

    onnx = require("onnx", "onnx")
    cfg = config or ExportConfig()
    shape = (int(cfg.batch), *(int(s) for s in input_size))
    gen = torch.Generator().manual_seed(cfg.seed)
    x = torch.randn(shape, generator=gen)
    model = model.eval()
    tmp = f"{path}.tmp{os.getpid()}.onnx"
    dynamic = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if cfg.dynamic_batch else None
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (x,),
                tmp,
                opset_version=cfg.opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic,
                do_constant_folding=True,
                dynamo=False,
            )
        try:
            onnx.checker.check_model(tmp, full_check=True)
        except onnx.checker.ValidationError as exc:
            raise UserError(
                f"the exported ONNX model is invalid: {str(exc).splitlines()[0]}"
            ) from exc
        diff, check = None, None
        if cfg.parity or cfg.check_file:
            with torch.no_grad():
                ref = model(x).detach().cpu().numpy()
        if cfg.parity:
            diff = parity_check(tmp, x.numpy(), ref, cfg.atol, cfg.rtol)
        if cfg.check_file:
            check = write_check_file(path, x.numpy(), ref)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return ExportResult(path, cfg.opset, os.path.getsize(path), shape, diff, check)


def fix_batch(path: str, batch: int) -> None:
    """Give the ONNX file's graph inputs and outputs a fixed batch dimension, in place
    (atomic): ONNX Runtime plans a static-shape graph better (a pruned CIFAR ResNet-56 ran
    ~8% slower relative to its dense twin with a dynamic batch)."""
    import onnx

    from edgeprune.fileio import atomic_write

    model = onnx.load(path)
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_value = batch
    del model.graph.value_info[:]  # intermediate shapes are inferred again by the runtime
    atomic_write(path, lambda tmp: onnx.save(model, tmp))


def write_check_file(onnx_path: str, x, ref) -> str:
    """Save the input and torch's output beside the model, for the on-device output check."""
    import numpy as np

    from edgeprune.deploy_agent.edgeprune_agent import check_path
    from edgeprune.fileio import atomic_write

    path = check_path(onnx_path)  # the name the device agent looks for
    atomic_write(path, lambda tmp: np.savez(tmp, input=x, output=ref))
    return path


SCALE_RTOL = 1e-5  # float32 rounding of a deep net's sums: about 100 ulps of the output scale


def parity_check(onnx_path: str, x, ref, atol: float = 1e-4, rtol: float = 1e-3) -> float:
    """Run ``onnx_path`` in ONNX Runtime on ``x``; raise ExportParityError if it strays from ``ref``.

    An element may differ by ``atol + rtol * |ref|``, where ``atol`` grows to ``SCALE_RTOL``
    times the output's largest magnitude: a random-init Inception-v3 puts out logits near
    1e12, and float32 rounding of such sums differs between torch and ORT by about 1e-7 of
    that magnitude, also on the elements near 0. Returns the largest absolute difference.
    """
    import numpy as np

    ort = require("onnxruntime", "onnx")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    if out.shape != ref.shape:
        raise ExportParityError(
            f"ONNX output shape {tuple(out.shape)} differs from torch's {tuple(ref.shape)}"
        )
    ref64 = ref.astype(np.float64)
    diff = np.abs(out.astype(np.float64) - ref64)
    scale = float(np.abs(ref64).max()) if ref64.size else 0.0
    atol = max(atol, SCALE_RTOL * scale) if np.isfinite(scale) else atol
    bound = atol + rtol * np.abs(ref64)
    if not np.all(np.isfinite(out)) or np.any(diff > bound):
        raise ExportParityError(
            f"ONNX Runtime output differs from torch by up to {float(np.nanmax(diff)):.3g} "
            f"(tolerance atol={atol:.3g}, rtol={rtol:g}, for outputs up to {scale:.3g}); "
            "the export is not trustworthy"
        )
    return float(diff.max()) if diff.size else 0.0


def node_module(node_name: str, module_names: set[str] | None = None) -> str:
    """Module path of a legacy-exporter node name: '/layer1/layer1.0/conv1/Conv' -> 'layer1.0.conv1'.

    Nodes outside any module (or unnamed ones) map to ''. With ``module_names`` given, a
    reused module's numbered scope (``relu_1``) maps to its module when that exists.
    """
    parts = [p for p in node_name.split("/") if p]
    if len(parts) < 2 or not node_name.startswith("/"):
        return ""
    path = ""
    for seg in parts[:-1]:
        path = seg if not path or seg.startswith(path + ".") else f"{path}.{seg}"
    if module_names is not None and path not in module_names:
        head, _, last = path.rpartition(".")
        base = last.rsplit("_", 1)[0] if "_" in last and last.rsplit("_", 1)[1].isdigit() else last
        cand = f"{head}.{base}" if head else base
        if cand in module_names:
            return cand
    return path
