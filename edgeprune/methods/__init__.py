"""Pruning methods: each scores channels; the budget controller allocates and prunes."""

from edgeprune.methods import aap, l1, onestep, paam, tp_magnitude  # noqa: F401 (registers)
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
