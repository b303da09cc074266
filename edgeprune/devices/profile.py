"""Device profiles: identity, how to reach the device, latency tables and calibration.

A profile is a YAML file (shipped ones live in ``device_profiles/``; measured ones are
written to the user data dir by ``edgeprune profile``) with the latency table CSV(s) next
to it. ``load_profile("xeon")`` looks in the user data dir first, then in the package;
a path to a ``.yaml`` file is loaded as is. Secrets are never stored: only a key *path*.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from edgeprune.cost.calibration import Calibration
from edgeprune.cost.correction import Correction
from edgeprune.errors import UserError

PROVENANCE_KINDS = ("measured", "estimated")
CONNECTION_KINDS = ("local", "ssh")
PRECISIONS = ("float32", "float16", "int8")


def user_profiles_dir() -> Path:
    """Where measured profiles go by default (``$EDGEPRUNE_HOME`` or the XDG data dir)."""
    home = os.environ.get("EDGEPRUNE_HOME")
    if home:
        return Path(home) / "device_profiles"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "edgeprune" / "device_profiles"


def package_profiles_dir() -> Path:
    """The profiles shipped with edgeprune."""
    from importlib import resources

    return Path(str(resources.files("edgeprune.device_profiles")))


@dataclass(frozen=True)
class Identity:
    """What the device is and how it runs models."""

    arch: str
    cpu: str = ""
    gpu: str = ""
    cores: int = 0
    memory_gb: float = 0.0
    runtime: str = "ort"
    runtime_version: str = ""
    provider: str = "CPUExecutionProvider"
    threads: int = 1
    precision: str = "float32"
    batch: int = 1
    spinning: bool = False
    opt_level: str = "all"
    isa: tuple[str, ...] = ()  # the CPU features kernels depend on (device agent's ISA_FLAGS)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["isa"] = list(self.isa)
        return d

    @classmethod
    def from_dict(cls, d: Mapping, where: str = "device profile") -> Identity:
        return _known(cls, d, f"{where}: identity")


@dataclass(frozen=True)
class Connection:
    """How to reach the device: ``local`` or ``ssh`` (host/user/port/key path, no secrets)."""

    kind: str = "local"
    host: str = ""
    user: str = ""
    port: int = 22
    key_path: str = ""
    python: str = "python3"
    workdir: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping, where: str = "device profile") -> Connection:
        return _known(cls, d, f"{where}: connection")


@dataclass(frozen=True)
class Provenance:
    """Where a table's numbers come from: ``measured`` (host, date, runtime, command) or
    ``estimated`` (``method`` says how)."""

    kind: str
    host: str = ""
    date: str = ""
    runtime_version: str = ""
    command: str = ""
    method: str = ""
    models: tuple[str, ...] = ()
    notes: str = ""
    expected_error: str = ""  # an estimate's error against independent measurements

    def to_dict(self) -> dict:
        d = asdict(self)
        d["models"] = list(self.models)
        return d

    @classmethod
    def from_dict(cls, d: Mapping, where: str = "device profile") -> Provenance:
        return _known(cls, d, f"{where}: table provenance")


@dataclass(frozen=True)
class TableRef:
    """A latency table CSV (relative to the profile's folder) and its provenance."""

    file: str
    provenance: Provenance

    def to_dict(self) -> dict:
        return {"file": self.file, "provenance": self.provenance.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping, where: str = "device profile") -> TableRef:
        raw = _known(_TableFile, d, f"{where}: table")
        return cls(raw.file, Provenance.from_dict(raw.provenance, where))


@dataclass(frozen=True)
class DeviceProfile:
    """A device: identity, connection, latency tables and end-to-end calibration."""

    name: str
    identity: Identity
    connection: Connection = field(default_factory=Connection)
    description: str = ""
    channel_alignment: int = 1
    tables: tuple[TableRef, ...] = ()
    calibration: Mapping[str, Calibration] = field(default_factory=dict)
    path: str = ""  # the YAML file it was loaded from ("" when built in memory)
    correction: Correction | None = None  # fitted on measured variants (issue 19)

    @property
    def estimated(self) -> bool:
        """True unless every table is measured (no table counts as estimated)."""
        return not self.tables or any(t.provenance.kind != "measured" for t in self.tables)

    @property
    def base_dir(self) -> Path:
        return Path(self.path).parent if self.path else Path(".")

    def table_paths(self) -> list[Path]:
        return [self.base_dir / t.file for t in self.tables]

    def status_line(self) -> str:
        """One line saying what the numbers of this profile are."""
        if not self.tables:
            return f"device '{self.name}': no latency table yet (run 'edgeprune profile')"
        kinds = sorted({t.provenance.kind for t in self.tables})
        if "estimated" in kinds:
            how = "; ".join(t.provenance.method for t in self.tables if t.provenance.method)
            how = how if len(how) <= 90 else how[:87].rstrip() + "..."
            err = "; ".join(t.provenance.expected_error for t in self.tables)
            err = f"; expected error: {err}" if err.strip("; ") else ""
            return f"device '{self.name}': latency table is ESTIMATED, not measured ({how}){err}"
        hosts = ", ".join(sorted({t.provenance.host for t in self.tables}))
        return f"device '{self.name}': latency table measured on {hosts}"

    def with_updates(self, **kw) -> DeviceProfile:
        return replace(self, **kw)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "identity": self.identity.to_dict(),
            "connection": self.connection.to_dict(),
            "channel_alignment": self.channel_alignment,
            "tables": [t.to_dict() for t in self.tables],
            "calibration": {k: v.to_dict() for k, v in self.calibration.items()},
            **({"correction": self.correction.to_dict()} if self.correction else {}),
        }

    @classmethod
    def from_dict(cls, d: Mapping, path: str = "") -> DeviceProfile:
        """Build and validate a profile; every problem is one sentence naming the file."""
        where = f"device profile {path}" if path else "device profile"
        raw = _known(_ProfileFile, d, where)
        calib = raw.calibration or {}
        prof = cls(
            name=raw.name,
            identity=Identity.from_dict(raw.identity, where),
            connection=Connection.from_dict(raw.connection or {}, where),
            description=raw.description or "",
            channel_alignment=raw.channel_alignment or 0,
            tables=tuple(TableRef.from_dict(t, where) for t in (raw.tables or [])),
            calibration={str(k): Calibration.from_dict(v, where) for k, v in calib.items()},
            path=str(path),
            correction=Correction.from_dict(raw.correction, where) if raw.correction else None,
        )
        validate_profile(prof)
        return prof


