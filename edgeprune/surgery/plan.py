"""``Plan``: which output channels of each prunable layer to keep (serializable)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgeprune.errors import UserError
from edgeprune.fileio import atomic_write_text


@dataclass
class Plan:
    """Keep-indices per prunable layer (conv module path -> sorted channel indices).

    Layers not named keep all their channels. An empty list for the first inner conv of a
    residual block removes the whole block (it becomes its shortcut).
    """

    keep: dict[str, list[int]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keep = {k: sorted(int(i) for i in v) for k, v in self.keep.items()}
        for name, idx in self.keep.items():
            if len(set(idx)) != len(idx) or any(i < 0 for i in idx):
                raise UserError(f"plan for layer {name!r} has negative or repeated indices")

    def to_dict(self) -> dict:
        return {"version": 1, "keep": self.keep, "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        if not isinstance(d, dict) or not isinstance(d.get("keep"), dict):
            raise UserError("a plan must be a JSON object with a 'keep' mapping")
        return cls(keep={str(k): list(v) for k, v in d["keep"].items()}, meta=d.get("meta", {}))

    def save_json(self, path: str | os.PathLike) -> None:
        """Write the plan as JSON atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> Plan:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"could not read plan {path}: {exc}") from exc

    def widths(self) -> dict[str, int]:
        """Kept channel count per planned layer."""
        return {k: len(v) for k, v in self.keep.items()}


def resolve_plan(plan: Plan, groups: Sequence, strict: bool = True) -> dict[str, list[int]]:
    """Map the plan onto groups (``PrunableGroup``s): one keep-list per group name.

    Coupled layers must keep the same channels: differing entries are refused (``strict``)
    or merged into their union.
    """
    by_conv = {c: g for g in groups for c in g.convs}
    unknown = [k for k in plan.keep if k not in by_conv]
    if unknown:
        raise UserError(
            f"plan names layer {unknown[0]!r}, which is not a prunable conv of this model"
        )
    resolved: dict[str, list[int]] = {}
    source: dict[str, str] = {}
    for conv, keep in plan.keep.items():
        g = by_conv[conv]
        if any(i >= g.channels for i in keep):
            raise UserError(f"plan keeps channel {max(keep)} of {conv!r}, which has {g.channels}")
        if g.name in resolved and resolved[g.name] != keep:
            if strict:
                raise UserError(
                    f"plan keeps different channels in {source[g.name]!r} and {conv!r}, which are "
                    "coupled through a residual add; give them the same keep-list"
                )
            keep = sorted(set(resolved[g.name]) | set(keep))
        resolved[g.name], source[g.name] = keep, conv
    for g in groups:
        step = getattr(g, "step", 1)
        if step > 1 and g.name in resolved and resolved[g.name]:
            resolved[g.name] = fit_to_step(resolved[g.name], g.channels, step)
    return resolved


def fit_to_step(keep: Sequence[int], channels: int, step: int) -> list[int]:
    """A keep-list with equal counts in each of ``step`` contiguous segments (grouped convs).

    The count per segment is ``len(keep) // step`` (at least 1): the width is rounded DOWN
    to a multiple of ``step``, never above the plan. In each segment the planned channels
    are kept first (lowest index first), topped up with the segment's lowest other ones.
    """
    size = channels // step
    per = max(1, len(keep) // step)
    wanted = set(keep)
    out: list[int] = []
    for s in range(step):
        seg = range(s * size, (s + 1) * size)
        out += ([i for i in seg if i in wanted] + [i for i in seg if i not in wanted])[:per]
    return sorted(out)


def compose_plans(base_groups, base_plan: Plan, new_groups, new_plan: Plan) -> Plan:
    """The plan on the original model equal to applying ``base_plan`` then ``new_plan``.

    ``base_groups`` are the original model's prunable groups, ``new_groups`` those of the
    model after ``base_plan`` (where ``new_plan``'s indices live).
    """
    base = resolve_plan(base_plan, base_groups)
    new = resolve_plan(new_plan, new_groups)
    new_by_conv = {c: new[g.name] for g in new_groups if g.name in new for c in g.convs}
    out: dict[str, list[int]] = {}
    for g in base_groups:
        cur = list(base.get(g.name, range(g.channels)))
        sel = next((new_by_conv[c] for c in g.convs if c in new_by_conv), None)
        if cur and sel is not None:
            cur = [cur[i] for i in sel]
        if len(cur) != g.channels:
            out[g.name] = cur
    return Plan(out, meta={"composed": True})
