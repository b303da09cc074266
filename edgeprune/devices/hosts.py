"""What ``edgeprune device setup`` recorded about a host: its interpreter and identity.

One JSON file per host under the user data dir (``$EDGEPRUNE_HOME/devices`` or
``~/.local/share/edgeprune/devices``). Later commands that reach the host take its
interpreter as their default ``--remote-python``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgeprune.errors import UserError


@dataclass(frozen=True)
class HostRecord:
    """A provisioned host: where its venv is, which runtime it was set up for, what it is."""

    host: str  # user@hostname:port, as resolved from --host
    python: str  # the venv's interpreter on the device
    venv: str
    runtime: str
    packages: tuple[str, ...] = ()
    identity: dict = field(default_factory=dict)  # the device agent's --identity output
    date: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["packages"] = list(self.packages)
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str) -> HostRecord:
        try:
            return cls(
                host=str(d["host"]),
                python=str(d["python"]),
                venv=str(d["venv"]),
                runtime=str(d["runtime"]),
                packages=tuple(d.get("packages", ())),
                identity=dict(d.get("identity", {})),
                date=str(d.get("date", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(
                f"{where} is not a host record ({exc}); run 'device setup' again"
            ) from None


def records_dir() -> Path:
    """Where host records live (beside the measured device profiles)."""
    from edgeprune.devices.profile import user_profiles_dir

    return user_profiles_dir().parent / "devices"


def record_path(host: str) -> Path:
    """The record file of a resolved ``user@hostname:port``."""
    safe = re.sub(r"[^A-Za-z0-9_.@-]+", "_", host)
    return records_dir() / f"{safe}.json"


def save_record(record: HostRecord) -> Path:
    """Write ``record`` atomically; returns its path."""
    from edgeprune.fileio import atomic_write_text

    path = record_path(record.host)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record.to_dict(), indent=2) + "\n")
    return path


def load_record(host: str) -> HostRecord | None:
    """The record of a resolved host, or None when it was never set up."""
    path = record_path(host)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(
            f"host record {path} cannot be read ({exc}); run 'device setup' again"
        ) from None
    if not isinstance(data, dict):
        raise UserError(
            f"host record {path} is not a JSON object; run 'device setup' again"
        ) from None
    return HostRecord.from_dict(data, str(path))


def list_records() -> list[HostRecord]:
    """Every host record, sorted by host."""
    folder = records_dir()
    if not folder.is_dir():
        return []
    return [r for p in sorted(folder.glob("*.json")) if (r := load_record_file(p))]


def load_record_file(path: Path) -> HostRecord | None:
    """One record file (None when unreadable: listing never fails on one bad file)."""
    try:
        data = json.loads(path.read_text())
        return HostRecord.from_dict(data, str(path)) if isinstance(data, dict) else None
    except (OSError, ValueError, UserError):
        return None


def provisioned_python(host: str | None, ssh_config: str | None = None) -> str | None:
    """The interpreter ``device setup`` installed on ``host`` (None: local or never set up)."""
    if not host or host == "local":
        return None
    from edgeprune.targets.hostspec import DEFAULT_SSH_CONFIG, resolve_host

    spec = resolve_host(host, ssh_config or DEFAULT_SSH_CONFIG)
    record = load_record(str(spec))
    return record.python if record else None


def remote_python(
    flag: str | None, host: str | None, profile_python: str = "", ssh_config: str | None = None
) -> str:
    """The interpreter to run on ``host``: ``--remote-python``, else what ``device setup``
    installed there, else the device profile's, else ``python3``."""
    return flag or provisioned_python(host, ssh_config) or profile_python or "python3"
