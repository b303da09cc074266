"""Structure chosen by short fine-tunes (NetAdapt's idea): every candidate structure that
meets the budget (``edgeprune.budget.candidates``) gets a short distilled fine-tune on the
training images outside the val split, is scored on the val split, and the best is kept.

The fine-tuned copies are thrown away: the kept structure starts the run's standard recovery
from its pruned weights like any other, so the recovery of every row stays the same and
only the choice of structure differs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch.nn as nn

    from edgeprune.budget.candidates import Candidate
    from edgeprune.budget.controller import ControllerConfig, ControllerResult

CANDIDATE_BATCHES = 200  # default short fine-tune per candidate (batches of 128)


@dataclass(frozen=True)
class CandidateSearch:
    """How many candidates (``k``; 1: the first plan that fits, no search) and how each is
    scored: ``score(pruned_model) -> float`` (higher is better; e.g. val top-1 after a short
    fine-tune, see ``finetune_scorer``)."""

    k: int
    score: Callable[[nn.Module], float]


@dataclass
class Selection:
    """The chosen candidate, every candidate's score and the seconds the search took."""

    chosen: Candidate
    scores: list[float] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    seconds: float = 0.0

    def diagnostics(self) -> dict:
        """JSON-able record of the search (report's diagnostics.json)."""
        return {
            "candidates": [
                {**c.summary(), "val_score": s}
                for c, s in zip(self.candidates, self.scores, strict=True)
            ],
            "chosen": self.chosen.name,
            "search_s": self.seconds,
        }


def select_best(
    candidates: list[Candidate], score: Callable[[Candidate], float], log=None
) -> Selection:
    """Score every candidate and keep the best (the earliest on a tie)."""
    import time

    t0 = time.time()
    scores = []
    for c in candidates:
        s = float(score(c))
        scores.append(s)
        if log is not None:
            log(f"candidate '{c.name}': val score {s:.4f}")
    best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
    return Selection(candidates[best], scores, list(candidates), time.time() - t0)


def choose_config(
    search: CandidateSearch,
    decide_with: Callable[[ControllerConfig], ControllerResult],
    base: ControllerConfig,
    build: Callable[[ControllerResult], nn.Module],
    log=None,
) -> tuple[ControllerConfig, dict]:
    """The controller config whose structure scores best, and the search's diagnostics.

    ``decide_with(config)`` decides on the latency table (no device); ``build(result)`` makes
    the pruned model of a decision. With one candidate nothing is trained.
    """
    from edgeprune.budget.candidates import propose

    found = propose(decide_with, base, search.k)
    if len(found) <= 1:
        return (found[0].config if found else base), {}
    if log is not None:
        log(f"structure search: {len(found)} candidates meet the budget")
    sel = select_best(found, lambda c: search.score(build(c.result)), log)
    if log is not None:
        log(f"structure search chose '{sel.chosen.name}' ({sel.seconds:.0f} s)")
    return sel.chosen.config, {"structure_search": sel.diagnostics()}


def finetune_scorer(
    teacher: nn.Module,
    train_loader,
    val_loader,
    base_cfg,
    batches: int,
    distill=None,
    eval_batches: int | None = None,
) -> Callable[[nn.Module], float]:
    """``score(model)``: val top-1 of a copy of ``model`` after ``batches`` training batches
    (``base_cfg``'s optimizer and schedule squeezed into them), distilled from ``teacher``."""
    from edgeprune.train import resolve_device, train
    from edgeprune.workflows.recovery import evaluate_top1

    tcfg = replace(base_cfg, epochs=1, limit_batches=batches, progress=False)

    def score(model: nn.Module) -> float:
        trial = copy.deepcopy(model)
        trial.to(resolve_device("auto"))
        try:
            train(trial, train_loader, tcfg, teacher=teacher, distill=distill)
        finally:
            teacher.to("cpu")
        trial.eval()
        return float(evaluate_top1(trial, val_loader, eval_batches) or 0.0)

    return score
