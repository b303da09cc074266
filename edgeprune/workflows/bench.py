"""The comparison harness behind ``edgeprune bench``: every method under the same budgets,
the same recovery, the same device and seed; one CSV row per (method, budget).

Layout of ``OUT``::

    bench.json            the BenchConfig and the environment (versions, device provenance)
    results.csv           one row per run (rewritten atomically after each run)
    runs/dense/           the dense model given the same recovery (report.json, row.json)
    runs/<method>-<budget>/   a prune run dir (report.json, model, recovery/last.pt, row.json)

A run whose ``row.json`` says ``ok`` is done: an interrupted bench resumes by skipping
those; any other run directory is cleared and run again (``run_prune`` into a fresh dir).
A bench into an ``OUT`` that holds another bench adds its rows when the tables compare
(``SAME_TABLE``) and is refused otherwise: bench out dirs are additive by design.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from dataclasses import asdict, dataclass, field, fields, replace

from edgeprune.errors import InfeasibleBudget, UserError
from edgeprune.report.rows import (
    build_row,
    rows_to_csv,
    status_row,
    with_measurement,
)

BUDGET_KINDS = ("latency", "flops")
PACKAGES = ("torch", "torchvision", "torch-pruning", "onnxruntime", "numpy", "edgeprune")
# BenchConfig fields every row's PruneConfig takes as they are (same name and meaning in
# both; ``distill`` too, through _distill_config)
RUN_OPTIONS = (
    "weights",
    "trust_pickle",
    "device",
    "host",
    "key",
    "remote_python",
    "ssh",
    "data_root",
    "limit_batches",
    "seed",
    "candidates",
    "candidate_batches",
    "precision",
    "precision_batches",
    "quantization",
)


@dataclass(frozen=True)
class BenchConfig:
    """One comparison: model, methods x budgets, device, data, recovery epochs, seed."""

    model: str
    out: str
    methods: tuple[str, ...]
    budgets: tuple[str, ...]  # labels such as "0.5x" (latency) or "0.5x"/"20M" (flops)
    budget_kind: str = "latency"
    device: str | None = None
    weights: str | None = None
    trust_pickle: bool = False  # let ``weights`` hold pickled objects (runs code)
    data_root: str | None = None
    recovery_epochs: int = 0
    limit_batches: int | None = None
    seed: int = 0
    verify_min_time_s: float = 3.0
    method_options: dict = field(default_factory=dict)  # method -> {option: value}
    host: str | None = None  # where to measure (default: the device profile's)
    key: str | None = None  # SSH private key file for ``host`` (default: the profile's)
    remote_python: str | None = None  # python on the device (default: device setup's)
    ssh: object | None = None  # edgeprune.targets.ssh.SSHOptions (None: the defaults)
    # pruned rows' recovery distilled from the dense model (edgeprune.train.DistillConfig;
    # None: the default, resolved when the config is made); the dense row is never distilled
    distill: object | None = None
    candidates: int = 1  # structures tried by short fine-tunes (see PruneConfig)
    candidate_batches: int = 200
    # the pruned rows' deployable precision (see PruneConfig; the dense row stays fp32);
    # auto: each row's controller chooses, the row's ``precision`` says which
    precision: str = "fp32"
    precision_batches: int = 100  # auto: short common recovery before scoring (PruneConfig)
    quantization: object | None = None  # edgeprune.quant.deployable.QuantConfig

    def __post_init__(self) -> None:
        if self.budget_kind not in BUDGET_KINDS:
            raise UserError(f"budget kind must be one of {BUDGET_KINDS}")
        if self.budget_kind == "latency" and not self.device:
            raise UserError("latency budgets need --device (or use --flops-budgets)")
        if self.recovery_epochs > 0 and not self.data_root:
            raise UserError("--epochs > 0 needs --data-root (recovery training needs data)")
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "budgets", tuple(self.budgets))
        object.__setattr__(self, "distill", _distill_config(self.distill))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["methods"], d["budgets"] = list(self.methods), list(self.budgets)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> BenchConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise UserError(f"unknown bench option(s): {', '.join(sorted(unknown))}")
        return cls(**d)


def __getattr__(name: str):
    """``SHORT_SCHEDULES``: method -> options shortening its own training to a CPU budget
    (each method's ``short_schedule``; computed from the registry on first use)."""
    if name == "SHORT_SCHEDULES":
        from edgeprune.methods import short_schedules

        return short_schedules()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def standard_recovery():
    """The one recovery every row gets: SGD Nesterov 0.9, wd 5e-4, one-cycle LR peak 0.02.

    (Batch 128 and random crop + flip come from the pipeline's training loader.)
    """
    from edgeprune.train import TrainConfig

    return TrainConfig(
        optimizer="sgd",
        lr=0.02,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        schedule="onecycle",
    )


def make_budget(cfg: BenchConfig, label: str):
    """The Budget of one column: ``label`` read as a latency or a FLOPs budget."""
    from edgeprune.budget import Budget, parse_latency
    from edgeprune.budget.budget import parse_count

    if cfg.budget_kind == "latency":
        ms, ratio = parse_latency(label)
        return Budget(latency_ms=ms, latency_ratio=ratio, device=cfg.device)
    flops, ratio = parse_count(label, "FLOPs budget")
    return Budget(flops=flops, flops_ratio=ratio, device=cfg.device)


def run_dir_name(method: str, kind: str | None = None, label: str | None = None) -> str:
    """``dense`` or ``<method>-<kind>-<label>`` (filesystem-safe)."""
    if label is None:
        return method
    return f"{method}-{kind}-{label}".replace("/", "_").replace(" ", "")


def environment(device: str | None) -> dict:
    """Package versions, Python and the device profile's table provenance."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    vers = {}
    for pkg in PACKAGES:
        try:
            vers[pkg] = version(pkg)
        except PackageNotFoundError:
            vers[pkg] = "absent"
    vers["python"] = platform.python_version()
    return {"versions": vers, "device": device_provenance(device)}


def device_provenance(device: str | None) -> dict | None:
    """Status line and table provenance of a device profile (None without a device)."""
    if not device:
        return None
    from edgeprune.devices.profile import load_profile

    prof = load_profile(device)
    return {
        "name": prof.name,
        "status": prof.status_line(),
        "estimated": prof.estimated,
        "tables": [t.to_dict() for t in prof.tables],
    }


def _log(msg: str) -> None:
    from edgeprune.log import get_logger

    get_logger("bench").info(msg)


def _write_json(path: str, obj) -> None:
    from edgeprune.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=1, default=str))


FINAL_STATUSES = ("ok", "infeasible")  # rows a resumed bench keeps; errors run again


def saved_row(run_dir: str) -> dict | None:
    """``run_dir/row.json``, or None when missing or unreadable."""
    try:
        with open(os.path.join(run_dir, "row.json")) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def done_row(run_dir: str) -> dict | None:
    """The saved row of a completed run, or None (missing, unreadable or an error)."""
    row = saved_row(run_dir)
    return row if row is not None and row.get("status") in FINAL_STATUSES else None


def run_bench(cfg: BenchConfig) -> list[dict]:
    """Run (or resume) every row; returns the rows also written to ``results.csv``."""
    from edgeprune.fileio import check_writable_dir

    check_writable_dir(cfg.out)  # a bad --out fails before any work
    check_rows(cfg)  # so do unknown methods, bad options or budget labels, missing data
    config = merged_config(cfg)
    env = environment(cfg.device)
    os.makedirs(cfg.out, exist_ok=True)
    _write_json(os.path.join(cfg.out, "bench.json"), {"config": config, **env})
    rows: list[dict] = []
    jobs = [("dense", None)] + [(m, b) for m in cfg.methods for b in cfg.budgets]
    for method, label in jobs:
        rows.append(run_one(cfg, method, label, env))
        write_csv(cfg.out, rows + earlier_rows(cfg.out, rows))
    return rows


def check_rows(cfg: BenchConfig) -> None:
    """Refuse, before any work, what would fail a row: unknown methods, bad budget labels,
    bad method options, a method that trains on data without --data-root."""
    import edgeprune.methods  # noqa: F401 (registers the methods)
    from edgeprune.methods import list_methods
    from edgeprune.methods.base import check_data, check_options

    known = list_methods()
    for name in [*cfg.methods, *cfg.method_options]:
        if name not in known:
            raise UserError(f"unknown method {name!r}; available: {', '.join(known)}")
    for label in cfg.budgets:
        make_budget(cfg, label)
    if cfg.data_root and not os.path.isdir(os.path.expanduser(cfg.data_root)):
        raise UserError(f"data root {cfg.data_root} does not exist or is not a folder")
    for name in cfg.methods:
        check_options(name, dict(cfg.method_options.get(name, {})))
        check_data(name, has_data=bool(cfg.data_root))


# What makes rows of one table comparable; a second bench into the same --out must share them.
SAME_TABLE = (
    "model",
    "budget_kind",
    "device",
    "recovery_epochs",
    "seed",
    "limit_batches",
    "distill",
    "precision",
)

# a distillation dict saved before a field existed had that field's behaviour at the time
_DISTILL_BEFORE_FIELDS = {"mode": "kd", "temperature": 4.0, "alpha": 0.9, "feat_weight": 1000.0}
_DISTILL_BEFORE_FIELDS.update(adjust=False, alpha_end=None)


def table_key(config: dict, key: str):
    """The value of ``key`` that decides whether rows compare; ``distill`` is the pruned rows'
    whole distillation config as text (a config without one predates distillation: its rows
    had none; a ``None`` one was the plain kd of that time)."""
    if key == "precision":  # a config without one predates int8: fp32
        return config.get(key) or "fp32"
    if key != "distill":
        return config.get(key)
    if "distill" not in config:
        return "none"
    d = config["distill"]
    d = {} if d is None else (d if isinstance(d, dict) else d.to_dict())
    full = {**_DISTILL_BEFORE_FIELDS, **d}
    if full["mode"] == "none":
        return "none"
    return " ".join(f"{k}={full[k]}" for k in sorted(full))


def merged_config(cfg: BenchConfig) -> dict:
    """This run's config, with the methods and budgets of earlier runs into ``cfg.out`` added.

    Raises UserError when ``cfg.out`` holds a bench whose rows would not compare with these.
    """
    try:
        with open(os.path.join(cfg.out, "bench.json")) as fh:
            old = json.load(fh)["config"]
    except (OSError, ValueError, KeyError):
        return cfg.to_dict()
    now = cfg.to_dict()
    clash = [k for k in SAME_TABLE if table_key(old, k) != table_key(now, k)]
    if clash:
        were = ", ".join(f"{k}={table_key(old, k)!r}" for k in clash)
        raise UserError(
            f"{cfg.out} holds a bench with {were}; its rows would not compare: use another --out"
        )
    d = cfg.to_dict()
    for key in ("methods", "budgets"):
        d[key] = list(dict.fromkeys([*old.get(key, []), *d[key]]))
    return d


def earlier_rows(out: str, rows: list[dict]) -> list[dict]:
    """The saved rows under ``out/runs`` that ``rows`` (this run's) do not hold, by run dir."""
    seen = {r.get("run_dir") for r in rows}
    runs = os.path.join(out, "runs")
    names = sorted(os.listdir(runs)) if os.path.isdir(runs) else []
    found = [saved_row(os.path.join(runs, n)) for n in names if os.path.join("runs", n) not in seen]
    return [row for row in found if row is not None]


def write_csv(out: str, rows: list[dict]) -> str:
    """Write ``out/results.csv`` atomically; returns its path."""
    from edgeprune.fileio import atomic_write_text

    path = os.path.join(out, "results.csv")
    atomic_write_text(path, rows_to_csv(rows))
    return path


def run_one(cfg: BenchConfig, method: str, label: str | None, env: dict) -> dict:
    """One row: skipped when already done, 'not available' for unregistered methods."""
    from edgeprune.methods import list_methods

    name = run_dir_name(method, cfg.budget_kind, label)
    d = os.path.join(cfg.out, "runs", name)
    budget = "-" if label is None else f"{label} {cfg.budget_kind}"
    row = done_row(d)
    if row is not None:
        _log(f"{name}: done before, skipped")
        return row
    if method != "dense" and method not in list_methods():
        _log(f"{name}: method {method!r} is not available (not registered)")
        row = status_row(cfg.model, method, budget, "not available", "method not registered")
        return _finish_row(row, cfg, env, d, budget)
    shutil.rmtree(d, ignore_errors=True)
    _log(f"{name}: running")
    try:
        row = _run_dense(cfg, d) if label is None else _run_method(cfg, method, label, d)
    except InfeasibleBudget as err:  # a result: this method cannot reach this budget
        row = status_row(cfg.model, method, budget, "infeasible", str(err))
    except UserError as err:
        row = status_row(cfg.model, method, budget, "error", str(err))
    except Exception as err:  # one broken method must not end a long bench
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "error.txt"), "w") as fh:
            fh.write(traceback.format_exc())
        row = status_row(cfg.model, method, budget, "error", f"{type(err).__name__}: {err}")
    row = _finish_row(row, cfg, env, d, budget)
    _write_json(os.path.join(d, "row.json"), row)
    _log(f"{name}: {row['status']} {row.get('message') or ''}".rstrip())
    return row


