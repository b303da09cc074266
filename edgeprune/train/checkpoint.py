"""Atomic checkpoints of a training run and the RNG state that goes with them."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeprune.errors import UserError
from edgeprune.fileio import atomic_write

LAST = "last.pt"


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file beside ``path``, then rename it into place."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp), fsync=True)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by edgeprune (train loop, method state) with
    ``weights_only=True``: tensors and plain containers only, never code."""
    import pickle

    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(
            f"checkpoint {path} cannot be read as plain tensors: it is corrupt or holds "
            "pickled objects whose loading could run code; delete it or rerun without --resume"
        ) from None
    except Exception as exc:  # corrupt / truncated / not a checkpoint
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"checkpoint {path} cannot be read: {first}") from exc


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) RNG states, as plain types and tensors only
    (so the checkpoint loads with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (
            str(name),
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`rng_state`."""
    name, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    random.setstate(_as_python_state(state["python"]))
    np.random.set_state((name, keys.astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_python_state(state: Any) -> tuple:
    """``random.getstate()``'s (version, tuple of ints, gauss) from saved lists or tuples."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
