"""Cost models: static counts and the latency predictor built on a device's table."""

from __future__ import annotations

from typing import Any

__all__ = ["Counts", "count"]


def __getattr__(name: str) -> Any:
    # counting needs torch; loaded on first use so the light modules here (calibration,
    # latency_table) import without it
    if name in __all__:
        from edgeprune.cost import counting

        return getattr(counting, name)
    raise AttributeError(f"module 'edgeprune.cost' has no attribute {name!r}")
