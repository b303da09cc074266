"""The profile workflow: measure a device's per-layer latency table, or validate its
predictions against end-to-end measurements of random pruned variants."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from typing import Any

from edgeprune.errors import UserError, require


@dataclass(frozen=True)
class ProfileConfig:
    """One ``profile`` run: which device and models, where to write, how hard to time."""

    device: str
    models: tuple[str, ...]
    out: str | None = None  # profile folder (default: the user data dir)
    threads: int | None = None  # override the profile's thread count
    min_time_s: float = 0.6
    calibrate: int = 8  # random variants for the end-to-end calibration
    validate: bool = False  # compare predictions with measurements instead of profiling
    samples: int = 30  # random variants for ``validate``
    seed: int = 0
    json_path: str | None = None  # where ``validate`` writes its figures
    progress: bool = True
    host: str | None = None
    key: str | None = None
    ssh: Any = None  # edgeprune.targets.ssh.SSHOptions (None: the defaults)
    remote_python: str | None = None
    ssh_config: str | None = None
    command: str = ""  # the command line recorded in the profile
    fp32_only: bool = False  # skip the int8 (QDQ) twins (about half the sweep's time)


@dataclass(frozen=True)
class ProfileResult:
    """What a profile run produced: the profile, and the validation figures per model."""

    profile: Any  # edgeprune.devices.profile.DeviceProfile
    models: tuple[str, ...] = ()
    measured: int = 0  # configurations timed in this run
    resumed: int = 0  # configurations reused from an interrupted run
    fidelity: dict[str, dict] = field(default_factory=dict)  # validate: figures per model
    json_path: str | None = None  # the file ``validate`` wrote


def _log(msg: str) -> None:
    print(msg, file=sys.stdout, flush=True)


def run_profile(cfg: ProfileConfig) -> ProfileResult:
    """Profile ``cfg.device`` for ``cfg.models`` (or validate its table with ``cfg.validate``)."""
    require("onnxruntime", "onnx")
    require("onnx", "onnx")
    _check(cfg)
    if cfg.validate:
        return _validate(cfg)
    from edgeprune.devices.profile import user_profiles_dir
    from edgeprune.devices.profiling import (
        ProfileRequest,
        base_profile_for,
        host_label,
        profile_device,
    )

    base = base_profile_for(cfg.device, cfg.host, cfg.key)
    if cfg.threads:
        base = replace(base, identity=replace(base.identity, threads=cfg.threads))
    if cfg.host:  # the remote machine as `device setup` saw it (ISA flags, cores, CPU)
        base = replace(base, identity=_remote_identity(cfg.host, base.identity))
    settings = _settings(cfg, base)
    from edgeprune.runtimes import get_runtime, require_capability

    require_capability(get_runtime(settings.runtime), "profiles_per_op")  # the registry says
    runner, target = _runner(cfg, base, settings)
    req = ProfileRequest(
        device=cfg.device,
        models=tuple(cfg.models),
        out_dir=cfg.out or str(user_profiles_dir()),
        sweep=settings,
        command=cfg.command,
        calibrate_variants=cfg.calibrate,
        progress=cfg.progress,
    )
    try:
        prof, measured, skipped = profile_device(req, runner, host_label(base), base)
    finally:
        if target is not None:
            target.close()
    return ProfileResult(prof, tuple(cfg.models), measured=measured, resumed=skipped)


def _remote_identity(host: str, base):
    """``base`` with what ``device setup`` recorded about ``host`` (unchanged without it)."""
    from edgeprune.devices.hosts import load_record
    from edgeprune.devices.identity import with_agent_identity

    record = load_record(host)
    return with_agent_identity(base, record.identity if record else None)


def _check(cfg: ProfileConfig) -> None:
    """Inputs the user can fix fail here, before any work."""
    from edgeprune.fileio import check_writable_dir, check_writable_file

    if cfg.out and not cfg.validate:  # --validate reads its profile from --out
        check_writable_dir(cfg.out)
    if cfg.json_path:
        check_writable_file(cfg.json_path, "--json")
    if not cfg.models:
        raise UserError("name at least one --model to profile or validate")
    if cfg.threads is not None and cfg.threads < 1:
        raise UserError("--threads must be >= 1")
    from edgeprune.models import list_models

    known = set(list_models())
    for m in cfg.models:
        if m not in known and not m.startswith("torchvision:"):
            raise UserError(f"unknown model '{m}' (see edgeprune.models.list_models)")


def _runner(cfg: ProfileConfig, profile, settings):
    """The sweep runner (local, or over SSH with ``cfg.host``) and the target to close."""
    from edgeprune.devices.hosts import remote_python
    from edgeprune.devices.sweep import make_runner

    if cfg.host:
        from edgeprune.targets import make_target

        target = make_target(cfg.host, cfg.key, cfg.ssh)  # connects on first use
        python = remote_python(
            cfg.remote_python, cfg.host, profile.connection.python, cfg.ssh_config
        )
        return make_runner(settings, target, python), target
    return make_runner(settings), None


def _settings(cfg: ProfileConfig, prof):
    """Sweep settings from the profile's runtime, threads, batch and provider."""
    from edgeprune.devices.sweep import sweep_settings

    return sweep_settings(prof, cfg.min_time_s, int8=not cfg.fp32_only)


