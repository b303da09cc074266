"""SSHTarget: a remote device over SSH (paramiko), done properly.

Key authentication only (ssh-agent or key files; a key file open to group/others is
refused, as OpenSSH does), host keys checked against known_hosts (unknown or changed keys
are refused unless ``trust_host_key``), connect, banner, login and command timeouts, a
bounded retry for transient network errors only (a refused login, a host key refusal or a
peer that does not speak SSH fails at once), uploads verified by sha256, and every command
argument shell-quoted. Every failure is one sentence; a dropped connection names the step
that was running and what cleanup could do. paramiko's own log stays off the terminal
unless ``verbose``. Nothing secret is ever logged.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import posixpath
import select
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
    connect_timeout: float = 10.0  # TCP connect, SSH banner and login, each
    command_timeout: float = 900.0
    retries: int = 3
    retry_delay_s: float = 1.0
    ssh_config: str | None = DEFAULT_SSH_CONFIG
    allow_agent: bool = True
    verbose: bool = False  # paramiko's own log on stderr

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


_VERBOSE_HANDLER: logging.Handler | None = None


def configure_ssh_logging(verbose: bool) -> None:
    """Keep paramiko's log (tracebacks included) off the terminal unless ``verbose``."""
    global _VERBOSE_HANDLER
    plog = logging.getLogger("paramiko")
    if not any(isinstance(h, logging.NullHandler) for h in plog.handlers):
        plog.addHandler(logging.NullHandler())  # no "last resort" printing to stderr
    plog.propagate = verbose
    for name in ("paramiko", "edgeprune.targets"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.NOTSET)
    if verbose and _VERBOSE_HANDLER is None and not logging.getLogger().handlers:
        _VERBOSE_HANDLER = logging.StreamHandler()
        _VERBOSE_HANDLER.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logging.getLogger().addHandler(_VERBOSE_HANDLER)


def check_private_key(path: str) -> None:
    """Refuse a key file OpenSSH would refuse: unreadable, or open to group/others."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise TargetError(f"cannot read private key {path}: {exc.strerror}") from None
    if os.name == "posix" and mode & 0o077:
        raise TargetError(
            f"private key {path} is accessible by others (mode {mode & 0o777:04o}) and "
            f"OpenSSH refuses such keys: run chmod 600 {path}"
        )
    if not os.access(path, os.R_OK):
        raise TargetError(f"cannot read private key {path}: permission denied")


def _key_files(spec: HostSpec) -> list[str]:
    """The identity files to offer: missing ones are skipped (as ssh does), bad ones refused."""
    found = []
    for path in spec.identity_files:
        if not os.path.exists(path):
            log.info("identity file %s does not exist; skipped", path)
            continue
        check_private_key(path)
        found.append(path)
    return found


class _RecordingSocket:
    """A socket-like object that keeps the first bytes the peer sent (to name a non-SSH peer)."""

    def __init__(self, sock) -> None:
        self._sock = sock
        self.head = b""
        self.eof = False

    def recv(self, n: int) -> bytes:
        data = self._sock.recv(n)
        if len(self.head) < 200:
            self.head += data[: 200 - len(self.head)]
        self.eof = self.eof or not data
        return data

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


def _tcp_connect(spec: HostSpec, timeout: float):
    """A TCP connection to ``spec``; network failures are TargetConnectionError (retried)."""
    import socket

    try:
        return socket.create_connection((spec.hostname, spec.port), timeout=timeout)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise TargetConnectionError(
                f"cannot connect to {spec}: temporary failure resolving {spec.hostname}"
            ) from None
        raise TargetError(f"cannot connect to {spec}: unknown host name {spec.hostname}") from None
    except ConnectionRefusedError:
        raise TargetConnectionError(
            f"cannot connect to {spec}: connection refused (is sshd listening on port {spec.port}?)"
        ) from None
    except TimeoutError:
        raise TargetConnectionError(
            f"cannot connect to {spec}: no answer to the TCP connection within {timeout:g} s"
        ) from None
    except OSError as exc:
        raise TargetConnectionError(
            f"cannot connect to {spec}: {exc.strerror or exc or type(exc).__name__}"
        ) from None


def _first_line(head: bytes) -> str:
    """The peer's first line, printable and short, for an error message."""
    line = head.split(b"\n", 1)[0].decode("ascii", errors="replace").strip()
    line = "".join(c if c.isprintable() else "?" for c in line)
    return line if len(line) <= 60 else line[:57] + "..."


