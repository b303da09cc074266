"""Cost models: static counts and the latency predictor built on a device's table."""

from edgeprune.cost.counting import Counts, count

__all__ = ["Counts", "count"]
