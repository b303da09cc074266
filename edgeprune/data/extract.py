"""Safe, atomic, one-time extraction of dataset tarballs into the cache."""

from __future__ import annotations

import tarfile
from pathlib import Path

from edgeprune.data.cache import build_dir_atomic, datasets_dir, file_digest
from edgeprune.errors import UserError

# tarfile's extraction filters (PEP 706) exist from Python 3.10.12 / 3.11.4 on.
_FILTER_ERRORS: tuple[type[Exception], ...] = (
    (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()
)


def _check_member(member: tarfile.TarInfo, dest: Path) -> None:
    """Refuse absolute paths, '..' escapes and links (fallback when tarfile has no filters)."""
    target = (dest / member.name).resolve()
    if not str(target).startswith(str(dest.resolve())) or member.issym() or member.islnk():
        raise UserError(f"refusing unsafe tarball member {member.name!r}")


def safe_extract(tarball: Path, dest: Path) -> None:
    """Extract ``tarball`` into ``dest`` refusing members that would escape it."""
    try:
        with tarfile.open(tarball) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(dest, filter="data")
            else:  # pragma: no cover - Python < 3.10.12
                for m in tf.getmembers():
                    _check_member(m, dest)
                tf.extractall(dest)
    except _FILTER_ERRORS as exc:
        raise UserError(f"refusing unsafe tarball {tarball}: {exc}") from exc
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UserError(f"cannot extract {tarball}: {exc}") from exc


def tarball_cache_dir(tarball: Path) -> Path:
    """Cache folder of one tarball, keyed by the hash of its content."""
    return datasets_dir() / f"{tarball.name.split('.')[0]}-{file_digest(tarball)}"


def extract_cached(tarball: Path) -> Path:
    """Extract ``tarball`` once into ``<cache>/<name>-<hash>/extracted`` and return that folder."""
    dest = tarball_cache_dir(tarball) / "extracted"
    return build_dir_atomic(dest, lambda tmp: safe_extract(tarball, tmp))
