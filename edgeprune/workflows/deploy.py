"""The deploy workflow: export -> upload -> compile -> benchmark on the device -> report."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from edgeprune.devices.settings import DeviceSettings, device_settings
from edgeprune.errors import UserError
from edgeprune.export.onnx_export import ExportConfig, ExportResult, export_onnx, fix_batch
from edgeprune.runtimes.interval import DEFAULT_SESSIONS
from edgeprune.runtimes.settings import AgentSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployConfig:
    """One deploy run; options are grouped into export, bench and SSH configs."""

    model: str
    device: str
    out: str
    runtime: str | None = None
    batches: tuple[int, ...] = (1,)
    compare_dense: bool = False
    profile_layers: bool = False
    weights: str | None = None
    trust_pickle: bool = False  # let ``weights`` hold pickled objects (runs code)
    host: str | None = None
    key: str | None = None
    remote_python: str | None = None
    export: ExportConfig = ExportConfig()
    bench: AgentSettings = AgentSettings()
    ssh: object | None = None  # edgeprune.targets.ssh.SSHOptions
    threads: int | None = None
    provider: str | None = None
    opt_level: str | None = None
    overwrite: bool = False  # replace a non-empty ``out`` (once this deploy succeeds)
    # fp32 | int8 | auto (None, auto: the run dir's model.onnx, else fp32); int8 ships the
    # run dir's QDQ model.onnx and its check file (the device judges it by the int8 rule)
    precision: str | None = None
    # --compare-dense: separate timing sessions (fresh agent processes, the order swapped
    # each time), combined by ``combine_sessions`` as prune's final verification does
    sessions: int = DEFAULT_SESSIONS

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ssh"] = self.ssh.to_dict() if self.ssh is not None else None
        return d


Progress = Callable[[str], None]


def _stderr_progress(msg: str) -> None:
    from edgeprune.log import get_logger

    get_logger("deploy").info(msg)


def _counts(model, input_size) -> tuple[int, int]:
    """Parameters and FLOPs of ``model`` for one input."""
    from edgeprune.cost.counting import count

    c = count(model, input_size)
    return int(c.params), int(c.flops)


def _predict(
    dev: DeviceSettings, loaded, batch: int, precision: str = "fp32"
) -> tuple[float | None, str | None]:
    """Predicted latency (ms) from the device's latency table at ``precision`` (an int8 model
    is priced on the table's int8 rows; a table without them predicts nothing), or None with
    the reason. A pruned run's model is priced as prune priced it: its plan on the base
    model's structure (the base's table and end-to-end calibration; the pruned structure
    alone, e.g. with blocks dropped, may fall back to another model's calibration)."""
    prof = dev.profile
    if prof is None:
        return None, f"no predicted latency: device {dev.name!r} has no profile"
    table_batch = int(getattr(getattr(prof, "identity", None), "batch", 1) or 1)
    if batch != table_batch:
        return (
            None,
            f"no predicted latency at batch {batch}: the latency table is for batch {table_batch}",
        )
    from edgeprune.cost.latency import predict_latency

    where = dict(input_size=loaded.input_size, precision=precision)
    try:
        plan = getattr(loaded, "plan", None)
        if plan is not None:
            from edgeprune.models import create_model

            base = create_model(loaded.name).eval()
            pred = predict_latency(plan, prof, model=base, model_name=loaded.name, **where)
        else:
            pred = predict_latency(loaded.model, prof, **where)
    except (UserError, ValueError, KeyError, LookupError) as exc:
        return None, f"no predicted latency: {exc}"
    if getattr(prof, "estimated", False):
        return float(
            pred.total_ms
        ), f"predicted latency from an ESTIMATED table: {prof.status_line()}"
    return float(pred.total_ms), None


def _host_versions() -> dict:
    import onnx
    import onnxruntime
    import torch

    from edgeprune import __version__

    return {
        "edgeprune": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime_host": onnxruntime.__version__,
    }


def _open_target(cfg: DeployConfig, dev: DeviceSettings):
    from edgeprune.targets import make_target

    host = cfg.host or dev.host
    target = make_target(
        host, key=cfg.key or (dev.key if host == dev.host else None), options=cfg.ssh, name=None
    )
    return target, host


