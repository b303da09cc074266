"""`edgeprune deploy`: export -> upload -> compile -> benchmark on the device -> report."""

from __future__ import annotations

import argparse

from edgeprune.cli.ssh_args import add_ssh_args, ssh_options_from_args
from edgeprune.errors import UserError


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
    p.add_argument(
        "model", metavar="MODEL_DIR", help="pruned-model directory or a model name (dense)"
    )
    p.add_argument("--device", required=True, help="device profile name ('local' = this machine)")
    p.add_argument("--out", required=True, help="output directory for ONNX files and the report")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the files of a non-empty --out once this deploy succeeds (else refused)",
    )
    p.add_argument("--weights", help="weights file for a plain model name")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="let --weights hold pickled Python objects (loading them can run code)",
    )
    p.add_argument(
        "--runtime", choices=runtime_names(), help="default: the device profile's runtime"
    )
    p.add_argument("--batch", type=_batches, default=(1,), help="batch sizes, e.g. 1,8 (default 1)")
    p.add_argument(
        "--compare-dense",
        action="store_true",
        help="also time the dense model, interleaved in the same run, and report the speedup",
    )
    p.add_argument(
        "--threads", type=int, help="intra-op threads (default: from the device profile)"
    )
    p.add_argument("--provider", help="ONNX Runtime execution provider (default: device profile)")
    p.add_argument(
        "--opt-level",
        choices=["disable", "basic", "extended", "all"],
        help="ONNX Runtime graph optimization level (default: device profile)",
    )
    p.add_argument("--fp16", action="store_true", help="TensorRT: build an FP16 engine")
    p.add_argument(
        "--min-time", type=float, default=2.0, help="seconds of timed runs per batch size"
    )
    p.add_argument("--min-runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument(
        "--static-batch",
        action="store_true",
        help="export with a fixed batch dimension (needs a single --batch size)",
    )
    p.add_argument(
        "--profile-layers",
        action="store_true",
        help="ORT: add a per-layer time breakdown (first batch size) to the report",
    )
    add_ssh_args(p)
    return p


def run(args: argparse.Namespace) -> int:
    from edgeprune.export.onnx_export import ExportConfig
    from edgeprune.runtimes.settings import AgentSettings, check_provider
    from edgeprune.workflows.deploy import DeployConfig, run_deploy

    if args.provider is not None:
        check_provider(args.provider)
    if args.static_batch and len(args.batch) != 1:
        raise UserError("--static-batch needs exactly one --batch size")
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")
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
            opset=args.opset, dynamic_batch=not args.static_batch, batch=args.batch[0]
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
