"""Mimic losses between teacher and student post-ReLU feature maps (paper Sec. 3.3).

All take (teacher, student) maps of shape (B, C, H, W) with equal C. KL and JS compare,
at every spatial position, the softmax over channels (Eq. 10-12) and average over B x H x W;
MSE and LASSO (L1) average over elements (Eq. 9 up to a constant factor).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F


def _log_probs(x: torch.Tensor) -> torch.Tensor:
    return F.log_softmax(x.float(), dim=1)


def _kl_logp(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) from log-probabilities over dim 1, averaged over the other dims."""
    return (log_p.exp() * (log_p - log_q)).sum(1).mean()


def kl_mimic(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of the per-position channel softmax (the paper's default)."""
    return _kl_logp(_log_probs(teacher), _log_probs(student))


def js_mimic(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence of the per-position channel softmax (symmetric)."""
    log_p, log_q = _log_probs(teacher), _log_probs(student)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - math.log(2.0)
    return 0.5 * _kl_logp(log_p, log_m) + 0.5 * _kl_logp(log_q, log_m)


def mse_mimic(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the maps."""
    return F.mse_loss(student.float(), teacher.float())


def lasso_mimic(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of the maps (the paper's LASSO mimicking)."""
    return F.l1_loss(student.float(), teacher.float())


MIMIC_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "kl": kl_mimic,
    "js": js_mimic,
    "mse": mse_mimic,
    "lasso": lasso_mimic,
}
