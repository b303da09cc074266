"""Where edgeprune keeps derived files (extracted tarballs, decoded arrays): never in the repo."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

ENV_CACHE = "EDGEPRUNE_CACHE"


def cache_root() -> Path:
    """The edgeprune cache root: ``$EDGEPRUNE_CACHE`` or ``~/.cache/edgeprune``."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgeprune"


def datasets_dir() -> Path:
    """Directory holding one sub-folder per prepared dataset source."""
    return cache_root() / "datasets"


def file_digest(path: Path, length: int = 16) -> str:
    """Short sha256 hex digest of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def text_digest(text: str, length: int = 16) -> str:
    """Short sha256 hex digest of a string."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def tree_fingerprint(root: Path) -> str:
    """Digest of a folder's absolute path and every file's relative path, size and mtime."""
    entries = [str(root.resolve())]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath, name)
            st = p.stat()
            entries.append(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}")
    return text_digest("\n".join(entries))


def build_dir_atomic(dest: Path, build: Callable[[Path], None]) -> Path:
    """Create ``dest`` by filling a temporary sibling with ``build(tmp)`` and renaming it.

    If ``dest`` already exists (built earlier or by a concurrent process) it is kept as is.
    """
    if dest.is_dir():
        return dest
    made = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():  # a real failure, not a lost race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not dest.is_dir():
            _remove_empty(made)
    return dest


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this process created (deepest first) that are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another process uses it) or already gone
            return
