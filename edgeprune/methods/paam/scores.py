"""The score bank: attention networks wired into a CNN as feature-map multipliers.

``A' = S * A`` (Eq. 3) through ``edgeprune.surgery.attach_gates_``: each group's gate is
replaced by its AN output (``analog`` mode, computed once per forward pass) or by a fixed
0/1 mask (``binary`` mode, the CNN phases). ``remove()`` restores the plain CNN.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn

from edgeprune.methods.paam.attention import an_key, group_filters
from edgeprune.surgery import attach_gates_
from edgeprune.surgery.graph import PrunableGroup


class ScoreBank:
    """Attention networks of one model, attached as gates; mode ``analog`` or ``binary``."""

    def __init__(
        self,
        model: nn.Module,
        groups: list[PrunableGroup],
        nets: nn.ModuleDict,
        example_input: torch.Tensor,
        group_weights: str = "all",
    ) -> None:
        self.model, self.groups, self.nets = model, groups, nets
        self.group_weights = group_weights
        self.mode = "analog"
        self.current: dict[str, torch.Tensor] = {}
        self.masks: dict[str, torch.Tensor] = {}
        transform = {g.name: self._transform(g.name) for g in groups}
        with eval_mode(model):  # the tracing pass must not touch BatchNorm statistics
            example = example_input.to(_device(model))
            self.gates = attach_gates_(model, groups, example, 1.0, transform)
        self._pre = model.register_forward_pre_hook(lambda _m, _i: self._refresh())

    def _transform(self, name: str):
        def fn(gate: torch.Tensor) -> torch.Tensor:
            if self.mode == "binary":
                return self.masks[name].to(gate.device)
            if name not in self.current:  # attach_gates_'s own tracing pass
                return torch.ones_like(gate)
            return self.current[name]

        return fn

    def _refresh(self) -> None:
        self.current = self.analog() if self.mode == "analog" else {}

    def analog(self) -> dict[str, torch.Tensor]:
        """Every group's analog scores from the current filter weights (with AN gradients)."""
        return {
            g.name: self.nets[an_key(g.name)](group_filters(self.model, g, self.group_weights))
            for g in self.groups
        }

    @torch.no_grad()
    def scores(self) -> dict[str, torch.Tensor]:
        """Analog scores, detached, on the CPU."""
        return {k: v.detach().cpu() for k, v in self.analog().items()}

    def set_binary(self, masks: dict[str, torch.Tensor]) -> None:
        """CNN phase: multiply by these fixed 0/1 masks."""
        self.masks = {k: v.detach().float() for k, v in masks.items()}
        self.mode = "binary"

    def set_analog(self) -> None:
        """AN phase: multiply by the AN outputs."""
        self.mode = "analog"

    def penalty(self, weights: dict[str, float]) -> torch.Tensor:
        """sum_l w_l * ||S_l||_1 over the scores of the current forward pass."""
        terms = [weights[n] * s.abs().sum() for n, s in self.current.items()]
        return torch.stack(terms).sum()

    def remove(self) -> None:
        """Detach the ANs: the model computes exactly as the plain CNN again."""
        self.gates.remove()
        self._pre.remove()
        self.current = {}


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run a block with ``model`` in eval mode, then restore its train/eval mode."""
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)
