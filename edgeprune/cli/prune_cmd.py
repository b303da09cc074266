"""`edgeprune prune`: prune a model to a budget on a device."""

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
from edgeprune.methods.base import list_methods
from edgeprune.runtimes.interval import DEFAULT_SESSIONS


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    import edgeprune.methods  # noqa: F401 (registers the methods; light: torch only)

    p = sub.add_parser(
        "prune",
        help="prune a model to a latency/memory/FLOPs/accuracy budget",
        description="Prune a model to a budget on a device profile, verify the latency there, "
        "recover, and write the pruned model, its ONNX file and report.json into --out.",
    )
    add_model_args(p)
    p.add_argument("--method", default="l1", choices=list_methods(), help="pruning method")
    p.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method option (repeatable), e.g. --opt lam=1e-4 --opt an_epochs=3",
    )
    p.add_argument(
        "--preset",
        choices=["paper", "cpu"],
        help="paper: every hyperparameter and schedule the method's paper gives (CIFAR-10 "
        "ResNet-56, recovery optimizer included); cpu: our short schedules; --opt wins",
    )
    add_device_args(p, note="latency budgets are measured on it")
    b = p.add_argument_group("budget")
    b.add_argument("--latency-budget", help="0.5x (of dense on the device) or 0.8ms")
    b.add_argument("--memory-budget-mb", type=float, help="weight memory in MB")
    b.add_argument("--activation-budget-mb", type=float, help="peak activation memory in MB")
    b.add_argument("--flops-budget", help="MACs, e.g. 60M, or a ratio like 0.5x")
    b.add_argument("--params-budget", help="parameters, e.g. 400k, or a ratio like 0.5x")
    b.add_argument("--max-acc-drop", type=float, help="max top-1 drop in percentage points")
    b.add_argument("--budget", dest="budget_file", help="budget YAML file")
    c = p.add_argument_group("controller")
    c.add_argument("--no-verify", action="store_true", help="skip on-device latency verification")
    c.add_argument("--max-retries", type=int, default=5, help="re-allocations after a miss")
    c.add_argument("--min-keep", type=float, default=0.1, help="min share of channels per layer")
    c.add_argument("--no-block-drop", action="store_true", help="never remove residual blocks")
    c.add_argument(
        "--allocation",
        default="latency",
        choices=["latency", "flops"],
        help="rank moves by the budget metric (latency table) or by FLOPs (baseline)",
    )
    add_recovery_args(p)
    add_distill_args(p)
    add_precision_args(p, chooses=True)
    add_timing_args(p, min_time=3.0, min_time_alias="--verify-min-time")
    p.add_argument(
        "--verify-halfwidth",
        type=float,
        default=0.015,
        help="time each check until the ratio's 95%% interval is within +- this fraction",
    )
    p.add_argument(
        "--verify-max-time",
        type=float,
        default=12.0,
        help="... or this many seconds have passed (per session)",
    )
    p.add_argument(
        "--verify-sessions",
        type=int,
        default=DEFAULT_SESSIONS,
        help="separate sessions (order swapped) that confirm a plan the quick check met, and "
        f"again for the final verification; a t-interval over their medians is judged (default "
        f"{DEFAULT_SESSIONS})",
    )
    add_ssh_args(p)
    add_output_args(
        p,
        resume="continue the interrupted run in --out (its config.json must match this run)",
        overwrite="clear a non-empty --out first (else refused)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    return p


def run(args: argparse.Namespace) -> int:
    from edgeprune.budget import budget_from_args
    from edgeprune.budget.allocator import AllocatorConfig
    from edgeprune.budget.controller import ControllerConfig
    from edgeprune.workflows.prune import PruneConfig, run_prune, summary

    check_run_args(args)
    options = parse_options(args.opt)
    from edgeprune.methods import method_class
    from edgeprune.methods.presets import apply_preset

    options, recovery, epochs, batch_size = apply_preset(
        args.method, getattr(args, "preset", None), options, args.epochs, args.batch_size
    )

    own = method_class(args.method).own_budget_option
    if own is not None and own in options and not _has_budget_flag(args):
        # the method's own option fixes how much it prunes (one-step's rate): no budget
        from edgeprune.budget import Budget

        budget = Budget(flops_ratio=1.0, device=args.device)
    else:
        budget = budget_from_args(args)
    alloc = AllocatorConfig(
        min_keep_frac=args.min_keep,
        allow_block_drop=not args.no_block_drop,
        objective="flops" if args.allocation == "flops" else "latency",
    )
    cfg = PruneConfig(
        model=args.model,
        out=args.out,
        method=args.method,
        budget=budget,
        epochs=epochs,
        lr=args.lr,
        batch_size=batch_size,
        verify=not args.no_verify,
        verify_min_time_s=args.min_time,
        verify_halfwidth=args.verify_halfwidth,
        verify_max_time_s=args.verify_max_time,
        verify_final_sessions=args.verify_sessions,
        controller=ControllerConfig(allocator=alloc, max_retries=args.max_retries),
        method_options=options,
        recovery=recovery,
        resume=args.resume,
        overwrite=args.overwrite,
        **run_options_from_args(args),
    )
    report = run_prune(cfg)
    print(summary(report.to_dict()))
    return 0 if report.budget_met else 1


def parse_options(items: list[str]) -> dict:
    """``--opt KEY=VALUE`` items as a dict (see ``edgeprune.config_io.parse_options``)."""
    from edgeprune.config_io import parse_options as parse

    return parse(items)


def _has_budget_flag(args: argparse.Namespace) -> bool:
    flags = ("latency_budget", "memory_budget_mb", "activation_budget_mb", "flops_budget")
    flags += ("params_budget", "max_acc_drop", "budget_file")
    return any(getattr(args, f, None) is not None for f in flags)
