"""The one table of runtimes: each declares its name, device-side requirements and capabilities.

Every place that names a runtime (profile validation, latency tables, CLI ``choices=``,
verify, sweeps, deploy, ``device setup``) reads this registry; there is no second list.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Protocol

from edgeprune.errors import UserError

if TYPE_CHECKING:
    from edgeprune.runtimes.session import DeviceSession
    from edgeprune.runtimes.settings import AgentSettings


@dataclass(frozen=True)
class Capabilities:
    """What a runtime can do on a device."""

    profiles_per_op: bool = False  # `edgeprune profile` can measure per-op latency tables
    times_interleaved: bool = False  # alternates models run by run (ratios in one run)
    checks_outputs: bool = False  # compares device outputs with the host's (X.check.npz)
    profiles_layers: bool = False  # per-layer time breakdown (deploy --profile-layers)
    saves_optimized: bool = False  # writes the optimized graph it ran


# what each capability lets a runtime do, for error messages ("cannot <phrase>")
CAPABILITY_PHRASES = {
    "profiles_per_op": "measure per-op latency tables",
    "times_interleaved": "time models interleaved",
    "checks_outputs": "check outputs on the device",
    "profiles_layers": "break latency down per layer",
    "saves_optimized": "save the optimized graph",
}
assert set(CAPABILITY_PHRASES) == {f.name for f in fields(Capabilities)}


class Runtime(Protocol):
    """What every runtime provides."""

    name: str
    description: str
    device_requirements: tuple[str, ...]  # pip packages the device needs (device setup)
    system_site_packages: bool  # the device venv also sees system packages (JetPack's TRT)
    capabilities: Capabilities
    provider: str | None  # the ONNX Runtime execution provider it implies (None: not ORT)

    def resolve_provider(self, requested: str | None) -> str: ...

    def support_files(self) -> Sequence[str]: ...

    def run(self, session: DeviceSession, settings: AgentSettings) -> list[dict]: ...


_REGISTRY: dict[str, Callable[[], Runtime]] = {}


def register_runtime(factory: Callable[[], Runtime]) -> Callable[[], Runtime]:
    """Register a runtime class under its ``name``; a duplicate name raises ValueError."""
    name = factory.name  # type: ignore[attr-defined]
    if name in _REGISTRY:
        raise ValueError(f"runtime {name!r} is already registered")
    _REGISTRY[name] = factory
    return factory


def list_runtimes(pattern: str = "*") -> list[str]:
    """Sorted names of the registered runtimes matching a glob ``pattern``."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def runtime_names() -> list[str]:
    """Every registered runtime name (for CLI ``choices`` and validation)."""
    return list_runtimes()


def get_runtime(name: str) -> Runtime:
    """The runtime registered under ``name``."""
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise UserError(
            f"unknown runtime {name!r}; choose one of: {', '.join(runtime_names())}"
        ) from None


def require_capability(runtime: Runtime, capability: str) -> None:
    """One UserError sentence when ``runtime`` lacks ``capability``."""
    if capability not in CAPABILITY_PHRASES:
        raise ValueError(f"unknown runtime capability {capability!r}")
    if not getattr(runtime.capabilities, capability):
        raise UserError(
            f"runtime {runtime.name!r} cannot {CAPABILITY_PHRASES[capability]} "
            f"(it lacks the {capability} capability)"
        )
