"""Targets: where models run. ``LocalTarget`` and ``SSHTarget`` share one small interface.

A target moves files and runs commands; it never knows what a model is.
"""

from __future__ import annotations

from edgeprune.targets.base import (
    RemoteCommandError,
    RunResult,
    Target,
    TargetConnectionError,
    TargetError,
    check,
    quote_argv,
)
from edgeprune.targets.hostspec import HostSpec, parse_host, resolve_host
from edgeprune.targets.local import LocalTarget

__all__ = [
    "HostSpec",
    "LocalTarget",
    "RemoteCommandError",
    "RunResult",
    "Target",
    "TargetConnectionError",
    "TargetError",
    "check",
    "make_target",
    "parse_host",
    "quote_argv",
    "resolve_host",
]


def make_target(host: str | None, key: str | None = None, options=None, name: str | None = None):
    """LocalTarget when ``host`` is empty or 'local', else an SSHTarget (paramiko)."""
    if not host or host == "local":
        return LocalTarget(name or "local")
    from edgeprune.targets.ssh import SSHTarget

    return SSHTarget(host, options, key=key, name=name)
