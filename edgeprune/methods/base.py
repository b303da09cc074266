"""The method interface and registry.

A method scores the channels of each prunable group (higher = keep); it may train to get
those scores (PAAM's attention networks, one-step's beta) and may run its own recovery
(one-step's reconstruction). It never touches files or sockets: diagnostics are returned as
data, checkpoints go through ``ctx.checkpoint``, budgets through ``ctx.oracle``.

What the controller does with the scores depends on the method's ``knob``:

- ``"allocation"``: the controller allocates per-layer widths (latency-aware) from scores.
- ``"threshold"``: one global threshold on the scores (PAAM's binarization); the controller
  picks it so that the binarized network meets the budget.
- ``"iterative"``: the method runs its own prune/retrain loop (AAP) via ``run``, asking
  ``ctx.oracle`` whether a candidate meets the budget.
- ``"uniform"``: one keep ratio for every layer (a baseline).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from edgeprune.surgery.graph import PrunableGroup


@dataclass
class BudgetOracle:
    """What a method may ask about the budget: predicted metrics and (maybe) a measurement.

    ``metrics(model)`` -> dict with latency_ms (predicted, NaN without a device), params,
    flops, weight_bytes, activation_bytes; ``targets`` -> absolute limits per metric;
    ``measure(model)`` -> (dense_ms, model_ms) on the device, or None without one.
    """

    metrics: Callable[[nn.Module], dict]
    targets: dict
    dense_metrics: dict
    measure: Callable[[nn.Module], tuple[float, float]] | None = None
    max_acc_drop: float | None = None  # percentage points of top-1 (accuracy-guaranteed)

    def violated(self, metrics: dict) -> dict:
        return {k: v for k, v in self.targets.items() if k in metrics and metrics[k] > v}


@dataclass
class Checkpointer:
    """Atomic save/load of a method's resumable state (given by the pipeline)."""

    save: Callable[[dict], None]
    load: Callable[[], dict | None]


@dataclass
class MethodContext:
    """What a method may use: data, example input, options, budget oracle, checkpointing."""

    example_input: torch.Tensor
    train_loader: object | None = None
    val_loader: object | None = None
    options: dict = field(default_factory=dict)
    limit_batches: int | None = None
    oracle: BudgetOracle | None = None
    checkpoint: Checkpointer | None = None
    resume: bool = False
    log: Callable[[str], None] = print
    latency_weights: dict[str, float] | None = None  # per group: predicted ms saved per channel
    flops_weights: dict[str, float] | None = None  # per group: MACs saved per channel
    # edgeprune.budget.costmodel.CostModel of the dense model: metrics({group: width})
    cost_model: object | None = None
    test_loader: object | None = None  # for reporting only (never for decisions)


@dataclass
class IterativeResult:
    """What an iterative method returns: the pruned model and its plan on the original."""

    model: nn.Module
    plan: object  # edgeprune.surgery.Plan in the original model's channel indices
    diagnostics: dict = field(default_factory=dict)


class Method:
    """Base class; subclasses implement ``scores`` (or ``run`` for ``knob = 'iterative'``)."""

    name = "base"
    knob = "allocation"
    config_cls: type | None = None  # the options' frozen dataclass (with from_dict)
    needs_data = False  # trains on data: needs --data-root

    def scores(
        self, model: nn.Module, groups: list[PrunableGroup], ctx: MethodContext
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def run(self, model: nn.Module, groups: list[PrunableGroup], ctx: MethodContext):
        """Iterative methods: prune and retrain until done; returns an IterativeResult."""
        raise NotImplementedError

    def recover(self, pruned: nn.Module, dense: nn.Module, ctx: MethodContext) -> dict:
        """Optional method-specific recovery before the common fine-tune; returns info."""
        return {}

    def diagnostics(self) -> dict:
        """JSON-able diagnostics for the run directory (histograms, per-layer widths...)."""
        return {}


_METHODS: dict[str, type[Method]] = {}


def register_method(name: str):
    """Class decorator registering a method by name; duplicates raise."""

    def wrap(cls: type[Method]) -> type[Method]:
        if name in _METHODS:
            raise ValueError(f"method {name!r} is already registered")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return wrap


def list_methods(pattern: str = "*") -> list[str]:
    return sorted(n for n in _METHODS if fnmatch.fnmatch(n, pattern))


def method_class(name: str) -> type[Method]:
    """The registered class of ``name``; an unknown name is one sentence listing the known."""
    from edgeprune.errors import UserError

    if name not in _METHODS:
        raise UserError(f"unknown method {name!r}; available: {', '.join(list_methods())}")
    return _METHODS[name]


def check_options(name: str, options: dict) -> object | None:
    """Validate ``options`` of method ``name`` (keys and types) before any work.

    Returns the method's typed config (None for a method without options); a bad key or
    value is one UserError sentence listing the valid keys or naming the expected type.
    """
    from edgeprune.errors import UserError

    cls = method_class(name)
    if cls.config_cls is None:
        if options:
            raise UserError(f"method {name!r} has no option {sorted(options)[0]!r} (it takes none)")
        return None
    return cls.config_cls.from_dict(dict(options))


def check_data(name: str, has_data: bool) -> None:
    """Refuse (one sentence) a method that trains on data when no --data-root is given."""
    from edgeprune.errors import UserError

    if method_class(name).needs_data and not has_data:
        raise UserError(f"method {name!r} trains on data: give --data-root")


def get_method(name: str, **options) -> Method:
    """A new instance of method ``name`` with checked ``options``."""
    check_options(name, options)
    return method_class(name)(**options)
