"""Pruning methods: scorers (the budget controller turns their scores into widths) and
iterative pruners (their own loop against the budget oracle); see ``methods.base``."""

from edgeprune.methods import aap, l1, onestep, paam, tp_magnitude  # noqa: F401 (registers)
from edgeprune.methods.base import (
    IterativeMethod,
    IterativePruner,
    IterativeResult,
    Method,
    RecoveryResult,
    Scorer,
    ScoreResult,
    ScoringMethod,
    WidthRule,
    get_method,
    list_methods,
    method_class,
    register_method,
    short_schedules,
)
from edgeprune.methods.context import (
    BudgetOracle,
    Checkpointer,
    MethodContext,
    MethodLoaders,
    make_method_context,
)

__all__ = [
    "BudgetOracle",
    "Checkpointer",
    "IterativeMethod",
    "IterativePruner",
    "IterativeResult",
    "Method",
    "MethodContext",
    "MethodLoaders",
    "RecoveryResult",
    "ScoreResult",
    "Scorer",
    "ScoringMethod",
    "WidthRule",
    "get_method",
    "list_methods",
    "make_method_context",
    "method_class",
    "register_method",
    "short_schedules",
]
