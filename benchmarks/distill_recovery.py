"""Distillation in recovery (issue 17): one method at one budget, the standard recovery with
each ``--distill`` mode (and optionally ``--candidates K``), same seed, top-1 on test-a.

    python benchmarks/distill_recovery.py --model resnet56 \
        --weights ../shared/weights/cifar10/resnet56-4bfd9763.th --method l1 --device xeon \
        --latency-budget 0.5x --data-root ../shared/data/cifar10-jpeg --epochs 1 \
        --distill none,kd --out runs/distill-r56

Latency is predicted from the device's table (no on-device verification): enough to compare
accuracy at one fixed structure. ``--measure-host THREADS`` also times the structure against
the dense model on this host (the ratio the prediction stands for; on another CPU than the
table's it can differ a lot: session 10 measured 0.13-0.18x for structures predicted at 0.3x). The method prunes once (``<method>-structure``, no recovery)
and each mode recovers a copy of that structure with ``standard_recovery()`` (the bench's) the
way ``prune`` does; with ``--candidates K`` the search itself distils, so each mode is a whole
``prune`` run.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def get_args_parser() -> argparse.ArgumentParser:
    from edgeprune.cli.args import add_distill_args

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], conflict_handler="resolve")
    p.add_argument("--model", default="resnet56")
    p.add_argument("--weights")
    p.add_argument("--method", default="l1")
    p.add_argument(
        "--opt", action="append", default=[], help="a method option KEY=VALUE (over its cpu preset)"
    )
    p.add_argument("--device", default="xeon")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--latency-budget")
    how.add_argument("--flops-budget")
    p.add_argument("--data-root", required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit-batches", type=int)
    add_distill_args(p)  # the prune command's flags, --distill made a list (below)
    p.add_argument("--distill", default="none,kd", help="comma list of modes, run in order")
    p.add_argument(
        "--measure-host",
        type=int,
        default=0,
        metavar="THREADS",
        help="also time the structure against the dense model on this host (ONNX Runtime with "
        "THREADS threads, interleaved sessions): the ratio the table's prediction stands for "
        "(default 0: off)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    return p


def _distill(args: argparse.Namespace, mode: str):
    from edgeprune.cli.args import distill_config_from_args

    return distill_config_from_args(argparse.Namespace(**{**vars(args), "distill": mode}))


def _name(args: argparse.Namespace, mode: str) -> str:
    variant = f"a{args.distill_alpha}-{args.distill_alpha_end}"
    variant += "-adj" if args.distill_adjust else ""
    return f"{args.method}-{mode}-{variant}-k{args.candidates}"


def _method_options(args: argparse.Namespace) -> dict:
    """The method's ``cpu`` preset (its short schedule, as in the ResNet-56 table) under
    ``--opt`` values."""
    from edgeprune.cli.prune_cmd import parse_options
    from edgeprune.methods.presets import get_preset

    return {**get_preset(args.method, "cpu").options, **parse_options(args.opt)}


def _config(args: argparse.Namespace, out: str, epochs: int, distill):
    from edgeprune.budget import budget_from_args
    from edgeprune.workflows.bench import standard_recovery
    from edgeprune.workflows.prune import PruneConfig

    return PruneConfig(
        model=args.model,
        out=out,
        method=args.method,
        method_options=_method_options(args),
        budget=budget_from_args(args),  # --latency-budget or --flops-budget, on --device
        weights=args.weights,
        device=args.device,
        data_root=args.data_root,
        epochs=epochs,
        limit_batches=args.limit_batches,
        verify=False,
        seed=args.seed,
        overwrite=True,
        recovery=standard_recovery(),
        distill=distill,
        candidates=args.candidates,
        candidate_batches=args.candidate_batches,
    )


def _row(name: str, distill, args, rep: dict, top1: float, recovery_s, t0: float) -> dict:
    return {
        "run": name,
        "method": args.method,
        "opts": args.opt,
        "distill": distill.to_dict() if distill.enabled else "none",
        "candidates": args.candidates,
        "dense_top1": rep["dense"]["top1"],
        "top1": top1,
        "predicted_latency_ratio": rep["predicted_latency_ms"]
        / rep["dense"]["predicted_latency_ms"],
        "flops_ratio": rep["pruned"]["flops"] / rep["dense"]["flops"],
        "params_ratio": rep["pruned"]["params"] / rep["dense"]["params"],
        "method_s": (rep.get("timings") or {}).get("method_s"),
        "recovery_s": recovery_s,
        "wall_s": time.time() - t0,
        "load_after": os.getloadavg()[0],
        **(rep.get("host_measured") or {}),
    }


def _measure_host(args: argparse.Namespace, run_dir: str, rep: dict) -> dict:
    """The structure's measured latency ratio to dense on this host (``--measure-host``),
    added to ``rep`` as ``host_measured``."""
    if args.measure_host <= 0:
        return rep
    from edgeprune.workflows.deploy import DeployConfig, run_deploy

    out = os.path.join(run_dir, "host-deploy")
    cfg = DeployConfig(
        model=run_dir, device="local", out=out, compare_dense=True, threads=args.measure_host,
        overwrite=True,
    )  # fmt: skip
    r = run_deploy(cfg, progress=lambda _msg: None)
    ident = r.get("device_identity") or {}
    rep["host_measured"] = {
        "host_measured_ratio": r.get("ratio"),
        "host_ratio_ci95": r.get("ratio_ci95"),
        "host_cpu": f"{ident.get('cpu')} ({ident.get('cores')} cores, {args.measure_host} threads)",
        "host_isa": ident.get("isa"),
    }
    return rep


def main(args: argparse.Namespace) -> list[dict]:
    from edgeprune.surgery import load_model
    from edgeprune.workflows.prune import run_prune

    modes = [m.strip() for m in args.distill.split(",") if m.strip()]
    if args.candidates > 1:  # the search fine-tunes distilled: one whole run per mode
        return [_whole_run(args, mode) for mode in modes]
    # prune once (no recovery), then give the same structure each mode's recovery
    t0 = time.time()
    structure = os.path.join(args.out, f"{args.method}-structure")
    rep = run_prune(_config(args, structure, 0, _distill(args, "none"))).to_dict()
    rep = _measure_host(args, structure, rep)
    teacher = load_model(args.model, args.weights).model.eval()
    rows = []
    for mode in modes:
        rows.append(_recover(args, mode, structure, teacher, rep, t0))
        t0 = time.time()
    return rows


def _whole_run(args: argparse.Namespace, mode: str) -> dict:
    from edgeprune.workflows.prune import run_prune

    distill, t0 = _distill(args, mode), time.time()
    cfg = _config(args, os.path.join(args.out, _name(args, mode)), args.epochs, distill)
    rep = _measure_host(args, cfg.out, run_prune(cfg).to_dict())
    recovery_s = (rep.get("timings") or {}).get("recovery_s")
    row = _row(_name(args, mode), distill, args, rep, rep["pruned"]["top1"], recovery_s, t0)
    print(json.dumps(row), flush=True)
    return row


def _recover(args: argparse.Namespace, mode: str, structure: str, teacher, rep, t0) -> dict:
    """The pruned structure of ``structure`` recovered with ``mode``, the way ``prune`` does."""
    from edgeprune.surgery import load_model
    from edgeprune.workflows.prune import recover_model

    distill = _distill(args, mode)
    cfg = _config(args, os.path.join(args.out, _name(args, mode)), args.epochs, distill)
    os.makedirs(cfg.out, exist_ok=True)
    res = recover_model(cfg, load_model(structure).model, teacher)
    row = _row(_name(args, mode), distill, args, rep, res.top1, res.train_s, t0)
    print(json.dumps(row), flush=True)
    return row


if __name__ == "__main__":
    main(get_args_parser().parse_args())
