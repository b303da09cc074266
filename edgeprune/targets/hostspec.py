"""Parse ``--host`` the way ``ssh`` does: ``user@host:port`` or a Host alias in ~/.ssh/config."""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass, field, replace

from edgeprune.errors import UserError

DEFAULT_SSH_CONFIG = "~/.ssh/config"
_SPEC = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:@\s\[\]]+))(?::(?P<port>\d+))?$"
)


@dataclass(frozen=True)
class HostSpec:
    """Where and as whom to connect; no secrets, only file paths."""

    hostname: str
    port: int = 22
    user: str = ""
    alias: str = ""
    identity_files: tuple[str, ...] = ()
    proxy_jump: str = ""
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __str__(self) -> str:
        return (
            f"{self.user}@{self.hostname}:{self.port}"
            if self.user
            else f"{self.hostname}:{self.port}"
        )


def parse_host(spec: str) -> tuple[str | None, str, int | None]:
    """Split ``[user@]host[:port]`` (IPv6 in brackets) into (user, host, port)."""
    m = _SPEC.match(spec.strip()) if spec else None
    if not m:
        raise UserError(
            f"--host {spec!r} is not of the form user@host[:port] or an ssh config alias"
        )
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise UserError(f"--host {spec!r} has an invalid port {port}")
    return m.group("user"), m.group("v6") or m.group("host"), port


def _first_jump(value: str) -> str:
    """ProxyJump may list several hops; the first one is the one we connect to first."""
    value = (value or "").strip()
    return "" if value.lower() == "none" else value


def resolve_host(
    spec: str,
    ssh_config: str | None = DEFAULT_SSH_CONFIG,
    key: str | None = None,
) -> HostSpec:
    """Resolve ``spec`` with the user's ssh config (HostName, User, Port, IdentityFile, ProxyJump).

    Values written in ``spec`` win over the config file; ``key`` is put first among the
    identity files.
    """
    user, host, port = parse_host(spec)
    cfg: dict = {}
    path = os.path.expanduser(ssh_config) if ssh_config else ""
    if path and os.path.exists(path):
        import paramiko

        try:
            cfg = dict(paramiko.SSHConfig.from_path(path).lookup(host))
        except Exception as exc:  # paramiko raises several types for a malformed file
            raise UserError(f"cannot read ssh config {path}: {exc}") from exc
    elif ssh_config and ssh_config != DEFAULT_SSH_CONFIG:
        raise UserError(f"ssh config file {path} does not exist")
    idents = [os.path.expanduser(p) for p in cfg.get("identityfile", [])]
    if key:
        if not os.path.isfile(os.path.expanduser(key)):
            raise UserError(f"key file {key} does not exist")
        idents.insert(0, os.path.expanduser(key))
    try:
        cfg_port = int(cfg.get("port", 22))
    except ValueError as exc:
        raise UserError(f"ssh config gives an invalid Port for {host}") from exc
    return HostSpec(
        hostname=cfg.get("hostname", host),
        port=port or cfg_port,
        user=user or cfg.get("user") or getpass.getuser(),
        alias=host,
        identity_files=tuple(dict.fromkeys(idents)),
        proxy_jump=_first_jump(cfg.get("proxyjump", "")),
        extra={k: v for k, v in cfg.items() if k in ("proxycommand",)},
    )


def without_jump(spec: HostSpec) -> HostSpec:
    """The same host with ProxyJump cleared (used for the last hop)."""
    return replace(spec, proxy_jump="")
