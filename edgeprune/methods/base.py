"""The method interface and registry.

A method has one job under the controller: score the channels of each prunable group
(higher = keep). It may train to get those scores (PAAM, AAP, one-step) and may recover
the pruned model afterwards; it never touches files, sockets or budgets.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from edgeprune.surgery.graph import PrunableGroup


@dataclass
class MethodContext:
    """What a method may use: data loaders (may be None), example input, options."""

    example_input: torch.Tensor
    train_loader: object | None = None
    val_loader: object | None = None
    options: dict = field(default_factory=dict)
    limit_batches: int | None = None


class Method:
    """Base class: ``scores`` is required; ``knob`` tells the controller what it allocates."""

    name = "base"
    knob = "allocation"  # the controller allocates per-layer widths from the scores

    def scores(
        self, model: nn.Module, groups: list[PrunableGroup], ctx: MethodContext
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError


_METHODS: dict[str, type[Method]] = {}


def register_method(name: str):
    """Class decorator registering a method by name; duplicates raise."""

    def wrap(cls: type[Method]) -> type[Method]:
        if name in _METHODS:
            raise ValueError(f"method {name!r} is already registered")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return wrap


def list_methods(pattern: str = "*") -> list[str]:
    return sorted(n for n in _METHODS if fnmatch.fnmatch(n, pattern))


def get_method(name: str, **options) -> Method:
    from edgeprune.errors import UserError

    if name not in _METHODS:
        raise UserError(f"unknown method {name!r}; available: {', '.join(list_methods())}")
    return _METHODS[name](**options)
