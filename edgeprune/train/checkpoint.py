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
    """Load a checkpoint written by the train loop (our own file, so full unpickling)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupt / truncated / not a checkpoint
        raise UserError(f"checkpoint {path} cannot be read: {exc}") from exc


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) RNG states."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