@dataclass(frozen=True)
class _ProfileFile:
    """The top level of a profile YAML file, as read (checked by ``_known``)."""

    name: str
    identity: dict
    connection: dict | None = None
    description: str | None = None
    channel_alignment: int | None = None
    tables: list | None = None
    calibration: dict | None = None
    correction: dict | None = None


@dataclass(frozen=True)
class _TableFile:
    """One entry of a profile's ``tables`` list, as read."""

    file: str
    provenance: dict


def _known(cls, d: Mapping, what: str):
    """``cls`` from ``d``: unknown, missing or mistyped fields are one UserError (empty = unset)."""
    from edgeprune.config_io import from_dict

    if not isinstance(d, Mapping):
        raise UserError(f"{what} must be a mapping, got {type(d).__name__}")
    return from_dict(cls, {k: v for k, v in d.items() if v is not None}, what, noun="field")


def validate_profile(p: DeviceProfile) -> None:
    """Raise ``UserError`` with one sentence (naming the file) when a profile is malformed."""
    where = f"device profile {p.path}" if p.path else f"device profile '{p.name}'"
    for bad, message in _profile_rules(p):
        if bad:
            raise UserError(f"{where}: {message}")
    if p.identity.provider:
        from edgeprune.runtimes import get_runtime
        from edgeprune.runtimes.settings import check_provider

        try:
            check_provider(p.identity.provider)
            get_runtime(p.identity.runtime).resolve_provider(p.identity.provider)
        except UserError as err:
            raise UserError(f"{where}: identity.provider: {err}") from None


def _runtime_names() -> list[str]:
    """The registered runtimes (the registry is the one list of runtime names)."""
    from edgeprune.runtimes import runtime_names

    return runtime_names()


