"""PAAM's attention networks: analog filter scores from a layer's filter weights."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from edgeprune.errors import UserError
from edgeprune.surgery.graph import PrunableGroup


def leaky_exp(x: torch.Tensor, a: float) -> torch.Tensor:
    """The leaky-exponential phi(x): e^x for x < 0, 1 + a*x for x >= 0 (Eq. 4)."""
    return torch.where(x < 0, torch.exp(torch.clamp(x, max=0.0)), 1.0 + a * x)


class VanillaAN(nn.Module):
    """S = phi(vec(F) W^F), W^F in R^{(F*C*K*K) x F}; W^F = 0 at start, so S = 1 (dense)."""

    def __init__(self, filters: int, row: int, a: float) -> None:
        super().__init__()
        self.a = a
        self.weight = nn.Parameter(torch.zeros(filters * row, filters))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """``w``: the filters as an F x (C*K*K) matrix -> F scores."""
        return leaky_exp(w.reshape(1, -1) @ self.weight, self.a).squeeze(0)


class KQAN(nn.Module):
    """S = phi(mean_keys(Q K^T) / (alpha sqrt(d))), Q = F W^Q, K = F W^K (Eq. 2).

    W^Q starts random (std 1/sqrt(C*K*K)) and W^K at zero, so S = 1 at start and both
    matrices get gradients (with both at zero neither would).
    """

    def __init__(self, filters: int, row: int, d: int, a: float, alpha: float) -> None:
        super().__init__()
        self.a, self.alpha, self.d = a, alpha, d
        self.wq = nn.Parameter(torch.randn(row, d) / math.sqrt(row))
        self.wk = nn.Parameter(torch.zeros(row, d))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """``w``: the filters as an F x (C*K*K) matrix -> F scores."""
        q, k = w @ self.wq, w @ self.wk
        logits = (q @ k.T).mean(dim=1) / (self.alpha * math.sqrt(self.d))
        return leaky_exp(logits, self.a)


def group_filters(model: nn.Module, group: PrunableGroup, which: str) -> torch.Tensor:
    """The AN input of a group, F x row, detached: its first conv's filters (``first``),
    or every conv's filters of the group side by side, divided by their count (``all``).

    The division keeps a residual stream's scores moving at a single conv's pace: Adam steps
    every AN weight by about its lr, so a logit moves by about lr times the L1 norm of its
    input row, ~9x a single conv's for a ResNet-56 stream of 9 convs; undivided, the L1
    penalty drove the streams' scores down first and the global threshold cut every stream
    to a few channels (ResNet-56 at 0.5x latency: 2.4% of the params, top-1 0.47)."""
    convs = (group.name,) if which == "first" else group.convs
    mats = [model.get_submodule(c).weight.detach().flatten(1) for c in convs]
    return torch.cat(mats, dim=1) / len(mats)


def an_param_count(
    model: nn.Module, groups: list[PrunableGroup], variant: str, which: str, divisor: int = 1
) -> int:
    """Parameters the attention networks of ``groups`` would have (nothing allocated)."""
    total = 0
    for g in groups:
        row = sum(
            model.get_submodule(c).weight[0].numel()
            for c in ((g.name,) if which == "first" else g.convs)
        )
        total += g.channels * row * g.channels if variant == "vanilla" else 2 * row * _d(g, divisor)
    return total


def _d(group: PrunableGroup, divisor: int) -> int:
    return max(1, group.channels // divisor)


def build_attention(model: nn.Module, groups: list[PrunableGroup], cfg) -> nn.ModuleDict:
    """One AN per group (keys: group names with '.' -> '/'), after a memory check."""
    n = an_param_count(model, groups, cfg.variant, cfg.group_weights, cfg.kq_dim_divisor)
    if n > cfg.max_an_params:
        gib = n * 4 * 3 / 2**30  # weights + Adam's two moments, fp32
        raise UserError(
            f"PAAM {cfg.variant} attention networks for this model need {n / 1e6:,.0f}M "
            f"parameters (~{gib:,.1f} GiB with Adam state), over the limit of "
            f"{cfg.max_an_params / 1e6:,.0f}M (--opt max_an_params); use --opt variant=kq, "
            "which scales (the paper's choice for ResNet-50)"
        )
    nets = nn.ModuleDict()
    for g in groups:
        row = group_filters(model, g, cfg.group_weights).shape[1]
        if cfg.variant == "vanilla":
            nets[an_key(g.name)] = VanillaAN(g.channels, row, cfg.a)
        else:
            d = _d(g, cfg.kq_dim_divisor)
            nets[an_key(g.name)] = KQAN(g.channels, row, d, cfg.a, cfg.alpha)
    return nets


def an_key(group_name: str) -> str:
    """ModuleDict keys may not contain '.'."""
    return group_name.replace(".", "/")
