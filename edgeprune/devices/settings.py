"""What running a model on a device needs from its profile: runtime, threads, host, python."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from edgeprune.errors import UserError


@dataclass(frozen=True)
class DeviceSettings:
    """The run settings of one device profile ('local' works without a profile)."""

    name: str
    runtime: str = "ort"
    threads: int = 1
    provider: str = "CPUExecutionProvider"
    opt_level: str = "all"
    host: str | None = None
    key: str | None = None
    python: str = "python3"
    profile: object | None = field(default=None, compare=False, repr=False)


def _local_settings() -> DeviceSettings:
    return DeviceSettings("local", threads=max(1, min(4, os.cpu_count() or 1)))


def _profile_host(conn) -> str | None:
    """``user@host:port`` from a profile's connection (None for a local device)."""
    if conn.kind != "ssh" or not conn.host:
        return None
    user = f"{conn.user}@" if conn.user else ""
    port = f":{conn.port}" if conn.port not in (None, 22, 0) else ""
    return f"{user}{conn.host}{port}"


def device_settings(name: str) -> DeviceSettings:
    """Settings for device ``name`` from its profile; 'local' works without one."""
    from edgeprune.devices.profile import load_profile

    try:
        prof = load_profile(name)
    except UserError:
        if name == "local":
            return _local_settings()
        raise
    ident, conn = prof.identity, prof.connection
    base = _local_settings() if name == "local" else DeviceSettings(name)
    return DeviceSettings(
        name=name,
        runtime=ident.runtime or base.runtime,
        threads=int(ident.threads or 0) or base.threads,
        provider=ident.provider or base.provider,
        opt_level=ident.opt_level or base.opt_level,
        host=_profile_host(conn),
        key=conn.key_path or None,
        python=conn.python or "python3",
        profile=prof,
    )
