"""AAPConfig: every hyperparameter of AAP. The schedule defaults are Table 1's (ResNet-56,
CIFAR-10); the policy defaults are ours where marked (see the class docstring), the paper's
under ``--preset paper``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edgeprune.config_io import from_dict
from edgeprune.errors import UserError

ATTENTIONS = ("mean", "max", "sum")
STREAMS = ("mean", "sum")
LAM_RULES = ("paper", "reset")
GOALS = ("auto", "params", "flops", "latency")


@dataclass(frozen=True)
class AAPConfig:
    """AAP's options; each is reachable from the CLI as ``--opt key=value``.

    Attention: ``attention`` (mean | max | sum of |a|^p), ``p``, ``attn_batches`` batches of a
    fixed calibration draw (``attn_seed``). Policy (Algorithms 2-4): ``t0``, ``lam0``,
    ``max_rollbacks`` (the paper's "several" roll-backs before a round is marked unacceptable),
    ``converge_tol``/``converge_rounds`` (size change < 0.1% for "several" rounds),
    ``max_rounds`` (a safety cap; the paper has none). ``goal``: what the layer-aware
    thresholds weigh (params | flops | latency, or several joined by ``+``; ``auto`` follows
    the budget). Retraining (Table 1, ResNet-56): ``epochs`` E, ``rewind_epoch`` k,
    ``lr``, ``milestones`` (epochs), ``gamma``, ``weight_decay``; ``round_epochs`` compresses
    the E-k epoch retraining of a round (None: E-k, the paper) and ``round_batches`` caps each
    of its epochs at that many batches (a fraction of an epoch per round on a small compute
    budget; None: the pipeline's --limit-batches); ``rewind_weights`` resets the
    kept filters to epoch-k weights (optional in the paper, unused by the public code);
    ``train_dense`` trains the dense model for E epochs first (saving epoch k), otherwise the
    loaded weights stand for both W_k and W_E; then ``retrain_dense`` (ours) first gives the
    dense model one round's retraining, so that the accuracy every round is judged against
    comes from a model trained as much as the rounds' (loaded weights that were not trained
    on this data, e.g. CIFAR-10 JPEG, gain points from any retraining, which would otherwise
    loosen an accuracy target by that much). ``align`` (ours): under a latency goal a
    layer keeps its best filters up to the next multiple of the device profile's channel
    alignment (``auto``), since an unaligned width can run slower than a wider aligned one.
    ``stream_threshold``: a residual stream's threshold is the ``mean`` of its members'
    T_i (default, consistent with the per-layer T_i = T * w_i) or their ``sum`` (earlier).
    ``init_from_attention`` (ours, budget runs only: a latency/FLOPs/params/memory target):
    T[1] and lambda come from the dense model's attention distribution, T[1] at the
    ``init_quantile`` of attention / w_i (so round 1 prunes about that share of the filters;
    raised until the plan removes filters under a channel alignment)
    and lambda the distance to the next such quantile (unless ``t0`` or ``lam0`` is set);
    the paper's T = 0, lambda = 0.01 can prune nothing for dozens of rounds on a CPU budget. ``lam_rule``: after a roll-back
    ``paper`` sets lambda[r+1] = lambda[r] / 2^(C+1) (compounding over consecutive
    roll-backs), ``reset`` (ours) lambda[r+1] = lambda[1] / 2^(C+1).
    Defaults are for a pretrained start on a small budget; ``--preset paper`` sets Table 1's
    schedule and the paper's policy (see docs/methods.md).
    """

    attention: str = "mean"
    p: float = 1.0
    attn_batches: int = 1
    attn_seed: int = 0
    t0: float = 0.0
    lam0: float = 0.01
    max_rollbacks: int = 3
    converge_tol: float = 0.001
    converge_rounds: int = 3
    converge_after_rollback: bool = True
    max_rounds: int = 100
    goal: str = "auto"
    max_acc_drop: float | None = None  # percentage points; the budget's when the pipeline passes it
    epochs: int = 182
    rewind_epoch: int = 136
    round_epochs: int | None = None
    round_batches: int | None = None
    lr: float = 0.1
    milestones: tuple[int, ...] = (91, 136)
    gamma: float = 0.1
    weight_decay: float = 2e-4
    rewind_weights: bool = False
    train_dense: bool = False
    retrain_dense: bool = True
    skip_unchanged: bool = False
    allow_block_drop: bool = True
    align: int | str = "auto"  # kept counts rounded up to the device's channel alignment
    eval_batches: int | None = None
    measure_rounds: bool = True
    device: str | None = None  # device profile for per-layer latency shares (latency goal)
    stream_threshold: str = "mean"
    init_from_attention: bool = True
    init_quantile: float = 0.05
    lam_rule: str = "paper"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise UserError(f"AAP attention must be one of {', '.join(ATTENTIONS)}")
        bad = [
            g for g in self.goal.split("+") if g not in GOALS or (g == "auto" and "+" in self.goal)
        ]
        if bad:
            raise UserError(f"AAP goal {self.goal!r} is not params, flops, latency or auto")
        if self.p < 1 or self.lam0 <= 0 or self.attn_batches < 1 or self.max_rounds < 1:
            raise UserError("AAP needs p >= 1, lam0 > 0, attn_batches >= 1 and max_rounds >= 1")
        if self.stream_threshold not in STREAMS or self.lam_rule not in LAM_RULES:
            raise UserError("AAP stream_threshold must be mean or sum, lam_rule paper or reset")
        if not 0.0 < self.init_quantile < 0.5:
            raise UserError("AAP init_quantile must be in (0, 0.5)")
        if self.round_batches is not None and self.round_batches < 1:
            raise UserError("AAP round_batches must be a positive number of batches")
        if not 0 <= self.rewind_epoch < self.epochs:
            raise UserError("AAP rewind_epoch must be in [0, epochs)")
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        if self.align != "auto" and (not str(self.align).isdigit() or int(self.align) < 1):
            raise UserError("AAP align must be 'auto' or a positive channel count")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AAPConfig:
        """Build from ``--opt`` values: unknown keys and wrong types are one UserError."""
        return from_dict(cls, d, "method 'aap'")
