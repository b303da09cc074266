"""Loading checkpoints from local files or URLs (downloaded once into a cache).

Checkpoints are read with ``torch.load(weights_only=True)``: tensors and plain containers
only, never code. A file holding other pickled objects is refused unless the caller trusts
it (``--trust-pickle``). ``PATH_OR_URL#sha256=HEX`` pins the file's content (HEX: the full
digest or a prefix of at least 8 hex digits, as torchvision's ``check_hash``). Downloads are
cached per full URL, renamed into place only after the hash checks, and a cached file that
fails to load is deleted.
"""

from __future__ import annotations

import pickle
import urllib.parse
from pathlib import Path

import torch
import torch.nn as nn

from edgeprune.data.cache import cache_root, file_digest, text_digest
from edgeprune.errors import UserError

URL_SCHEMES = ("http", "https", "file")
HASH_MARK = "#sha256="
_HEX = frozenset("0123456789abcdef")


def split_sha256(spec: str) -> tuple[str, str | None]:
    """``(location, expected sha256 hex or None)`` of ``PATH_OR_URL[#sha256=HEX]``."""
    loc, sep, want = spec.rpartition(HASH_MARK)
    if not sep:
        return spec, None
    want = want.strip().lower()
    if not 8 <= len(want) <= 64 or not set(want) <= _HEX:
        raise UserError(f"{spec}: #sha256= needs 8 to 64 hex digits of the file's sha256")
    return loc, want


def is_url(location: str) -> bool:
    """Whether ``location`` is an http, https or file URL."""
    return urllib.parse.urlparse(location).scheme in URL_SCHEMES


def cached_path(url: str) -> Path:
    """Where the download of ``url`` is cached: one folder per full URL."""
    name = Path(urllib.parse.urlparse(url).path).name or "weights"
    return cache_root() / "weights" / text_digest(url) / name


def check_sha256(path: Path, want: str | None, origin: str) -> None:
    """Raise UserError when ``path``'s sha256 does not start with ``want`` (None: no check)."""
    if want is None:
        return
    got = file_digest(path, 64)
    if not got.startswith(want):
        raise UserError(f"weights from {origin} have sha256 {got}, not the expected {want}")


def _discard(path: Path) -> None:
    """Delete a cached download and its folder (when empty)."""
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass


def _download(url: str, dest: Path, want: str | None) -> None:
    """Download ``url`` to a temporary name beside ``dest``; rename after the hash checks."""
    from edgeprune.fileio import atomic_write

    def write(tmp: str) -> None:
        try:
            torch.hub.download_url_to_file(url, tmp, progress=False)
        except Exception as exc:  # network errors come in many types
            raise UserError(f"could not download weights from {url}: {exc}") from exc
        check_sha256(Path(tmp), want, url)

    try:
        atomic_write(dest, write)
    except BaseException:
        _discard(dest)
        raise


def _fetch(spec: str) -> tuple[Path, bool]:
    """(local path, whether it is a cached download) of ``PATH_OR_URL[#sha256=HEX]``."""
    loc, want = split_sha256(spec)
    if is_url(loc):
        dest = cached_path(loc)
        if dest.is_file() and want is not None and not file_digest(dest, 64).startswith(want):
            _discard(dest)  # cached earlier without a hash, and not this content: fetch again
        if not dest.is_file():
            _download(loc, dest, want)
        return dest, True
    path = Path(loc).expanduser()
    if not path.is_file():
        raise UserError(f"weights file not found: {loc}")
    check_sha256(path, want, loc)
    return path, False


def fetch_weights(path_or_url: str) -> Path:
    """Return a local path for a checkpoint; URLs (http, https, file) are cached once."""
    return _fetch(path_or_url)[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_checkpoint(path: str | Path, trust_pickle: bool = False) -> object:
    """``torch.load`` on CPU with ``weights_only=True``; a file holding other pickled objects
    is refused (UserError) unless ``trust_pickle``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not trust_pickle:
            raise UserError(
                f"checkpoint {path} cannot be read as plain tensors: it is corrupt or holds "
                "pickled objects whose loading could run code; pass --trust-pickle to load it "
                "anyway if you trust its source"
            ) from None
    except Exception as exc:  # corrupt / truncated / not a checkpoint
        raise UserError(f"could not read checkpoint {path}: {_first_line(exc)}") from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(f"could not read checkpoint {path}: {_first_line(exc)}") from exc


def extract_state_dict(obj: object) -> dict[str, torch.Tensor]:
    """The state_dict inside a checkpoint, with any DataParallel ``module.`` prefix removed."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError("the checkpoint holds no state_dict of tensors")
    prefix = "module."
    if all(k.startswith(prefix) for k in obj):
        obj = {k[len(prefix) :]: v for k, v in obj.items()}
    return dict(obj)


def load_weights_(
    model: nn.Module, path_or_url: str, strict: bool = True, *, trust_pickle: bool = False
) -> nn.Module:
    """Load a checkpoint (local path or URL, optionally ``#sha256=HEX``) into ``model``.

    Only tensors and plain containers are unpickled unless ``trust_pickle``; a cached download
    that cannot be read is deleted, so the next run fetches it again.
    """
    path, cached = _fetch(path_or_url)
    try:
        state = extract_state_dict(read_checkpoint(path, trust_pickle))
    except UserError:
        if cached:
            _discard(path)
        raise
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise UserError(f"checkpoint {path} does not fit the model: {detail}") from exc
    return model
