"""LocalTarget: this machine, through the same interface as a remote device."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence

from edgeprune.fileio import atomic_write
from edgeprune.targets.base import RunResult, TargetError


def _copy_atomic(src: str, dst: str) -> None:
    atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))


class LocalTarget:
    """Runs commands with subprocess (no shell) and copies files locally."""

    def __init__(self, name: str = "local") -> None:
        self.name = name
        self._dirs: set[str] = set()

    def put(self, local: str, remote: str) -> None:
        """Copy ``local`` to ``remote``."""
        _copy_atomic(local, remote)

    def get(self, remote: str, local: str) -> None:
        """Copy ``remote`` to ``local``."""
        _copy_atomic(remote, local)

    def run(self, argv: Sequence[str], timeout: float | None = None) -> RunResult:
        """Run ``argv`` directly (no shell)."""
        if isinstance(argv, str):
            raise TypeError("pass commands as a list of arguments, not a string")
        try:
            proc = subprocess.run(
                [str(a) for a in argv], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            raise TargetError(
                f"command {argv[0]} timed out after {timeout:g} s on {self.name}"
            ) from exc
        except FileNotFoundError as exc:
            return RunResult(127, "", f"{argv[0]}: command not found ({exc})")
        return RunResult(proc.returncode, proc.stdout, proc.stderr)

    def mkdtemp(self, prefix: str = "edgeprune-") -> str:
        """A fresh temporary directory."""
        path = tempfile.mkdtemp(prefix=prefix)
        self._dirs.add(path)
        return path

    def cleanup(self, path: str) -> None:
        """Remove a directory made by ``mkdtemp``."""
        if path in self._dirs:
            shutil.rmtree(path, ignore_errors=True)
            self._dirs.discard(path)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> LocalTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
