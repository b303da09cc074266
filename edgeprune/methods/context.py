"""What a method may use: one frozen ``MethodContext``, built by ``make_method_context``.

A method never touches files or sockets: checkpoints go through ``ctx.checkpoint`` (the
workflow decides where), budgets through ``ctx.oracle`` (predicted metrics and, when a
device is reachable, a measurement), the device through ``ctx.device_profile``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from edgeprune.budget.verdict import LATENCY_TOLERANCE, Verdict, verdict

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from edgeprune.budget.budget import Budget
    from edgeprune.budget.costmodel import CostModel
    from edgeprune.budget.verify import Measurement
    from edgeprune.devices.profile import DeviceProfile
    from edgeprune.surgery.graph import PrunableGroup

    Measurer = Callable[[nn.Module, nn.Module], Measurement]


@dataclass(frozen=True)
class BudgetOracle:
    """What a method may ask about the budget: predicted metrics and (maybe) a measurement.

    ``metrics(model)`` -> dict with latency_ms (predicted, NaN without a device), params,
    flops, weight_bytes, activation_bytes; ``targets`` -> absolute limits per metric;
    ``measure(model)`` -> (dense_ms, model_ms) on the device, or None without one.
    """

    metrics: Callable[[nn.Module], dict[str, float]]
    targets: Mapping[str, float]
    dense_metrics: Mapping[str, float]
    measure: Callable[[nn.Module], tuple[float, float]] | None = None
    max_acc_drop: float | None = None  # percentage points of top-1 (accuracy-guaranteed)
    # the run's one latency tolerance (ControllerConfig.tolerance): a measured miss this
    # small counts as met; predictions are judged exactly
    tolerance: float = LATENCY_TOLERANCE

    def verdict(self, metrics: Mapping[str, float], measured: bool = False) -> Verdict:
        """Judge ``metrics`` against the targets (latency with the tolerance if
        ``measured``); see :func:`edgeprune.budget.verdict.verdict`."""
        return verdict(dict(metrics), dict(self.targets), self.tolerance if measured else 0.0)

    def violated(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """The targets the predicted ``metrics`` miss (metric -> limit)."""
        return self.verdict(metrics).violated


@dataclass(frozen=True)
class Checkpointer:
    """Atomic save/load of a method's resumable state (given by the workflow)."""

    save: Callable[[dict], None]
    load: Callable[[], dict | None]


@dataclass(frozen=True)
class MethodLoaders:
    """The data a method may see: its own training split, the val split its decisions are
    judged on, and the test split (for reporting only, never for decisions)."""

    train: DataLoader | None = None
    val: DataLoader | None = None
    test: DataLoader | None = None


@dataclass(frozen=True)
class MethodContext:
    """Everything a method may use, fixed at construction (see ``make_method_context``)."""

    example_input: torch.Tensor
    train_loader: DataLoader | None = None
    val_loader: DataLoader | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    limit_batches: int | None = None
    oracle: BudgetOracle | None = None
    checkpoint: Checkpointer | None = None
    resume: bool = False
    log: Callable[[str], None] = print
    latency_weights: Mapping[str, float] | None = None  # per group: predicted ms saved/channel
    flops_weights: Mapping[str, float] | None = None  # per group: MACs saved per channel
    cost_model: CostModel | None = None  # of the dense model: metrics({group: width})
    test_loader: DataLoader | None = None  # for reporting only (never for decisions)
    device_profile: DeviceProfile | None = None  # the device's profile (latency tables)

    @property
    def input_size(self) -> tuple[int, ...]:
        """The model's input size without the batch dimension."""
        return tuple(self.example_input.shape[1:])


def make_method_context(
    model: nn.Module,
    groups: Sequence[PrunableGroup],
    cost: CostModel,
    budget: Budget,
    example_input: torch.Tensor,
    *,
    loaders: MethodLoaders = MethodLoaders(),
    measure: Measurer | None = None,
    checkpoint: Checkpointer | None = None,
    options: Mapping[str, Any] | None = None,
    limit_batches: int | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
    device_profile: DeviceProfile | None = None,
    tolerance: float = LATENCY_TOLERANCE,
) -> MethodContext:
    """The one way to build a MethodContext for ``model`` under ``budget``.

    The oracle prices any model with the cost model's device; ``device_profile`` is used
    only without a latency predictor (its profile comes first); ``measure(dense, pruned)`` becomes the oracle's measurement
    against ``model``; per-layer weights come from ``cost`` at half width; ``tolerance``
    (the controller's) judges measured latency.
    """
    from edgeprune.budget.allocator import Targets

    predictor = cost.predictor
    profile = getattr(predictor, "profile", None) or device_profile
    input_size = tuple(example_input.shape[1:])
    dense_m = cost.metrics({g.name: g.channels for g in groups})
    lat_w, flops_w = _per_channel_weights(cost, groups)

    def measure_model(m: nn.Module) -> tuple[float, float]:
        r = measure(model, m)
        return r.dense_ms, r.pruned_ms

    oracle = BudgetOracle(
        _metrics_fn(input_size, predictor),
        Targets.from_budget(budget, dense_m).limits,
        dense_m,
        measure_model if measure is not None else None,
        budget.max_acc_drop,
        tolerance,
    )
    return MethodContext(
        example_input,
        train_loader=loaders.train,
        val_loader=loaders.val,
        options=dict(options or {}),
        limit_batches=limit_batches,
        oracle=oracle,
        checkpoint=checkpoint,
        resume=resume,
        log=log,
        latency_weights=lat_w if predictor is not None else None,
        flops_weights=flops_w,
        cost_model=cost,
        test_loader=loaders.test,
        device_profile=profile,
    )


def _metrics_fn(input_size: tuple[int, ...], predictor) -> Callable[[nn.Module], dict[str, float]]:
    """Counted metrics of any model, plus its predicted latency (else NaN): ``predictor``
    (the dense model's) prices every model as a variant of the dense one, with its
    calibration (:meth:`LatencyPredictor.for_variant`)."""

    def metrics_of(m: nn.Module) -> dict[str, float]:
        from edgeprune.cost import count

        c = count(m, input_size)
        out = {
            "params": c.params,
            "flops": c.flops,
            "weight_bytes": c.weight_bytes,
            "activation_bytes": c.peak_activation_bytes,
            "latency_ms": math.nan,
        }
        if predictor is not None:
            out["latency_ms"] = predictor.for_variant(m, input_size).total_ms()
        return out

    return metrics_of


def _per_channel_weights(
    cost: CostModel, groups: Sequence[PrunableGroup]
) -> tuple[dict[str, float], dict[str, float]]:
    """Per group: predicted ms and MACs saved per channel removed (at half width)."""
    dense_w = {g.name: g.channels for g in groups}
    lat_w, flops_w = {}, {}
    for g in groups:
        half = g.channels // 2
        d = cost.delta(dense_w, g.name, half)
        lat_w[g.name] = max(0.0, -d["latency_ms"]) / max(1, g.channels - half)
        flops_w[g.name] = max(0.0, -d["flops"]) / max(1, g.channels - half)
    return lat_w, flops_w