def _validate(cfg: ProfileConfig) -> ProfileResult:
    from edgeprune.cost.latency import profile_table
    from edgeprune.devices.endtoend import (
        emulation_note,
        fidelity_stats,
        machine_load,
        make_variants,
        measure_variants,
    )
    from edgeprune.devices.profile import load_profile

    prof = load_profile(cfg.out + f"/{cfg.device}.yaml" if cfg.out else cfg.device)
    if cfg.threads:
        prof = replace(prof, identity=replace(prof.identity, threads=cfg.threads))
    _log(prof.status_line())
    if cfg.samples < 1:
        raise UserError("--samples must be >= 1")
    profile_table(prof)  # a clear error now when the device has no table
    if prof.connection.kind == "ssh" and not cfg.host:
        raise UserError(f"device '{prof.name}' is reached over SSH; pass --host USER@HOST[:PORT]")
    timing_runner, target = _runner(cfg, prof, _settings(cfg, prof))
    seen: dict = {}

    def runner(paths):  # keeps the agent's identity: an emulated device is said so
        rows = timing_runner(paths)
        seen.setdefault("device", (rows[0] if rows else {}).get("device"))
        return rows

    report: dict[str, dict] = {}
    try:
        for name in cfg.models:
            variants, size = make_variants(name, cfg.samples, cfg.seed)
            load = [machine_load()]
            res = measure_variants(variants, size, runner, prof, progress=cfg.progress)
            stats = fidelity_stats(res)
            stats.update(
                model=name,
                device=prof.name,
                estimated=prof.estimated,
                correction=prof.correction is not None,
                load=[*load, machine_load()],
                variants=[v.to_dict() for v in res],
            )
            report[name] = stats
            _log(fidelity_line(stats))
    finally:
        if target is not None:
            target.close()
    note = emulation_note(seen.get("device"))
    if note:
        _log(note)
    if cfg.json_path:
        from edgeprune.fileio import atomic_write_text

        first = report[cfg.models[0]]
        keys = ("median_abs_err_pct", "p95_abs_err_pct", "within_5pct", "within_10pct", "samples")
        keys += ("ratio_median_abs_err_pct", "ratio_within_10pct")  # the headline (issue 19)
        doc = {k: first[k] for k in keys}
        doc.update(load=first["load"], timing_note=note, models=report)
        atomic_write_text(cfg.json_path, json.dumps(doc, indent=2))
    return ProfileResult(prof, tuple(cfg.models), fidelity=report, json_path=cfg.json_path)


def fidelity_line(stats: dict) -> str:
    """One line of a model's predicted-vs-measured figures."""
    return (
        f"{stats['model']} on {stats['device']}: {stats['samples']} variants, median |err| "
        f"{stats['median_abs_err_pct']:.1f}%, p95 {stats['p95_abs_err_pct']:.1f}%, "
        f"within 5%: {stats['within_5pct']:.0%}, within 10%: {stats['within_10pct']:.0%}"
        f" (vs dense ratio: median |err| {stats['ratio_median_abs_err_pct']:.1f}%)"
    )


def summary(result: ProfileResult) -> list[str]:
    """The lines a finished run reports: the sweep and its calibration, or the JSON written."""
    if result.fidelity:
        return [f"wrote {result.json_path}"] if result.json_path else []
    prof = result.profile
    lines = [
        f"measured {result.measured} configurations ({result.resumed} resumed from a previous run)",
        f"wrote {prof.path} and {prof.table_paths()[0]}",
    ]
    keys = [(n, n) for n in result.models]
    keys += [(f"{n} int8", f"{n}@int8") for n in result.models if f"{n}@int8" in prof.calibration]
    for name, key in keys:
        cal = prof.calibration.get(key)
        if cal is None:
            lines.append(f"calibration {name}: none (run with --calibrate N > 0)")
            continue
        lines.append(
            f"calibration {name}: total = {cal.scale:.3f} x aligned ops + "
            f"{cal.scale_unaligned or cal.scale:.3f} x other ops + {cal.offset_ms:.4f} ms "
            f"(median fit error {cal.fit_err_pct:.1f}% on {cal.n} end-to-end runs)"
        )
    corr = prof.correction
    if corr is not None:
        lines.append(
            f"correction: fitted on {corr.n} measured variants of {', '.join(corr.models)}: "
            f"median ratio error {corr.fit_ratio_err_before_pct:.1f}% -> "
            f"{corr.fit_ratio_err_after_pct:.1f}%"
        )
    lines.append(prof.status_line())
    return lines
