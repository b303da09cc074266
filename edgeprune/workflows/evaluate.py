"""The evaluate workflow: accuracy, params and FLOPs of a (pruned) model on a CIFAR-10 split."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeprune.errors import UserError


@dataclass(frozen=True)
class EvalConfig:
    """One ``eval`` run: the model, the data split, and how to batch it."""

    model: str  # registry name or pruned-model directory
    data_root: str
    weights: str | None = None
    trust_pickle: bool = False  # let ``weights`` hold pickled objects (runs code)
    split: str = "test"
    batch_size: int = 256
    workers: int | None = None
    limit_batches: int | None = None  # only this many batches of a fixed random subset
    device: str = "auto"
    download: bool = False
    json_path: str | None = None  # write the result here as JSON
    progress: bool = True
    # what scores: "onnx" (the run dir's deployable model.onnx, else an fp32 export, through
    # ONNX Runtime), "torch", or "auto" (onnx for a run dir whose model.onnx is int8)
    backend: str = "auto"


BACKENDS = ("auto", "torch", "onnx")


@dataclass(frozen=True)
class EvalResult:
    """Top-1/top-5 on ``n`` images of ``split``, and the model's size."""

    model: str
    weights: str | None
    split: str
    n: int
    top1: float
    top5: float
    params: int
    flops: int
    backend: str = "torch"  # what computed the scores: torch, or onnx (ONNX Runtime)
    precision: str = "fp32"  # of the scored model (int8: the run dir's QDQ model.onnx)
    onnx_model: str | None = None  # the ONNX file scored (backend onnx)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalResult:
        return cls(**d)


def _is_url(s: str) -> bool:
    return "://" in s


def check_config(cfg: EvalConfig) -> None:
    """Fail early, in one sentence, on inputs the user can fix."""
    where = (cfg.weights or "").rpartition("#sha256=")[0] or cfg.weights
    if where and not _is_url(where) and not Path(where).expanduser().is_file():
        raise UserError(f"weights file not found: {where}")
    if not cfg.download and not Path(cfg.data_root).expanduser().is_dir():
        raise UserError(f"data root {cfg.data_root} does not exist or is not a folder")
    if cfg.backend not in BACKENDS:
        raise UserError(f"backend {cfg.backend!r} is not one of {', '.join(BACKENDS)}")
    if cfg.batch_size < 1 or (cfg.limit_batches is not None and cfg.limit_batches < 1):
        raise UserError("--batch-size and --limit-batches must be positive")
    if cfg.json_path is not None:  # a bad path fails now, not after the evaluation
        from edgeprune.fileio import check_writable_file

        check_writable_file(cfg.json_path, "--json")


def evaluate_model(cfg: EvalConfig) -> EvalResult:
    """Load the model, count its cost and evaluate it (no checks, no file written)."""
    from edgeprune.cost.counting import count
    from edgeprune.data import DataOptions, build_loader
    from edgeprune.surgery import load_model
    from edgeprune.train import DistEnv, evaluate, resolve_device

    loaded = load_model(cfg.model, cfg.weights, trust_pickle=cfg.trust_pickle)
    counts = count(loaded.model, tuple(loaded.input_size))
    side = loaded.input_size[-1]
    opts = DataOptions(download=cfg.download, resize=None if side == 32 else side, augment=False)
    limit = None if cfg.limit_batches is None else cfg.limit_batches * cfg.batch_size
    loader = build_loader(
        cfg.data_root,
        cfg.split,
        cfg.batch_size,
        shuffle=False,
        workers=cfg.workers,
        limit=limit,
        options=opts,
    )
    onnx_path, precision = _deployed_onnx(cfg.model)
    if cfg.backend == "onnx" or (cfg.backend == "auto" and precision == "int8"):
        return _evaluate_onnx(cfg, loaded, counts, loader, onnx_path, precision)
    device = resolve_device(cfg.device)
    model = loaded.model.to(device).eval()
    res = evaluate(model, loader, env=DistEnv(device=device), progress=cfg.progress)
    return EvalResult(
        model=cfg.model,
        weights=loaded.weights,
        split=cfg.split,
        n=res.n,
        top1=res.top1,
        top5=res.top5,
        params=int(counts.params),
        flops=int(counts.flops),
    )


def _deployed_onnx(model: str) -> tuple[str | None, str]:
    """(the run dir's deployable model.onnx, its precision), or (None, "fp32")."""
    path = Path(model) / "model.onnx"
    if not path.is_file():
        return None, "fp32"
    from edgeprune.quant.ptq import is_int8

    return str(path), "int8" if is_int8(path) else "fp32"


def _evaluate_onnx(cfg: EvalConfig, loaded, counts, loader, onnx_path, precision) -> EvalResult:
    """Score ``onnx_path`` (else an fp32 export of the model) with ONNX Runtime."""
    import tempfile

    from edgeprune.export.onnx_export import export_onnx
    from edgeprune.quant.onnx_eval import score_onnx

    with tempfile.TemporaryDirectory(prefix="edgeprune-eval-") as tmp:
        if onnx_path is None:
            onnx_path = export_onnx(loaded.model, loaded.input_size, f"{tmp}/model.onnx").path
            shown = None
        else:
            shown = onnx_path
        res = score_onnx(onnx_path, loader)
    return EvalResult(
        model=cfg.model,
        weights=loaded.weights,
        split=cfg.split,
        n=res["n"],
        top1=res["top1"],
        top5=res["top5"],
        params=int(counts.params),
        flops=int(counts.flops),
        backend="onnx",
        precision=precision,
        onnx_model=shown,
    )


def run_eval(cfg: EvalConfig) -> EvalResult:
    """Check ``cfg``, evaluate, and write ``cfg.json_path`` (atomically) when set."""
    check_config(cfg)
    result = evaluate_model(cfg)
    if cfg.json_path is not None:
        from edgeprune.fileio import atomic_write_text

        atomic_write_text(cfg.json_path, json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def summary(result: EvalResult, data_root: str) -> str:
    """One line: the model, the split and its size, top-1/top-5, params and MACs."""
    return (
        f"{result.model} on {data_root} [{result.split}, n={result.n}, "
        f"{_scored_by(result)}]: "
        f"top-1 {result.top1:.4f}  top-5 {result.top5:.4f}  "
        f"params {result.params / 1e6:.3f}M  MACs {result.flops / 1e6:.1f}M"
    )


def _scored_by(result: EvalResult) -> str:
    if result.backend == "onnx":
        return f"{result.precision} ONNX through ONNX Runtime"
    return "torch fp32"
