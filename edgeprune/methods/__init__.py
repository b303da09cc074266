"""Pruning methods: each scores channels; the budget controller allocates and prunes."""

from edgeprune.methods import l1  # noqa: F401 (registers l1, uniform)
from edgeprune.methods.base import (
    BudgetOracle,
    Checkpointer,
    IterativeResult,
    Method,
    MethodContext,
    get_method,
    list_methods,
    register_method,
)

__all__ = [
    "BudgetOracle",
    "Checkpointer",
    "IterativeResult",
    "Method",
    "MethodContext",
    "get_method",
    "list_methods",
    "register_method",
]
