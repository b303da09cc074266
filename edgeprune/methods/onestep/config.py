"""``OneStepConfig``: every hyperparameter of the one-step method. The loss weights and
learning rates are the paper's; the schedules and the ranking are ours for a CPU budget
(marked below), the paper's under ``--preset paper``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from edgeprune.config_io import from_dict
from edgeprune.errors import UserError

LAYER_SCORES = ("mean", "sum")
MIMICS = ("kl", "js", "mse", "lasso")
RANKINGS = ("global", "per_layer")


@dataclass(frozen=True)
class OneStepConfig:
    """Options of ``--method onestep`` (each settable with ``--opt key=value``).

    Importance (Eq. 3): ``lam`` (lambda, 1.0 as in the paper's CIFAR experiment; 0.1 on
    ImageNet), ``beta_lr`` (Adam, 1e-5 CIFAR / 1e-4 ImageNet), ``beta_epochs`` (passes over the
    training data; 1 by default, the paper used 15 on CIFAR and 10 on ImageNet).
    Crucial layers: ``layer_score`` = ``mean`` of |beta| over a layer (the paper's text,
    the default) or ``sum`` (the paper's Eq. 4; favours wide layers); ``n_crucial`` (N >= 2,
    4 as in the paper's Table 1; the layer holding the last conv is appended if not among
    them). ``rate``: a fixed global pruning rate (fraction of the non-crucial layers'
    channels removed, exactly) instead of the budget controller.
    Recovery (Eq. 8): ``mimic`` = kl (default) | js | mse | lasso; ``recover_epochs`` (1 by
    default, ours: one epoch of a 2-core CPU is ~6 min for ResNet-56; the paper's 15 under
    ``--preset paper``), ``recover_lr`` (Adam, 1e-3), divided by 10 every ``recover_lr_step``
    (5) epochs.
    ``ranking`` under the budget controller: ``per_layer`` (default, ours: |beta| divided
    by the layer's mean, widths allocated per layer on latency saved per importance lost) or
    ``global`` (the paper's one-step global pruning, ``--preset paper``: one |beta| threshold
    over all layers, the controller choosing how many channels to keep on the latency
    table). Measured on ResNet-56 at 0.5x latency (RESULTS, issue 20): after the default
    beta pass most beta sit near 0 and the global threshold cuts the non-crucial convs to
    1-5 filters (FLOPs 0.13x, top-1 0.7354); per_layer kept FLOPs 0.54x and reached 0.8372.
    ``beta_travel`` (ours, for short schedules): Adam moves each beta by at most ~lr per
    step, so 1 pass at 1e-5 (~350 steps) moves beta by <= 0.0035 and the ranking stays near
    random; with ``beta_travel`` set the step is raised to max(beta_lr, beta_travel / steps).
    With lam = 1 the L1 term dominates the CE gradient, so Adam first lowers every beta
    alike; travel 2 brings beta from 1 to 0 in half the schedule, and in the other half the
    CE gradient decides which channels climb back (ResNet-8, 6 steps: |beta| spread 0.5
    vs 0.001 at travel 0.5 and 6e-5 at the paper's lr).
    None: ``beta_lr`` as given (the paper; ``--preset paper`` also sets its 15 epochs).
    """

    lam: float = 1.0
    beta_lr: float = 1e-5
    beta_epochs: int = 1
    layer_score: str = "mean"
    n_crucial: int = 4
    rate: float | None = None
    mimic: str = "kl"
    recover_epochs: int = 1
    recover_lr: float = 1e-3
    recover_lr_step: int = 5
    ranking: str = "per_layer"
    beta_travel: float | None = 2.0

    def __post_init__(self) -> None:
        if self.layer_score not in LAYER_SCORES:
            raise UserError(f"onestep: layer_score must be one of {', '.join(LAYER_SCORES)}")
        if self.ranking not in RANKINGS:
            raise UserError(f"onestep: ranking must be one of {', '.join(RANKINGS)}")
        if self.beta_travel is not None and self.beta_travel <= 0:
            raise UserError("onestep: beta_travel must be positive (or none)")
        if self.mimic not in MIMICS:
            raise UserError(f"onestep: mimic must be one of {', '.join(MIMICS)}")
        if int(self.n_crucial) < 2:
            raise UserError("onestep: n_crucial must be >= 2 (the paper's condition N >= 2)")
        if self.rate is not None and not 0.0 <= float(self.rate) < 1.0:
            raise UserError("onestep: rate must be in [0, 1)")
        if self.beta_epochs < 1 or self.recover_epochs < 0 or self.recover_lr_step < 1:
            raise UserError("onestep: beta_epochs and recover_lr_step must be >= 1, epochs >= 0")
        if self.lam < 0 or self.beta_lr <= 0 or self.recover_lr <= 0:
            raise UserError("onestep: lam must be >= 0 and learning rates positive")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> OneStepConfig:
        """Build from options: unknown keys and wrong types are one UserError."""
        return from_dict(cls, d, "method 'onestep'")
