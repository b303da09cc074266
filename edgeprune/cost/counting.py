"""Counting: params, FLOPs (multiply-accumulates), weight bytes, peak activation memory."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class Counts:
    """Static costs of a model for one input size (batch 1)."""

    params: int
    flops: int  # multiply-accumulates (MACs) of conv and linear layers
    # parameters + persistent buffers as stored (float32: 4 bytes each); counted at int8
    # (``count(..., precision="int8")``, see ``int8_weight_bytes``): as deployed quantized
    weight_bytes: int
    peak_activation_bytes: int  # largest (input + output) of any layer, batch 1

    def to_dict(self) -> dict:
        return asdict(self)


def _layer_macs(m: nn.Module, out: torch.Tensor) -> int:
    if isinstance(m, nn.Conv2d):
        k = m.kernel_size[0] * m.kernel_size[1]
        return int(out.numel() * (m.in_channels // m.groups) * k)
    if isinstance(m, nn.Linear):
        return int(out.numel() * m.in_features)
    return 0


# int8 (ORT QDQ, per-channel): a conv/linear weight is 1 byte, plus per output channel a
# float32 scale and an int8 zero point; biases and every other tensor stay as stored
INT8_WEIGHT_BYTES = 1
INT8_CHANNEL_BYTES = 4 + 1


def int8_weight_bytes(model: nn.Module) -> int:
    """The weight bytes of ``model`` deployed int8 (see ``INT8_WEIGHT_BYTES``)."""
    quantized = {
        f"{name}.weight" if name else "weight": m
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    }
    total = 0
    for k, t in model.state_dict().items():
        if "num_batches_tracked" in k:
            continue
        if k in quantized:
            total += t.numel() * INT8_WEIGHT_BYTES + t.shape[0] * INT8_CHANNEL_BYTES
        else:
            total += t.numel() * t.element_size()
    return total


def count(
    model: nn.Module, input_size: tuple[int, int, int] | None = None, precision: str = "fp32"
) -> Counts:
    """Count params, MACs, weight bytes and peak activation bytes for one image; weight
    bytes as deployed at ``precision`` (fp32: as stored; int8: ``int8_weight_bytes``)."""
    c, h, w = input_size or getattr(model, "edgeprune_input_size", (3, 32, 32))
    macs = 0
    peak = 0

    def hook(mod, inputs, out):
        nonlocal macs, peak
        if not isinstance(out, torch.Tensor):
            return
        macs += _layer_macs(mod, out)
        in_bytes = sum(t.numel() * t.element_size() for t in inputs if isinstance(t, torch.Tensor))
        peak = max(peak, in_bytes + out.numel() * out.element_size())

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, c, h, w))
    finally:
        for hd in handles:
            hd.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    state = model.state_dict()
    weight_bytes = sum(
        t.numel() * t.element_size() for k, t in state.items() if "num_batches_tracked" not in k
    )
    if precision == "int8":
        weight_bytes = int8_weight_bytes(model)
    return Counts(params, macs, weight_bytes, peak)
