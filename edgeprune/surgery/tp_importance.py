"""Torch-Pruning's own channel choice (MagnitudePruner + GroupMagnitudeImportance) as a Plan.

The peer baseline lets Torch-Pruning pick which channels go, exactly as a Torch-Pruning
user would, and turns that choice into an edgeprune ``Plan`` (keep-indices), which
edgeprune's surgery then applies like any other plan.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
import torch_pruning as tp

from edgeprune.models.cifar_resnet import ShortcutA
from edgeprune.surgery.graph import ShortcutAPruner
from edgeprune.surgery.plan import Plan


def tp_magnitude_plan(
    model: nn.Module,
    example_input: torch.Tensor,
    ratio: float,
    p: int = 2,
    global_pruning: bool = False,
) -> Plan:
    """The channels Torch-Pruning's MagnitudePruner removes at ``pruning_ratio=ratio``.

    ``model`` is left unchanged (TP is run interactively and its groups are not pruned);
    the classifier's linear layers are ignored, as in TP's examples.
    """
    names = {m: n for n, m in model.named_modules()}
    ignored = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = tp.pruner.MagnitudePruner(
            model,
            example_input,
            importance=tp.importance.GroupMagnitudeImportance(p=p),
            pruning_ratio=float(ratio),
            global_pruning=global_pruning,
            ignored_layers=ignored,
            customized_pruners={ShortcutA: ShortcutAPruner()},
        )
        keep: dict[str, list[int]] = {}
        for group in pruner.step(interactive=True):
            dep, idxs = group[0]
            layer = dep.target.module
            if not isinstance(layer, nn.Conv2d) or names.get(layer) is None:
                continue
            drop = set(int(i) for i in idxs)
            keep[names[layer]] = [i for i in range(layer.out_channels) if i not in drop]
    return Plan(keep, meta={"source": "torch_pruning.MagnitudePruner", "ratio": float(ratio)})
