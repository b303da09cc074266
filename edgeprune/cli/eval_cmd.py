"""`edgeprune eval`: accuracy, params and FLOPs of a (pruned) model on a CIFAR-10 split."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeprune.cli.args import add_model_args
from edgeprune.data import SPLITS


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "eval",
        help="top-1/top-5 accuracy, params and FLOPs of a model on CIFAR-10",
        description="Evaluate a registry model or a pruned-model directory on a CIFAR-10 split.",
    )
    add_model_args(p)
    p.add_argument(
        "--data-root",
        required=True,
        help="CIFAR-10 root: torchvision folder, train/ + test/ image folders, or JPEG tarballs",
    )
    p.add_argument(
        "--split", choices=SPLITS, default="test", help="split to evaluate (default: test)"
    )
    p.add_argument("--batch-size", type=int, default=256, help="images per batch (default: 256)")
    p.add_argument("--workers", type=int, default=None, help="loader processes (default: by cores)")
    p.add_argument(
        "--limit-batches",
        type=int,
        default=None,
        help="evaluate only this many batches of a fixed random subset (smoke runs)",
    )
    p.add_argument(
        "--torch-device",
        default="auto",
        help="where torch runs the model: auto, cpu or cuda (default: auto); not a device profile",
    )
    p.add_argument(
        "--backend",
        choices=["auto", "torch", "onnx"],
        default="auto",
        help="onnx: score the run dir's deployable model.onnx (else an fp32 export) with ONNX "
        "Runtime; torch; auto: onnx when the run's model.onnx is int8 (default: auto)",
    )
    p.add_argument("--download", action="store_true", help="download CIFAR-10 via torchvision")
    p.add_argument("--json", type=Path, help="write the result as JSON to this file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def config_from_args(args: argparse.Namespace):
    """The EvalConfig these flags describe."""
    from edgeprune.workflows.evaluate import EvalConfig

    return EvalConfig(
        model=args.model,
        data_root=args.data_root,
        weights=args.weights,
        trust_pickle=args.trust_pickle,
        split=args.split,
        batch_size=args.batch_size,
        workers=args.workers,
        limit_batches=args.limit_batches,
        device=args.torch_device,
        download=args.download,
        json_path=None if args.json is None else str(args.json),
        progress=not args.no_progress,
        backend=args.backend,
    )


def run(args: argparse.Namespace) -> int:
    from edgeprune.workflows.evaluate import run_eval, summary

    print(summary(run_eval(config_from_args(args)), args.data_root))
    return 0
