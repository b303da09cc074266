"""`edgeprune eval`: accuracy, params and FLOPs of a (pruned) model on a CIFAR-10 split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgeprune.data import SPLITS
from edgeprune.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "eval",
        help="top-1/top-5 accuracy, params and FLOPs of a model on CIFAR-10",
        description="Evaluate a registry model or a pruned-model directory on a CIFAR-10 split.",
    )
    p.add_argument(
        "--model", required=True, help="registry name (e.g. resnet56) or pruned-model dir"
    )
    p.add_argument("--weights", help="checkpoint file or URL (default: the model's own weights)")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="let --weights hold pickled Python objects (loading them can run code)",
    )
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
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--download", action="store_true", help="download CIFAR-10 via torchvision")
    p.add_argument("--json", type=Path, help="write the result as JSON to this file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def _is_url(s: str) -> bool:
    return "://" in s


def _check_args(args: argparse.Namespace) -> None:
    """Fail early, in one sentence, on inputs the user can fix."""
    where = (args.weights or "").rpartition("#sha256=")[0] or args.weights
    if where and not _is_url(where) and not Path(where).expanduser().is_file():
        raise UserError(f"weights file not found: {where}")
    if not args.download and not Path(args.data_root).expanduser().is_dir():
        raise UserError(f"data root {args.data_root} does not exist or is not a folder")
    if args.batch_size < 1 or (args.limit_batches is not None and args.limit_batches < 1):
        raise UserError("--batch-size and --limit-batches must be positive")


def write_json_atomic(obj: Any, path: Path) -> None:
    """Write ``obj`` as JSON to a temporary file beside ``path``, then rename it into place."""
    from edgeprune.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def evaluate_spec(args: argparse.Namespace) -> dict[str, Any]:
    """Load the model, count its cost, evaluate it; returns the result record."""
    from edgeprune.cost.counting import count
    from edgeprune.data import DataOptions, build_loader
    from edgeprune.models import load_model
    from edgeprune.train import DistEnv, evaluate, resolve_device

    loaded = load_model(args.model, args.weights, trust_pickle=args.trust_pickle)
    counts = count(loaded.model, tuple(loaded.input_size))
    side = loaded.input_size[-1]
    opts = DataOptions(download=args.download, resize=None if side == 32 else side, augment=False)
    limit = None if args.limit_batches is None else args.limit_batches * args.batch_size
    loader = build_loader(
        args.data_root,
        args.split,
        args.batch_size,
        shuffle=False,
        workers=args.workers,
        limit=limit,
        options=opts,
    )
    device = resolve_device(args.device)
    model = loaded.model.to(device).eval()
    res = evaluate(model, loader, env=DistEnv(device=device), progress=not args.no_progress)
    return {
        "model": args.model,
        "weights": loaded.weights,
        "split": args.split,
        "n": res.n,
        "top1": res.top1,
        "top5": res.top5,
        "params": int(counts.params),
        "flops": int(counts.flops),
    }


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    if args.json is not None:  # a bad path fails now, not after the evaluation
        from edgeprune.fileio import check_writable_file

        check_writable_file(args.json, "--json")
    rec = evaluate_spec(args)
    print(
        f"{rec['model']} on {args.data_root} [{rec['split']}, n={rec['n']}]: "
        f"top-1 {rec['top1']:.4f}  top-5 {rec['top5']:.4f}  "
        f"params {rec['params'] / 1e6:.3f}M  MACs {rec['flops'] / 1e6:.1f}M"
    )
    if args.json is not None:
        write_json_atomic(rec, args.json)
    return 0
