"""How the budget controller turns a scorer's per-channel scores into layer widths."""

from __future__ import annotations

from enum import Enum


class WidthRule(str, Enum):
    """The rule a scorer declares for its scores (the controller dispatches on it)."""

    ALLOCATE = "allocate"  # per-layer widths allocated on the budget metric (latency-aware)
    THRESHOLD = "threshold"  # one global threshold on the scores (PAAM's binarization)
    UNIFORM = "uniform"  # one keep ratio for every layer (a baseline)
