"""``--precision auto`` (and int8 under a latency budget) in the prune workflow: which
precisions the device offers, a cost model and a measurer per precision, and the val score
that chooses between them (``edgeprune.budget.controller.choose_precision``).

The rule (``PRECISION_RULE``): every precision the device's latency table measured, and whose
dense model the table predicts faster than dense fp32, gets its own plan for the budget (a
ratio budget stays relative to the DENSE FP32 model: int8 plans are verified by timing the
quantized pruned ONNX against the dense fp32 ONNX). Each candidate is scored on a seeded
draw of ``PRECISION_VAL_IMAGES`` val images (the same for every precision; the val split is
stored class by class) as its deployable ONNX through ONNX Runtime: the fp32 export, or its int8 QDQ model calibrated on 256 training
images (val held out), after a short common recovery of ``batches`` training batches (default
100, distilled like the recovery; 0: none, which compares unrecovered candidates that sit near
chance after heavy pruning; with ``--candidates`` K > 1 the structure search's ``candidate_batches``
fine-tune, distilled like it). The best score wins; a tie goes to fp32; without val data
the candidate that keeps the most FLOPs.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edgeprune.errors import UserError

if TYPE_CHECKING:
    import torch.nn as nn

    from edgeprune.budget.controller import ControllerResult, PrecisionOption

PRECISION_VAL_IMAGES = 512  # val images each candidate precision is scored on


@dataclass
class PrecisionSetup:
    """Per offered precision: the option, its cost model, its measurer; the val scorer
    (None without val data); ``forced``: the user asked for this precision (int8)."""

    options: list[PrecisionOption]
    costs: dict = field(default_factory=dict)
    measures: dict = field(default_factory=dict)
    score: Callable[[str, ControllerResult], float] | None = None
    forced: bool = False


def precision_options(
    requested: str, profile, model, input_size, model_name: str, fp32_predictor, log
) -> list[tuple[PrecisionOption, object]]:
    """(option, latency predictor) per precision to consider for ``requested`` (auto: fp32
    plus what the table measured; int8: int8 only, refused in one sentence without int8
    rows); the predictor prices that precision."""
    from edgeprune.budget.controller import PrecisionOption
    from edgeprune.cost.latency import LatencyPredictor, no_precision, profile_precisions

    have = profile_precisions(profile)
    wanted = ("fp32", "int8") if requested == "auto" else (requested,)
    missing = [p for p in wanted if p not in have]
    if requested == "int8" and missing:
        raise UserError(no_precision(profile, "int8", model_name))
    if requested == "auto" and missing:
        log(f"{no_precision(profile, 'int8', model_name)}: fp32 only")
    dense_fp32 = fp32_predictor.total_ms()
    out = []
    for p in wanted:
        if p not in have:
            continue
        pred = fp32_predictor
        if p != "fp32":
            pred = LatencyPredictor.from_model(model, input_size, profile, model_name, p)
        ratio = pred.total_ms() / dense_fp32 if dense_fp32 > 0 else 1.0
        log(f"precision {p}: dense model predicted at {ratio:.3f}x of dense fp32")
        out.append((PrecisionOption(p, ratio), pred))
    return out


def val_scorer(
    val_loader,
    input_size,
    data_root: str | None,
    train: Callable[[nn.Module], None] | None = None,
    images: int = PRECISION_VAL_IMAGES,
) -> Callable[[str, nn.Module], float]:
    """``score(precision, pruned)``: top-1 of the model's deployable ONNX at ``precision``
    on a seeded draw of ``images`` val images, after ``train(copy)`` (a short common recovery)."""
    from edgeprune.export.onnx_export import ExportConfig, export_onnx
    from edgeprune.quant.onnx_eval import score_onnx

    subset = val_subset(val_loader, images)
    calib: list = []

    def score(precision: str, pruned: nn.Module) -> float:
        trial = copy.deepcopy(pruned)
        if train is not None:
            train(trial)
        trial.eval()
        with tempfile.TemporaryDirectory(prefix="edgeprune-precision-") as tmp:
            path = os.path.join(tmp, "model.onnx")
            export_onnx(trial.cpu(), input_size, path, ExportConfig(parity=False))
            if precision == "int8":
                from edgeprune.quant.ptq import quantize_onnx

                if not calib:
                    calib.extend(_calibration(data_root, input_size))
                q = os.path.join(tmp, "model_int8.onnx")
                quantize_onnx(path, q, calib)
                path = q
            return float(score_onnx(path, subset)["top1"])

    return score


def val_subset(val_loader, images: int, seed: int = 0):
    """A loader over a fixed seeded draw of ``images`` val images (the val split is stored
    class by class: its first images would be two classes only)."""
    import numpy as np
    from torch.utils.data import DataLoader, Subset

    ds = val_loader.dataset
    pick = np.random.default_rng(seed).permutation(len(ds))[: min(images, len(ds))]
    batch = getattr(val_loader, "batch_size", None) or 128
    return DataLoader(Subset(ds, sorted(int(i) for i in pick)), batch_size=batch, shuffle=False)


def _calibration(data_root: str | None, input_size) -> list:
    from edgeprune.quant.calibration import calibration_batches, random_batches

    if data_root is None:
        return random_batches(tuple(input_size))
    return calibration_batches(data_root)


def short_trainer(teacher, train_loader, base_cfg, batches: int, distill=None):
    """``train(model)`` in place: ``batches`` training batches (None for 0 batches)."""
    if batches <= 0 or train_loader is None:
        return None
    from dataclasses import replace

    from edgeprune.train import resolve_device, train

    tcfg = replace(base_cfg, epochs=1, limit_batches=batches, progress=False)

    def run(model: nn.Module) -> None:
        model.to(resolve_device("auto"))
        try:
            train(model, train_loader, tcfg, teacher=teacher, distill=distill)
        finally:
            teacher.to("cpu")
            model.to("cpu")

    return run
