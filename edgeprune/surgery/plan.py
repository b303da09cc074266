"""``Plan``: which output channels of each prunable layer to keep (serializable)."""

from __future__ import annotations

import json
import os
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


def compose_plans(base_groups, base_plan: Plan, new_groups, new_plan: Plan) -> Plan:
    """The plan on the original model equal to applying ``base_plan`` then ``new_plan``.

    ``base_groups`` are the original model's prunable groups, ``new_groups`` those of the
    model after ``base_plan`` (where ``new_plan``'s indices live).
    """
    from edgeprune.surgery.apply import resolve_plan

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
