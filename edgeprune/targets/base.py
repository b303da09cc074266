"""The small interface every target implements: move files, run commands, scratch dirs.

A target never knows what a model is. Commands are argument lists; remote targets quote
every argument with ``shlex.quote`` before handing them to a shell.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from edgeprune.errors import UserError


@dataclass(frozen=True)
class RunResult:
    """Outcome of one command on a target."""

    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0."""
        return self.rc == 0


class TargetError(UserError):
    """A target could not do what was asked (unreachable, refused, timed out, failed)."""


class TargetConnectionError(TargetError):
    """The connection to a remote target failed or dropped for a network reason.

    Only these are retried when connecting; a refusal (authentication, host key, a peer
    that does not speak SSH) is a plain TargetError and fails at once.
    """

    def add_detail(self, text: str) -> None:
        """Append a clause to the message, e.g. what cleanup did after the drop."""
        self.args = (f"{self.args[0]}; {text}", *self.args[1:])


class RemoteCommandError(TargetError):
    """A command on the target exited with a non-zero status."""

    def __init__(self, message: str, result: RunResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@runtime_checkable
class Target(Protocol):
    """What deploy and profiling need from a device."""

    name: str

    def put(self, local: str, remote: str) -> None:
        """Copy a local file to ``remote`` (verified, atomic on the target)."""

    def get(self, remote: str, local: str) -> None:
        """Copy ``remote`` to the local path ``local`` (atomic locally)."""

    def run(self, argv: Sequence[str], timeout: float | None = None) -> RunResult:
        """Run a command (argument list) and wait for it; raise TargetError on timeout."""

    def mkdtemp(self, prefix: str = "edgeprune-") -> str:
        """Create a fresh scratch directory on the target and return its path."""

    def cleanup(self, path: str) -> None:
        """Remove a scratch directory made by ``mkdtemp`` (best effort)."""

    def close(self) -> None:
        """Release connections."""


def quote_argv(argv: Sequence[str]) -> str:
    """One shell command line with every argument quoted."""
    if isinstance(argv, str):
        raise TypeError("pass commands as a list of arguments, not a string")
    return " ".join(shlex.quote(str(a)) for a in argv)


def check(result: RunResult, what: str, target_name: str) -> RunResult:
    """Raise RemoteCommandError with the tail of stderr when ``result`` failed."""
    if result.ok:
        return result
    tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
    detail = " | ".join(line.strip() for line in tail) or "no output"
    raise RemoteCommandError(
        f"{what} failed on {target_name} with exit status {result.rc}: {detail}", result
    )