def _export(cfg: DeployConfig, loaded, precision: str = "fp32") -> tuple[dict, dict, dict]:
    """Export the model (and the dense one for --compare-dense) into ``cfg.out``; at int8
    the run dir's model.onnx and its check file are shipped as they are."""
    from edgeprune.models import create_model

    pruned = loaded.source != "registry"
    paths = {"model": os.path.join(cfg.out, "model.onnx")}
    models = {"model": loaded.model}
    if cfg.compare_dense:  # a pruned model's dense twin (fp32); weights do not change timings
        models["dense"] = create_model(loaded.name).eval() if pruned else loaded.model
        paths["dense"] = os.path.join(cfg.out, "dense.onnx")
    export = replace(cfg.export, check_file=True)  # for the output check on the device
    exports = {
        k: _copy_int8(cfg.model, paths[k], loaded.input_size, export)
        if k == "model" and precision == "int8"
        else export_onnx(m, loaded.input_size, paths[k], export)
        for k, m in models.items()
    }
    return paths, models, exports


def _run_dir_precision(model: str) -> str | None:
    """int8 / fp32 for a run dir holding a model.onnx, else None."""
    path = os.path.join(model, "model.onnx")
    if not os.path.isfile(path):
        return None
    from edgeprune.quant.ptq import is_int8

    return "int8" if is_int8(path) else "fp32"


def _precision(cfg: DeployConfig) -> str:
    """The precision this deploy ships (see ``DeployConfig.precision``)."""
    found = _run_dir_precision(cfg.model)
    if cfg.precision in (None, "auto"):
        return found or "fp32"
    if cfg.precision == "int8" and found != "int8":
        raise UserError(
            f"--precision int8 deploys a run dir whose model.onnx is int8 (edgeprune prune "
            f"--precision int8); {cfg.model} has none"
        )
    return cfg.precision


def _copy_int8(run_dir: str, dest: str, input_size, export: ExportConfig) -> ExportResult:
    """The run dir's int8 model.onnx and model.check.npz copied to ``dest`` (with the
    export's fixed batch unless it is dynamic)."""
    import shutil

    import onnx

    from edgeprune.deploy_agent.edgeprune_agent import check_path

    src = os.path.join(run_dir, "model.onnx")
    shutil.copyfile(src, dest)
    check = None
    if os.path.isfile(check_path(src)):
        check = shutil.copyfile(check_path(src), check_path(dest))
    if not export.dynamic_batch:
        fix_batch(dest, export.batch)
    m = onnx.load(dest, load_external_data=False)
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 0)
    shape = (None if export.dynamic_batch else export.batch, *input_size)
    return ExportResult(dest, int(opset), os.path.getsize(dest), shape, None, check)


def _batch_settings(cfg: DeployConfig, dev: DeviceSettings, runtime) -> list[AgentSettings]:
    """The run settings of every batch size, checked against the runtime's capabilities.

    Dense and pruned are timed interleaved where the runtime can, until their ratio's 95%
    interval is within +-1.5% (unless the settings ask another half-width) or 4x the minimum
    time has passed; the optimized graph and the per-layer breakdown come from the first
    batch size where the runtime offers them.
    """
    from edgeprune.budget.verify import DEFAULT_HALFWIDTH
    from edgeprune.runtimes import check_capabilities

    caps = runtime.capabilities
    same = runtime.name == dev.runtime  # the profile's provider belongs to its own runtime
    provider = runtime.resolve_provider(cfg.provider or (dev.run.provider if same else None))
    out = []
    for i, b in enumerate(cfg.batches):
        st = replace(
            cfg.bench,
            batch=b,
            threads=cfg.threads or dev.run.threads,
            provider=provider,
            opt_level=cfg.opt_level or dev.run.opt_level,
            interleave=cfg.compare_dense and caps.times_interleaved,
            save_optimized=caps.saves_optimized and i == 0,
            profile_nodes=cfg.profile_layers and caps.profiles_layers and i == 0,
        )
        if st.interleave and st.halfwidth == 0:
            cap = st.max_time_s or max(4 * st.min_time_s, 1.0)
            st = replace(st, halfwidth=DEFAULT_HALFWIDTH, max_time_s=cap)
        check_capabilities(runtime, st, 2 if cfg.compare_dense else 1)
        out.append(st)
    return out


