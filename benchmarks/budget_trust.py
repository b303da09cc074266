"""Can a user believe budget_met? (issue 19) Prune runs (l1, structure only, no recovery),
each followed by an independent `edgeprune deploy --compare-dense` of its result.

The table compares the ratio the prune reported (its final verification, with its 95%
interval) with the independent one; the goal is the independent ratio within budget x 1.03
and |reported - independent| <= 3% in at least 9 of 10 runs. Rows are appended to
OUT/budget_trust.jsonl as they finish; the Markdown table goes to OUT/budget_trust.md.

    python benchmarks/budget_trust.py --out runs/budget-trust --repeats 2   # 10 runs
    python benchmarks/budget_trust.py --out /tmp/bt --case resnet20:0.6 --min-time 0.3 \\
        --max-time 1 --deploy-min-time 0.3                                 # smoke test
"""

from __future__ import annotations

import argparse
import os

from edgeprune.workflows.budget_trust import (
    DEFAULT_CASES,
    TrustConfig,
    markdown_table,
    parse_cases,
    run_budget_trust,
)

WEIGHTS = {"resnet56": "../shared/weights/cifar10/resnet56-4bfd9763.th"}


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/budget-trust")
    p.add_argument(
        "--case",
        action="append",
        default=None,
        help="MODEL:RATIO, repeatable (default: " + ", ".join(DEFAULT_CASES) + ")",
    )
    p.add_argument("--repeats", type=int, default=2, help="runs of each case")
    p.add_argument("--device", default="xeon", help="device profile (its table, this host)")
    p.add_argument("--method", default="l1")
    p.add_argument("--min-time", type=float, default=3.0, help="prune's checks, seconds")
    p.add_argument("--max-time", type=float, default=12.0, help="prune's time cap per check")
    p.add_argument("--deploy-min-time", type=float, default=3.0, help="the independent check")
    return p


def main(args: argparse.Namespace) -> list:
    weights = {m: w for m, w in WEIGHTS.items() if os.path.isfile(w)}
    cfg = TrustConfig(
        out=args.out,
        cases=tuple(parse_cases(args.case or list(DEFAULT_CASES), args.repeats)),
        device=args.device,
        method=args.method,
        min_time_s=args.min_time,
        max_time_s=args.max_time,
        deploy_min_time_s=args.deploy_min_time,
        weights=weights,
    )

    def show(row) -> None:
        print(
            f"{row.case}: met {row.budget_met}, reported {row.reported}, independent "
            f"{row.independent}, agree {row.agree} {row.error}",
            flush=True,
        )

    rows = run_budget_trust(cfg, show)
    table = markdown_table(rows)
    with open(os.path.join(args.out, "budget_trust.md"), "w") as fh:
        fh.write(table)
    print(table)
    return rows


if __name__ == "__main__":
    main(get_args_parser().parse_args())
