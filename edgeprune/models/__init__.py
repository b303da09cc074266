"""Model zoo: a registry of CIFAR models plus every torchvision classifier by name.

``load_model`` (a registry name or a pruned-model directory) lives in ``edgeprune.surgery``:
rebuilding a pruned model replays its plan.
"""

from __future__ import annotations

from edgeprune.models import cifar_mobilenet, cifar_resnet, cifar_vgg  # noqa: F401 (register)
from edgeprune.models.registry import create_model, list_models, model_input_size, register_model
from edgeprune.models.weights import fetch_weights, load_weights_

__all__ = [
    "create_model",
    "fetch_weights",
    "list_models",
    "load_weights_",
    "model_input_size",
    "register_model",
]
