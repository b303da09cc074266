"""Candidate structures for one budget (NetAdapt's idea): the same scores allocated under
different trade-offs of the allocator, each meeting the budget on the latency table.

At one budget many structures predict the same latency: fewer residual blocks and wider
layers, or every block kept and all layers thinner; widths aligned to 8/16 channels or not.
``candidate_configs`` lists controller configs that lean each way; ``propose`` decides each
(predicted only, no device), drops the infeasible and the duplicates, and keeps those whose
predicted metrics meet the budget. Which one to keep is decided elsewhere by training (see
``edgeprune.workflows.candidates``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from edgeprune.budget.controller import ControllerConfig, ControllerResult
from edgeprune.errors import UserError

# (name, allocator changes), in the order they are tried; the first is the user's config
VARIANTS: tuple[tuple[str, dict], ...] = (
    ("as-configured", {}),
    ("keep-blocks", {"allow_block_drop": False}),
    ("drop-blocks", {"block_drop_penalty": 0.5}),
    ("wide-floor", {"min_keep_frac": 0.3}),
    ("flops-gain", {"objective": "flops"}),
    ("unaligned", {"steps": ()}),
)


@dataclass(frozen=True)
class Candidate:
    """One proposed structure: its variant name, the controller config that made it and the
    controller's (predicted) decision."""

    name: str
    config: ControllerConfig
    result: ControllerResult

    @property
    def widths(self) -> dict[str, int]:
        return dict(self.result.allocation.widths)

    def summary(self) -> dict:
        """JSON-able: name, predicted metrics, dropped blocks."""
        alloc = self.result.allocation
        return {
            "name": self.name,
            "metrics": {k: float(v) for k, v in alloc.metrics.items()},
            "dropped_blocks": list(alloc.dropped_blocks),
        }


def candidate_configs(base: ControllerConfig, k: int) -> list[tuple[str, ControllerConfig]]:
    """Up to ``k`` distinct controller configs: ``base`` first, then allocator variants
    (variants equal to one already listed are skipped)."""
    if k < 1:
        raise UserError("--candidates must be >= 1")
    out: list[tuple[str, ControllerConfig]] = []
    for name, changes in VARIANTS:
        cfg = replace(base, allocator=replace(base.allocator, **changes))
        if all(cfg != c for _, c in out):
            out.append((name, cfg))
        if len(out) == k:
            break
    return out


def propose(
    decide_with: Callable[[ControllerConfig], ControllerResult],
    base: ControllerConfig,
    k: int,
) -> list[Candidate]:
    """Up to ``k`` distinct feasible structures, decided by ``decide_with(config)``
    (predicted, no device) for the configs of ``candidate_configs`` in order, ``base``'s
    first; a variant giving a structure already found is passed over for the next.

    A variant that cannot meet the budget is left out; the base config's failure is raised
    (it is what the run without candidates would have raised).
    """
    found: list[Candidate] = []
    for i, (name, cfg) in enumerate(candidate_configs(base, len(VARIANTS))):
        if len(found) == k:
            break
        try:
            res = decide_with(cfg)
        except UserError:
            if i == 0:
                raise
            continue
        if not meets_targets(res):
            continue
        if all(c.widths != res.allocation.widths for c in found):
            found.append(Candidate(name, cfg, res))
    return found


def meets_targets(result: ControllerResult) -> bool:
    """Whether the decision's predicted metrics meet its targets (the budget)."""
    from edgeprune.budget.verdict import verdict

    alloc = result.allocation
    return verdict(alloc.metrics, alloc.targets).met
