"""Structural surgery: plans of kept channels, physical removal, gates.

The only place that knows how channels are coupled (wraps Torch-Pruning's DependencyGraph).
"""

from edgeprune.surgery.apply import apply_plan_, example_input_for, prunable_layers, resolve_plan
from edgeprune.surgery.gates import GateSet, attach_gates_
from edgeprune.surgery.graph import PrunableGroup
from edgeprune.surgery.io import LoadedModel, is_pruned_dir, load_model, load_pruned, save_pruned
from edgeprune.surgery.plan import Plan
from edgeprune.surgery.sampling import random_plan, uniform_plan

__all__ = [
    "GateSet",
    "LoadedModel",
    "Plan",
    "PrunableGroup",
    "apply_plan_",
    "attach_gates_",
    "example_input_for",
    "is_pruned_dir",
    "load_model",
    "load_pruned",
    "prunable_layers",
    "random_plan",
    "resolve_plan",
    "save_pruned",
    "uniform_plan",
]
