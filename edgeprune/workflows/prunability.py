"""Prunability: every torchvision classifier through the prune workflow, one row each.

Each model runs in its own Python process (``run_prune`` with ``l1``, random init, no data,
no recovery) under a timeout, so a model that hangs, crashes or runs out of memory becomes a
row, never the end of the table. The child writes its row as JSON; the parent collects rows
into a CSV (resumable: finished models are skipped) and a Markdown table.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from edgeprune.report.prunability import PrunabilityRow, read_csv, render_markdown, write_csv

# the CNNs edge users deploy most (issue 16): the latency-budget table
EDGE_CNNS = (
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "regnet_x_400mf",
    "regnet_y_400mf",
    "shufflenet_v2_x1_0",
    "resnet18",
    "resnet50",
    "mnasnet1_0",
    "squeezenet1_1",
    "googlenet",
)
_CHILD = (
    "import sys; from edgeprune.workflows.prunability import child_main; "
    "sys.exit(child_main(sys.argv[1]))"
)


@dataclass(frozen=True)
class PrunabilityConfig:
    """One prunability sweep: which models, which budget, limits and where rows go."""

    out: str
    models: tuple[str, ...] = ()  # torchvision names; () means every classifier
    mode: str = "flops"  # "flops": --flops-budget; "latency": --device local --latency-budget
    ratio: float = 0.6
    method: str = "l1"
    device: str = "local"  # latency mode only
    timeout_s: float = 900.0
    skip_larger_than: float | None = None  # parameters; larger models get a "skipped" row
    verify_min_time_s: float = 2.0
    rerun: tuple[str, ...] = ()  # statuses whose rows are run again (resume keeps the rest)
    keep_outputs: bool = False  # keep each run's weights.pt and model.onnx (GBs for all)
    recheck_parity: bool = False  # also re-run model.onnx against the reloaded saved model
    smallest_first: bool = True  # run order (rows are written in model order either way)
    jobs: int = 1  # models pruned at once (each in its own process)

    @property
    def budget_text(self) -> str:
        return f"{self.ratio:g}x"

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["models"], d["rerun"] = list(self.models), list(self.rerun)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PrunabilityConfig:
        d = dict(d)
        d["models"], d["rerun"] = tuple(d.get("models", ())), tuple(d.get("rerun", ()))
        return cls(**d)


def classifier_names(pattern: str = "*") -> list[str]:
    """torchvision's classification models (``list_models(module=torchvision.models)``)
    whose name matches the glob ``pattern`` (comma-separated patterns allowed)."""
    import fnmatch

    import torchvision.models as tvm

    names = sorted(tvm.list_models(module=tvm))
    pats = [p.strip() for p in pattern.split(",") if p.strip()] or ["*"]
    return [n for n in names if any(fnmatch.fnmatch(n, p) for p in pats)]


def published_params(name: str) -> int | None:
    """A torchvision model's parameter count from its weights' metadata (nothing built or
    downloaded); None when torchvision has no weights entry for it."""
    import torchvision.models as tvm

    try:
        weights = list(tvm.get_model_weights(name))
    except (ValueError, KeyError):
        return None
    return int(weights[0].meta["num_params"]) if weights else None


def csv_path(cfg: PrunabilityConfig) -> str:
    return os.path.join(cfg.out, f"prunability-{cfg.mode}.csv")


def run_prunability(
    cfg: PrunabilityConfig, on_row: Callable[[PrunabilityRow], None] | None = None
) -> list[PrunabilityRow]:
    """Run every model of ``cfg`` not yet in its CSV; return all rows (old and new) in model
    order. The CSV and ``prunability-MODE.md`` are rewritten after each model."""
    models = list(cfg.models) or classifier_names()
    path = csv_path(cfg)
    done = {r.model: r for r in read_csv(path) if r.mode == cfg.mode}
    # run again only the selected models' rows of those statuses (the others stay in the CSV)
    done = {m: r for m, r in done.items() if r.status not in cfg.rerun or m not in models}
    # smallest first (by published parameter count): a cut-off run leaves the giants out
    size = {m: published_params(m) or 0 for m in models if m not in done}
    todo = sorted(size, key=lambda m: (size[m], m)) if cfg.smallest_first else list(size)

    def record(row: PrunabilityRow) -> None:
        done[row.model] = row
        rows = [done[m] for m in models if m in done]
        rows += [r for m, r in done.items() if m not in models]
        write_csv(path, rows)
        write_markdown(cfg, rows)
        if on_row is not None:
            on_row(row)

    from concurrent.futures import ThreadPoolExecutor, as_completed

    # each job is a child process; the threads only wait for them
    with ThreadPoolExecutor(max_workers=max(1, cfg.jobs)) as pool:
        futures = [pool.submit(lambda n: _skip_row(n, cfg) or run_one(n, cfg), m) for m in todo]
        for fut in as_completed(futures):
            record(fut.result())
    return [done[m] for m in models if m in done]


def write_markdown(cfg: PrunabilityConfig, rows: list[PrunabilityRow]) -> str:
    """Write ``prunability-MODE.md`` beside the CSV; returns its path."""
    from edgeprune.fileio import atomic_write_text

    path = os.path.join(cfg.out, f"prunability-{cfg.mode}.md")
    atomic_write_text(path, render_markdown(rows))
    return path


def _skip_row(name: str, cfg: PrunabilityConfig) -> PrunabilityRow | None:
    if cfg.skip_larger_than is None:
        return None
    n = published_params(name)
    if n is None or n <= cfg.skip_larger_than:
        return None
    msg = f"{n / 1e6:.0f} M params, too large for this VM (--skip-larger-than {cfg.skip_larger_than:g})"
    return PrunabilityRow(name, cfg.mode, cfg.budget_text, "skipped", msg, params_before=n)


def run_one(name: str, cfg: PrunabilityConfig) -> PrunabilityRow:
    """Prune one torchvision model in a child process under ``cfg.timeout_s``."""
    run_dir = os.path.join(cfg.out, "runs", cfg.mode, name)
    os.makedirs(run_dir, exist_ok=True)
    spec = os.path.join(run_dir, "spec.json")
    result = os.path.join(run_dir, "row.json")
    if os.path.exists(result):
        os.unlink(result)
    with open(spec, "w") as fh:
        json.dump({"model": name, "config": cfg.to_dict(), "result": result}, fh)
    t0 = time.time()
    with open(os.path.join(run_dir, "log.txt"), "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", _CHILD, spec],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills all of it
        )
        try:
            rc = proc.wait(timeout=cfg.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            msg = f"no result after {cfg.timeout_s:.0f} s (killed)"
            return _row(name, cfg, "timeout", msg, wall_s=time.time() - t0)
    wall = time.time() - t0
    if os.path.isfile(result):
        with open(result) as fh:
            return replace(PrunabilityRow(**json.load(fh)), wall_s=wall)
    how = f"signal {-rc}" if rc < 0 else f"exit code {rc}"
    if rc in (-signal.SIGKILL, 137):
        how += " (out of memory?)"
    return _row(name, cfg, "crashed", f"the child process died ({how})", wall_s=wall)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _row(name: str, cfg: PrunabilityConfig, status: str, msg: str = "", **kw) -> PrunabilityRow:
    return PrunabilityRow(name, cfg.mode, cfg.budget_text, status, msg, **kw)


def child_main(spec_path: str) -> int:
    """The child process: prune one model, write its row as JSON (see ``run_one``)."""
    with open(spec_path) as fh:
        spec = json.load(fh)
    cfg = PrunabilityConfig.from_dict(spec["config"])
    run_dir = os.path.dirname(spec_path)
    row = prune_row(spec["model"], cfg, run_dir)
    if not cfg.keep_outputs:
        for f in ("weights.pt", "model.onnx"):
            path = os.path.join(run_dir, "out", f)
            if os.path.isfile(path):
                os.unlink(path)
    from edgeprune.fileio import atomic_write_text

    atomic_write_text(spec["result"], json.dumps(row.to_dict()))
    return 0


def prune_row(name: str, cfg: PrunabilityConfig, run_dir: str) -> PrunabilityRow:
    """Prune ``torchvision:name`` in this process and describe the outcome as a row."""
    from edgeprune.errors import InfeasibleBudget, UserError
    from edgeprune.export.onnx_export import ExportParityError

    t0 = time.time()
    profile_s = None
    try:
        if cfg.mode == "latency":
            profile_s = _ensure_latency_table(name, cfg.device)
        report = _prune(name, cfg, os.path.join(run_dir, "out"))
        # the workflow writes model.onnx only after ORT matched torch (atol 1e-4, rtol 1e-3)
        out = os.path.join(run_dir, "out")
        parity = os.path.isfile(os.path.join(out, "model.onnx"))
        diff = _recheck_parity(out) if cfg.recheck_parity and parity else None
    except ExportParityError as err:
        return _row(name, cfg, "parity failed", str(err), onnx_parity=False, profile_s=profile_s)
    except InfeasibleBudget as err:
        return _row(name, cfg, "infeasible", str(err), profile_s=profile_s)
    except UserError as err:
        return _row(name, cfg, "unsupported", str(err), profile_s=profile_s)
    except Exception as err:  # the table must go on: a traceback is a finding, not an end
        import traceback

        traceback.print_exc()  # into the run's log.txt
        first = (str(err).strip().splitlines() or [""])[0][:300]
        return _row(name, cfg, "error", f"{type(err).__name__}: {first}", profile_s=profile_s)
    d = report.to_dict()
    dense, pruned = d["dense"], d["pruned"]
    pred, dense_pred = d.get("predicted_latency_ms"), dense.get("predicted_latency_ms")
    status, msg = _judge(d, cfg)
    return _row(
        name,
        cfg,
        status,
        msg,
        params_before=dense["params"],
        params_after=pruned["params"],
        flops_before=dense["flops"],
        flops_after=pruned["flops"],
        budget_met=bool(d["budget_met"]),
        onnx_parity=parity,
        parity_max_abs_diff=diff,
        dense_ms=d["dense"]["latency_ms"] if d.get("latency_ratio") is not None else None,
        pruned_ms=d.get("measured_latency_ms"),
        measured_ratio=d.get("latency_ratio"),
        predicted_ratio=_finite(pred / dense_pred) if pred is not None and dense_pred else None,
        profile_s=profile_s,
        wall_s=time.time() - t0,
    )


def _judge(d: dict, cfg: PrunabilityConfig) -> tuple[str, str]:
    """(status, note) of a finished run: "ok" needs the report's ``budget_met`` and, under a
    FLOPs budget, the counted FLOPs at or under the ratio (a disagreement is noted)."""
    ratio = d["pruned"]["flops"] / d["dense"]["flops"]
    over = cfg.mode == "flops" and ratio > cfg.ratio * (1 + 1e-12)
    if d["budget_met"] and over:
        return "budget missed", f"report says budget_met, but counted FLOPs are {ratio:.4f}x"
    if not d["budget_met"]:
        what = f"FLOPs {ratio:.4f}x" if cfg.mode == "flops" else "measured latency"
        if cfg.mode == "latency" and d.get("latency_ratio") is not None:
            what = f"measured latency {d['latency_ratio']:.3f}x"
        return "budget missed", f"{what} for a {cfg.budget_text} budget"
    return "ok", ""


def _finite(x: float) -> float | None:
    import math

    return x if math.isfinite(x) else None


def _prune(name: str, cfg: PrunabilityConfig, out: str):
    """``edgeprune prune --model torchvision:NAME --method l1 --flops-budget R --epochs 0``
    (or ``--device D --latency-budget R``) through the prune workflow."""
    from edgeprune.budget import Budget
    from edgeprune.workflows.prune import PruneConfig, run_prune

    if cfg.mode == "latency":
        budget = Budget(latency_ratio=cfg.ratio, device=cfg.device)
        device = cfg.device
    else:
        budget, device = Budget(flops_ratio=cfg.ratio), None
    pc = PruneConfig(
        model=f"torchvision:{name}",
        out=out,
        method=cfg.method,
        budget=budget,
        device=device,
        epochs=0,
        verify_min_time_s=cfg.verify_min_time_s,
        overwrite=True,
    )
    return run_prune(pc)


def _ensure_latency_table(name: str, device: str) -> float | None:
    """Profile ``device`` for the model first when its table lacks it (what prune does by
    itself for 'local'), so the sweep's seconds are reported apart; None if not needed."""
    from edgeprune.devices.profile import load_profile

    spec = f"torchvision:{name}"
    covered = {m for t in load_profile(device).tables for m in t.provenance.models}
    if spec in covered or device != "local":
        return None
    from edgeprune.workflows.profile import ProfileConfig, run_profile

    t = time.time()
    run_profile(ProfileConfig(device, (spec,), progress=False, fp32_only=True))  # fp32 prune
    return time.time() - t


def _recheck_parity(out: str) -> float:
    """Re-run the written model.onnx in ONNX Runtime against the pruned model rebuilt from
    model.json + weights.pt (a fresh input); the largest absolute difference."""
    import torch

    from edgeprune.export.onnx_export import parity_check
    from edgeprune.surgery import load_model

    lm = load_model(out)
    x = torch.randn((1, *lm.input_size), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = lm.model.eval()(x).numpy()
    return parity_check(os.path.join(out, "model.onnx"), x.numpy(), ref)
