"""The prune workflow: load -> score -> allocate under the budget -> verify on the device
-> recover -> evaluate -> write the pruned model, its ONNX file and report.json."""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING

import torch

from edgeprune.budget import Budget
from edgeprune.budget.controller import ControllerConfig, decide
from edgeprune.errors import UserError
from edgeprune.runtimes.interval import DEFAULT_SESSIONS

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch.nn as nn

    from edgeprune.budget.controller import ControllerResult
    from edgeprune.budget.costmodel import CostModel
    from edgeprune.devices.profile import DeviceProfile
    from edgeprune.methods import IterativePruner, MethodContext, MethodLoaders, Scorer
    from edgeprune.report.run_report import RunReport
    from edgeprune.surgery.graph import PrunableGroup
    from edgeprune.workflows.candidates import CandidateSearch
    from edgeprune.workflows.precision import PrecisionSetup


@dataclass(frozen=True)
class PruneConfig:
    """One prune run (model, method, budget, data and recovery)."""

    model: str
    out: str
    method: str = "l1"
    budget: Budget | None = None
    weights: str | None = None
    trust_pickle: bool = False  # let ``weights`` hold pickled objects (runs code)
    device: str | None = None
    host: str | None = None
    key: str | None = None  # SSH private key file for ``host`` (default: the profile's)
    remote_python: str | None = None  # python on the device (default: device setup's)
    ssh: object | None = None  # edgeprune.targets.ssh.SSHOptions (None: the defaults)
    data_root: str | None = None
    epochs: int = 0
    lr: float = 0.01
    batch_size: int = 128
    limit_batches: int | None = None
    verify: bool = True
    verify_min_time_s: float = 3.0
    # time each check until the ratio's 95% interval is within +-verify_halfwidth or
    # verify_max_time_s has passed; the final verification is this many such sessions
    # (fresh processes, pruned first, the order swapped each time; ``combine_sessions``)
    verify_halfwidth: float = 0.015
    verify_max_time_s: float = 12.0
    verify_final_sessions: int = DEFAULT_SESSIONS
    controller: ControllerConfig = ControllerConfig()
    method_options: dict = field(default_factory=dict)
    seed: int = 0
    resume: bool = False
    overwrite: bool = False  # clear a non-empty ``out`` first (else it is refused)
    accuracy_search_steps: int = 6
    # --precision auto: training batches of the short common recovery before each candidate
    # precision is scored on val (0: none; --candidates K > 1: candidate_batches). Without
    # it the candidates are compared before any recovery, near chance after heavy pruning
    precision_batches: int = 100
    # recovery training (epochs, limit_batches, seed come from the fields above); None: SGD
    # with a cosine schedule at ``lr``
    recovery: object | None = None  # edgeprune.train.TrainConfig
    # recovery distilled from the dense model (edgeprune.train.DistillConfig; None: kd)
    distill: object | None = None
    candidates: int = 1  # structures tried by short fine-tunes (1: the first plan that fits)
    candidate_batches: int = 200  # training batches of each candidate's fine-tune
    # the deployable model.onnx: fp32, or int8 (QDQ, edgeprune.quant; fp32 kept beside it)
    precision: str = "fp32"
    quantization: object | None = None  # edgeprune.quant.deployable.QuantConfig (None: defaults)


def _log(msg: str) -> None:
    from edgeprune.log import get_logger

    get_logger("prune").info(msg)


def _predictor(cfg: PruneConfig, model, input_size, model_name: str):
    """(The device's latency predictor, its profile); Nones without a device.

    Only a latency budget needs the predictor: without one, a device whose table cannot
    price this model (or has none) leaves latency unpredicted and the run goes on.
    ``--device local`` with no table for this model profiles this host first, only under a
    latency budget (the same sweep as ``edgeprune profile --device local --model NAME``,
    about half a minute for a CIFAR ResNet on 2 cores).
    """
    if not cfg.device:
        return None, None
    from edgeprune.cost.latency import LatencyPredictor
    from edgeprune.devices.profile import load_profile

    needed = cfg.budget is not None and cfg.budget.has_latency
    profile = load_profile(cfg.device)
    covered = {m for t in profile.tables for m in t.provenance.models}
    if needed and cfg.device == "local" and model_name not in covered:
        _profile_local(model_name)
        profile = load_profile("local")
    try:
        pred = LatencyPredictor.from_model(model, input_size, profile, model_name)
    except UserError as err:
        if needed:
            raise
        _log(f"latency not predicted (no latency budget): {err}")
        return None, profile
    _log(profile.status_line())
    return pred, profile


def _profile_local(model_name: str) -> None:
    from edgeprune.workflows.profile import ProfileConfig, run_profile
    from edgeprune.workflows.profile import summary as profile_summary

    _log(
        f"device 'local' has no latency table for {model_name} yet: profiling this host first "
        f"(edgeprune profile --device local --model {model_name})"
    )
    command = f"edgeprune profile --device local --model {model_name} --no-progress"
    try:
        result = run_profile(ProfileConfig("local", (model_name,), progress=False, command=command))
    except UserError as err:
        _log(f"error: {err}")
        raise UserError(
            f"profiling this host failed; run 'edgeprune profile --device local --model "
            f"{model_name}' to see why"
        ) from None
    for line in profile_summary(result):
        _log(line)


def _data_spec(cfg: PruneConfig):
    from edgeprune.workflows.recovery import DataSpec

    return DataSpec(cfg.data_root, cfg.batch_size, cfg.limit_batches, cfg.seed)


