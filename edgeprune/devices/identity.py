"""Which machine a number belongs to: compare the host that timed a model (the device
agent's identity) with the identity a device profile's latency table was measured on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from edgeprune.devices.profile import DeviceProfile, Identity


def _describe(cpu: str, cores: int, isa: list[str]) -> str:
    top = [f for f in isa if f.startswith(("avx512", "amx", "sve", "i8mm"))] or isa[-2:]
    return f"{cpu or 'unknown CPU'}, {cores or '?'} cores, {' '.join(top) or 'no ISA recorded'}"


def identity_differences(table: Identity, host: Mapping) -> list[str]:
    """How ``host`` (the agent's ``device_identity()``) differs from ``table``; fields one of
    them does not record are not compared. Empty when they agree."""
    out = []
    arch = str(host.get("machine") or "")
    if table.arch not in ("", "auto") and arch and arch != table.arch:
        out.append(f"architecture {arch} vs {table.arch}")
    cpu = str(host.get("cpu") or "")
    if table.cpu and cpu and cpu != table.cpu:
        out.append(f"CPU {cpu!r} vs {table.cpu!r}")
    cores = int(host.get("cores") or 0)
    if table.cores and cores and cores != table.cores:
        out.append(f"{cores} cores vs {table.cores}")
    isa = list(host.get("isa") or [])
    if table.isa and "isa" in host:
        missing = [f for f in table.isa if f not in isa]
        extra = [f for f in isa if f not in table.isa]
        if missing:
            out.append(f"lacks {' '.join(missing)}")
        if extra:
            out.append(f"adds {' '.join(extra)}")
    return out


def host_note(profile: DeviceProfile | None, host: Mapping | None, model: str) -> str | None:
    """One sentence when the host that measured differs from the one ``profile``'s table was
    measured on (None when they agree, or either is unknown)."""
    if profile is None or not host or getattr(profile, "estimated", False):
        return None
    diff = identity_differences(profile.identity, host)
    if not diff:
        return None
    here = _describe(str(host.get("cpu") or ""), int(host.get("cores") or 0), host.get("isa", []))
    return (
        f"this host ({here}) is not the machine the latency table of device '{profile.name}' "
        f"was measured on ({'; '.join(diff)}): predictions may not hold here; profile this host "
        f"with 'edgeprune profile --device local --model {model}'"
    )


def with_agent_identity(base: Identity, host: Mapping | None) -> Identity:
    """``base`` with the architecture, CPU, cores and ISA flags the device agent reported
    (``device_identity()``, e.g. recorded by ``device setup``); ``base`` when unknown."""
    if not host:
        return base
    return replace(
        base,
        arch=str(host.get("machine") or base.arch),
        cpu=str(host.get("cpu") or base.cpu),
        cores=int(host.get("cores") or base.cores),
        isa=tuple(host.get("isa") or base.isa),
    )
