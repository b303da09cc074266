"""Runtimes: ONE table, dispatch by name. Each runtime uploads its files next to the models
(``support_files``) and benchmarks them on a target (``run(session, settings)``).

``run_agent`` (device agent on any target) is the shared entry point for timing ONNX files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from edgeprune.errors import UserError
from edgeprune.runtimes.agent import AgentError, run_agent
from edgeprune.runtimes.ort import OrtRuntime
from edgeprune.runtimes.session import DeviceSession
from edgeprune.runtimes.settings import AgentSettings
from edgeprune.runtimes.tensorrt import TensorRTRuntime, TensorRTUnavailable


class Runtime(Protocol):
    """What every runtime provides."""

    name: str
    description: str
    device_requirements: tuple[str, ...]  # pip packages the device needs (device setup)
    system_site_packages: bool  # the device venv also sees system packages (JetPack's TRT)

    def support_files(self) -> Sequence[str]: ...

    def run(self, session: DeviceSession, settings: AgentSettings) -> list[dict]: ...


RUNTIMES: dict[str, Callable[[], Runtime]] = {
    "ort": OrtRuntime,
    "tensorrt": TensorRTRuntime,
}


def runtime_names() -> list[str]:
    """Names of the registered runtimes (for CLI ``choices``)."""
    return sorted(RUNTIMES)


def get_runtime(name: str) -> Runtime:
    """The runtime registered under ``name``."""
    try:
        return RUNTIMES[name]()
    except KeyError:
        raise UserError(
            f"unknown runtime {name!r}; choose one of: {', '.join(runtime_names())}"
        ) from None


__all__ = [
    "RUNTIMES",
    "AgentError",
    "AgentSettings",
    "DeviceSession",
    "OrtRuntime",
    "Runtime",
    "TensorRTRuntime",
    "TensorRTUnavailable",
    "get_runtime",
    "run_agent",
    "runtime_names",
]