def _recovery_loaders(cfg: PruneConfig):
    """The recovery's ``Loaders`` (training, test); None without data."""
    if not cfg.data_root:
        if cfg.epochs > 0:
            raise UserError("--epochs > 0 needs --data-root (recovery training needs data)")
        if cfg.budget is not None and cfg.budget.max_acc_drop is not None:
            raise UserError("--max-acc-drop needs --data-root to measure accuracy")
        return None
    from edgeprune.workflows.recovery import build_loaders

    return build_loaders(_data_spec(cfg))


def _loaders(cfg: PruneConfig):
    """(recovery training, the method's training, val, test) loaders; Nones without data."""
    loaders = _recovery_loaders(cfg)
    if loaders is None:
        return None, None, None, None
    from edgeprune.data import DataOptions, build_loader
    from edgeprune.workflows.recovery import eval_loader

    # a method's own training never sees the val images its decisions are judged on
    held_out = DataOptions(holdout_val=True)
    method_train = build_loader(
        cfg.data_root, "train", cfg.batch_size, seed=cfg.seed, options=held_out
    )
    return loaders.train, method_train, eval_loader(loaders.spec, "val"), loaders.test


def _evaluate(model, loader, cfg: PruneConfig) -> float | None:
    from edgeprune.workflows.recovery import evaluate_top1

    return evaluate_top1(model, loader, cfg.limit_batches)


def _recover_and_evaluate(model, train_loader, test_loader, cfg: PruneConfig, teacher=None):
    """Recovery training (``cfg.epochs``) into ``out/recovery``, distilled from ``teacher``
    (the dense model) by ``cfg.distill``, then test top-1."""
    from edgeprune.train import TrainConfig
    from edgeprune.workflows.recovery import Loaders, recover_and_evaluate

    base = cfg.recovery or TrainConfig(lr=cfg.lr, schedule="cosine")
    loaders = None if test_loader is None else Loaders(_data_spec(cfg), train_loader, test_loader)
    # a checkpoint is resumed only by --resume, whose config matches (``_check_resume``)
    return recover_and_evaluate(
        model,
        loaders,
        replace(base, epochs=cfg.epochs) if cfg.epochs > 0 else None,
        os.path.join(cfg.out, "recovery"),
        resume=cfg.resume,
        teacher=teacher,
        distill=cfg.distill,
    )


def recover_model(cfg: PruneConfig, model, teacher=None):
    """What ``run_prune`` does after pruning, for a model pruned elsewhere: ``cfg``'s recovery
    (``cfg.epochs``, distilled from ``teacher`` by ``cfg.distill``) into ``out/recovery``, then
    test top-1 (a ``RecoveryResult``)."""
    loaders = _recovery_loaders(cfg)  # not the method's loaders: it pruned elsewhere
    train, test = (loaders.train, loaders.test) if loaders else (None, None)
    return _recover_and_evaluate(model, train, test, cfg, teacher)


def _candidate_search(cfg: PruneConfig, teacher, train_loader, val_loader):
    """The structure search of ``cfg.candidates`` (None for 1 or without val data)."""
    if cfg.candidates <= 1 or val_loader is None or train_loader is None:
        return None
    from edgeprune.train import TrainConfig
    from edgeprune.workflows.candidates import CandidateSearch, finetune_scorer

    base = cfg.recovery or TrainConfig(lr=cfg.lr, schedule="cosine")
    batches = cfg.candidate_batches if cfg.limit_batches is None else cfg.limit_batches
    score = finetune_scorer(
        teacher, train_loader, val_loader, base, batches, cfg.distill, cfg.limit_batches
    )
    return CandidateSearch(cfg.candidates, score)


# what --overwrite may clear (an edgeprune prune run dir) and the final outputs of a run
RUN_MARKERS = ("config.json", "report.json", "model.json", "method_state.pt", "recovery")
FINAL_OUTPUTS = (
    "model.json",
    "weights.pt",
    "model.onnx",
    "model.check.npz",
    "model_fp32.onnx",
    "diagnostics.json",
    "report.json",
)


def run_config(cfg: PruneConfig) -> dict:
    """What a ``--resume`` must share with the run it continues (saved as config.json)."""
    from dataclasses import asdict

    doc = {
        "model": cfg.model,
        "weights": _abs_if_local(cfg.weights),
        "method": cfg.method,
        "budget": cfg.budget.to_dict() if cfg.budget is not None else None,
        "method_options": dict(cfg.method_options),
        "device": cfg.device,
        "controller": cfg.controller.to_dict(),
        "accuracy_search_steps": cfg.accuracy_search_steps,
        "epochs": cfg.epochs,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "limit_batches": cfg.limit_batches,
        "seed": cfg.seed,
        "data_root": _abs_if_local(cfg.data_root),
        "recovery": asdict(cfg.recovery) if cfg.recovery is not None else None,
        "distill": _distill(cfg).to_dict(),
        "candidates": cfg.candidates,
        "candidate_batches": cfg.candidate_batches,
        "precision": cfg.precision,
    }
    return json.loads(json.dumps(doc, default=str))  # as it reads back from the file


def _distill(cfg: PruneConfig):
    """The run's distillation config (kd when none was given)."""
    from edgeprune.train import DistillConfig

    return cfg.distill or DistillConfig()


def _abs_if_local(path: str | None) -> str | None:
    return os.path.abspath(path) if path and os.path.exists(path) else path


