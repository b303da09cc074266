"""Can a user believe ``budget_met``? Prune runs, each followed by an independent
``edgeprune deploy --compare-dense`` of its result; reported vs independent ratio and interval.

A run agrees when the independent ratio is within budget x (1 + tolerance) and the reported
and independent ratios differ by at most ``agree_pct`` percent (of the independent one).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass

from edgeprune.budget import Budget
from edgeprune.budget.verdict import LATENCY_TOLERANCE
from edgeprune.errors import UserError

# the cases: ResNet-56 l1 at 0.3x/0.5x/0.7x, MobileNetV2 and ResNet-50 at 0.5x
DEFAULT_CASES = (
    "resnet56:0.3",
    "resnet56:0.5",
    "resnet56:0.7",
    "torchvision:mobilenet_v2:0.5",
    "torchvision:resnet50:0.5",
)


@dataclass(frozen=True)
class TrustCase:
    """One prune run: a model at a latency ratio budget, the n-th repeat."""

    model: str
    ratio: float
    repeat: int = 0

    @property
    def name(self) -> str:
        return f"{self.model.replace(':', '_')}-{self.ratio:g}x-r{self.repeat}"


def parse_cases(specs: list[str], repeats: int) -> list[TrustCase]:
    """``MODEL:RATIO`` specs (the model may hold a colon) x ``repeats``."""
    out = []
    for spec in specs:
        model, _, ratio = spec.rpartition(":")
        try:
            r = float(ratio.rstrip("x"))
        except ValueError:
            raise UserError(f"case {spec!r} is not MODEL:RATIO (e.g. resnet56:0.5)") from None
        out += [TrustCase(model, r, i) for i in range(repeats)]
    return out


@dataclass(frozen=True)
class TrustConfig:
    """The runs, where they go, the device and how long each check times."""

    out: str
    cases: tuple[TrustCase, ...]
    device: str = "xeon"
    method: str = "l1"
    min_time_s: float = 3.0  # the prune's checks (its final verification: twice this)
    max_time_s: float = 12.0
    deploy_min_time_s: float = 3.0  # the independent deploy --compare-dense
    agree_pct: float = 3.0
    weights: dict | None = None  # model -> weights file (latency does not depend on them)


@dataclass(frozen=True)
class TrustRow:
    """One case: what the prune reported and what the independent deploy measured."""

    case: str
    model: str
    budget: float
    budget_met: bool | None
    reported: float | None
    reported_lo: float | None
    reported_hi: float | None
    search_ratio: float | None
    independent: float | None
    independent_lo: float | None
    independent_hi: float | None
    independent_stop: str | None
    within_budget: bool | None  # independent ratio <= budget x (1 + tolerance)
    agree: bool | None  # |reported - independent| <= agree_pct % of independent
    attempts: int
    load_1min: float
    seconds: float
    error: str = ""


def run_case(case: TrustCase, cfg: TrustConfig) -> TrustRow:
    """Prune ``case`` (structure only, no data), then deploy its result with --compare-dense
    in a separate run; the row compares the two."""
    from edgeprune.workflows.deploy import DeployConfig, run_deploy
    from edgeprune.workflows.prune import PruneConfig, run_prune

    t0 = time.time()
    run_dir = os.path.join(cfg.out, case.name)
    budget = Budget(latency_ratio=case.ratio, device=cfg.device)
    try:
        report = run_prune(
            PruneConfig(
                model=case.model,
                out=os.path.join(run_dir, "prune"),
                method=cfg.method,
                budget=budget,
                weights=(cfg.weights or {}).get(case.model),
                device=cfg.device,
                verify_min_time_s=cfg.min_time_s,
                verify_max_time_s=cfg.max_time_s,
                overwrite=True,
                seed=case.repeat,
            )
        ).to_dict()
        dep = run_deploy(
            DeployConfig(
                model=os.path.join(run_dir, "prune"),
                device=cfg.device,
                out=os.path.join(run_dir, "deploy"),
                compare_dense=True,
                bench=_bench(cfg),
                overwrite=True,
            ),
            progress=lambda m: None,
        )
    except UserError as err:
        return _error_row(case, str(err), time.time() - t0)
    return trust_row(case, report, dep, cfg.agree_pct, time.time() - t0)


def _bench(cfg: TrustConfig):
    from edgeprune.runtimes.settings import AgentSettings

    return AgentSettings(min_time_s=cfg.deploy_min_time_s, min_runs=50, warmup=20)


def trust_row(case: TrustCase, report: dict, dep: dict, agree_pct: float, s: float) -> TrustRow:
    """The comparison of a prune ``report`` (report.json) and an independent deploy ``dep``."""
    ci = report.get("latency_ratio_ci95") or [None, None]
    search = (report.get("measurements") or {}).get("search") or {}
    ind, (ilo, ihi) = dep.get("ratio"), dep.get("ratio_ci95") or [None, None]
    rep = report.get("latency_ratio")
    within = None if ind is None else ind <= case.ratio * (1 + LATENCY_TOLERANCE)
    agree = None if ind is None or rep is None else abs(rep - ind) <= agree_pct / 100 * ind
    return TrustRow(
        case.name,
        case.model,
        case.ratio,
        report.get("budget_met"),
        rep,
        ci[0],
        ci[1],
        search.get("ratio"),
        ind,
        ilo,
        ihi,
        dep.get("ratio_stop"),
        within,
        agree,
        len(report.get("verification") or []),
        _load(),
        s,
    )


def _error_row(case: TrustCase, err: str, s: float) -> TrustRow:
    none = [None] * 11
    return TrustRow(case.name, case.model, case.ratio, *none, 0, _load(), s, err)


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def run_budget_trust(cfg: TrustConfig, show=lambda row: None) -> list[TrustRow]:
    """Every case in turn; rows go to OUT/budget_trust.jsonl as they finish."""
    os.makedirs(cfg.out, exist_ok=True)
    rows = []
    with open(os.path.join(cfg.out, "budget_trust.jsonl"), "a") as fh:
        for case in cfg.cases:
            row = run_case(case, cfg)
            fh.write(json.dumps(asdict(row)) + "\n")
            fh.flush()
            rows.append(row)
            show(row)
    return rows


def _f(v, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)


def markdown_table(rows: list[TrustRow]) -> str:
    """The RESULTS.md table and the goal's tally (independent within budget x 1.03 and
    agreeing within 3%, in at least 9 of 10 runs)."""
    lines = [
        "| case | budget | met | reported [95%] | independent [95%] (stop) | in budget | "
        "agree | attempts | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.error:
            lines.append(f"| {r.case} | {r.budget:g}x | error: {r.error} ||||||| ")
            continue
        lines.append(
            f"| {r.case} | {r.budget:g}x | {r.budget_met} | {_f(r.reported)} "
            f"[{_f(r.reported_lo)}, {_f(r.reported_hi)}] | {_f(r.independent)} "
            f"[{_f(r.independent_lo)}, {_f(r.independent_hi)}] ({r.independent_stop}) | "
            f"{r.within_budget} | {r.agree} | {r.attempts} | {r.load_1min:.1f} |"
        )
    good = sum(1 for r in rows if r.within_budget and r.agree)
    lines.append("")
    lines.append(f"{good} of {len(rows)} runs within budget x 1.03 and agreeing within 3%")
    return "\n".join(lines) + "\n"
