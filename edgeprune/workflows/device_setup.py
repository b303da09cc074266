"""`device setup`: a venv on the device with its runtime's packages, and a record of the host.

Steps on the device, each failing in one sentence: find the base Python, create the venv
(``~/.edgeprune/venv`` by default; reused when it already works), install the runtime's
device-side requirements with the device's own pip (from an index, or offline from a
folder of wheels uploaded first), ask the device agent what the device is (CPU, ISA flags,
runtime versions), check that every requirement imports, and save a host record that makes
the venv's interpreter the default ``--remote-python`` of later commands on that host.
"""

from __future__ import annotations

import glob
import json
import os
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass

from edgeprune.devices.hosts import HostRecord, save_record
from edgeprune.errors import UserError
from edgeprune.targets.base import RemoteCommandError, check

PIP_TIMEOUT_S = 1800.0  # a Pi on a slow link can take many minutes for onnxruntime
Progress = Callable[[str], None]

# import name of a pip distribution, where the two differ
IMPORT_NAMES = {"onnxruntime-gpu": "onnxruntime"}


@dataclass(frozen=True)
class SetupConfig:
    """Where and what to install on one host."""

    host: str
    runtime: str = "ort"
    venv: str = "~/.edgeprune/venv"
    base_python: str = "python3"
    wheels: str | None = None  # local folder of wheels: install offline from it
    index_url: str | None = None
    key: str | None = None
    ssh: object | None = None  # edgeprune.targets.ssh.SSHOptions


@dataclass(frozen=True)
class SetupResult:
    """The saved record and where it was written."""

    record: HostRecord
    record_path: str


def _wheel_files(folder: str | None) -> list[str]:
    if folder is None:
        return []
    if not os.path.isdir(folder):
        raise UserError(f"--wheels {folder} is not a folder")
    files = sorted(glob.glob(os.path.join(folder, "*.whl")))
    if not files:
        raise UserError(f"--wheels {folder} holds no .whl files")
    return files


def _remote_path(target, python: str, path: str) -> str:
    """``path`` with ``~`` expanded on the device (by its own Python)."""
    code = "import os,sys; print(os.path.abspath(os.path.expanduser(sys.argv[1])))"
    res = target.run([python, "-c", code, path], timeout=60)
    if not res.ok:
        raise UserError(
            f"{python!r} does not run on {target.name}: install Python 3 there "
            f"(Debian/Raspberry Pi OS: sudo apt install python3 python3-venv) or pass --python"
        )
    return res.stdout.strip().splitlines()[-1]


def _make_venv(target, base_python: str, venv: str, system_site: bool) -> str:
    """The venv's interpreter, creating the venv unless it already runs."""
    python = posixpath.join(venv, "bin", "python")
    if target.run([python, "-c", "import sys"], timeout=60).ok:
        return python
    argv = [base_python, "-m", "venv", *(["--system-site-packages"] if system_site else [])]
    res = target.run([*argv, venv], timeout=300)
    if not res.ok:
        text = res.stderr + res.stdout
        if "ensurepip" in text or "venv" in text and "No module" in text:
            raise UserError(
                f"{base_python} on {target.name} cannot create a venv: install python3-venv "
                "(Debian/Raspberry Pi OS: sudo apt install python3-venv)"
            )
        check(res, f"creating the venv {venv}", target.name)
    return python


def _pip_install(target, python: str, packages: list[str], cfg: SetupConfig) -> None:
    """Install ``packages`` with the device's pip (offline from uploaded wheels if given)."""
    wheels = _wheel_files(cfg.wheels)
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if not wheels:
        index = ["--index-url", cfg.index_url] if cfg.index_url else []
        res = target.run([*pip, *index, *packages], timeout=PIP_TIMEOUT_S)
        check(res, f"pip install {' '.join(packages)}", target.name)
        return
    workdir = target.mkdtemp("edgeprune-wheels-")
    try:
        for path in wheels:
            target.put(path, posixpath.join(workdir, os.path.basename(path)))
        res = target.run(
            [*pip, "--no-index", "--find-links", workdir, *packages], timeout=PIP_TIMEOUT_S
        )
        check(res, f"pip install {' '.join(packages)} from the uploaded wheels", target.name)
    finally:
        target.cleanup(workdir)


def _identity(target, python: str) -> dict:
    """The device agent's ``--identity`` (CPU, ISA flags, runtime versions) run by ``python``."""
    from edgeprune.runtimes.agent import AGENT_FILE, agent_script

    workdir = target.mkdtemp("edgeprune-")
    try:
        remote = posixpath.join(workdir, AGENT_FILE)
        target.put(agent_script(), remote)
        res = check(
            target.run([python, remote, "--identity"], timeout=120),
            "the device agent",
            target.name,
        )
    finally:
        target.cleanup(workdir)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise UserError(f"the device agent on {target.name} printed no identity") from exc


def _check_imports(target, python: str, packages: list[str]) -> None:
    """Every requirement imports with the venv's interpreter."""
    modules = [IMPORT_NAMES.get(p, p).replace("-", "_") for p in packages]
    code = "import importlib,sys; [importlib.import_module(m) for m in sys.argv[1:]]"
    res = target.run([python, "-c", code, *modules], timeout=300)
    try:
        check(res, f"importing {', '.join(modules)}", target.name)
    except RemoteCommandError as exc:
        raise UserError(f"the packages were installed but do not import: {exc}") from None


def setup_device(cfg: SetupConfig, progress: Progress) -> SetupResult:
    """Provision ``cfg.host`` for ``cfg.runtime`` and save its host record."""
    from edgeprune.runtimes import get_runtime
    from edgeprune.targets import make_target

    runtime = get_runtime(cfg.runtime)
    packages = list(runtime.device_requirements)
    _wheel_files(cfg.wheels)  # a bad --wheels fails before the connection
    target = make_target(cfg.host, cfg.key, cfg.ssh)
    if not hasattr(target, "spec"):
        raise UserError("device setup needs an SSH --host (a local venv is yours to make)")
    try:
        progress(f"connect to {target.name}")
        target.connect()
        venv = _remote_path(target, cfg.base_python, cfg.venv)
        progress(f"venv {venv} ({cfg.base_python})")
        python = _make_venv(target, cfg.base_python, venv, runtime.system_site_packages)
        source = f"wheels in {cfg.wheels}" if cfg.wheels else (cfg.index_url or "the index")
        progress(f"install {', '.join(packages)} for {runtime.name} from {source}")
        _pip_install(target, python, packages, cfg)
        _check_imports(target, python, packages)
        progress("read the device's identity")
        identity = _identity(target, python)
    finally:
        target.close()
    record = HostRecord(
        host=str(target.spec),
        python=python,
        venv=venv,
        runtime=runtime.name,
        packages=tuple(packages),
        identity=identity,
        date=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    return SetupResult(record, str(save_record(record)))