def _finish_row(row: dict, cfg: BenchConfig, env: dict, d: str, budget: str) -> dict:
    dev = env.get("device") or {}
    tables = dev.get("tables") or []
    prov = "; ".join(
        f"{t['provenance'].get('kind')} {t['provenance'].get('host') or t['provenance'].get('method')}"
        f" {t['provenance'].get('date')}".strip()
        for t in tables
    )
    if row.get("precision") is None and cfg.precision != "auto":  # no model: the asked one
        row["precision"] = "fp32" if budget == "-" else cfg.precision
    row.update(
        budget=budget,
        run_dir=os.path.relpath(d, cfg.out),
        seed=cfg.seed,
        recovery_epochs=cfg.recovery_epochs,
        device=cfg.device,
        versions=";".join(f"{k}={v}" for k, v in env["versions"].items()),
        device_provenance=prov or None,
    )
    return row


def _prune_config(cfg: BenchConfig, method: str, label: str, d: str):
    from edgeprune.workflows.prune import PruneConfig

    return PruneConfig(
        model=cfg.model,
        out=d,
        method=method,
        budget=make_budget(cfg, label),
        epochs=cfg.recovery_epochs,
        verify_min_time_s=cfg.verify_min_time_s,
        method_options=dict(cfg.method_options.get(method, {})),
        recovery=standard_recovery(),
        distill=_distill_config(cfg.distill),
        **{f: getattr(cfg, f) for f in RUN_OPTIONS},
    )


