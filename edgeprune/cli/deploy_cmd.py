"""`edgeprune deploy`: export -> upload -> compile -> benchmark on the device -> report."""

from __future__ import annotations

import argparse

from edgeprune.cli.args import (
    add_device_args,
    add_model_args,
    add_output_args,
    add_precision_args,
    add_ssh_args,
    add_timing_args,
    ssh_options_from_args,
)
from edgeprune.errors import UserError
from edgeprune.runtimes.interval import DEFAULT_SESSIONS


def _batches(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--batch {text!r} is not a comma-separated list of integers"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("--batch sizes must be positive integers")
    return values


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from edgeprune.runtimes import runtime_names

    p = sub.add_parser(
        "deploy",
        help="export a (pruned) model, run it on a device, report throughput",
        description="Export MODEL to ONNX, upload it to the device, compile it with the device's "
        "runtime, benchmark it there and write report.json/.csv/.md into --out.",
    )
    add_model_args(p, positional=True, help="pruned-model directory or a model name (dense)")
    add_device_args(p, required=True, note="'local' is this machine")
    r = p.add_argument_group("runtime")
    r.add_argument(
        "--runtime", choices=runtime_names(), help="default: the device profile's runtime"
    )
    r.add_argument("--batch", type=_batches, default=(1,), help="batch sizes, e.g. 1,8 (default 1)")
    r.add_argument(
        "--compare-dense",
        action="store_true",
        help="also time the dense model, interleaved in the same run, and report the speedup",
    )
    r.add_argument(
        "--sessions",
        type=int,
        default=DEFAULT_SESSIONS,
        help="--compare-dense: separate timing sessions, the order swapped each time; the "
        "ratio's 95%% interval is a t-interval over their medians, as in prune's final "
        "verification "
        f"(default {DEFAULT_SESSIONS}; one session's interval misses a session-to-session "
        "shift)",
    )
    r.add_argument(
        "--threads", type=int, help="intra-op threads (default: from the device profile)"
    )
    r.add_argument("--provider", help="ONNX Runtime execution provider (default: device profile)")
    r.add_argument(
        "--opt-level",
        choices=["disable", "basic", "extended", "all"],
        help="ONNX Runtime graph optimization level (default: device profile)",
    )
    r.add_argument("--fp16", action="store_true", help="TensorRT: build an FP16 engine")
    r.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    fixed = r.add_mutually_exclusive_group()
    fixed.add_argument(
        "--static-batch",
        action="store_true",
        help="export with a fixed batch dimension (the default with a single --batch size: "
        "what prune's verification and the latency tables measure)",
    )
    fixed.add_argument(
        "--dynamic-batch",
        action="store_true",
        help="export with a dynamic batch dimension (the default with several --batch "
        "sizes; ONNX Runtime plans it less well: slower, most for small pruned models)",
    )
    r.add_argument(
        "--profile-layers",
        action="store_true",
        help="ORT: add a per-layer time breakdown (first batch size) to the report",
    )
    add_precision_args(p, quantizes=False, default=None)
    add_timing_args(p, min_time=2.0, runs=(20, 10))
    add_ssh_args(p)
    add_output_args(
        p,
        help="output directory for ONNX files and the report",
        overwrite="replace the files of a non-empty --out once this deploy succeeds (else refused)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    from edgeprune.export.onnx_export import ExportConfig
    from edgeprune.runtimes.settings import AgentSettings, check_provider
    from edgeprune.workflows.deploy import DeployConfig, run_deploy

    if args.provider is not None:
        check_provider(args.provider)
    if args.static_batch and len(args.batch) != 1:
        raise UserError("--static-batch needs exactly one --batch size")
    if args.sessions < 1:
        raise UserError("--sessions must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")
    if args.fp16 and args.precision not in (None, "fp32"):
        raise UserError(f"--fp16 and --precision {args.precision} exclude each other")
    cfg = DeployConfig(
        model=args.model,
        device=args.device,
        out=args.out,
        runtime=args.runtime,
        batches=args.batch,
        compare_dense=args.compare_dense,
        profile_layers=args.profile_layers,
        weights=args.weights,
        trust_pickle=args.trust_pickle,
        host=args.host,
        key=args.key,
        remote_python=args.remote_python,
        export=ExportConfig(
            opset=args.opset,
            dynamic_batch=args.dynamic_batch or len(args.batch) > 1,
            batch=args.batch[0],
        ),
        bench=AgentSettings(
            min_time_s=args.min_time,
            min_runs=args.min_runs,
            warmup=args.warmup,
            precision="fp16" if args.fp16 else "fp32",
        ),
        ssh=ssh_options_from_args(args),
        threads=args.threads,
        provider=args.provider,
        opt_level=args.opt_level,
        overwrite=args.overwrite,
        precision=args.precision,
        sessions=args.sessions,
    )
    report = run_deploy(cfg)
    for row in report["results"]:
        extra = f", speedup x{row['speedup']:.2f} vs dense" if row.get("speedup") else ""
        print(
            f"batch {row['batch']}: median {row['latency_ms_median']:.3f} ms, "
            f"{row['throughput_ips']:.1f} img/s{extra}"
        )
    for note in report.get("notes") or []:
        print(f"note: {note}")
    return 0
