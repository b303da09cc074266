"""Save and reload pruned models as {model name, plan, state_dict}: no pickled classes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from edgeprune.errors import UserError
from edgeprune.fileio import atomic_write, atomic_write_text
from edgeprune.surgery.plan import Plan

MODEL_JSON = "model.json"
WEIGHTS = "weights.pt"


def save_pruned(
    out_dir: str | os.PathLike,
    name: str,
    model: nn.Module,
    plan: Plan,
    input_size: tuple[int, int, int] | None = None,
    model_kwargs: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write ``model.json`` (name, kwargs, plan, input size) and ``weights.pt`` atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    atomic_write(out / WEIGHTS, lambda tmp: torch.save(state, tmp))
    meta = {
        "format": "edgeprune-pruned-v1",
        "model": name,
        "model_kwargs": model_kwargs or {},
        "input_size": list(input_size) if input_size else None,
        "plan": plan.to_dict(),
        "extra": extra or {},
    }
    atomic_write_text(out / MODEL_JSON, json.dumps(meta, indent=1))
    return out


def is_pruned_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / MODEL_JSON).is_file()


def load_pruned(path: str | os.PathLike) -> tuple[nn.Module, dict, Plan]:
    """Rebuild a pruned model: fresh model -> replay the plan -> load the state_dict."""
    from edgeprune.models.registry import create_model, model_input_size
    from edgeprune.surgery.apply import apply_plan_, example_input_for

    path = Path(path)
    try:
        meta = json.loads((path / MODEL_JSON).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not a pruned-model directory: {exc}") from exc
    if meta.get("format") != "edgeprune-pruned-v1" or "model" not in meta:
        raise UserError(f"{path / MODEL_JSON} is not an edgeprune pruned-model file")
    model = create_model(meta["model"], **meta.get("model_kwargs", {}))
    input_size = tuple(meta.get("input_size") or model_input_size(meta["model"]))
    plan = Plan.from_dict(meta["plan"])
    apply_plan_(model, plan, example_input_for(model, input_size))
    weights = path / WEIGHTS
    if not weights.is_file():
        raise UserError(f"{weights} is missing")
    state = _load_state(weights)
    _add_folded_biases_(model, state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserError(f"weights in {path} do not fit the replayed plan: {exc}") from exc
    meta["input_size"] = list(input_size)
    return model.eval(), meta, plan


def _load_state(weights: Path) -> dict:
    """The state_dict in ``weights``; an unreadable or foreign file is one UserError."""
    import pickle
    import zipfile

    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile):
        raise UserError(
            f"{weights} is not a readable weights file (corrupt, truncated or not a state_dict)"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{weights} does not hold a state_dict of tensors")
    return state


def _add_folded_biases_(model: nn.Module, state: dict) -> None:
    """Convs that received folded biases at pruning time get a bias parameter back."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is None and f"{name}.bias" in state:
            m.bias = nn.Parameter(torch.zeros(m.weight.shape[0]))


@dataclass
class LoadedModel:
    """A model ready to use, with where it came from."""

    name: str
    model: nn.Module
    plan: object | None  # edgeprune.surgery.Plan for pruned models
    input_size: tuple[int, int, int]
    weights: str | None
    source: str  # "registry" or "pruned_dir"


def load_model(spec: str, weights: str | None = None, *, trust_pickle: bool = False) -> LoadedModel:
    """Load a registry model (optionally with weights) or a pruned-model directory.

    ``trust_pickle`` lets ``weights`` hold pickled Python objects (see ``load_weights_``).
    """
    from edgeprune.models import create_model, load_weights_, model_input_size

    if Path(spec).is_dir():
        if not is_pruned_dir(spec):
            raise UserError(f"{spec} is a directory but holds no pruned model (model.json)")
        model, meta, plan = load_pruned(spec)
        if weights:
            load_weights_(model, weights, trust_pickle=trust_pickle)
        model.edgeprune_name = meta["model"]
        model.edgeprune_input_size = tuple(meta["input_size"])
        return LoadedModel(
            meta["model"], model, plan, tuple(meta["input_size"]), weights, "pruned_dir"
        )
    model = create_model(spec)
    if weights:
        load_weights_(model, weights, trust_pickle=trust_pickle)
    return LoadedModel(spec, model.eval(), None, model_input_size(spec), weights, "registry")