def _distill_config(distill):
    """A DistillConfig from the config's value (None: today's default, a DistillConfig or its
    dict), so that bench.json records the distillation the rows had."""
    from edgeprune.train import DistillConfig

    if distill is None:
        return DistillConfig()
    if isinstance(distill, dict):
        return DistillConfig.from_dict(distill)
    return distill


def _run_method(cfg: BenchConfig, method: str, label: str, d: str) -> dict:
    """run_prune for one (method, budget); measures on the device if the pipeline did not."""
    from edgeprune.workflows.prune import run_prune

    t0 = time.time()
    report = run_prune(_prune_config(cfg, method, label, d)).to_dict()
    row = build_row(report)
    if cfg.device and report.get("measured_latency_ms") is None:
        from edgeprune.surgery import load_model

        dense_ms, ms = _measure(cfg, load_model(d).model)
        row = with_measurement(row, dense_ms, ms)
    row["wall_s"] = time.time() - t0
    return row


def _measure(cfg: BenchConfig, model) -> tuple[float, float]:
    """(dense ms, model ms) timed interleaved on the device."""
    from edgeprune.budget.verify import make_measurer
    from edgeprune.surgery import load_model

    dense = load_model(cfg.model, cfg.weights, trust_pickle=cfg.trust_pickle)
    m = make_measurer(
        cfg.device,
        dense.input_size,
        cfg.verify_min_time_s,
        cfg.host,
        key=cfg.key,
        ssh=cfg.ssh,
        python=cfg.remote_python,
    )(dense.model, model)
    return m.dense_ms, m.pruned_ms


