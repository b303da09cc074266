"""PAAM's options as frozen data: every hyperparameter of the paper, with its default."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edgeprune.config_io import from_dict
from edgeprune.errors import UserError

_CHOICES = {
    "variant": ("vanilla", "kq"),
    "balance": ("auto", "flops", "latency", "none"),
    "binarize": ("auto", "budget", "ratio", "theta"),
    "final": ("controller", "binarize"),
    "group_weights": ("first", "all"),
    "final_scores": ("trained", "recomputed"),
}


@dataclass(frozen=True)
class PAAMConfig:
    """Options of PAAM (Babaiee et al.). The model-side hyperparameters (lam, AN and CNN
    learning rates, cycles of 3 + 6 epochs, theta) default to the paper's CIFAR-10 ResNet-56
    values; the warm-up defaults to 0 (a pretrained start; the paper trains 50 epochs from
    scratch) and, in a run with a budget, ``balance``/``binarize``/``final`` switch to ours
    (latency balancing, the ratio that meets the budget, the controller's threshold).
    ``--preset paper`` sets every value of the paper (see docs/methods.md).

    variant: attention network, ``vanilla`` (S = phi(F W^F)) or ``kq`` (scaled key-query).
    lam: lambda of the score regulariser (Table 5, ResNet-56 medium: 5e-4).
    a: slope of the leaky-exponential for x >= 0 (the paper says only "small": 0.01 here).
    alpha: KQ scaling factor (tuned in the paper, value not given: 1.0 here).
    kq_dim_divisor: KQ hidden size d = F / divisor (paper: 1 on CIFAR, 4 on ResNet-50).
    balance: per-layer weights of the l1 term: ``flops`` (image size relative to the last
        layer's, the paper), ``latency`` (predicted ms saved per channel on the device),
        ``none`` (all 1, Eq. 6), ``auto`` (latency when the run has a device, else flops).
    warmup_epochs, warmup_lr, warmup_weight_decay: dense warm-up with SGD (momentum 0.9),
        scores fixed at 1 (paper: 50 epochs from scratch, lr 0.1, wd 5e-4; 0 for a
        pretrained start, as the paper's ResNet-50).
    cycles, an_epochs, cnn_epochs: E_p cycles of E_s AN epochs + CNN epochs (10, 3, 6).
    an_lr, cnn_lr: Adam learning rates of the AN and CNN phases (1e-6, 1e-3).
    cnn_weight_decay: Adam weight decay in the CNN phases (not given by the paper: 0).
    binarize: g(s, p) during CNN phases: ``theta`` (s >= theta), ``ratio`` (global pruning
        ratio ``prune_ratio``), ``budget`` (the ratio that meets the run's budget),
        ``auto`` (budget when the run has one, else theta).
    theta: the binarization threshold (paper: 0.5); prune_ratio: the fixed p.
    final: ``controller`` (the budget controller picks the global threshold on the final
        scores) or ``binarize`` (the paper's mode: the same g(s, p) as in the CNN phases).
    group_weights: the AN input of a coupled group: ``all`` its convs' filters side by side,
        divided by their count (default; the paper scores every conv, and a residual
        stream's channel is a channel of each of them) or only its ``first`` conv's.
        Undivided, ``all`` cut every ResNet-56 stream to a few channels at 0.5x latency
        (top-1 0.4652); divided 0.7106, ``first`` 0.6898 (RESULTS, issue 20).
    final_scores: the scores the final plan is cut from: ``trained`` (default, the paper:
        those that gave the masks the last CNN phase trained with) or ``recomputed`` (the
        ANs re-run on the filters after that phase, which can differ from the masks).
    max_an_params: refuse (one clear sentence) attention networks larger than this.
    freeze_bn_stats: keep BatchNorm running statistics fixed during AN phases.
    device: where the pruning phases train (``auto``: CUDA when available).
    hist_bins: bins of the score histograms in the diagnostics (over [0, 1.1]).
    """

    variant: str = "vanilla"
    lam: float = 5e-4
    a: float = 0.01
    alpha: float = 1.0
    kq_dim_divisor: int = 1
    balance: str = "auto"
    warmup_epochs: int = 0
    warmup_lr: float = 0.1
    warmup_weight_decay: float = 5e-4
    cycles: int = 10
    an_epochs: int = 3
    cnn_epochs: int = 6
    an_lr: float = 1e-6
    cnn_lr: float = 1e-3
    cnn_weight_decay: float = 0.0
    binarize: str = "auto"
    theta: float = 0.5
    prune_ratio: float = 0.5
    final: str = "controller"
    group_weights: str = "all"
    final_scores: str = "trained"
    max_an_params: int = 200_000_000
    freeze_bn_stats: bool = True
    device: str = "auto"
    hist_bins: int = 22

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise UserError(
                    f"paam option {name}={getattr(self, name)!r} is not one of {', '.join(choices)}"
                )
        _check_ranges(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PAAMConfig:
        """Build from option strings or values (``--opt lam=1e-4``: YAML gives a string)."""
        return from_dict(cls, d, "method 'paam'")


def _check_ranges(c: PAAMConfig) -> None:
    counts = ("kq_dim_divisor", "cycles", "an_epochs", "cnn_epochs", "hist_bins", "max_an_params")
    for name in counts:
        if getattr(c, name) < 1:
            raise UserError(f"paam option {name} must be >= 1")
    if c.warmup_epochs < 0:
        raise UserError("paam option warmup_epochs must be >= 0")
    for name in ("lam", "a", "warmup_weight_decay", "cnn_weight_decay"):
        if getattr(c, name) < 0:
            raise UserError(f"paam option {name} must be >= 0")
    for name in ("alpha", "an_lr", "cnn_lr", "warmup_lr"):
        if getattr(c, name) <= 0:
            raise UserError(f"paam option {name} must be positive")
    if not 0.0 <= c.prune_ratio < 1.0:
        raise UserError("paam option prune_ratio must be in [0, 1)")