def _auth_error(exc: Exception, spec: HostSpec, keys: list[str]) -> TargetError:
    """One sentence for a refused login (never retried)."""
    paramiko = require("paramiko", "ssh")
    if isinstance(exc, paramiko.BadAuthenticationType):
        allowed = ", ".join(exc.allowed_types) or "nothing"
        return TargetError(
            f"authentication to {spec} failed: the server does not accept public keys "
            f"(it allows: {allowed})"
        )
    if "No authentication methods available" in str(exc):
        return TargetError(
            f"authentication to {spec} failed: no key to offer (pass --key, set IdentityFile "
            "in ssh config or load a key into ssh-agent)"
        )
    if "timeout" in str(exc).lower():
        return TargetError(f"authentication to {spec} failed: the server did not answer in time")
    how = f"key file(s) {', '.join(keys)}" if keys else "ssh-agent or default keys"
    return TargetError(
        f"authentication to {spec} failed: the server refused the {how} (a passphrase-"
        "protected key must be loaded into ssh-agent)"
    )


def _handshake_error(exc: Exception, spec: HostSpec, rec: _RecordingSocket, timeout: float):
    """One sentence for a failed SSH handshake; only network trouble is retryable."""
    paramiko = require("paramiko", "ssh")
    if not rec.head and not rec.eof:
        return TargetError(
            f"{spec.hostname}:{spec.port} accepted the connection but did not speak SSH "
            f"within {timeout:g} s"
        )
    if not rec.head:
        return TargetConnectionError(
            f"{spec.hostname}:{spec.port} closed the connection before the SSH handshake"
        )
    if not rec.head.startswith(b"SSH-"):
        return TargetError(
            f"{spec.hostname}:{spec.port} answered but not with SSH (it sent "
            f"{_first_line(rec.head)!r}): check the port"
        )
    if isinstance(exc, paramiko.IncompatiblePeer):
        return TargetError(f"{spec} speaks SSH but shares no algorithm with paramiko: {exc}")
    detail = str(exc) or type(exc).__name__
    return TargetConnectionError(
        f"cannot connect to {spec}: the connection dropped during the SSH handshake ({detail})"
    )