def _benchmark(
    cfg, dev, target, runtime, files, settings, loaded, progress, notes
) -> tuple[list, dict, list, AgentSettings]:
    """Time every batch size with ``time_models``; returns rows, raw results, layers.

    ``files`` holds the model paths, the output-check files and the remote python.
    """
    from edgeprune.report.deploy_report import batch_row
    from edgeprune.runtimes import time_models
    from edgeprune.runtimes.interval import combine_sessions
    from edgeprune.runtimes.ort import layer_breakdown

    paths, checks, python = files
    rows, raw, layers = [], {}, []
    for st in settings:
        b = st.batch
        how = "alone"
        if cfg.compare_dense:
            how = "interleaved with dense" if st.interleave else "then dense, one after the other"
        progress(f"compile + benchmark with {runtime.name} at batch {b} ({how})")
        opt = {"optimized_model": os.path.join(cfg.out, "model.opt.onnx")}
        res = time_models(
            target,
            paths,
            runtime,
            st,
            python,
            extra_files=checks,
            fetch=opt if st.save_optimized else None,
        )
        raw[b] = res
        more = cfg.sessions - 1 if cfg.compare_dense and st.interleave else 0
        plain = replace(st, save_optimized=False, profile_nodes=False)
        sessions = [res] + [
            _session(target, paths, runtime, plain, python, checks, i) for i in range(1, 1 + more)
        ]
        shipped = "int8" if cfg.bench.precision == "int8" else "fp32"  # TensorRT: fp16...
        pred, note = _predict(dev, loaded, b, shipped)
        if note and note not in notes:
            notes.append(note)
        dense = res[1] if cfg.compare_dense else None
        each = _session_intervals(sessions, st.halfwidth or None) if dense else []
        interval = combine_sessions(each) if each else None  # one session: its own
        rows.append(batch_row(b, res[0], dense, pred, interval))
        if len(each) > 1:
            rows[-1]["ratio_sessions"] = [iv.median for iv in each]
        if st.profile_nodes and res[0].get("nodes"):
            layers = layer_breakdown(res[0]["nodes"], {n for n, _ in loaded.model.named_modules()})
    return rows, raw, layers, settings[0]


def _session(target, paths, runtime, settings, python, checks, i: int) -> list:
    """One more timing session of (model, dense), dense first in odd sessions (the first
    session ran the model first); the rows come back in (model, dense) order."""
    from edgeprune.runtimes import time_models

    order = list(paths) if i % 2 == 0 else list(paths)[::-1]
    res = time_models(target, order, runtime, settings, python, extra_files=checks)
    return list(res) if i % 2 == 0 else list(res)[::-1]


def _session_intervals(sessions: list, halfwidth: float | None) -> list:
    """Each session's ratio interval of (model, dense) (``runtimes.timing.pair_interval``),
    to be combined by ``runtimes.interval.combine_sessions``."""
    from edgeprune.runtimes.timing import pair_interval

    return [pair_interval(s[0], s[1], halfwidth) for s in sessions]


def _device_check_note(result: dict, runtime: str, export: ExportConfig) -> str | None:
    """A note when the device's outputs were not checked or stray from the host's."""
    from edgeprune.runtimes import get_runtime

    diff = result.get("check_max_abs_diff")
    if not get_runtime(runtime).capabilities.checks_outputs:
        return f"outputs on the device not checked ({runtime} has no output check)"
    if diff is None:
        return "outputs on the device not checked (the device returned no check)"
    if result.get("check_rule") == "int8":  # judged on the device by quant.agreement's rule
        return _int8_check_sentence(result)
    # 10x the export tolerance: other fp32 kernels round differently; a wrong one is far off
    bound = 10 * (export.atol + export.rtol * result.get("check_output_scale", 0.0))
    if not diff <= bound:
        return (
            f"outputs on the device differ from the host's by up to {diff:.3g} "
            f"(expected <= {bound:g}): check the runtime, provider and precision"
        )
    return None


def _int8_check_sentence(result: dict) -> str:
    """The int8 output check's numbers against the int8 tolerance, in one sentence."""
    verdict = "within" if result.get("check_ok") else "OUTSIDE"
    return (
        f"int8 outputs checked on the device against fp32: top-1 agreement "
        f"{result['check_top1_agreement']:.3f} (>= {result['check_min_top1_agreement']:g}), "
        f"relative L2 error {result['check_rel_l2']:.3g} (<= {result['check_max_rel_l2']:g}): "
        f"{verdict} the int8 tolerance"
    )


def _check_fields(result: dict) -> dict | None:
    """The int8 rule's numbers of the device's output check (None: not an int8 check)."""
    if result.get("check_rule") != "int8":
        return None
    keys = ("rule", "top1_agreement", "rel_l2", "ok", "min_top1_agreement", "max_rel_l2")
    return {k: result.get(f"check_{k}") for k in keys}


def _host_note(dev: DeviceSettings, identity: dict | None, model: str) -> str | None:
    """One sentence when the host that ran the models is not the one the device's latency
    table was measured on."""
    from edgeprune.devices.identity import host_note

    return host_note(dev.profile, identity, model)


# what ``--overwrite`` may replace: a deploy output directory
DEPLOY_MARKERS = ("report.json", "model.onnx")


