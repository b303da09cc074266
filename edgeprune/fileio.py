"""Atomic file writes: a temporary file beside the target, renamed into place.

A reader never sees half a file, and an interrupted write leaves the old file as it was.
The new file gets the usual permissions (0666 less the umask), not ``mkstemp``'s 0600.

Also: output locations checked before any work (``check_writable_dir``/``_file``,
``prepare_out_dir``) and staged outputs moved into a run dir at the end (``staging``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from edgeprune.errors import UserError


def atomic_write(
    path: str | os.PathLike, write: Callable[[str], None], fsync: bool = False
) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    The temporary name keeps the suffix of ``path`` (writers such as matplotlib read it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        write(tmp)
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- output locations: checked before any work, run dirs never mixed --------------------

STAGING_PREFIX = ".staging-"


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe_dir(directory: Path, flag: str, path: str | os.PathLike) -> None:
    """Create and remove a file in ``directory``: the only writability test that holds for
    root, ACLs and read-only mounts alike (``os.access`` does not)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".edgeprune-probe-", dir=directory)
    except OSError as err:
        why = err.strerror or type(err).__name__
        raise UserError(f"{flag} {path}: cannot write in {directory} ({why})") from None
    os.close(fd)
    os.unlink(tmp)


def check_writable_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Raise UserError unless directory ``path`` exists writable or can be created."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{flag} {path} is a file, not a directory")
    base = _nearest_existing(p)
    if not base.is_dir():
        raise UserError(f"{flag} {path} is under {base}, which is a file, not a directory")
    _probe_dir(base, flag, path)
    return p


def check_writable_file(path: str | os.PathLike, flag: str = "--json") -> Path:
    """Raise UserError unless file ``path`` can be written (its folder made if missing)."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{flag} {path} is a directory, not a file")
    base = _nearest_existing(p.parent)
    if not base.is_dir():
        raise UserError(f"{flag} {path} is under {base}, which is a file, not a directory")
    _probe_dir(base, flag, path)
    return p


def prepare_out_dir(
    path: str | os.PathLike, resume: bool = False, overwrite: bool = False, can_resume: bool = True
) -> Path:
    """Check ``--out`` before any work and create it.

    Without ``resume`` or ``overwrite`` a directory that already holds files is refused, so
    two runs never share one (``can_resume``: whether the refusal may suggest --resume).
    Nothing is cleared here (see ``clear_run_dir``).
    """
    if resume and overwrite:
        raise UserError("--resume continues the run in --out and --overwrite replaces it: pick one")
    p = check_writable_dir(path)
    if not (resume or overwrite) and p.is_dir() and any(p.iterdir()):
        how = "--resume to continue it, --overwrite" if can_resume else "--overwrite"
        raise UserError(
            f"--out {path} already holds files from an earlier run; pass {how} to replace it, "
            "or use another --out"
        )
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {path}: cannot create it ({err.strerror})") from None
    return p


def check_replaceable(path: str | os.PathLike, markers: tuple[str, ...]) -> None:
    """Raise UserError when ``--overwrite`` would clear a folder that is no edgeprune output:
    one that holds files but none of ``markers`` (nor a staging folder)."""
    p = Path(path)
    names = [e.name for e in p.iterdir()] if p.is_dir() else []
    if names and not any(n in markers or n.startswith(STAGING_PREFIX) for n in names):
        raise UserError(
            f"--overwrite: {path} does not look like an edgeprune output directory (none of "
            f"{', '.join(markers)}); not clearing it, use another --out"
        )


def clear_run_dir(path: str | os.PathLike, markers: tuple[str, ...]) -> None:
    """Remove everything in run dir ``path`` (for ``--overwrite``; see ``check_replaceable``)."""
    check_replaceable(path, markers)
    p = Path(path)
    for entry in list(p.iterdir()) if p.is_dir() else []:
        _remove(entry)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def staging(out: str | os.PathLike) -> Iterator[Path]:
    """A fresh ``OUT/.staging-<pid>`` folder for a run's final outputs, removed on exit.

    Write the outputs there and ``commit_staged`` them at the end: a run that fails before
    leaves ``OUT`` as it was.
    """
    stage = Path(out) / f"{STAGING_PREFIX}{os.getpid()}"
    if stage.exists():
        _remove(stage)
    stage.mkdir(parents=True)
    try:
        yield stage
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def commit_staged(
    stage: Path, out: str | os.PathLike, stale: tuple[str, ...] = (), clear: bool = False
) -> None:
    """Move every file of ``stage`` into ``out`` (``report.*`` last, so a report always
    describes the files beside it). ``stale`` names are removed from ``out`` when this run
    made no such file; ``clear`` first removes everything else in ``out``."""
    out = Path(out)
    new = sorted(e.name for e in stage.iterdir())
    for entry in list(out.iterdir()):
        if entry == stage:
            continue
        if clear or (entry.name in stale and entry.name not in new):
            _remove(entry)
    for name in sorted(new, key=lambda n: n.startswith("report.")):
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(stage / name, target)


def clean_stale_staging(out: str | os.PathLike) -> None:
    """Remove staging folders left by killed runs in ``out``."""
    p = Path(out)
    for entry in p.iterdir() if p.is_dir() else []:
        if entry.name.startswith(STAGING_PREFIX):
            _remove(entry)
