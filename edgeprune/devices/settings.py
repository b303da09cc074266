"""What running a model on a device needs from its profile: runtime, host, python, and the
device's default run settings (threads, provider, opt level) as one ``AgentSettings``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from edgeprune.errors import UserError
from edgeprune.runtimes.settings import AgentSettings


@dataclass(frozen=True)
class DeviceSettings:
    """A device profile's identity ('local' works without a profile) and its run settings."""

    name: str
    runtime: str = "ort"
    host: str | None = None
    key: str | None = None
    python: str = "python3"
    run: AgentSettings = AgentSettings()  # threads, provider, opt level of the device
    profile: object | None = field(default=None, compare=False, repr=False)

    def run_settings(self, **overrides) -> AgentSettings:
        """The device's run settings with ``overrides`` (None values keep the device's)."""
        return replace(self.run, **{k: v for k, v in overrides.items() if v is not None})


def _local_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _profile_host(conn) -> str | None:
    """``user@host:port`` from a profile's connection (None for a local device)."""
    if conn.kind != "ssh" or not conn.host:
        return None
    user = f"{conn.user}@" if conn.user else ""
    port = f":{conn.port}" if conn.port not in (None, 22, 0) else ""
    return f"{user}{conn.host}{port}"


def device_settings(name: str) -> DeviceSettings:
    """Settings for device ``name`` from its profile; 'local' works without one.

    The provider is the one the profile's runtime implies (``ort-cuda``: CUDA), read from
    the runtime registry.
    """
    from edgeprune.devices.profile import load_profile
    from edgeprune.runtimes import get_runtime

    try:
        prof = load_profile(name)
    except UserError:
        if name == "local":
            return DeviceSettings("local", run=AgentSettings(threads=_local_threads()))
        raise
    ident, conn = prof.identity, prof.connection
    runtime = get_runtime(ident.runtime or "ort")
    default_threads = _local_threads() if name == "local" else 1
    run = AgentSettings(
        threads=int(ident.threads or 0) or default_threads,
        provider=runtime.resolve_provider(ident.provider or None),
        opt_level=ident.opt_level or "all",
    )
    return DeviceSettings(
        name=name,
        runtime=runtime.name,
        host=_profile_host(conn),
        key=conn.key_path or None,
        python=conn.python or "python3",
        run=run,
        profile=prof,
    )
