"""`edgeprune bench`: every method under the same budgets, recovery, device and seed."""

from __future__ import annotations

import argparse

DEFAULT_METHODS = "l1,paam,aap,onestep,tp-magnitude,uniform"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench", help="compare pruning methods at equal budgets (one CSV row per method x budget)"
    )
    p.add_argument("--model", required=True, help="registry name (see edgeprune.models)")
    p.add_argument("--weights", help="checkpoint path or URL")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="let --weights hold pickled Python objects (loading them can run code)",
    )
    p.add_argument("--device", help="device profile to measure on (needed for latency budgets)")
    p.add_argument(
        "--methods", default=DEFAULT_METHODS, help=f"comma list (default {DEFAULT_METHODS})"
    )
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--latency-budgets", help="comma list, e.g. 0.3x,0.5x,0.7x (of dense)")
    how.add_argument("--flops-budgets", help="comma list, e.g. 0.5x or 20M")
    p.add_argument("--recovery", type=int, default=0, help="recovery epochs (standard recipe)")
    p.add_argument("--data-root", help="CIFAR-10 root (top-1 and recovery training)")
    p.add_argument("--limit-batches", type=int, help="cap batches in every phase (smoke runs)")
    p.add_argument("--verify-min-time", type=float, default=3.0, help="seconds per measurement")
    p.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="METHOD:KEY=VALUE",
        help="a method's option (repeatable), e.g. --opt paam:an_epochs=3",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        required=True,
        help="output directory (re-run to resume or to add methods/budgets to the table)",
    )
    return p


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def method_options(items: list[str]) -> dict[str, dict]:
    """``["paam:lam=1e-4"]`` -> ``{"paam": {"lam": 1e-4}}``."""
    from edgeprune.cli.prune_cmd import parse_options
    from edgeprune.errors import UserError

    out: dict[str, dict] = {}
    for item in items:
        method, sep, rest = item.partition(":")
        if not sep or not method.strip():
            raise UserError(f"--opt {item!r}: expected METHOD:KEY=VALUE")
        out.setdefault(method.strip(), {}).update(parse_options([rest]))
    return out


def run(args: argparse.Namespace) -> int:
    from edgeprune.errors import UserError
    from edgeprune.workflows.bench import BenchConfig, run_bench

    if args.recovery < 0:
        raise UserError("--recovery must be >= 0")
    kind = "latency" if args.latency_budgets else "flops"
    cfg = BenchConfig(
        model=args.model,
        out=args.out,
        methods=tuple(_split(args.methods)),
        budgets=tuple(_split(args.latency_budgets or args.flops_budgets)),
        budget_kind=kind,
        device=args.device,
        weights=args.weights,
        trust_pickle=args.trust_pickle,
        data_root=args.data_root,
        recovery_epochs=args.recovery,
        limit_batches=args.limit_batches,
        seed=args.seed,
        verify_min_time_s=args.verify_min_time,
        method_options=method_options(args.opt),
    )
    if not cfg.methods or not cfg.budgets:
        raise UserError("give at least one method and one budget")
    rows = run_bench(cfg)
    for r in rows:
        print(_line(r))
    print(f"results: {args.out}/results.csv")
    return 0 if all(r["status"] != "error" for r in rows) else 1


def _line(r: dict) -> str:
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    return (
        f"{r['method']:>13} {r['budget']:>14} {r['status']:>13}  "
        f"ratio {f(r.get('latency_ratio'), '.3f')}  top1 {f(r.get('top1'), '.4f')}  "
        f"FLOPs x{f(r.get('flops_ratio'), '.3f')}  speedup/FLOPs {f(r.get('speedup_vs_flops'), '.2f')}"
    )