def run_deploy(cfg: DeployConfig, progress: Progress = _stderr_progress) -> dict:
    """Deploy ``cfg.model`` to ``cfg.device``; write and return the report dict.

    ``cfg.out`` is checked before any work: a non-empty one is refused unless
    ``cfg.overwrite``. Every output is written to a staging folder and moved into
    ``cfg.out`` only when the deploy succeeded (replacing its old contents with
    ``overwrite``): a failed deploy leaves the previous files untouched and nothing mixed.
    """
    from edgeprune.fileio import check_replaceable, commit_staged, prepare_out_dir, staging

    prepare_out_dir(cfg.out, overwrite=cfg.overwrite, can_resume=False)
    if cfg.overwrite:
        check_replaceable(cfg.out, DEPLOY_MARKERS)
    with staging(cfg.out) as stage:
        report = _deploy(replace(cfg, out=str(stage)), progress)
        commit_staged(stage, cfg.out, clear=cfg.overwrite)
    progress(f"done: {cfg.out}/report.json")
    return report


def _deploy(cfg: DeployConfig, progress: Progress) -> dict:
    """The deploy itself, writing every output into ``cfg.out`` (the staging folder)."""
    from edgeprune.devices.hosts import remote_python
    from edgeprune.report.deploy_report import build_report, write_report
    from edgeprune.runtimes import get_runtime
    from edgeprune.surgery import load_model

    dev = device_settings(cfg.device)
    runtime = get_runtime(cfg.runtime or dev.runtime)
    precision = _precision(cfg)
    if precision == "int8":  # TensorRT builds it from the Q/DQ nodes (explicit quantization)
        cfg = replace(cfg, bench=replace(cfg.bench, precision="int8"))
    settings = _batch_settings(cfg, dev, runtime)  # a missing capability fails here
    notes: list[str] = []
    if cfg.compare_dense and not settings[0].interleave:
        notes.append(
            f"dense and pruned timed one after the other ({runtime.name} cannot interleave)"
        )

    target, host = _open_target(cfg, dev)
    ssh_config = getattr(cfg.ssh, "ssh_config", None)
    python = remote_python(cfg.remote_python, host, dev.python, ssh_config)
    try:
        progress(f"connect to {target.name}")  # first, so a bad host fails fast
        if hasattr(target, "connect"):
            target.connect()
        progress(f"load {cfg.model}")
        loaded = load_model(cfg.model, cfg.weights, trust_pickle=cfg.trust_pickle)
        progress(f"export to ONNX (opset {cfg.export.opset}, parity check vs torch)")
        paths, models, exports = _export(cfg, loaded, precision)
        progress(f"upload {len(paths)} model(s) + {runtime.name} files to {target.name}")
        checks = [e.check_path for e in exports.values() if e.check_path]
        files = (list(paths.values()), checks, python)
        rows, results_by_batch, layers, used = _benchmark(
            cfg, dev, target, runtime, files, settings, loaded, progress, notes
        )
    finally:
        target.close()
    pruned = loaded.source != "registry"
    params, flops = _counts(loaded.model, loaded.input_size)

    progress("write report")
    first = results_by_batch[cfg.batches[0]][0]
    versions = _host_versions()
    versions[runtime.name] = first.get("runtime_version")
    if first.get("agent_version"):
        versions["agent"] = first["agent_version"]
    meta = {
        "model": loaded.name,
        "model_source": cfg.model,
        "pruned": pruned,
        "device": cfg.device,
        "host": host or "local",
        "runtime": runtime.name,
        "runtime_version": first.get("runtime_version"),
        "precision": cfg.bench.precision,
        "threads": first.get("threads"),
        "provider": first.get("provider"),
        "params": params,
        "flops": flops,
        "onnx_size_bytes": exports["model"].size_bytes,
        "onnx_opset": exports["model"].opset,
        "parity_max_abs_diff": exports["model"].max_abs_diff,
        "device_check_max_abs_diff": first.get("check_max_abs_diff"),
        "device_check_output_scale": first.get("check_output_scale"),
        "device_check": _check_fields(first),
        "input_size": list(loaded.input_size),
        "device_identity": first.get("device"),
        "runtime_versions": versions,
        "settings": replace(used, batch=cfg.batches[0]).to_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "notes": notes,
    }
    note = _device_check_note(first, runtime.name, cfg.export)
    if note:
        notes.append(note)
    if precision == "int8" and cfg.compare_dense:
        notes.append("model.onnx is int8 (QDQ); the dense model it is compared with is fp32")
    meta["host_note"] = _host_note(dev, first.get("device"), loaded.name)
    if meta["host_note"]:
        notes.append(meta["host_note"])
        progress(f"note: {meta['host_note']}")
    if cfg.compare_dense:
        dense_params, dense_flops = _counts(models["dense"], loaded.input_size)
        meta.update(
            dense_params=dense_params,
            dense_flops=dense_flops,
            dense_onnx_size_bytes=exports["dense"].size_bytes,
        )
    if layers:
        meta["layers"] = layers
    report = build_report(meta, rows)
    write_report(cfg.out, report)
    return report
