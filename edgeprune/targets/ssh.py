"""SSHTarget: a remote device over SSH (paramiko), done properly.

Key authentication only (ssh-agent or key files), host keys checked against known_hosts
(unknown or changed keys are refused unless ``trust_host_key``), connect and command
timeouts, a bounded retry for transient network errors, uploads verified by sha256, and
every command argument shell-quoted. Nothing secret is ever logged.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import select
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from edgeprune.errors import require
from edgeprune.targets.base import RunResult, TargetConnectionError, TargetError, check, quote_argv
from edgeprune.targets.hostspec import DEFAULT_SSH_CONFIG, HostSpec, resolve_host

log = logging.getLogger(__name__)
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
_MAX_JUMPS = 4


@dataclass(frozen=True)
class SSHOptions:
    """How to connect; file paths only, never key material."""

    known_hosts: str = DEFAULT_KNOWN_HOSTS
    trust_host_key: bool = False
    connect_timeout: float = 15.0
    command_timeout: float = 900.0
    retries: int = 3
    retry_delay_s: float = 1.0
    ssh_config: str | None = DEFAULT_SSH_CONFIG
    allow_agent: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SSHOptions:
        return cls(**d)


def fingerprint(key) -> str:
    """OpenSSH-style SHA256 fingerprint of a paramiko public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def sha256_file(path: str) -> str:
    """Hex sha256 of a local file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _UnknownHostKey(Exception):
    def __init__(self, host: str, key) -> None:
        super().__init__(host)
        self.host, self.key = host, key


def _policies():
    paramiko = require("paramiko", "ssh")

    class Reject(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client, hostname, key):
            raise _UnknownHostKey(hostname, key)

    class Trust(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client, hostname, key):
            log.warning("trusting host key of %s (%s) as requested", hostname, fingerprint(key))

    return Reject(), Trust()


class SSHTarget:
    """A remote device reached over SSH; same interface as LocalTarget."""

    def __init__(
        self,
        host: str | HostSpec,
        options: SSHOptions | None = None,
        key: str | None = None,
        name: str | None = None,
    ) -> None:
        self.options = options or SSHOptions()
        self.spec = (
            host if isinstance(host, HostSpec) else resolve_host(host, self.options.ssh_config, key)
        )
        self.name = name or str(self.spec)
        self._clients: list = []  # jump hosts first, the target last
        self._sftp = None
        self._dirs: set[str] = set()
        self.cleanup_failures: list[str] = []

    # -- connection ---------------------------------------------------------------------
    @property
    def client(self):
        """The connected paramiko.SSHClient (connects on first use)."""
        if not self._clients or not self._active():
            self.connect()
        return self._clients[-1]

    def _active(self) -> bool:
        t = self._clients[-1].get_transport() if self._clients else None
        return bool(t and t.is_active())

    def connect(self) -> None:
        """Connect with a bounded retry for transient network errors."""
        self.close()
        attempts = max(1, self.options.retries)
        for i in range(attempts):
            try:
                self._clients = self._open(self.spec, depth=0)
                return
            except TargetConnectionError as exc:
                if i == attempts - 1:
                    raise
                delay = self.options.retry_delay_s * (2**i)
                log.warning("%s; retrying in %.1f s (%d/%d)", exc, delay, i + 1, attempts - 1)
                time.sleep(delay)

    def _open(self, spec: HostSpec, depth: int) -> list:
        paramiko = require("paramiko", "ssh")
        chain, sock = [], None
        if spec.proxy_jump:
            if depth >= _MAX_JUMPS:
                raise TargetError(f"too many ProxyJump hops for {spec.alias or spec.hostname}")
            jump = resolve_host(spec.proxy_jump.split(",")[0], self.options.ssh_config)
            chain = self._open(jump, depth + 1)
            try:
                sock = (
                    chain[-1]
                    .get_transport()
                    .open_channel(
                        "direct-tcpip",
                        (spec.hostname, spec.port),
                        ("127.0.0.1", 0),
                        timeout=self.options.connect_timeout,
                    )
                )
            except Exception as exc:
                raise TargetConnectionError(
                    f"cannot reach {spec} through ProxyJump {jump}: {exc}"
                ) from exc
        elif spec.extra.get("proxycommand"):
            sock = paramiko.ProxyCommand(spec.extra["proxycommand"])
        client = paramiko.SSHClient()
        reject, trust = _policies()
        kh = os.path.expanduser(self.options.known_hosts)
        if self.options.trust_host_key:
            client.set_missing_host_key_policy(trust)
        else:
            if os.path.isfile(kh):
                try:
                    client.load_host_keys(kh)
                except Exception as exc:
                    raise TargetError(f"cannot read known_hosts file {kh}: {exc}") from exc
            client.set_missing_host_key_policy(reject)
        log.info("connecting to %s", spec)
        try:
            client.connect(
                spec.hostname,
                port=spec.port,
                username=spec.user,
                key_filename=list(spec.identity_files) or None,
                look_for_keys=not spec.identity_files,
                allow_agent=self.options.allow_agent,
                timeout=self.options.connect_timeout,
                banner_timeout=self.options.connect_timeout,
                auth_timeout=self.options.connect_timeout,
                sock=sock,
                password=None,
            )
        except _UnknownHostKey as exc:
            client.close()
            raise TargetError(
                f"host key of {spec} ({exc.key.get_name()} {fingerprint(exc.key)}) is not in "
                f"{kh}; verify it and add it (ssh-keyscan -p {spec.port} {spec.hostname} >> {kh}) "
                "or pass --trust-host-key"
            ) from None
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise TargetError(
                f"host key of {spec} has CHANGED (got {fingerprint(exc.key)}, expected "
                f"{fingerprint(exc.expected_key)} from {kh}); refusing to connect: fix "
                "known_hosts or pass --trust-host-key if the change is expected"
            ) from None
        except paramiko.PasswordRequiredException:
            client.close()
            raise TargetError(
                f"the key for {spec} is passphrase-protected; load it into ssh-agent "
                "(ssh-add) and retry"
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            how = "key file(s) given" if spec.identity_files else "ssh-agent or default keys"
            raise TargetError(
                f"authentication to {spec} failed: the server refused the {how}"
            ) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            client.close()
            raise TargetConnectionError(
                f"cannot connect to {spec}: {exc or type(exc).__name__}"
            ) from None
        return chain + [client]

    def close(self) -> None:
        """Close the SFTP session and every SSH connection (target first)."""
        if self._sftp is not None:
            try:
                self._sftp.close()
            except Exception:
                pass
            self._sftp = None
        for c in reversed(self._clients):
            try:
                c.close()
            except Exception:
                pass
        self._clients = []

    def __enter__(self) -> SSHTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands -----------------------------------------------------------------------
    def run(self, argv: Sequence[str], timeout: float | None = None) -> RunResult:
        """Run a command (every argument quoted); wait at most ``timeout`` seconds."""
        cmd = quote_argv(argv)
        timeout = self.options.command_timeout if timeout is None else timeout
        transport = self.client.get_transport()
        try:
            chan = transport.open_session(timeout=self.options.connect_timeout)
            chan.exec_command(cmd)
        except Exception as exc:
            raise TargetConnectionError(f"cannot start a command on {self.name}: {exc}") from None
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            while True:
                select.select([chan], [], [], 0.2)
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if (
                    chan.exit_status_ready()
                    and not chan.recv_ready()
                    and not chan.recv_stderr_ready()
                ):
                    break
                if not transport.is_active():
                    break
                if time.monotonic() > deadline:
                    raise TargetError(
                        f"command {argv[0]} timed out after {timeout:g} s on {self.name}"
                    )
            # paramiko sets the status event on close too; a missing status reads as -1
            rc = chan.recv_exit_status() if chan.status_event.is_set() else -1
        finally:
            chan.close()
        if rc == -1:
            time.sleep(0.3)  # let the transport thread notice a dropped link
            if not transport.is_active():
                raise TargetConnectionError(
                    f"the connection to {self.name} dropped while running {argv[0]}"
                )
            err += b"\n(the command ended without an exit status: killed by a signal?)"
        return RunResult(rc, out.decode(errors="replace"), err.decode(errors="replace"))

    # -- files --------------------------------------------------------------------------
    @property
    def sftp(self):
        if self._sftp is None or not self._active():
            try:
                self._sftp = self.client.open_sftp()
            except TargetError:
                raise
            except Exception as exc:
                raise TargetConnectionError(f"cannot open SFTP on {self.name}: {exc}") from None
        return self._sftp

    def remote_sha256(self, path: str) -> str:
        """Hex sha256 of a file on the target (sha256sum, shasum or python3)."""
        script = (
            'sha256sum "$1" 2>/dev/null || shasum -a 256 "$1" 2>/dev/null || '
            'python3 -c "import hashlib,sys;print(hashlib.sha256(open(sys.argv[1],\'rb\').read()).hexdigest())" "$1"'
        )
        res = check(
            self.run(["sh", "-c", script, "sh", path], timeout=120), "sha256 of upload", self.name
        )
        return res.stdout.split()[0] if res.stdout.split() else ""

    def put(self, local: str, remote: str) -> None:
        """Upload to a temporary name, verify its sha256, then rename into place."""
        want = sha256_file(local)
        tmp = f"{remote}.part"
        try:
            self.sftp.put(local, tmp)
        except (OSError, EOFError) as exc:
            raise TargetConnectionError(
                f"upload of {os.path.basename(local)} to {self.name} failed: {exc}"
            ) from None
        got = self.remote_sha256(tmp)
        if got != want:
            self.run(["rm", "-f", "--", tmp], timeout=30)
            raise TargetError(
                f"upload of {os.path.basename(local)} to {self.name} is corrupted (sha256 mismatch)"
            )
        try:
            self.sftp.posix_rename(tmp, remote)
        except (OSError, EOFError) as exc:
            raise TargetConnectionError(f"cannot rename upload on {self.name}: {exc}") from None

    def get(self, remote: str, local: str) -> None:
        """Download to a temporary local name, then rename into place."""
        tmp = f"{local}.part{os.getpid()}"
        try:
            self.sftp.get(remote, tmp)
            os.replace(tmp, local)
        except (OSError, EOFError) as exc:
            raise TargetError(f"download of {remote} from {self.name} failed: {exc}") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def mkdtemp(self, prefix: str = "edgeprune-") -> str:
        """A fresh directory under the target's $TMPDIR (or /tmp)."""
        res = self.run(
            ["sh", "-c", 'mktemp -d "${TMPDIR:-/tmp}/$1XXXXXXXX"', "sh", prefix], timeout=60
        )
        path = check(res, "mktemp", self.name).stdout.strip()
        if not path.startswith("/"):
            raise TargetError(f"mktemp on {self.name} returned an unexpected path {path!r}")
        self._dirs.add(path)
        return path

    def cleanup(self, path: str) -> None:
        """Remove a directory made by ``mkdtemp``; reconnects once if the link dropped."""
        if path not in self._dirs:
            return
        try:
            if not self._active():
                self.connect()
            check(self.run(["rm", "-rf", "--", path], timeout=60), "cleanup", self.name)
            self._dirs.discard(path)
        except TargetError as exc:
            self.cleanup_failures.append(path)
            log.warning("could not remove remote directory %s on %s: %s", path, self.name, exc)
