"""The method protocols, their result objects, and the registry.

A method is one of two kinds (the workflow dispatches with ``isinstance``):

- a :class:`Scorer` returns per-channel scores of each prunable group as a
  :class:`ScoreResult` that declares the :class:`WidthRule` by which the budget controller
  turns them into widths; it may run its own recovery on the pruned model (``recover``);
- an :class:`IterativePruner` runs its own prune/retrain loop, asking ``ctx.oracle``
  whether a candidate meets the budget, and returns an :class:`IterativeResult`.

Methods keep no state between calls: whatever ``recover`` needs from scoring travels in
``ScoreResult.state``, and diagnostics come back in the results. They may train to get
their scores (PAAM's attention networks, one-step's beta) and never touch files or
sockets (see :mod:`edgeprune.methods.context`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import torch
import torch.nn as nn

from edgeprune.budget.width_rule import WidthRule
from edgeprune.methods.context import BudgetOracle, Checkpointer, MethodContext
from edgeprune.surgery.graph import PrunableGroup

if TYPE_CHECKING:
    from edgeprune.surgery.plan import Plan

__all__ = [
    "BudgetOracle",
    "Checkpointer",
    "IterativePruner",
    "IterativeResult",
    "Method",
    "MethodContext",
    "RecoveryResult",
    "ScoreResult",
    "Scorer",
    "WidthRule",
]


@dataclass(frozen=True)
class ScoreResult:
    """A scorer's output: per-group scores (higher = keep), the rule that turns them into
    widths, JSON-able diagnostics, and what the method's own ``recover`` needs."""

    scores: dict[str, torch.Tensor]
    rule: WidthRule = WidthRule.ALLOCATE
    diagnostics: dict[str, Any] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecoveryResult:
    """A scorer's own recovery of the pruned model: ``info`` for the report's
    ``method_recovery``, ``diagnostics`` added to the scoring diagnostics."""

    info: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IterativeResult:
    """What an iterative pruner returns: the pruned model and its plan on the original."""

    model: nn.Module
    plan: Plan
    diagnostics: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Scorer(Protocol):
    """Scores channels; the budget controller picks the widths by ``ScoreResult.rule``."""

    name: str

    def score(
        self, model: nn.Module, groups: Sequence[PrunableGroup], ctx: MethodContext
    ) -> ScoreResult: ...

    def recover(
        self,
        pruned: nn.Module,
        dense: nn.Module,
        groups: Sequence[PrunableGroup],
        scored: ScoreResult,
        ctx: MethodContext,
    ) -> RecoveryResult: ...


@runtime_checkable
class IterativePruner(Protocol):
    """Prunes in its own loop against ``ctx.oracle``; returns the pruned model and plan."""

    name: str

    def run(
        self, model: nn.Module, groups: Sequence[PrunableGroup], ctx: MethodContext
    ) -> IterativeResult: ...


class Method:
    """What every registered method declares (subclass :class:`ScoringMethod` or
    :class:`IterativeMethod`, or implement one of the protocols directly).

    ``config_cls``: the options' frozen dataclass (with ``from_dict``). ``needs_data``: it
    trains on data (prune refuses it without --data-root). ``short_schedule``: options that
    shorten its own training to a CPU budget (the bench tables use them).
    ``own_budget_option``: an option that fixes the pruning amount by itself, so the method
    needs no budget when it is given (one-step's ``rate``). ``profile_option``: an option
    naming a device profile the workflow loads for it when prune has no ``--device``.
    """

    name: ClassVar[str] = "base"
    config_cls: ClassVar[type | None] = None
    needs_data: ClassVar[bool] = False
    short_schedule: ClassVar[Mapping[str, Any]] = {}
    own_budget_option: ClassVar[str | None] = None
    profile_option: ClassVar[str | None] = None

    @classmethod
    def create(cls, **options: Any) -> Method:
        """A new instance for checked ``options`` (a class may return a variant that
        implements the other protocol, e.g. PAAM's ``final=binarize``)."""
        return cls(**options)


class ScoringMethod(Method):
    """Base of scorers: subclasses implement ``score``; ``recover`` does nothing."""

    def score(
        self, model: nn.Module, groups: Sequence[PrunableGroup], ctx: MethodContext
    ) -> ScoreResult:
        raise NotImplementedError

    def recover(
        self,
        pruned: nn.Module,
        dense: nn.Module,
        groups: Sequence[PrunableGroup],
        scored: ScoreResult,
        ctx: MethodContext,
    ) -> RecoveryResult:
        """Optional method-specific recovery before the common fine-tune."""
        return RecoveryResult()


class IterativeMethod(Method):
    """Base of iterative pruners: subclasses implement ``run``."""

    def run(
        self, model: nn.Module, groups: Sequence[PrunableGroup], ctx: MethodContext
    ) -> IterativeResult:
        raise NotImplementedError


_METHODS: dict[str, type[Method]] = {}


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    """Class decorator registering a method by name; duplicates raise."""

    def wrap(cls: type[Method]) -> type[Method]:
        if name in _METHODS:
            raise ValueError(f"method {name!r} is already registered")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return wrap


def list_methods(pattern: str = "*") -> list[str]:
    """Registered method names matching ``pattern`` (fnmatch), sorted."""
    return sorted(n for n in _METHODS if fnmatch.fnmatch(n, pattern))


def method_class(name: str) -> type[Method]:
    """The registered class of ``name``; an unknown name is one sentence listing the known."""
    from edgeprune.errors import UserError

    if name not in _METHODS:
        raise UserError(f"unknown method {name!r}; available: {', '.join(list_methods())}")
    return _METHODS[name]


def short_schedules() -> dict[str, dict[str, Any]]:
    """Method -> the options that shorten its own training to a CPU budget (those with one)."""
    return {n: dict(c.short_schedule) for n, c in sorted(_METHODS.items()) if c.short_schedule}


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


def get_method(name: str, **options: Any) -> Scorer | IterativePruner:
    """A new instance of method ``name`` with checked ``options``."""
    check_options(name, options)
    return method_class(name).create(**options)