def _sftp_errors() -> tuple[type[BaseException], ...]:
    """What an SFTP call raises when it fails or the link drops (paramiko's SSHException is
    "Server connection dropped"); evaluated in the except clause, after paramiko loaded."""
    paramiko = require("paramiko", "ssh")
    return (OSError, EOFError, paramiko.SSHException)


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
        configure_ssh_logging(self.options.verbose)
        self.spec = (
            host if isinstance(host, HostSpec) else resolve_host(host, self.options.ssh_config, key)
        )
        self.name = name or str(self.spec)
        self._clients: list = []  # jump hosts first, the target last
        self._sftp = None
        self._dirs: set[str] = set()
        self._step = ""
        self._drop: TargetConnectionError | None = None
        self._drop_dirs: set[str] = set()
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

    def connect(self, attempts: int | None = None) -> None:
        """Connect; only transient network errors are retried (``options.retries`` tries)."""
        self.close()
        attempts = max(1, self.options.retries if attempts is None else attempts)
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

    def _sock(self, spec: HostSpec, depth: int) -> tuple[list, object]:
        """(jump clients, socket-like object) leading to ``spec``."""
        paramiko = require("paramiko", "ssh")
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
                for c in reversed(chain):
                    c.close()
                raise TargetConnectionError(
                    f"cannot reach {spec} through ProxyJump {jump}: {exc}"
                ) from None
            return chain, sock
        if spec.extra.get("proxycommand"):
            return [], paramiko.ProxyCommand(spec.extra["proxycommand"])
        return [], _tcp_connect(spec, self.options.connect_timeout)

    def _client(self):
        """A paramiko.SSHClient with the known_hosts policy of these options."""
        paramiko = require("paramiko", "ssh")
        client = paramiko.SSHClient()
        reject, trust = _policies()
        if self.options.trust_host_key:
            client.set_missing_host_key_policy(trust)
            return client
        kh = os.path.expanduser(self.options.known_hosts)
        if os.path.isfile(kh):
            try:
                client.load_host_keys(kh)
            except Exception as exc:
                raise TargetError(f"cannot read known_hosts file {kh}: {exc}") from None
        client.set_missing_host_key_policy(reject)
        return client

    def _open(self, spec: HostSpec, depth: int) -> list:
        paramiko = require("paramiko", "ssh")
        keys = _key_files(spec)
        client = self._client()
        chain, raw = self._sock(spec, depth)
        rec = _RecordingSocket(raw)
        kh = os.path.expanduser(self.options.known_hosts)
        timeout = self.options.connect_timeout
        log.info("connecting to %s", spec)
        try:
            client.connect(
                spec.hostname,
                port=spec.port,
                username=spec.user,
                key_filename=keys or None,
                look_for_keys=not spec.identity_files,
                allow_agent=self.options.allow_agent,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                sock=rec,
                password=None,
            )
        except BaseException as exc:
            transport = client.get_transport()
            handshake_done = transport is not None and transport.host_key is not None
            alive = handshake_done and transport.is_active()
            client.close()
            for c in reversed(chain):
                c.close()
            if isinstance(exc, _UnknownHostKey):
                raise TargetError(
                    f"host key of {spec} ({exc.key.get_name()} {fingerprint(exc.key)}) is not "
                    f"in {kh}; verify it and add it (ssh-keygen -R / ssh-keyscan -p {spec.port} "
                    f"{spec.hostname} >> {kh}) or pass --trust-host-key"
                ) from None
            if isinstance(exc, paramiko.BadHostKeyException):
                raise TargetError(
                    f"host key of {spec} has CHANGED (got {fingerprint(exc.key)}, expected "
                    f"{fingerprint(exc.expected_key)} from {kh}); refusing to connect: fix "
                    "known_hosts or pass --trust-host-key if the change is expected"
                ) from None
            if not isinstance(exc, Exception):
                raise
            if isinstance(exc, paramiko.AuthenticationException) or alive:
                raise _auth_error(exc, spec, keys) from None
            if handshake_done:
                raise TargetConnectionError(
                    f"the connection to {spec} dropped while logging in"
                ) from None
            raise _handshake_error(exc, spec, rec, timeout) from None
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

    # -- what is running, for a dropped connection --------------------------------------
    @contextmanager
    def _doing(self, step: str) -> Iterator[None]:
        """Name the step in progress (the outermost one wins) for connection-drop errors."""
        outer = self._step
        self._step = outer or step
        try:
            yield
        finally:
            self._step = outer

    def _dropped(self, step: str) -> TargetConnectionError:
        """The error for a connection lost during ``step``; cleanup later adds its outcome."""
        err = TargetConnectionError(
            f"the connection to {self.name} dropped during {self._step or step}"
        )
        self._drop, self._drop_dirs = err, set(self._dirs)
        return err

    # -- commands -----------------------------------------------------------------------
    def run(self, argv: Sequence[str], timeout: float | None = None) -> RunResult:
        """Run a command (every argument quoted); wait at most ``timeout`` seconds."""
        cmd = quote_argv(argv)
        with self._doing(f"run of {_program(argv)}"):
            timeout = self.options.command_timeout if timeout is None else timeout
            transport = self.client.get_transport()
            try:
                chan = transport.open_session(timeout=self.options.connect_timeout)
                chan.exec_command(cmd)
            except Exception as exc:
                if not transport.is_active():
                    raise self._dropped("run") from None
                raise TargetError(f"cannot start a command on {self.name}: {exc}") from None
            rc, out, err = self._wait(chan, transport, argv, timeout)
            if rc == -1:
                time.sleep(0.3)  # let the transport thread notice a dropped link
                if not transport.is_active():
                    raise self._dropped("run")
                err += b"\n(the command ended without an exit status: killed by a signal?)"
        return RunResult(rc, out.decode(errors="replace"), err.decode(errors="replace"))

    def _wait(self, chan, transport, argv, timeout: float) -> tuple[int, bytearray, bytearray]:
        """Collect stdout/stderr until the command exits; rc is -1 without an exit status."""
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
        return rc, out, err

    # -- files --------------------------------------------------------------------------
    @property
    def sftp(self):
        if self._sftp is None or not self._active():
            client = self.client
            try:
                self._sftp = client.open_sftp()
            except Exception as exc:
                if not self._active():
                    raise self._dropped("opening SFTP") from None
                raise TargetError(f"cannot open SFTP on {self.name}: {exc}") from None
        return self._sftp

    def _sftp_failed(self, what: str, exc: Exception) -> TargetError:
        """A dropped connection, or a plain failure (no space, no permission...)."""
        if not self._active():
            return self._dropped(what)
        return TargetError(f"{what} on {self.name} failed: {exc}")

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
        what = f"upload of {os.path.basename(local)}"
        with self._doing(what):
            want = sha256_file(local)
            tmp = f"{remote}.part"
            try:
                self.sftp.put(local, tmp)
            except _sftp_errors() as exc:
                raise self._sftp_failed(what, exc) from None
            got = self.remote_sha256(tmp)
            if got != want:
                self.run(["rm", "-f", "--", tmp], timeout=30)
                raise TargetError(f"{what} to {self.name} is corrupted (sha256 mismatch)")
            try:
                self.sftp.posix_rename(tmp, remote)
            except _sftp_errors() as exc:
                raise self._sftp_failed(what, exc) from None

    def get(self, remote: str, local: str) -> None:
        """Download to a temporary local name, then rename into place."""
        what = f"download of {posixpath.basename(remote)}"
        tmp = f"{local}.part{os.getpid()}"
        with self._doing(what):
            try:
                self.sftp.get(remote, tmp)
                os.replace(tmp, local)
            except _sftp_errors() as exc:
                raise self._sftp_failed(what, exc) from None
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)

    def mkdtemp(self, prefix: str = "edgeprune-") -> str:
        """A fresh directory under the target's $TMPDIR (or /tmp)."""
        with self._doing("creating a scratch directory"):
            res = self.run(
                ["sh", "-c", 'mktemp -d "${TMPDIR:-/tmp}/$1XXXXXXXX"', "sh", prefix], timeout=60
            )
        path = check(res, "mktemp", self.name).stdout.strip()
        if not path.startswith("/"):
            raise TargetError(f"mktemp on {self.name} returned an unexpected path {path!r}")
        self._dirs.add(path)
        return path

    def cleanup(self, path: str) -> None:
        """Remove a directory made by ``mkdtemp``; reconnects once if the link dropped.

        After a dropped connection the outcome is added to that error's message, since the
        caller prints it after cleanup ran.
        """
        if path not in self._dirs:
            return
        try:
            with self._doing("cleanup"):
                if not self._active():
                    self.connect(attempts=1)
                check(self.run(["rm", "-rf", "--", path], timeout=60), "cleanup", self.name)
            self._dirs.discard(path)
            self._note_cleanup(path, removed=True)
        except TargetError as exc:
            self.cleanup_failures.append(path)
            log.warning("could not remove remote directory %s on %s: %s", path, self.name, exc)
            self._note_cleanup(path, removed=False)

    def _note_cleanup(self, path: str, removed: bool) -> None:
        """Tell the pending drop error whether its remote directory is gone."""
        if self._drop is None or path not in self._drop_dirs:
            return
        self._drop_dirs.discard(path)
        if removed:
            self._drop.add_detail("the remote directory was removed after reconnecting")
        else:
            self._drop.add_detail(
                f"the remote directory {path} could not be removed (remove it by hand)"
            )


def _program(argv: Sequence[str]) -> str:
    """A short name for a command: the script for ``python x.py``, else the program."""
    names = [posixpath.basename(str(a)) for a in argv[:2]]
    if len(names) == 2 and names[1].endswith(".py"):
        return names[1]
    return names[0] if names else "?"
