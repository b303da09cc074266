"""Quantization-aware fine-tuning (QAT) before the int8 export, eager mode.

The model trains with the int8 rounding it will meet in ONNX Runtime simulated in the
forward pass (straight-through gradients): every Conv2d/Linear weight fake-quantized to
symmetric int8 per output channel, every Conv2d/Linear input to uint8 with ranges tracked by
a moving-average min/max observer (``torch.ao.quantization.FakeQuantize``). Afterwards the
fake quantization is removed and the fp32 weights it shaped are exported and quantized by
``quantize_onnx`` as usual: the same QDQ graph, calibrated afresh, from weights that learned
to live with int8.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils import parametrize


class _WeightFakeQuant(nn.Module):
    """Symmetric int8 per-output-channel fake quantization of a weight (as ORT's QInt8)."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        flat = w.detach().reshape(w.shape[0], -1).abs().amax(dim=1)
        scale = (flat / 127.0).clamp_min(1e-8).float()
        zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -127, 127)


def _activation_fq() -> nn.Module:
    from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver

    return FakeQuantize(
        observer=MovingAverageMinMaxObserver,
        quant_min=0,
        quant_max=255,
        dtype=torch.quint8,
        qscheme=torch.per_tensor_affine,
    )


def add_fake_quant_(model: nn.Module) -> list:
    """Fake-quantize the weights and inputs of every Conv2d/Linear of ``model`` in place;
    returns what ``remove_fake_quant_`` needs to undo it."""
    undo = []
    for mod in model.modules():
        if not isinstance(mod, nn.Conv2d | nn.Linear):
            continue
        parametrize.register_parametrization(mod, "weight", _WeightFakeQuant())
        fq = _activation_fq().to(mod.weight.device)
        mod.add_module("input_fake_quant", fq)
        handle = mod.register_forward_pre_hook(lambda m, args: (m.input_fake_quant(args[0]),))
        undo.append((mod, handle))
    return undo


def remove_fake_quant_(undo: list) -> None:
    """Back to the plain fp32 modules (the trained weights stay)."""
    for mod, handle in undo:
        handle.remove()
        parametrize.remove_parametrizations(mod, "weight", leave_parametrized=False)
        del mod.input_fake_quant


def qat_finetune_(model: nn.Module, loader, train_cfg, *, teacher=None, distill=None) -> float:
    """Train ``model`` in place with int8 fake quantization for ``train_cfg.epochs``;
    returns the seconds it took. The model leaves in eval mode, without fake quantization."""
    import time

    from edgeprune.train import train

    t0 = time.time()
    undo = add_fake_quant_(model)
    try:
        train(model, loader, train_cfg, teacher=teacher, distill=distill)
    finally:
        remove_fake_quant_(undo)
        model.eval()
    return time.time() - t0
