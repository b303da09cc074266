"""Pareto fronts: accuracy (higher is better) against latency (lower is better)."""

from __future__ import annotations

import math


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated (latency, accuracy) points, sorted by latency.

    A point is dominated when another is at most as slow and at least as accurate, and
    strictly better in one of the two. Points with a missing/NaN coordinate are ignored.
    """
    valid = [
        (lat, acc, i)
        for i, (lat, acc) in enumerate(points)
        if lat is not None and acc is not None and not (math.isnan(lat) or math.isnan(acc))
    ]
    valid.sort(key=lambda t: (t[0], -t[1]))
    front, best = [], -math.inf
    for _lat, acc, i in valid:
        if acc > best:
            front.append(i)
            best = acc
    return front