def _run_dense(cfg: BenchConfig, d: str) -> dict:
    """The dense model with the same recovery: a report.json shaped like a prune run's."""
    from edgeprune.report.run_report import write_run_report

    t0 = time.time()
    report = dense_report(cfg, d, standard_recovery())
    report = replace(report, wall_time_s=time.time() - t0)
    os.makedirs(d, exist_ok=True)
    write_run_report(d, report)
    row = build_row(report.to_dict())
    return {**row, "wall_s": report.wall_time_s}


def dense_report(cfg: BenchConfig, d: str, recovery):
    """Recover the dense model like every pruned one; evaluate, count, predict, measure.

    Returns the RunReport of the dense row (method "dense", no budget).
    """
    from edgeprune.cost import count
    from edgeprune.report.run_report import ModelStats, RunReport
    from edgeprune.surgery import load_model, prunable_layers

    lm = load_model(cfg.model, cfg.weights, trust_pickle=cfg.trust_pickle)
    model, size = lm.model.eval(), lm.input_size
    counts = count(model, size)
    before, after = _recover_dense(cfg, model, d, recovery)
    pred = _predicted_ms(cfg, model, size)
    measured = _measure(cfg, model) if cfg.device else (None, None)
    stats = {"params": counts.params, "flops": counts.flops, "weight_bytes": counts.weight_bytes}
    groups = prunable_layers(model, size)
    return RunReport(
        model=lm.name,
        method="dense",
        device=cfg.device,
        device_table=_table_kind(cfg.device),
        budget={},
        dense=ModelStats(**stats, latency_ms=measured[0], top1=before),
        pruned=ModelStats(**stats, latency_ms=measured[1], top1=after),
        predicted_latency_ms=pred,
        measured_latency_ms=measured[1],
        latency_ratio=None if measured[1] is None else measured[1] / measured[0],
        budget_met=None,
        layers=[
            {"layer": g.name, "convs": list(g.convs), "before": g.channels, "after": g.channels}
            for g in groups
        ],
        recovery_epochs=cfg.recovery_epochs,
        seed=cfg.seed,
    )