def _profile_rules(p: DeviceProfile) -> list[tuple[bool, str]]:
    """(is it broken?, what is wrong) for every rule a profile must follow."""
    ident, conn = p.identity, p.connection
    rules = [
        (not ident.arch.strip(), "identity.arch must name the CPU architecture (or 'auto')"),
        (
            ident.runtime not in _runtime_names(),
            f"unknown runtime '{ident.runtime}' (known: {', '.join(_runtime_names())})",
        ),
        (
            ident.precision not in PRECISIONS,
            f"unknown precision '{ident.precision}' (known: {', '.join(PRECISIONS)})",
        ),
        (ident.threads < 1 or ident.batch < 1, "threads and batch must be >= 1"),
        (ident.cores < 0 or ident.memory_gb < 0, "identity cores and memory_gb must be >= 0"),
        (conn.kind not in CONNECTION_KINDS, "connection kind must be local or ssh"),
        (conn.kind == "ssh" and not conn.host, "an ssh connection needs a host"),
        (not 0 < conn.port < 65536, f"connection port {conn.port} is not a TCP port"),
        (p.channel_alignment < 0, "channel_alignment must be >= 0 (0: detect)"),
    ]
    for t in p.tables:
        prov = t.provenance
        rules += [
            (not t.file.strip(), "each table needs a 'file'"),
            (prov.kind not in PROVENANCE_KINDS, "table provenance must be measured or estimated"),
            (
                prov.kind == "measured" and not (prov.host and prov.date),
                "a measured table needs provenance host and date",
            ),
            (
                prov.kind == "estimated" and not prov.method,
                "an estimated table must say how (method)",
            ),
        ]
    for key, c in p.calibration.items():
        ok = c.scale > 0 and math.isfinite(c.offset_ms) and c.scale_unaligned >= 0
        rules.append((not ok, f"calibration '{key}' is invalid (scale > 0, finite offset_ms)"))
    return rules


def _resolve_path(name_or_path: str | os.PathLike) -> Path:
    s = str(name_or_path)
    p = Path(s)
    if s.endswith((".yaml", ".yml")) or os.sep in s:
        if p.is_dir():
            cands = sorted(p.glob("*.yaml"))
            if len(cands) != 1:
                raise UserError(f"{p} holds {len(cands)} profile YAML files; name one")
            return cands[0]
        if not p.is_file():
            raise UserError(f"device profile not found: {s}")
        return p
    for base in (user_profiles_dir(), package_profiles_dir()):
        cand = base / f"{s}.yaml"
        if cand.is_file():
            return cand
    raise UserError(f"unknown device '{s}' (known: {', '.join(list_profiles())})")


def list_profiles() -> list[str]:
    """Names of the profiles in the user data dir and the package."""
    names = set()
    for base in (user_profiles_dir(), package_profiles_dir()):
        if base.is_dir():
            names.update(p.stem for p in base.glob("*.yaml"))
    return sorted(names)


def load_profile(name_or_path: str | os.PathLike) -> DeviceProfile:
    """Load and validate a profile by name (user dir, then package) or path."""
    import yaml

    from edgeprune.config_io import yaml_error_text

    path = _resolve_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(
            f"device profile {path} is not valid YAML ({yaml_error_text(exc)})"
        ) from None
    prof = DeviceProfile.from_dict(data or {}, path=str(path))
    if prof.identity.arch == "auto":
        prof = replace(prof, identity=detect_identity(prof.identity))
    if prof.channel_alignment == 0:
        prof = replace(prof, channel_alignment=detect_alignment())
    return prof


def detect_alignment() -> int:
    """Channel block of ONNX Runtime's CPU kernels here: 16 with AVX-512, else 8."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        flags = ""
    return 16 if " avx512f" in flags else 8


def detect_identity(base: Identity | None = None) -> Identity:
    """This host's identity (for the ``local`` profile): arch, CPU, cores, ORT version."""
    from edgeprune.deploy_agent.edgeprune_agent import device_identity

    ident = device_identity()
    try:
        import onnxruntime as ort

        version = ort.__version__
    except ImportError:
        version = ""
    base = base or Identity(arch="auto")
    threads = base.threads if base.threads > 1 else (os.cpu_count() or 1)
    mem = 0.0
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    return replace(
        base,
        arch=ident.get("machine") or platform.machine(),
        cpu=ident.get("cpu") or "",
        cores=int(ident.get("cores") or 0),
        memory_gb=round(mem, 1),
        runtime_version=base.runtime_version or version,
        threads=threads,
        isa=tuple(ident.get("isa") or ()),
    )


def save_profile(profile: DeviceProfile, path: str | os.PathLike) -> Path:
    """Write a profile YAML atomically; returns the path."""
    import yaml

    from edgeprune.fileio import atomic_write_text

    return atomic_write_text(path, yaml.safe_dump(profile.to_dict(), sort_keys=False))
