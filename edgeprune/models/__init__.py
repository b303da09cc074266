"""Model zoo: a registry of CIFAR models plus every torchvision classifier by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch.nn as nn

from edgeprune.models import cifar_mobilenet, cifar_resnet, cifar_vgg  # noqa: F401 (register)
from edgeprune.models.registry import create_model, list_models, model_input_size, register_model
from edgeprune.models.weights import fetch_weights, load_weights_

__all__ = [
    "LoadedModel",
    "create_model",
    "fetch_weights",
    "list_models",
    "load_model",
    "load_weights_",
    "model_input_size",
    "register_model",
]


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
    from edgeprune.surgery import is_pruned_dir, load_pruned

    if Path(spec).is_dir():
        if not is_pruned_dir(spec):
            from edgeprune.errors import UserError

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
