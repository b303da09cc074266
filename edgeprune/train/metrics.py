"""Top-k accuracy counting and evaluation results."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks=(1, 5)) -> list[int]:
    """Number of samples whose target is within the top-k logits, for each k."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hits = top.eq(targets.view(-1, 1))
    return [int(hits[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


@dataclass(frozen=True)
class EvalResult:
    """Accuracy on ``n`` images: top-1/top-5 as fractions and the mean loss."""

    n: int
    top1: float
    top5: float
    loss: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EvalResult:
        return cls(**d)


class Totals:
    """Running sums of loss, correct counts and sample count (all-reducible as one tensor)."""

    def __init__(self) -> None:
        self.sums = torch.zeros(4, dtype=torch.float64)  # loss*n, top1, top5, n

    def add(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        n = targets.shape[0]
        c1, c5 = topk_correct(logits.detach().float(), targets)
        self.sums += torch.tensor([float(loss.detach()) * n, c1, c5, n], dtype=torch.float64)

    def result(self) -> EvalResult:
        loss, c1, c5, n = self.sums.tolist()
        d = max(n, 1)
        return EvalResult(int(n), c1 / d, c5 / d, loss / d)
