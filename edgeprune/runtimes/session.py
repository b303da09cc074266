"""A per-run working directory on a target holding a runtime's files and the models."""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Sequence

from edgeprune.errors import UserError

log = logging.getLogger(__name__)


class DeviceSession:
    """Upload files once, run several benchmarks, remove the remote dir at exit (also on error).

    Used as a context manager: ``with DeviceSession(target, runtime, paths) as s: s.run(st)``.
    ``extra_files`` are uploaded beside the models (the agent's ``X.check.npz``).
    """

    def __init__(
        self,
        target,
        runtime,
        model_paths: Sequence[str],
        python: str = "python3",
        extra_files: Sequence[str] = (),
    ) -> None:
        names = [os.path.basename(p) for p in model_paths]
        if len(set(names)) != len(names):
            raise UserError("model files must have distinct names to be uploaded together")
        for p in model_paths:
            if not os.path.isfile(p):
                raise UserError(f"model file {p} does not exist")
        self.target, self.runtime = target, runtime
        self.model_paths = [os.fspath(p) for p in model_paths]
        self.model_names = names
        self.extra_files = [os.fspath(p) for p in extra_files]  # e.g. X.check.npz
        self.python = python
        self.workdir = ""

    def remote(self, name: str) -> str:
        """Path of ``name`` inside the remote working directory."""
        return posixpath.join(self.workdir, name)

    def __enter__(self) -> DeviceSession:
        self.workdir = self.target.mkdtemp("edgeprune-")
        try:
            for local in [*self.runtime.support_files(), *self.model_paths, *self.extra_files]:
                self.target.put(local, self.remote(os.path.basename(local)))
        except BaseException:
            self.close()
            raise
        return self

    def run(self, settings) -> list[dict]:
        """Benchmark every model with ``settings``; one result dict per model, in order."""
        return self.runtime.run(self, settings)

    def fetch(self, name: str, local: str) -> None:
        """Download a file the runtime wrote into the working directory."""
        self.target.get(self.remote(name), local)

    def close(self) -> None:
        """Remove the remote working directory (best effort)."""
        if self.workdir:
            self.target.cleanup(self.workdir)
            self.workdir = ""

    def __exit__(self, *exc: object) -> None:
        self.close()