def _recover_dense(cfg: BenchConfig, model, d: str, recovery) -> tuple:
    """(top-1 before, top-1 after) the standard recovery (None without data), scored on the
    same test subset as the pruned rows."""
    if not cfg.data_root:
        return None, None
    from edgeprune.workflows.recovery import (
        DataSpec,
        build_loaders,
        evaluate_top1,
        recover_and_evaluate,
    )

    loaders = build_loaders(DataSpec(cfg.data_root, 128, cfg.limit_batches, cfg.seed))
    before = evaluate_top1(model, loaders.test, cfg.limit_batches)
    if cfg.recovery_epochs <= 0:
        return before, before
    tcfg = replace(recovery, epochs=cfg.recovery_epochs)
    after = recover_and_evaluate(model, loaders, tcfg, os.path.join(d, "recovery")).top1
    return before, after


def _predicted_ms(cfg: BenchConfig, model, size) -> float | None:
    if not cfg.device:
        return None
    from edgeprune.cost.latency import LatencyPredictor
    from edgeprune.devices.profile import load_profile

    return LatencyPredictor.from_model(model, size, load_profile(cfg.device)).total_ms()


def _table_kind(device: str | None) -> str | None:
    if not device:
        return None
    from edgeprune.devices.profile import load_profile

    return "estimated" if load_profile(device).estimated else "measured"
