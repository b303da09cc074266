"""Model registry: names -> constructors, with default input sizes."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from edgeprune.errors import UserError

TORCHVISION_PREFIX = "torchvision:"


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its constructor and the input size it expects (C, H, W)."""

    name: str
    fn: Callable[..., nn.Module]
    input_size: tuple[int, int, int]


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, input_size: tuple[int, int, int] = (3, 32, 32)):
    """Decorator registering a model constructor under ``name``; duplicates raise."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name, fn, tuple(input_size))
        return fn

    return wrap


def _torchvision_names() -> list[str]:
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))


def list_models(pattern: str = "*", torchvision: bool = True) -> list[str]:
    """Registered model names matching a glob pattern (torchvision ones prefixed)."""
    names = sorted(_REGISTRY)
    if torchvision:
        names += [TORCHVISION_PREFIX + n for n in _torchvision_names()]
    return [n for n in names if fnmatch.fnmatch(n, pattern)]


def model_input_size(name: str) -> tuple[int, int, int]:
    """The (C, H, W) input a model expects: 3x32x32 for CIFAR, 3x224x224 for torchvision."""
    if name.startswith(TORCHVISION_PREFIX):
        return (3, 299, 299) if "inception" in name else (3, 224, 224)
    return _entry(name).input_size


def _entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = fnmatch.filter(_REGISTRY, f"*{name[:4]}*")[:5]
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise UserError(
            f"unknown model {name!r}{hint}; 'torchvision:NAME' names any torchvision classifier"
        ) from None


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a model by registry name, randomly initialised."""
    if name.startswith(TORCHVISION_PREFIX):
        import torchvision.models as tvm

        tv_name = name[len(TORCHVISION_PREFIX) :]
        if tv_name not in _torchvision_names():
            raise UserError(f"torchvision has no classification model named {tv_name!r}")
        kwargs.setdefault("weights", None)
        model = tvm.get_model(tv_name, **kwargs)
    else:
        model = _entry(name).fn(**kwargs)
    model.edgeprune_name = name
    model.edgeprune_input_size = model_input_size(name)
    return model
