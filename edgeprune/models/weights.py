"""Loading checkpoints from local files or URLs (downloaded once into a cache)."""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

import torch
import torch.nn as nn

from edgeprune.data.cache import cache_root
from edgeprune.errors import UserError


def fetch_weights(path_or_url: str) -> Path:
    """Return a local path for a checkpoint; URLs (http, https, file) are cached once."""
    parsed = urllib.parse.urlparse(path_or_url)
    if parsed.scheme in ("http", "https", "file"):
        name = Path(parsed.path).name or "weights"
        dest = cache_root() / "weights" / name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(dest.suffix + ".part")
            try:
                torch.hub.download_url_to_file(path_or_url, str(tmp), progress=False)
            except Exception as exc:  # network errors come in many types
                raise UserError(f"could not download weights from {path_or_url}: {exc}") from exc
            os.replace(tmp, dest)
        return dest
    path = Path(path_or_url).expanduser()
    if not path.is_file():
        raise UserError(f"weights file not found: {path_or_url}")
    return path


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


def load_weights_(model: nn.Module, path_or_url: str, strict: bool = True) -> nn.Module:
    """Load a checkpoint (local path or URL) into ``model`` in place."""
    path = fetch_weights(path_or_url)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(f"could not read checkpoint {path}: {exc}") from exc
    state = extract_state_dict(obj)
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise UserError(f"checkpoint {path} does not fit the model: {detail}") from exc
    return model
