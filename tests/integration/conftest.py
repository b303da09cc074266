"""A real OpenSSH server on 127.0.0.1 for the ssh-marked integration tests.

Each server has its own host key, client key, authorized_keys, pid file and remote TMPDIR
(via ``SetEnv``) inside a temp dir, and is killed by pid (with its session processes).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
HAVE_SSHD = os.path.exists(SSHD) and shutil.which("ssh-keygen") is not None
SKIP_REASON = (
    "needs Debian's openssh-server (/usr/sbin/sshd, ssh-keygen): apt-get install openssh-server"
)


def pytest_collection_modifyitems(config, items):
    if HAVE_SSHD:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if "ssh" in item.keywords:
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgeprune-test", "-f", str(path)],
        check=True,
    )


def descendants(pid: int) -> list[int]:
    """Pids of all processes below ``pid`` (children first found via /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


@dataclass
class Sshd:
    """One running sshd and the files a client needs to reach it."""

    root: Path
    port: int
    proc: subprocess.Popen
    client_key: Path
    known_hosts: Path
    host_pub: str
    remote_tmp: Path
    user: str

    @property
    def host(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    def kill(self) -> None:
        """Kill the server and every session it spawned (all started by this fixture)."""
        pids = descendants(self.proc.pid)
        for pid in [self.proc.pid, *pids]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def start_sshd(root: Path) -> Sshd:
    """Generate keys, write a private sshd_config and start ``sshd -D -e -f cfg``."""
    import getpass

    root.mkdir(parents=True, exist_ok=True)
    _keygen(root / "host_ed25519")
    _keygen(root / "client_ed25519")
    shutil.copy(root / "client_ed25519.pub", root / "authorized_keys")
    remote_tmp = root / "remote-tmp"
    remote_tmp.mkdir()
    port = _free_port()
    cfg = root / "sshd_config"
    cfg.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root}/host_ed25519\n"
        f"AuthorizedKeysFile {root}/authorized_keys\nPidFile {root}/sshd.pid\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\nMaxStartups 50\nLogLevel INFO\n"
        f"SetEnv TMPDIR={remote_tmp}\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    log = open(root / "sshd.log", "w")
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {(root / 'sshd.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("sshd did not start listening within 15 s")
    host_pub = (root / "host_ed25519.pub").read_text().split()
    known = root / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    return Sshd(
        root,
        port,
        proc,
        root / "client_ed25519",
        known,
        " ".join(host_pub[:2]),
        remote_tmp,
        getpass.getuser(),
    )


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A loopback sshd shared by the ssh tests of one session."""
    if not HAVE_SSHD:
        pytest.skip(SKIP_REASON)
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.kill()


@pytest.fixture
def own_sshd(tmp_path):
    """A loopback sshd for one test (for tests that kill it)."""
    if not HAVE_SSHD:
        pytest.skip(SKIP_REASON)
    server = start_sshd(tmp_path / "sshd")
    yield server
    server.kill()


@pytest.fixture(autouse=True)
def _no_ssh_agent(monkeypatch):
    """Tests authenticate with explicit key files only, never a developer's ssh-agent."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def save_uniform_pruned(out: Path, name: str = "resnet20", keep: float = 0.5) -> Path:
    """A registry model pruned to ``keep`` of every layer's width, saved as a pruned dir."""
    from edgeprune.models import create_model
    from edgeprune.surgery import apply_plan_, example_input_for, save_pruned, uniform_plan

    model = create_model(name)
    plan = uniform_plan(model, keep)
    apply_plan_(model, plan, example_input_for(model))
    return save_pruned(out, name, model, plan)


@pytest.fixture
def uniform_pruned():
    """``save_uniform_pruned`` for tests (conftest is not importable as a module)."""
    return save_uniform_pruned
