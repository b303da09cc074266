"""``Budget``: what the pruned model must satisfy (one or several constraints at once)."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from edgeprune.config_io import yaml_error_text
from edgeprune.errors import UserError

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


@dataclass(frozen=True)
class Budget:
    """Constraints on the pruned model; ``None`` means unconstrained.

    Latency is absolute (``latency_ms``) or relative to the dense model on the same device
    (``latency_ratio``, e.g. 0.5). Memory is in MB (10^6 bytes), accuracy drop in
    percentage points of top-1.
    """

    latency_ms: float | None = None
    latency_ratio: float | None = None
    weight_mb: float | None = None
    activation_mb: float | None = None
    flops: float | None = None
    flops_ratio: float | None = None
    params: float | None = None
    params_ratio: float | None = None
    max_acc_drop: float | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "device" or v is None:
                continue
            _check_limit(f.name, v)
            if f.name.endswith("_ratio") and v > 1.0:
                raise UserError(
                    f"budget {f.name} is {v}x: a pruned model cannot be larger than dense"
                )
        if self.latency_ms is not None and self.latency_ratio is not None:
            raise UserError("give the latency budget either in ms or as a ratio, not both")
        if self.has_latency and not self.device:
            raise UserError("a latency budget needs a device (--device NAME)")
        if self.is_empty:
            raise UserError(
                "no budget given: use --latency-budget, --memory-budget-mb, --flops-budget, "
                "--params-budget, --activation-budget-mb or --max-acc-drop"
            )

    @property
    def has_latency(self) -> bool:
        return self.latency_ms is not None or self.latency_ratio is not None

    @property
    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self) if f.name != "device")

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> Budget:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise UserError(f"unknown budget key(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    def describe(self) -> str:
        """One line naming every limit, e.g. 'latency <= 0.5x dense on xeon, FLOPs <= 2e+07'."""
        parts = [
            fmt.format(v, device=self.device)
            for name, fmt in _DESCRIPTIONS
            if (v := getattr(self, name)) is not None
        ]
        return ", ".join(parts)


def _check_limit(name: str, v: object) -> None:
    """One sentence unless ``v`` is a finite number > 0 (>= 0 for max_acc_drop)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise UserError(f"budget {name} must be a number, got {v!r}")
    if not math.isfinite(v) or v < 0:
        raise UserError(f"budget {name} must be a finite, non-negative number, got {v!r}")
    if name != "max_acc_drop" and v == 0:
        raise UserError(f"budget {name} must be positive")


_DESCRIPTIONS = (  # (field, format of its limit) in the order describe() names them
    ("latency_ratio", "latency <= {0:g}x dense on {device}"),
    ("latency_ms", "latency <= {0:g} ms on {device}"),
    ("weight_mb", "weights <= {0:g} MB"),
    ("activation_mb", "peak activations <= {0:g} MB"),
    ("flops", "FLOPs <= {0:.4g}"),
    ("flops_ratio", "FLOPs <= {0:g}x dense"),
    ("params", "params <= {0:.4g}"),
    ("params_ratio", "params <= {0:g}x dense"),
    ("max_acc_drop", "top-1 drop <= {0:g} points"),
)


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{what}: {text!r} is not a number") from None


def parse_latency(text: str) -> tuple[float | None, float | None]:
    """'0.5x' -> (None, 0.5); '0.8ms' -> (0.8, None); 'us' and 's' also accepted.

    A unit is required: a bare number is refused (is 0.5 a ratio or milliseconds?).
    """
    t = str(text).strip().lower().replace(" ", "")
    if t.endswith("x"):
        return None, _number(t[:-1], "latency budget")
    for unit, scale in (("ms", 1.0), ("us", 1e-3), ("s", 1e3)):
        if t.endswith(unit):
            return _number(t[: -len(unit)], "latency budget") * scale, None
    if re.fullmatch(r"[0-9.eE+-]+", t):
        raise UserError(f"latency budget {text!r} has no unit: write {t}x (of dense) or {t}ms")
    raise UserError(f"latency budget {text!r}: use a ratio like 0.5x or a time like 0.8ms")


def parse_count(text: str, what: str) -> tuple[float | None, float | None]:
    """'50M' -> (5e7, None); '0.4x' -> (None, 0.4); plain numbers and k/M/G suffixes."""
    t = text.strip().lower().replace(" ", "")
    if t.endswith("x"):
        return None, _number(t[:-1], what)
    m = re.fullmatch(r"([0-9.eE+-]+)([kmg]?)", t)
    if not m:
        raise UserError(f"{what} {text!r}: use a count like 50M or a ratio like 0.5x")
    return _number(m.group(1), what) * _SUFFIX[m.group(2)], None


def budget_from_args(args) -> Budget:
    """Build a Budget from CLI flags (and an optional --budget YAML file)."""
    d: dict = {}
    if getattr(args, "budget_file", None):
        d.update(load_budget_yaml(args.budget_file).to_dict())
    if getattr(args, "latency_budget", None):
        d["latency_ms"], d["latency_ratio"] = parse_latency(args.latency_budget)
    if getattr(args, "flops_budget", None):
        d["flops"], d["flops_ratio"] = parse_count(args.flops_budget, "FLOPs budget")
    if getattr(args, "params_budget", None):
        d["params"], d["params_ratio"] = parse_count(args.params_budget, "params budget")
    for flag, key in (
        ("memory_budget_mb", "weight_mb"),
        ("activation_budget_mb", "activation_mb"),
        ("max_acc_drop", "max_acc_drop"),
    ):
        if getattr(args, flag, None) is not None:
            d[key] = float(getattr(args, flag))
    if getattr(args, "device", None):
        d["device"] = args.device
    budget = Budget(**{k: v for k, v in d.items() if v is not None})
    if budget.device:  # a missing or malformed profile fails now, before any work
        from edgeprune.devices.profile import load_profile

        load_profile(budget.device)
    return budget


def load_budget_yaml(path: str) -> Budget:
    """Read a budget from YAML, e.g. ``{latency: 0.5x, weight_mb: 4, device: xeon}``."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise UserError(f"could not read budget file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"budget file {path} is not valid YAML ({yaml_error_text(exc)})") from None
    if not isinstance(raw, dict):
        raise UserError(f"budget file {path} must hold a mapping")
    try:
        return _budget_from_mapping(dict(raw))
    except UserError as err:
        raise UserError(f"budget file {path}: {err}") from None


def _budget_from_mapping(d: dict) -> Budget:
    """A Budget from a budget file's mapping (``latency``/``flops``/``params`` as text)."""
    if "latency" in d:
        d["latency_ms"], d["latency_ratio"] = parse_latency(str(d.pop("latency")))
    if "flops" in d and isinstance(d["flops"], str):
        d["flops"], d["flops_ratio"] = parse_count(d["flops"], "FLOPs budget")
    if "params" in d and isinstance(d["params"], str):
        d["params"], d["params_ratio"] = parse_count(d["params"], "params budget")
    return Budget.from_dict({k: v for k, v in d.items() if v is not None})
