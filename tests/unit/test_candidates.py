"""Structure candidates: every proposed structure meets the budget, and the selection keeps
the candidate with the best val score (a scripted scorer); through run_method too."""

from __future__ import annotations

import pytest
import torch

from edgeprune.budget import Budget
from edgeprune.budget.candidates import VARIANTS, candidate_configs, meets_targets, propose
from edgeprune.budget.controller import ControllerConfig, decide
from edgeprune.budget.costmodel import CostModel
from edgeprune.cost import count
from edgeprune.errors import UserError
from edgeprune.methods import get_method
from edgeprune.models import create_model
from edgeprune.surgery import prunable_layers
from edgeprune.surgery.blocks import droppable_groups
from edgeprune.workflows.candidates import CandidateSearch, choose_config, select_best

SIZE = (3, 32, 32)


def _setup(budget: Budget):
    torch.manual_seed(0)
    model = create_model("resnet8").eval()
    groups = prunable_layers(model, SIZE)
    cost = CostModel(model, groups, SIZE, None)
    scores = {g.name: torch.rand(g.channels) for g in groups}
    droppable = droppable_groups(model)
    example = torch.zeros(1, *SIZE)

    def decide_with(cfg: ControllerConfig):
        return decide(
            model, groups, scores, budget, cost, droppable, example, cfg, None, lambda m: None
        )

    return model, decide_with


def test_configs_start_with_the_users_and_are_distinct():
    base = ControllerConfig()
    configs = candidate_configs(base, len(VARIANTS))
    assert configs[0] == ("as-configured", base)
    assert len({c for _, c in configs}) == len(configs) == len(VARIANTS)
    assert candidate_configs(base, 2)[1][1].allocator.allow_block_drop is False
    with pytest.raises(UserError):
        candidate_configs(base, 0)


def test_every_candidate_meets_the_budget():
    budget = Budget(flops_ratio=0.5)
    model, decide_with = _setup(budget)
    found = propose(decide_with, ControllerConfig(), len(VARIANTS))
    assert len(found) >= 2  # the trade-offs give different structures
    dense = count(model, SIZE).flops
    for c in found:
        assert meets_targets(c.result)
        assert c.result.allocation.metrics["flops"] <= 0.5 * dense * (1 + 1e-9)
    widths = [tuple(sorted(c.widths.items())) for c in found]
    assert len(set(widths)) == len(widths)  # no duplicates
    assert found[0].name == "as-configured"
    assert len(propose(decide_with, ControllerConfig(), 1)) == 1
    assert len(propose(decide_with, ControllerConfig(), 2)) == 2


def test_selection_keeps_the_best_val_score():
    budget = Budget(flops_ratio=0.5)
    _, decide_with = _setup(budget)
    found = propose(decide_with, ControllerConfig(), len(VARIANTS))
    scripted = {c.name: s for c, s in zip(found, [0.3, 0.9, 0.5, 0.9, 0.1, 0.2], strict=False)}
    sel = select_best(found, lambda c: scripted[c.name])
    assert sel.chosen.name == found[1].name  # the best; the earlier one on a tie
    assert sel.scores == [scripted[c.name] for c in found]
    diag = sel.diagnostics()
    assert diag["chosen"] == found[1].name and len(diag["candidates"]) == len(found)


def test_choose_config_scores_built_models():
    budget = Budget(flops_ratio=0.5)
    model, decide_with = _setup(budget)
    built = []

    def build(result):
        built.append(result.allocation.widths)
        return len(built)  # stands for the model: the i-th built

    # the scorer prefers the last candidate built
    search = CandidateSearch(3, score=lambda m: float(m))
    cfg, diag = choose_config(search, decide_with, ControllerConfig(), build)
    found = propose(decide_with, ControllerConfig(), 3)
    assert len(built) == len(found) and cfg == found[-1].config
    assert diag["structure_search"]["chosen"] == found[-1].name
    # k=1: nothing is built or trained
    built.clear()
    cfg, diag = choose_config(
        CandidateSearch(1, score=lambda m: 0.0), decide_with, ControllerConfig(), build
    )
    assert cfg == ControllerConfig() and diag == {} and built == []


def test_run_method_picks_the_scored_best():
    from test_method_contract import _context  # the contract's tiny context

    from edgeprune.workflows.prune import run_method

    budget = Budget(flops_ratio=0.5)
    torch.manual_seed(0)
    model = create_model("resnet8").eval()
    groups = prunable_layers(model, SIZE)
    cost = CostModel(model, groups, SIZE, None)
    ctx = _context(model, groups, cost, budget, None)
    params = []

    def score(pruned):  # the smallest model by params scores best
        params.append(count(pruned, SIZE).params)
        return -params[-1]

    out = run_method(get_method("l1"), model, groups, ctx, budget, search=CandidateSearch(3, score))
    assert len(params) >= 2
    assert count(out.pruned, SIZE).params == min(params)
    assert out.diagnostics["structure_search"]["candidates"]
