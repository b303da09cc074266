"""The project's one bisection: over integers and over floats (plain or geometric).

Every "find the boundary of a monotone predicate" in edgeprune (the allocators' keep
counts and ratios, PAAM's binarization, tp-magnitude's ratio search, the accuracy search,
the estimated CPU model's calibration) goes through these functions. A low-level module:
no edgeprune imports, so every layer may use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def largest_int_that(fits: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """The largest n in [lo, hi] with ``fits(n)``, for ``fits`` true up to a boundary and
    false after it; None when nothing in the range fits."""
    if lo > hi:
        return None
    if fits(hi):
        return hi
    if not fits(lo):
        return None
    while hi - lo > 1:  # invariant: fits(lo), not fits(hi)
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def smallest_int_that(fits: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """The smallest n in [lo, hi] with ``fits(n)``, for ``fits`` false up to a boundary and
    true after it; None when nothing in the range fits."""
    if lo > hi:
        return None
    if fits(lo):
        return lo
    if not fits(hi):
        return None
    while hi - lo > 1:  # invariant: not fits(lo), fits(hi)
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi


def bisect_float(
    above: Callable[[float], bool],
    lo: float,
    hi: float,
    steps: int,
    geometric: bool = False,
) -> tuple[float, float]:
    """Narrow [lo, hi] around where ``above(x)`` turns from False to True, in ``steps``
    halvings (of the log-range when ``geometric``); returns the final bracket.

    The ends are taken as given (``above(lo)`` False, ``above(hi)`` True) and never probed:
    the caller checks them when it matters. ``lo`` of the result is on the False side,
    ``hi`` on the True side.
    """
    for _ in range(steps):
        mid = math.sqrt(lo * hi) if geometric else (lo + hi) / 2
        if above(mid):
            hi = mid
        else:
            lo = mid
    return lo, hi
