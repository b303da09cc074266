"""The budget-trust comparison (scripted reports, no timing)."""

from __future__ import annotations

import pytest

from edgeprune.errors import UserError
from edgeprune.workflows.budget_trust import TrustCase, markdown_table, parse_cases, trust_row


def _prune(ratio, lo, hi, met=True):
    final = {"ratio": ratio, "interval": {"lo": lo, "hi": hi}}
    return {
        "budget_met": met,
        "latency_ratio": ratio,
        "latency_ratio_ci95": [lo, hi],
        "measurements": {"search": {"ratio": ratio - 0.01}, "final": final},
        "verification": [{}, {}],
    }


def test_agreement_and_budget_are_judged_on_the_independent_ratio():
    case = TrustCase("resnet56", 0.5)
    ok = trust_row(
        case, _prune(0.49, 0.48, 0.50), {"ratio": 0.50, "ratio_ci95": [0.49, 0.51]}, 3, 1
    )
    assert ok.within_budget and ok.agree and ok.attempts == 2 and ok.search_ratio == 0.48
    # the miss: reported 0.503 "met", independent 0.529 (5% over the reported)
    bad = trust_row(
        case, _prune(0.503, 0.50, 0.51), {"ratio": 0.529, "ratio_ci95": [0.52, 0.54]}, 3, 1
    )
    assert bad.within_budget is False and bad.agree is False
    table = markdown_table([ok, bad])
    assert "1 of 2 runs" in table and "0.529 [0.520, 0.540]" in table


def test_cases_parse_models_with_colons_and_repeat():
    cases = parse_cases(["torchvision:resnet50:0.5x", "resnet56:0.3"], 2)
    assert [c.name for c in cases][:2] == [
        "torchvision_resnet50-0.5x-r0",
        "torchvision_resnet50-0.5x-r1",
    ]
    assert cases[2].model == "resnet56" and cases[2].ratio == 0.3
    with pytest.raises(UserError):
        parse_cases(["resnet56"], 1)
