"""``edgeprune profile``'s workflow: sweep a device, write its table and profile, calibrate."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from edgeprune.devices.profile import (
    Calibration,
    Connection,
    DeviceProfile,
    Provenance,
    TableRef,
    detect_identity,
    load_profile,
    save_profile,
)
from edgeprune.devices.sweep import (
    SweepSettings,
    int8_twins,
    normalize_load,
    plan_jobs,
    precision_of,
    read_partial,
    run_sweep,
    write_csv_atomic,
)
from edgeprune.errors import UserError


@dataclass(frozen=True)
class ProfileRequest:
    """What to profile: a device, models, where to write, and how hard to time."""

    device: str
    models: tuple[str, ...]
    out_dir: str
    sweep: SweepSettings
    command: str = ""
    calibrate_variants: int = 8
    progress: bool = True


def table_file_name(profile: DeviceProfile) -> str:
    ident = profile.identity
    return f"{profile.name}-{ident.runtime}-t{ident.threads}-b{ident.batch}.csv"


def model_ops(names: Sequence[str], batch: int = 1):
    """Trace registry models; returns {name: (ops, input_size)}."""
    from edgeprune.cost.ops import extract_ops
    from edgeprune.models import create_model, model_input_size

    out = {}
    for name in names:
        size = model_input_size(name)
        out[name] = (extract_ops(create_model(name).eval(), size, batch), size)
    return out


def profile_device(req: ProfileRequest, runner, host_label: str, base: DeviceProfile):
    """Measure the table for ``req.models`` and write profile + CSV into ``req.out_dir``."""
    out = Path(req.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table_name = table_file_name(base)
    final_path = out / table_name
    partial_path = out / (table_name + ".partial")
    traced = model_ops(req.models, base.identity.batch)
    jobs, seen = [], set()
    for ops, _ in traced.values():
        for job in plan_jobs(ops, base.channel_alignment):
            if job not in seen:
                seen.add(job)
                jobs.append(job)
    jobs = int8_twins(jobs, req.sweep.precisions)
    if final_path.is_file() and not partial_path.is_file():
        write_csv_atomic(read_partial(final_path), partial_path)  # resume on top of it
    measured, skipped = run_sweep(jobs, partial_path, runner, req.sweep, req.progress)
    df = read_partial(partial_path)
    from edgeprune.cost.latency_table import validate_table_frame

    validate_table_frame(df, f"measured table {partial_path}")
    df["precision"] = precision_of(df)
    df = df.drop_duplicates(
        subset=["op", "c_in", "c_out", "kernel", "stride", "groups", "h_in", "w_in", "precision"],
        keep="last",
    )
    df = normalize_load(df)
    write_csv_atomic(
        df.sort_values(["precision", "op", "h_in", "kernel", "stride", "c_in", "c_out"]),
        final_path,
    )
    os.unlink(partial_path)
    calib = dict(base.calibration)
    previous = out / f"{base.name}.yaml"
    if previous.is_file():
        old = load_profile(previous)
        calib.update(old.calibration)
        base = replace(base, tables=old.tables)
    prov = Provenance(
        kind="measured",
        host=host_label,
        date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        runtime_version=base.identity.runtime_version,
        command=req.command,
        models=tuple(sorted(set(base_models(base)) | set(req.models))),
        notes=(
            "marginal per-op costs: stride-1 convs timed in chains of conv(a->b),conv(b->a) "
            "pairs, depthwise in chains, residual adds as chain differences, the rest as "
            "single ops minus a 1x1x1x1 baseline; all interleaved, intra-op spinning off; "
            "each batch rescaled by a reference chain timed in it (load drift)"
            + (
                "; int8 rows: the same micro models quantized to ORT's static QDQ graph "
                "(edgeprune.quant.quantize_onnx, random calibration), timed in the same "
                "batch as their fp32 twins, minus a Quantize/Dequantize boundary of their "
                "input shape instead of the baseline"
                if "int8" in req.sweep.precisions
                else ""
            )
        ),
    )
    prof = replace(
        base,
        tables=(TableRef(table_name, prov),),
        path=str(out / f"{base.name}.yaml"),
        calibration=calib,
    )
    save_profile(prof, prof.path)
    from edgeprune.cost.latency import calibration_key

    points: dict = {}  # fp32 calibration variants per model, for the correction
    for prec in req.sweep.precisions:  # int8: fitted on int8 end-to-end measurements
        keys = [calibration_key(n, prec) for n in req.models]
        for name, key in zip(req.models if req.calibrate_variants > 0 else (), keys, strict=False):
            from edgeprune.devices.endtoend import calibrate

            n = req.calibrate_variants
            calib[key], pts = calibrate(name, prof, runner, n, req.progress, precision=prec)
            points.update({key: pts} if prec == "fp32" else {})
        if req.models and req.calibrate_variants > 0:
            calib[calibration_key("default", prec)] = _pooled(calib, keys)
    prof = replace(prof, calibration=calib)
    if points:  # the device's correction, fitted on the calibration's measured variants
        from edgeprune.devices.endtoend import fit_device_correction

        prof = fit_device_correction(prof, points)
        calib = dict(prof.calibration)
        calib[calibration_key("default", "fp32")] = _pooled(calib, list(points))
        prof = replace(prof, calibration=calib)
    save_profile(prof, prof.path)
    return load_profile(prof.path), measured, skipped


def base_models(profile: DeviceProfile) -> list[str]:
    return [m for t in profile.tables for m in t.provenance.models]


def _pooled(calib: dict, names: Sequence[str]) -> Calibration:
    cals = [calib[n] for n in names]
    k = len(cals)
    return Calibration(
        scale=sum(c.scale for c in cals) / k,
        offset_ms=sum(c.offset_ms for c in cals) / k,
        scale_unaligned=sum(c.scale_unaligned or c.scale for c in cals) / k,
        n=sum(c.n for c in cals),
        fit_err_pct=max(c.fit_err_pct for c in cals),
        date=cals[0].date,
    )


def base_profile_for(device: str, host: str | None, key: str | None) -> DeviceProfile:
    """The profile to start from: the named one, with this host's identity when local."""
    prof = load_profile(device)
    if host:
        from edgeprune.targets.hostspec import parse_host

        user, hostname, port = parse_host(host)
        conn = Connection(
            "ssh", hostname, user or "", port or 22, key or "", prof.connection.python
        )
        return replace(prof, connection=conn)
    if prof.connection.kind == "ssh":
        raise UserError(
            f"device '{device}' is reached over SSH; pass --host USER@HOST[:PORT] (and --key)"
        )
    ident = detect_identity(prof.identity)
    threads = prof.identity.threads if prof.identity.threads >= 1 else ident.threads
    return replace(prof, identity=replace(ident, threads=threads), connection=Connection())


def host_label(profile: DeviceProfile) -> str:
    if profile.connection.kind == "ssh":
        return f"{profile.connection.host} ({profile.identity.cpu or profile.identity.arch})"
    ident = profile.identity
    return f"{platform.node()} ({ident.cpu}, {ident.cores} cores, {ident.arch})"
