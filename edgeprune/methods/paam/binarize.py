"""The binarization g(s, p) of PAAM (Eq. 7): keep a filter iff its score >= theta(S, p)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from edgeprune.search import largest_int_that
from edgeprune.surgery.graph import PrunableGroup


@dataclass
class Binarization:
    """0/1 masks per group, the threshold theta and the realised global pruning ratio p."""

    masks: dict[str, torch.Tensor]
    theta: float
    p: float

    def kept(self) -> dict[str, int]:
        return {k: int(v.sum()) for k, v in self.masks.items()}


def _flat(scores: dict[str, torch.Tensor], groups: list[PrunableGroup]) -> torch.Tensor:
    return torch.cat([scores[g.name].detach().float().flatten().cpu() for g in groups])


def _finish(
    masks: dict[str, torch.Tensor],
    scores: dict[str, torch.Tensor],
    theta: float,
    droppable: set[str],
) -> Binarization:
    """Keep each layer's best filter where it lost all (unless its block may go)."""
    for name, m in masks.items():
        if m.sum() == 0 and name not in droppable:
            m[int(torch.argmax(scores[name]))] = 1.0
    n = sum(m.numel() for m in masks.values())
    p = 1.0 - sum(float(m.sum()) for m in masks.values()) / n
    return Binarization(masks, theta, p)


def by_theta(
    scores: dict[str, torch.Tensor],
    groups: list[PrunableGroup],
    theta: float,
    droppable: set[str] = frozenset(),
) -> Binarization:
    """g(s) = 1 iff s >= theta (the paper's theta = 0.5)."""
    masks = {g.name: (scores[g.name].detach().cpu() >= theta).float() for g in groups}
    return _finish(masks, scores, theta, droppable)


def by_count(
    scores: dict[str, torch.Tensor],
    groups: list[PrunableGroup],
    keep: int,
    droppable: set[str] = frozenset(),
) -> Binarization:
    """Keep exactly the ``keep`` globally highest scores (ties: earlier filters first)."""
    flat = _flat(scores, groups)
    keep = max(0, min(keep, flat.numel()))
    order = torch.argsort(flat, descending=True, stable=True)
    hit = torch.zeros_like(flat)
    hit[order[:keep]] = 1.0
    theta = float(flat[order[keep - 1]]) if keep else float("inf")
    masks, start = {}, 0
    for g in groups:
        masks[g.name] = hit[start : start + g.channels].clone()
        start += g.channels
    return _finish(masks, scores, theta, droppable)


def by_ratio(
    scores: dict[str, torch.Tensor],
    groups: list[PrunableGroup],
    p: float,
    droppable: set[str] = frozenset(),
) -> Binarization:
    """Prune the global share ``p`` of the filters with the lowest scores."""
    n = sum(g.channels for g in groups)
    return by_count(scores, groups, round((1.0 - p) * n), droppable)


def by_budget(
    scores: dict[str, torch.Tensor],
    groups: list[PrunableGroup],
    meets: Callable[[dict[str, int]], bool],
    droppable: set[str] = frozenset(),
) -> Binarization:
    """The largest global keep count whose widths ``meets`` the budget (bisection)."""
    n = sum(g.channels for g in groups)
    k = largest_int_that(lambda k: meets(by_count(scores, groups, k, droppable).kept()), 1, n)
    return by_count(scores, groups, 1 if k is None else k, droppable)  # 1: nothing meets
