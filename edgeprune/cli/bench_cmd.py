"""`edgeprune bench`: every method under the same budgets, recovery, device and seed."""

from __future__ import annotations

import argparse

from edgeprune.cli.args import (
    add_device_args,
    add_distill_args,
    add_model_args,
    add_output_args,
    add_precision_args,
    add_recovery_args,
    add_ssh_args,
    add_timing_args,
    check_run_args,
    run_options_from_args,
)


def default_methods() -> str:
    """Every registered method, comma-separated (the default of ``--methods``)."""
    import edgeprune.methods  # noqa: F401 (registers the methods; light: torch only)
    from edgeprune.methods.base import list_methods

    return ",".join(list_methods())


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    methods = default_methods()
    p = sub.add_parser(
        "bench",
        help="compare pruning methods at equal budgets (one CSV row per method x budget)",
        description="Run every method under the same budgets, recovery, device and seed, "
        "measure each on the device, and write one row per method x budget into --out.",
    )
    add_model_args(p)
    p.add_argument("--methods", default=methods, help=f"comma list (default {methods})")
    p.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="METHOD:KEY=VALUE",
        help="a method's option (repeatable), e.g. --opt paam:an_epochs=3",
    )
    p.add_argument(
        "--preset",
        choices=["paper", "cpu"],
        help="each method's option preset (paper: the paper's hyperparameters and schedules "
        "for its own training; cpu: our short schedules); --opt wins. The recovery stays the "
        "one standard recovery of every row, so rows compare",
    )
    add_device_args(p, note="latency budgets are measured on it")
    b = p.add_argument_group("budget")
    how = b.add_mutually_exclusive_group(required=True)
    how.add_argument("--latency-budgets", help="comma list, e.g. 0.3x,0.5x,0.7x (of dense)")
    how.add_argument("--flops-budgets", help="comma list, e.g. 0.5x or 20M")
    add_recovery_args(p, schedule=False, epochs_alias="--recovery")
    add_distill_args(p)
    add_precision_args(p, chooses=True)
    add_timing_args(p, min_time=3.0, min_time_alias="--verify-min-time")
    add_ssh_args(p)
    add_output_args(
        p, help="output directory (re-run to resume or to add methods/budgets to the table)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
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


def preset_options(methods: str, preset: str | None, opts: list[str]) -> dict[str, dict]:
    """Per-method options: the preset's (None: none) under the given ``--opt`` values.

    A method without that preset (a baseline has no paper) keeps its defaults."""
    from edgeprune.errors import UserError
    from edgeprune.methods.presets import get_preset

    given = method_options(opts)
    if preset is None:
        return given
    out: dict[str, dict] = {}
    for name in _split(methods):
        try:
            base = dict(get_preset(name, preset).options)
        except UserError:
            if preset != "paper":
                raise
            base = {}  # baselines have no paper preset: their defaults are their paper
        merged = {**base, **given.get(name, {})}
        if merged:
            out[name] = merged
    for name, opts_ in given.items():
        out.setdefault(name, opts_)
    return out


def run(args: argparse.Namespace) -> int:
    from edgeprune.errors import UserError
    from edgeprune.workflows.bench import BenchConfig, run_bench

    check_run_args(args)
    kind = "latency" if args.latency_budgets else "flops"
    cfg = BenchConfig(
        model=args.model,
        out=args.out,
        methods=tuple(_split(args.methods)),
        budgets=tuple(_split(args.latency_budgets or args.flops_budgets)),
        budget_kind=kind,
        recovery_epochs=args.epochs,
        verify_min_time_s=args.min_time,
        method_options=preset_options(args.methods, getattr(args, "preset", None), args.opt),
        **run_options_from_args(args),
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
        f"{r['method']:>13} {r['budget']:>14} {r['status']:>13} {r.get('precision') or '-':>4}  "
        f"ratio {f(r.get('latency_ratio'), '.3f')}  top1 {f(r.get('top1'), '.4f')}  "
        f"FLOPs x{f(r.get('flops_ratio'), '.3f')}  speedup/FLOPs {f(r.get('speedup_vs_flops'), '.2f')}"
    )
