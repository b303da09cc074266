"""The end-to-end calibration of a latency table: how table sums become a model's latency.

Stored per model structure in a device profile (``edgeprune.devices.profile``), read by the
latency predictor (``edgeprune.cost.latency``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from edgeprune.errors import UserError


@dataclass(frozen=True)
class Calibration:
    """End-to-end fit for one model structure::

        total = scale * sum(aligned ops) + scale_unaligned * sum(other ops) + offset_ms

    An op is *aligned* when both its channel counts are multiples of the profile's
    ``channel_alignment``; ``scale_unaligned`` 0 means "same as ``scale``".
    """

    scale: float = 1.0
    offset_ms: float = 0.0
    scale_unaligned: float = 0.0
    n: int = 0
    signature: str = ""
    fit_err_pct: float = 0.0
    date: str = ""

    def apply(self, aligned_ms: float, unaligned_ms: float) -> float:
        """Calibrated total from the two table sums."""
        su = self.scale_unaligned or self.scale
        return self.scale * aligned_ms + su * unaligned_ms + self.offset_ms

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping, where: str = "device profile") -> Calibration:
        """From a profile's YAML: unknown, missing or mistyped fields are one UserError."""
        from edgeprune.config_io import from_dict

        what = f"{where}: calibration"
        if not isinstance(d, Mapping):
            raise UserError(f"{what} must be a mapping, got {type(d).__name__}")
        return from_dict(cls, {k: v for k, v in d.items() if v is not None}, what, noun="field")