def _check_resume(cfg: PruneConfig, config: dict) -> None:
    """Raise UserError unless ``cfg.out`` holds a run made with ``config`` (or nothing)."""
    from edgeprune.fileio import STAGING_PREFIX

    path = os.path.join(cfg.out, "config.json")
    if not os.path.isfile(path):
        if any(not n.startswith(STAGING_PREFIX) for n in os.listdir(cfg.out)):
            raise UserError(
                f"--resume: {cfg.out} has no config.json (made by an older edgeprune or not a "
                "prune run), so it cannot be checked; use another --out or --overwrite"
            )
        return
    try:
        with open(path) as fh:
            saved = json.load(fh)
    except (OSError, ValueError):
        raise UserError(
            f"--resume: {path} is unreadable; use another --out or --overwrite"
        ) from None
    keys = [k for k in dict.fromkeys([*config, *saved]) if saved.get(k) != config.get(k)]
    if keys:
        was = ", ".join(f"{k}={_show(saved.get(k))}" for k in keys)
        asks = ", ".join(f"{k}={_show(config.get(k))}" for k in keys)
        raise UserError(
            f"--resume: {cfg.out} was made with {was}, this run asks {asks}; "
            "use another --out or --overwrite"
        )


def _show(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _open_run_dir(cfg: PruneConfig) -> dict:
    """Check ``cfg.out`` before any work: refuse a dir another run left (unless --resume of
    the same config, or --overwrite). Returns this run's config; writes nothing yet."""
    from edgeprune.fileio import check_replaceable, prepare_out_dir

    prepare_out_dir(cfg.out, cfg.resume, cfg.overwrite)
    config = run_config(cfg)
    if cfg.resume:
        _check_resume(cfg, config)
    if cfg.overwrite:
        check_replaceable(cfg.out, RUN_MARKERS)
    return config


def _start_run_dir(cfg: PruneConfig, config: dict) -> None:
    """Clear ``cfg.out`` for --overwrite, drop killed runs' staging, save config.json."""
    from edgeprune.fileio import clean_stale_staging, clear_run_dir

    if cfg.overwrite:
        clear_run_dir(cfg.out, RUN_MARKERS)
    from edgeprune.report.run_report import write_json

    clean_stale_staging(cfg.out)
    write_json(os.path.join(cfg.out, "config.json"), config)


def run_prune(cfg: PruneConfig) -> RunReport:
    """Run the whole workflow; returns the report written to ``cfg.out/report.json``.

    ``cfg.out`` is checked first (see ``_open_run_dir``); the final outputs are written to a
    staging folder and moved in at the end, so a failed run leaves earlier results whole.
    """
    from edgeprune.cost import count
    from edgeprune.methods import MethodLoaders, get_method
    from edgeprune.methods.base import check_data
    from edgeprune.surgery import load_model, prunable_layers, save_pruned

    t0 = time.time()
    torch.manual_seed(cfg.seed)
    budget = cfg.budget
    if budget is None:
        raise UserError("no budget given")
    config = _open_run_dir(cfg)
    method = get_method(cfg.method, **cfg.method_options)
    check_data(cfg.method, cfg.data_root is not None)
    train_loader, method_train_loader, val_loader, test_loader = _loaders(cfg)
    _start_run_dir(cfg, config)
    _log(f"load {cfg.model}")
    loaded = load_model(cfg.model, cfg.weights, trust_pickle=cfg.trust_pickle)
    model, input_size = loaded.model.eval(), loaded.input_size
    example = torch.randn(1, *input_size)
    groups = prunable_layers(model, input_size)
    predictor, profile = _predictor(cfg, model, input_size, loaded.name)
    if budget.has_latency and predictor is None:
        raise UserError("a latency budget needs --device")
    from edgeprune.budget.costmodel import CostModel

    int8 = "int8" if cfg.precision == "int8" else "fp32"  # memory priced as shipped
    cost = CostModel(model, groups, input_size, predictor, precision=int8)
    dense_counts = count(model, input_size)
    _log("evaluate dense model" if test_loader else "no data: skipping accuracy")
    dense_top1 = _evaluate(model, test_loader, cfg)

    timings = {"verify_s": 0.0}
    measure = _measurers(cfg, budget, input_size, timings)
    final_measure = measure.confirm if measure else None
    precisions = _precision_setup(
        cfg, budget, profile, predictor, loaded, (model, groups), timings, val_loader
    )
    ctx = _method_context(
        cfg,
        method,
        model,
        groups,
        cost,
        budget,
        example,
        profile,
        MethodLoaders(method_train_loader, val_loader, test_loader),
        measure,
    )
    _log(f"method '{method.name}' ({_kind(method)}) for: {budget.describe()}")
    t_dec = time.time()

    def narrow(budget_: Budget, decide_for) -> Budget:
        return _accuracy_search(model, budget_, decide_for, example, val_loader, cfg)

    search = _candidate_search(cfg, model, method_train_loader, val_loader)
    outcome = run_method(
        method,
        model,
        groups,
        ctx,
        budget,
        cfg.controller,
        measure,
        narrow,
        search=search,
        precisions=precisions,
    )
    pruned, result, budget = outcome.pruned, outcome.result, outcome.budget
    if cfg.precision == "auto" or outcome.precision != "fp32":  # the one chosen is shipped
        _log(f"precision: {outcome.precision}")
        cfg = replace(cfg, precision=outcome.precision)
        checks = precisions.measures.get(outcome.precision) if precisions else None
        checks = checks or _measurers(cfg, budget, input_size, timings, outcome.precision)
        final_measure = checks.confirm if checks else None  # None: no measured budget
    decision_s = time.time() - t_dec
    recovered = _recover_and_evaluate(pruned, train_loader, test_loader, cfg, teacher=model)
    timings.update(method_s=decision_s - timings["verify_s"], recovery_s=recovered.train_s)
    pruned.eval()
    pruned_top1 = recovered.top1
    pruned_counts = count(pruned, input_size, precision=cfg.precision)
    final = _final_verification(final_measure, model, pruned, budget, cfg.controller.tolerance)

    from edgeprune.fileio import commit_staged, staging
    from edgeprune.report.run_report import write_json, write_run_report

    with staging(cfg.out) as stage:  # moved into cfg.out only when all are written
        save_pruned(
            stage, loaded.name, pruned, result.plan, input_size, extra={"method": method.name}
        )
        from edgeprune.export.onnx_export import ExportConfig, export_onnx

        export_onnx(pruned, input_size, str(stage / "model.onnx"), ExportConfig())
        quant, pruned_top1 = _deployable_precision(cfg, stage, input_size, pruned_top1)
        if quant and dq_needs_qat(cfg, quant):  # PTQ lost > 0.5 point on val: --qat-epochs
            save = partial(
                save_pruned,
                stage,
                loaded.name,
                plan=result.plan,
                input_size=input_size,
                extra={"method": method.name},
            )
            quant, pruned_top1 = _qat_recovery(
                cfg, stage, input_size, quant, (pruned, train_loader, model, save), pruned_top1
            )
        report = _report(
            cfg,
            loaded,
            budget,
            result,
            dense_counts,
            pruned_counts,
            dense_top1,
            pruned_top1,
            groups,
            profile,
            decision_s,
            time.time() - t0,
            final=final,
        )
        report = replace(report, method_recovery=outcome.recovery, timings=timings)
        report = replace(report, precision=cfg.precision, quantization=quant)
        report = replace(report, precision_choice=outcome.precision_choice)
        if predictor is not None and budget.has_latency:  # what the table could not price exactly
            lines = predictor.not_predicted(cost.conv_widths(result.allocation.widths))
            report = replace(report, latency_not_predicted=lines)
        diag = outcome.diagnostics
        if diag:
            write_json(stage / "diagnostics.json", diag)
            report = replace(report, diagnostics="diagnostics.json")
        write_run_report(stage, report)
        commit_staged(stage, cfg.out, stale=FINAL_OUTPUTS)
    return report


def _deployable_precision(cfg: PruneConfig, stage, input_size, fp32_top1):
    """int8: the fp32 export becomes model_fp32.onnx and model.onnx the int8 QDQ model,
    judged against it on check inputs and scored on val and test through ONNX Runtime.
    Returns (report's quantization dict or None, the deployed model's test top-1)."""
    if cfg.precision == "fp32":
        return None, fp32_top1
    from edgeprune.quant import deployable as dq
    from edgeprune.workflows.recovery import eval_loader

    qcfg = dq.as_quant_config(cfg.quantization)
    fp32, int8 = str(stage / dq.FP32_NAME), str(stage / "model.onnx")
    os.replace(int8, fp32)
    _log(f"quantize to int8 ({qcfg.method}, {qcfg.calibration_images} calibration images)")
    calib, check, source = dq.inputs_for(cfg.data_root, input_size, qcfg)
    quant = dq.make_int8(fp32, int8, calib, check, qcfg, source)
    _log(dq.agreement_line(quant))
    if not cfg.data_root:
        return quant, fp32_top1
    spec = _data_spec(cfg)
    quant.update(dq.score_both(fp32, int8, eval_loader(spec, "val"), None, "val"))
    test = dq.score_both(fp32, int8, eval_loader(spec, "test"), None, "test")
    quant.update(test, test_top1_torch_fp32=fp32_top1)
    quant["note"] = dq.loss_note(quant)
    _log(quant["note"])
    return quant, test["test_top1_int8"]


def dq_needs_qat(cfg: PruneConfig, quant: dict) -> bool:
    """Whether QAT should try to recover what PTQ lost (asked for, data, loss > 0.5 point)."""
    from edgeprune.quant.deployable import MAX_PTQ_LOSS_POINTS, as_quant_config

    loss = quant.get("val_loss_points")
    epochs = as_quant_config(cfg.quantization).qat_epochs
    return epochs > 0 and loss is not None and loss > MAX_PTQ_LOSS_POINTS


def _qat_recovery(cfg: PruneConfig, stage, input_size, ptq: dict, parts, ptq_top1):
    """Fine-tune a copy of the pruned model with int8 fake quantization (``qat_epochs``,
    distilled from the dense model, a tenth of the recovery LR), export and quantize it
    again; it replaces the PTQ model when its int8 val top-1 is higher. Returns (the
    quantization dict, the deployed model's test top-1)."""
    from edgeprune.export.onnx_export import ExportConfig, export_onnx
    from edgeprune.quant import deployable as dq
    from edgeprune.quant.qat import qat_finetune_
    from edgeprune.train import TrainConfig
    from edgeprune.workflows.recovery import eval_loader

    pruned, train_loader, teacher, save = parts
    qcfg = dq.as_quant_config(cfg.quantization)
    base = cfg.recovery or TrainConfig(lr=cfg.lr, schedule="cosine")
    tc = replace(base, epochs=qcfg.qat_epochs, lr=base.lr * 0.1, limit_batches=cfg.limit_batches)
    _log(f"PTQ lost {ptq['val_loss_points']:.2f} points: QAT for {qcfg.qat_epochs} epoch(s)")
    model = copy.deepcopy(pruned)
    secs = qat_finetune_(model, train_loader, tc, teacher=teacher, distill=cfg.distill)
    fp32, int8 = str(stage / "qat_fp32.onnx"), str(stage / "qat.onnx")
    export_onnx(model, input_size, fp32, ExportConfig())
    calib, check, source = dq.inputs_for(cfg.data_root, input_size, qcfg)
    qat = dq.make_int8(fp32, int8, calib, check, qcfg, source)
    spec = _data_spec(cfg)
    qat.update(dq.score_both(fp32, int8, eval_loader(spec, "val"), None, "val"))
    qat.update(dq.score_both(fp32, int8, eval_loader(spec, "test"), None, "test"))
    qat.update(qat_epochs=qcfg.qat_epochs, qat_s=secs, fp32_model=dq.FP32_NAME)
    keep = qat["val_top1_int8"] > ptq["val_top1_int8"]
    summary_ = {k: ptq[k] for k in ptq if k.startswith(("val_", "test_")) or k == "agreement"}
    if keep:
        for src, dst in ((fp32, dq.FP32_NAME), (int8, "model.onnx")):
            os.replace(src, stage / dst)
        os.replace(stage / "qat.check.npz", stage / "model.check.npz")
        save(model=model)
        qat.update(ptq=summary_, qat_kept=True, test_top1_torch_fp32=None)
        before, after = ptq["val_top1_int8"], qat["val_top1_int8"]
        qat["note"] = f"QAT kept: val int8 top-1 {before:.4f} (PTQ) -> {after:.4f}"
        _log(qat["note"])
        return qat, qat["test_top1_int8"]
    for f in (fp32, int8, str(stage / "qat.check.npz")):
        os.unlink(f)
    ptq["qat"] = {k: qat[k] for k in qat if k.startswith(("val_", "test_", "qat_"))}
    ptq["qat"]["kept"] = False
    ptq["note"] += f"; QAT ({qcfg.qat_epochs} epoch(s)) did not beat PTQ on val: PTQ kept"
    _log(ptq["note"])
    return ptq, ptq_top1


def _measurers(
    cfg: PruneConfig, budget: Budget, input_size, timings: dict, precision: str = "fp32"
):
    """The controller's ``Checks`` (None without a measured latency budget): a quick
    one-session check of (dense, pruned), and the confirmation in
    ``cfg.verify_final_sessions`` separate sessions (pruned first, the order swapped) that
    a plan must also pass and that the final verification repeats; their seconds are added
    to ``timings``. At ``precision`` int8 the pruned model is timed quantized against the
    dense fp32 model."""
    if not (cfg.verify and budget.has_latency and cfg.device):
        return None
    from edgeprune.budget.verify import Checks, MeasureSettings, make_measurer

    search = MeasureSettings(cfg.verify_min_time_s, cfg.verify_halfwidth, cfg.verify_max_time_s)
    final = replace(search, pruned_first=True, sessions=max(1, cfg.verify_final_sessions))
    where = dict(key=cfg.key, ssh=cfg.ssh, python=cfg.remote_python, precision=precision)
    quick, confirm = (
        _timed(make_measurer(cfg.device, input_size, ms, cfg.host, **where), timings)
        for ms in (search, final)
    )
    return Checks(quick, confirm)


def _precision_setup(cfg, budget, profile, predictor, loaded, model_groups, timings, val_loader):
    """``--precision auto`` (or int8) under a latency budget: per precision the device's
    table offers, a cost model and a measurer, and the val scorer that chooses
    (``edgeprune.workflows.precision``); None for fp32 or without a latency budget."""
    if cfg.precision == "fp32" or not budget.has_latency or predictor is None:
        if cfg.precision == "auto":
            _log("--precision auto chooses under a latency budget on a device only: fp32")
        return None
    from edgeprune.budget.costmodel import CostModel
    from edgeprune.workflows import precision as wp

    model, groups = model_groups
    size = loaded.input_size
    found = wp.precision_options(cfg.precision, profile, model, size, loaded.name, predictor, _log)
    setup = wp.PrecisionSetup([o for o, _ in found], forced=cfg.precision != "auto")
    for o, pred in found:
        setup.costs[o.precision] = CostModel(model, groups, size, pred, precision=o.precision)
        setup.measures[o.precision] = _measurers(cfg, budget, size, timings, o.precision)
    if val_loader is not None and len(found) > 1:
        setup.score = wp.val_scorer(val_loader, size, cfg.data_root, _precision_trainer(cfg))
    return setup


def _precision_trainer(cfg: PruneConfig):
    """The short common recovery before each precision is scored (None: none)."""
    from edgeprune.train import TrainConfig
    from edgeprune.workflows.precision import short_trainer

    batches = cfg.candidate_batches if cfg.candidates > 1 else cfg.precision_batches
    if cfg.limit_batches is not None:
        batches = min(batches, cfg.limit_batches)
    if batches <= 0 or not cfg.data_root:
        return None
    from edgeprune.data import DataOptions, build_loader
    from edgeprune.surgery import load_model

    loader = build_loader(
        cfg.data_root,
        "train",
        cfg.batch_size,
        seed=cfg.seed,
        options=DataOptions(holdout_val=True),
    )
    teacher = load_model(cfg.model, cfg.weights, trust_pickle=cfg.trust_pickle).model.eval()
    base = cfg.recovery or TrainConfig(lr=cfg.lr, schedule="cosine")
    return short_trainer(teacher, loader, base, batches, cfg.distill)


def _final_verification(final_measure, model, pruned, budget: Budget, tol: float):
    """The chosen model measured once more in a separate, longer run (fresh sessions, pruned
    first): the measurement ``budget_met`` is judged on (None when not measuring)."""
    if final_measure is None:
        return None
    from edgeprune.budget.verdict import measured_verdict

    _log(
        "final verification: separate, longer runs (fresh sessions, pruned model first, "
        "the order swapped each session)"
    )
    m = final_measure(model, pruned)
    met = measured_verdict(budget, m, tol).met
    iv = m.interval.describe() if m.interval else f"{m.ratio:.3f}"
    each = ", ".join(f"{s.ratio:.3f}" for s in m.sessions)
    each = f" (sessions: {each})" if each else ""
    _log(f"final verification: ratio {iv}{each}: budget {'met' if met else 'NOT met'}")
    return m


def _timed(measure, timings: dict):
    """``measure`` that adds its seconds to ``timings['verify_s']``."""

    def timed(dense, pruned):
        t = time.time()
        try:
            return measure(dense, pruned)
        finally:
            timings["verify_s"] += time.time() - t

    return timed


def _method_context(
    cfg: PruneConfig,
    method: Scorer | IterativePruner,
    model: nn.Module,
    groups: list[PrunableGroup],
    cost: CostModel,
    budget: Budget,
    example: torch.Tensor,
    profile: DeviceProfile | None,
    loaders: MethodLoaders,
    measure: Callable | None,
) -> MethodContext:
    """The run's MethodContext: data, budget oracle, per-layer weights, checkpointing in
    ``cfg.out/method_state.pt``, and the device profile (prune's ``--device``, else the
    one the method's ``profile_option`` names)."""
    from edgeprune.methods import Checkpointer, make_method_context

    state_path = os.path.join(cfg.out, "method_state.pt")

    def save(state: dict) -> None:  # plain types and tensors only: read with weights_only
        from edgeprune.train.checkpoint import save_atomic

        save_atomic(state, state_path)

    def load() -> dict | None:
        from edgeprune.train.checkpoint import load_checkpoint

        return load_checkpoint(state_path) if os.path.isfile(state_path) else None

    option = getattr(method, "profile_option", None)
    if profile is None and option and cfg.method_options.get(option):
        from edgeprune.devices.profile import load_profile

        profile = load_profile(str(cfg.method_options[option]))
    return make_method_context(
        model,
        groups,
        cost,
        budget,
        example,
        loaders=loaders,
        measure=measure,
        checkpoint=Checkpointer(save, load),
        options=cfg.method_options,
        limit_batches=cfg.limit_batches,
        resume=cfg.resume,
        log=_log,
        device_profile=profile,
        tolerance=cfg.controller.tolerance,
    )


def _kind(method: Scorer | IterativePruner) -> str:
    """How a method prunes, for the log: its own loop, or scores the controller turns
    into widths."""
    from edgeprune.methods import IterativePruner

    return "own loop" if isinstance(method, IterativePruner) else "scores"


@dataclass(frozen=True)
class MethodOutcome:
    """A method's step of the workflow: the pruned model, the controller's result, the
    budget it was decided for (an accuracy target narrowed to FLOPs), the method's own
    recovery info (report's ``method_recovery``) and its JSON-able diagnostics."""

    pruned: nn.Module
    result: ControllerResult
    budget: Budget
    recovery: dict
    diagnostics: dict
    precision: str = "fp32"  # the precision chosen (--precision auto) or asked for
    precision_choice: dict | None = None  # report's precision_choice


def run_method(
    method: Scorer | IterativePruner,
    model: nn.Module,
    groups: list[PrunableGroup],
    ctx: MethodContext,
    budget: Budget,
    controller: ControllerConfig = ControllerConfig(),  # noqa: B008 (frozen)
    measure: Callable | None = None,
    narrow: Callable[[Budget, Callable], Budget] | None = None,
    *,
    search: CandidateSearch | None = None,
    precisions: PrecisionSetup | None = None,
) -> MethodOutcome:
    """Prune ``model`` (left as it was) with ``method`` by its protocol: an iterative pruner
    runs its own loop; a scorer's scores become widths by its declared rule in the budget
    controller (``narrow(budget, decide_for)`` first turns an accuracy target into FLOPs).
    With a ``search`` (k > 1) an allocating scorer's structure is chosen among k candidates
    by short fine-tunes (``edgeprune.workflows.candidates``); other rules keep theirs.
    With ``precisions`` a scorer's plan is decided per precision and the best chosen
    (``choose_precision``); an iterative pruner's loop runs on fp32 costs."""
    from edgeprune.budget.width_rule import WidthRule
    from edgeprune.methods import IterativePruner, Scorer
    from edgeprune.surgery import apply_plan_
    from edgeprune.surgery.blocks import droppable_groups

    cost, example = ctx.cost_model, ctx.example_input
    if isinstance(method, IterativePruner):
        it = method.run(copy.deepcopy(model), groups, ctx)
        tol = controller.tolerance
        result = _iterative_result(model, it.plan, cost, groups, budget, example, measure, tol)
        return MethodOutcome(it.model, result, budget, {}, dict(it.diagnostics))
    if not isinstance(method, Scorer):
        raise TypeError(f"{type(method).__name__} is neither a Scorer nor an IterativePruner")
    scored = method.score(model, groups, ctx)
    droppable = droppable_groups(model)

    def decide_for(budget_: Budget, measure_=None, log=ctx.log, cfg_=controller):
        args = (model, groups, scored.scores, budget_, cost, droppable, example, cfg_)
        return decide(*args, measure_, log, rule=scored.rule)

    if budget.max_acc_drop is not None and narrow is not None:
        budget = narrow(budget, decide_for)
    chosen, searched = controller, {}
    if search is not None and search.k > 1 and scored.rule is WidthRule.ALLOCATE:
        from edgeprune.workflows.candidates import choose_config

        chosen, searched = choose_config(
            search,
            lambda c: decide_for(budget, None, lambda m: None, c),
            controller,
            lambda r: apply_plan_(copy.deepcopy(model), r.plan, example),
            ctx.log,
        )
    if precisions is None:
        result, precision, choice = decide_for(budget, measure, cfg_=chosen), "fp32", None
    else:
        picked = _choose_precision(
            precisions, model, groups, scored, budget, droppable, ctx, chosen
        )
        result, precision, choice = picked.result, picked.precision, picked.to_dict()
    pruned = apply_plan_(copy.deepcopy(model), result.plan, example)
    rec = method.recover(pruned, model, groups, scored, ctx)
    diagnostics = {**scored.diagnostics, **rec.diagnostics, **searched}
    return MethodOutcome(pruned, result, budget, dict(rec.info), diagnostics, precision, choice)


def _choose_precision(setup: PrecisionSetup, model, groups, scored, budget, droppable, ctx, cfg_):
    """The controller's decision per precision of ``setup``, chosen by its rule."""
    from edgeprune.budget.controller import choose_precision
    from edgeprune.surgery import apply_plan_

    example = ctx.example_input

    def decide_at(o):
        base = 1.0 / o.dense_ratio if budget.latency_ratio is not None else 1.0
        ctx.log(f"precision {o.precision}: plan for {budget.describe()} (relative to fp32)")
        args = (model, groups, scored.scores, budget, setup.costs[o.precision], droppable)
        measure = setup.measures.get(o.precision)
        return decide(*args, example, cfg_, measure, ctx.log, rule=scored.rule, latency_base=base)

    score = None
    if setup.score is not None:

        def score(precision, result):
            pruned = apply_plan_(copy.deepcopy(model), result.plan, example)
            return setup.score(precision, pruned)

    return choose_precision(setup.options, decide_at, score, ctx.log, forced=setup.forced)


def _accuracy_search(model, budget, decide_for, example, val_loader, cfg):
    """Smallest model (by FLOPs) whose top-1 on the held-out val split, before recovery,
    drops at most ``budget.max_acc_drop`` points; returned as a budget with a FLOPs limit.

    ``decide_for(budget, measure, log)`` is the controller's decision for one budget.
    Measured before recovery training, so the guarantee is conservative: recovery only
    adds accuracy back. (AAP's accuracy-guaranteed policy retrains inside its loop.)
    """
    from dataclasses import replace

    from edgeprune.surgery import apply_plan_

    dense_val = _evaluate(model, val_loader, cfg)

    def ok(ratio: float) -> bool:
        trial = replace(budget, max_acc_drop=None, flops_ratio=ratio)
        try:
            res = decide_for(trial, None, lambda m: None)
        except UserError:
            return False
        acc = _evaluate(apply_plan_(copy.deepcopy(model), res.plan, example), val_loader, cfg)
        _log(
            f"accuracy search: FLOPs <= {ratio:.3f}x -> val top-1 {acc:.4f} (dense {dense_val:.4f})"
        )
        return (dense_val - acc) * 100 <= budget.max_acc_drop

    from edgeprune.search import bisect_float

    # 0.05 taken as too small; 1.0 (dense) always acceptable
    _, hi = bisect_float(ok, 0.05, 1.0, cfg.accuracy_search_steps, geometric=True)
    _log(f"accuracy search chose FLOPs <= {hi:.3f}x of dense")
    return replace(budget, flops_ratio=min(hi, budget.flops_ratio or 1.0))


def _iterative_result(model, plan, cost, groups, budget, example, measure, tol: float):
    """Wrap an iterative method's final plan as a ControllerResult (measured once, judged
    with the controller's latency tolerance ``tol``)."""
    from edgeprune.budget.allocator import Allocation, Targets
    from edgeprune.budget.controller import ControllerResult
    from edgeprune.budget.verdict import measured_verdict
    from edgeprune.surgery import apply_plan_, resolve_plan

    resolved = resolve_plan(plan, groups)
    widths = {g.name: len(resolved.get(g.name, range(g.channels))) for g in groups}
    dense_m = cost.metrics({g.name: g.channels for g in groups})
    targets = Targets.from_budget(budget, dense_m).limits
    alloc = Allocation(
        widths,
        plan,
        cost.metrics(widths),
        dense_m,
        targets,
        0,
        [g for g, w in widths.items() if w == 0],
    )
    res = ControllerResult(alloc, [{"attempt": 0, "widths": widths}])
    if measure is not None and budget.has_latency:
        m = measure(model, apply_plan_(copy.deepcopy(model), plan, example))
        res.measurement = m
        judged = measured_verdict(budget, m, tol)
        miss, res.budget_met_latency = judged.latency_miss, judged.met
        res.attempts[0].update(
            measured_latency_ms=m.pruned_ms, dense_latency_ms=m.dense_ms, ratio=m.ratio, miss=miss
        )
    return res


def _budget_met(
    budget: Budget,
    result,
    pruned_counts,
    dense_counts,
    dense_top1,
    pruned_top1,
    final=None,
    tol: float = 0.0,
):
    """The run's verdict: the pruned model's counts, its latency (the final verification's
    interval when there is one, else the controller's measurement, else the prediction) and
    its top-1 drop, against the budget."""
    from edgeprune.budget.verdict import measured_verdict, verdict

    alloc, pc = result.allocation, pruned_counts
    counted = {
        "params": pc.params,
        "flops": pc.flops,
        "weight_bytes": pc.weight_bytes,
        "activation_bytes": pc.peak_activation_bytes,
    }
    ok = verdict(counted, {k: v for k, v in alloc.targets.items() if k in counted}).met
    if budget.has_latency and final is not None:
        ok &= measured_verdict(budget, final, tol).met
    elif budget.has_latency and result.budget_met_latency is not None:
        ok &= bool(result.budget_met_latency)
    elif budget.has_latency:  # not measured (--no-verify): judge by the prediction
        limit = budget.latency_ms
        if budget.latency_ratio is not None:
            limit = budget.latency_ratio * alloc.dense_metrics["latency_ms"]
        ok &= verdict(alloc.metrics, {"latency_ms": limit}).met
    if budget.max_acc_drop is not None and dense_top1 is not None and pruned_top1 is not None:
        drop = {"top1_drop_pp": (dense_top1 - pruned_top1) * 100}
        ok &= verdict(drop, {"top1_drop_pp": budget.max_acc_drop}).met
    return bool(ok)


def _report(
    cfg,
    loaded,
    budget,
    result,
    dc,
    pc,
    dense_top1,
    pruned_top1,
    groups,
    profile,
    decision_s,
    wall_s,
    final=None,
):
    """The RunReport of a finished prune (without the method's recovery, timings, files).

    Its latencies and ratio are the final verification's (``final``) when there is one."""
    from edgeprune.report.run_report import ModelStats, RunReport

    searched = result.measurement
    m = final or searched
    alloc = result.allocation
    layers = [
        {
            "layer": g.name,
            "convs": list(g.convs),
            "before": g.channels,
            "after": alloc.widths[g.name],
        }
        for g in groups
    ]
    return RunReport(
        model=loaded.name,
        method=cfg.method,
        device=cfg.device,
        device_table=None if profile is None else _table_kind(profile),
        budget=budget.to_dict(),
        dense=ModelStats(
            latency_ms=m.dense_ms if m else alloc.dense_metrics.get("latency_ms"),
            predicted_latency_ms=alloc.dense_metrics.get("latency_ms"),
            params=dc.params,
            flops=dc.flops,
            weight_bytes=dc.weight_bytes,
            top1=dense_top1,
        ),
        pruned=ModelStats(
            latency_ms=m.pruned_ms if m else None,
            params=pc.params,
            flops=pc.flops,
            weight_bytes=pc.weight_bytes,
            peak_activation_bytes=pc.peak_activation_bytes,
            top1=pruned_top1,
        ),
        predicted_latency_ms=alloc.metrics.get("latency_ms"),
        measured_latency_ms=m.pruned_ms if m else None,
        latency_ratio=m.ratio if m else None,
        budget_met=_budget_met(
            budget, result, pc, dc, dense_top1, pruned_top1, final, cfg.controller.tolerance
        ),
        latency_checked_by=None if not budget.has_latency else ("measured" if m else "predicted"),
        verification=result.attempts,
        dropped_blocks=alloc.dropped_blocks,
        layers=layers,
        recovery_epochs=cfg.epochs,
        controller_decision_s=decision_s,
        wall_time_s=wall_s,
        seed=cfg.seed,
        versions={"torch": torch.__version__},
        **_measured_fields(m, searched, final, profile, loaded.name),
    )


def _measured_fields(m, searched, final, profile, model: str) -> dict:
    """The report's interval, both measurements and the host note (empty unmeasured)."""
    if m is None:
        return {}
    from edgeprune.devices.identity import host_note

    runs = {"search": searched, "final": final}
    note = host_note(profile, m.identity, model)
    if note:
        _log(f"note: {note}")
    return {
        "latency_ratio_ci95": [m.interval.lo, m.interval.hi] if m.interval else None,
        "measurements": {k: v.to_dict() for k, v in runs.items() if v is not None},
        "host_note": note,
    }


def _table_kind(profile) -> str:
    return "estimated" if profile.estimated else "measured"


def summary(report: dict) -> str:
    """A short human summary of a prune report."""
    d, p = report["dense"], report["pruned"]
    lines = [
        f"{report['model']} pruned with {report['method']} for {report.get('device') or 'no device'}",
        f"  params {d['params']:,} -> {p['params']:,} ({p['params'] / d['params']:.2f}x), "
        f"FLOPs {d['flops']:,} -> {p['flops']:,} ({p['flops'] / d['flops']:.2f}x)",
    ]
    if report.get("latency_ratio") is not None:
        lines.append(
            f"  latency {report['dense']['latency_ms']:.3f} -> {report['measured_latency_ms']:.3f} ms "
            f"measured (ratio {report['latency_ratio']:.3f}{_ci(report)}; predicted "
            f"{report['predicted_latency_ms']:.3f} ms)"
        )
    if report.get("host_note"):
        lines.append(f"  note: {report['host_note']}")
    if d.get("top1") is not None:
        lines.append(f"  top-1 {d['top1']:.4f} -> {p['top1']:.4f}")
    lines.append(f"  budget met: {report['budget_met']}")
    if report.get("precision", "fp32") != "fp32":  # the deployable model.onnx
        q = report.get("quantization") or {}
        agree = (q.get("agreement") or {}).get("top1_agreement")
        lines.append(
            f"  precision: {report['precision']} (model.onnx; fp32 beside it as "
            f"{q.get('fp32_model')}; top-1 agreement with fp32 {agree})"
        )
    return "\n".join(lines)


def _ci(report: dict) -> str:
    """`` [lo, hi] 95%, final run`` of the report's ratio ('' without an interval)."""
    ci = report.get("latency_ratio_ci95")
    if not ci:
        return ""
    which = "final run" if "final" in (report.get("measurements") or {}) else "search"
    return f" [{ci[0]:.3f}, {ci[1]:.3f}] 95%, {which}"
