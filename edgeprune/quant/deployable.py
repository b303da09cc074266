"""The deployable int8 model of a run: quantize the fp32 export, judge it against fp32 on
check inputs, write the device's check file, and say how in one dict for report.json."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from edgeprune.errors import UserError
from edgeprune.quant import CALIBRATION_METHODS, PRECISIONS

FP32_NAME = "model_fp32.onnx"  # the fp32 export kept beside the int8 model.onnx
CHECK_INPUTS = 64
# PTQ losing more than this (top-1, points) on val calls for QAT (issue 18)
MAX_PTQ_LOSS_POINTS = 0.5


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize: calibration method and images, per-channel weights, check inputs."""

    method: str = "minmax"
    calibration_images: int = 256
    per_channel: bool = True
    check_inputs: int = CHECK_INPUTS
    seed: int = 0
    # epochs of quantization-aware fine-tuning when PTQ loses > MAX_PTQ_LOSS_POINTS on val
    # (0: none, the PTQ loss is reported as it is)
    qat_epochs: int = 0

    def __post_init__(self) -> None:
        if self.method not in CALIBRATION_METHODS:
            raise UserError(
                f"unknown calibration method {self.method!r}; expected one of "
                f"{', '.join(CALIBRATION_METHODS)}"
            )
        if self.calibration_images < 1 or self.check_inputs < 1:
            raise UserError("--calibration-images must be positive")
        if self.qat_epochs < 0:
            raise UserError("--qat-epochs must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


def as_quant_config(value) -> QuantConfig:
    """A QuantConfig from None (the defaults), a QuantConfig or its dict (a saved config)."""
    if value is None:
        return QuantConfig()
    return QuantConfig(**value) if isinstance(value, dict) else value


def check_precision(precision: str, allowed: tuple[str, ...] = PRECISIONS) -> str:
    """``precision`` if it is one of ``allowed``, else one UserError sentence."""
    if precision not in allowed:
        raise UserError(f"precision {precision!r} is not one of {', '.join(allowed)}")
    return precision


def inputs_for(
    data_root: str | None, input_size: tuple, cfg: QuantConfig
) -> tuple[list[np.ndarray], np.ndarray, str]:
    """(calibration batches, check inputs, their source): training images (val held out)
    and val images with data; standard-normal inputs without (structure-only runs)."""
    from edgeprune.quant.calibration import calibration_batches, random_batches

    if data_root is None:
        calib = random_batches(tuple(input_size), cfg.calibration_images, seed=cfg.seed)
        check = random_batches(
            tuple(input_size), cfg.check_inputs, batch_size=cfg.check_inputs, seed=cfg.seed + 1
        )[0]
        return calib, check, "random (no data: structure only, int8 accuracy unknown)"
    from edgeprune.data import DataOptions

    side = int(input_size[-1])
    opts = DataOptions(resize=None if side == 32 else side)
    calib = calibration_batches(data_root, cfg.calibration_images, seed=cfg.seed, options=opts)
    check = calibration_batches(
        data_root,
        cfg.check_inputs,
        batch_size=cfg.check_inputs,
        seed=cfg.seed + 1,
        options=opts,
        split="val",
    )[0]
    return calib, check, "train (val held out)"


def make_int8(
    fp32_path: str | os.PathLike,
    int8_path: str | os.PathLike,
    calib: list[np.ndarray],
    check: np.ndarray,
    cfg: QuantConfig,
    source: str = "",
) -> dict:
    """Quantize ``fp32_path`` into ``int8_path``, judge it on ``check`` against fp32, write
    ``int8_path``'s check file (the device judges by the same rule); the report's dict."""
    from edgeprune.quant.agreement import judge, write_check_file
    from edgeprune.quant.onnx_eval import run_onnx
    from edgeprune.quant.ptq import count_qdq, quantize_onnx

    quantize_onnx(fp32_path, int8_path, calib, method=cfg.method, per_channel=cfg.per_channel)
    ref, out = run_onnx(fp32_path, check), run_onnx(int8_path, check)
    agreement = judge(ref, out)
    write_check_file(str(int8_path), check, ref, agreement)
    return {
        "format": "QDQ (ONNX Runtime static quantization)",
        "weights": "int8, per channel" if cfg.per_channel else "int8, per tensor",
        "activations": "uint8",
        "method": cfg.method,
        "calibration_images": int(sum(b.shape[0] for b in calib)),
        "calibration_source": source,
        "per_channel": cfg.per_channel,
        "fp32_model": os.path.basename(str(fp32_path)),
        "qdq_nodes": count_qdq(int8_path),
        "agreement": agreement.to_dict(),
        "qat_epochs": 0,
    }


def score_both(fp32_path, int8_path, loader, limit_batches: int | None, split: str) -> dict:
    """Top-1 of the fp32 and int8 ONNX models on ``loader`` (ORT), and the PTQ loss."""
    from edgeprune.quant.onnx_eval import score_onnx

    a = score_onnx(fp32_path, loader, limit_batches)
    b = score_onnx(int8_path, loader, limit_batches)
    loss = 100.0 * (a["top1"] - b["top1"])
    return {
        f"{split}_top1_fp32": a["top1"],
        f"{split}_top1_int8": b["top1"],
        f"{split}_images": b["n"],
        f"{split}_loss_points": loss,
    }


def agreement_line(quant: dict) -> str:
    """One line: the int8 model against fp32 on the check inputs."""
    from edgeprune.quant.agreement import Agreement

    return Agreement(**quant["agreement"]).sentence()


def loss_note(quant: dict) -> str:
    """One sentence on what PTQ cost on val (and whether QAT would be called for)."""
    loss = quant["val_loss_points"]
    if loss <= MAX_PTQ_LOSS_POINTS:
        return f"int8 (PTQ) costs {loss:.2f} points of val top-1 (<= {MAX_PTQ_LOSS_POINTS})"
    return (
        f"int8 (PTQ) costs {loss:.2f} points of val top-1 (> {MAX_PTQ_LOSS_POINTS}); "
        "--qat-epochs N recovers with quantization-aware fine-tuning"
    )
