"""``from_dict``: build a frozen config dataclass from user data (CLI options, YAML), checked.

One rule for every config: unknown keys are refused with the list of valid ones, missing
required fields are named, and each value is coerced to its field's annotated type
(``int``, ``float``, ``str``, ``bool``, ``X | None``, ``A | B``, ``tuple[X, ...]``) or
refused with one sentence naming the expected type.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from edgeprune.errors import UserError

T = TypeVar("T")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_NAMES = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    dict: "a mapping",
    list: "a list",
}


class _Mismatch(Exception):
    """A value that does not fit a type (internal: turned into one UserError)."""


def from_dict(cls: type[T], data: Any, what: str, noun: str = "option") -> T:
    """``cls(**data)`` with unknown/missing keys and wrong types as one-sentence UserErrors.

    ``what`` names the thing in messages (``"method 'aap'"``); ``noun`` the kind of key.
    """
    if not isinstance(data, Mapping):
        raise UserError(f"{what} must be a mapping of {noun}s, got {type(data).__name__}")
    flds = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(str(k) for k in data if k not in flds)
    if unknown:
        raise UserError(f"{what} has no {noun} {unknown[0]!r} (valid {noun}s: {', '.join(flds)})")
    missing = [n for n, f in flds.items() if _required(f) and n not in data]
    if missing:
        raise UserError(f"{what} is missing the required {noun} {missing[0]!r}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: coerce_field(what, k, v, hints.get(k, Any)) for k, v in data.items()})


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def coerce_field(what: str, name: str, value: Any, hint: Any) -> Any:
    """``value`` converted to ``hint``, or a UserError naming the expected type."""
    try:
        return _coerce(value, hint)
    except _Mismatch:
        raise UserError(f"{what}: {name} must be {describe(hint)}, got {value!r}") from None


def describe(hint: Any) -> str:
    """'an integer', 'a number or none', 'a list of integers'... for messages."""
    args = typing.get_args(hint)
    if _is_union(hint):
        return " or ".join(describe(a) for a in args if a is not type(None)) + (
            " or none" if type(None) in args else ""
        )
    if typing.get_origin(hint) is tuple:
        inner = describe(args[0]) if args else "a value"
        return "a list of " + inner.split(" ", 1)[-1] + ("s" if not inner.endswith("s") else "")
    return _NAMES.get(hint, "a value")


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _coerce(value: Any, hint: Any) -> Any:
    if _is_union(hint):
        args = typing.get_args(hint)
        if type(None) in args and (value is None or _says_none(value)):
            return None
        for a in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, a)
            except _Mismatch:
                continue
        raise _Mismatch
    if typing.get_origin(hint) is tuple:
        return _coerce_tuple(value, typing.get_args(hint))
    if hint in (dict, list):
        if not isinstance(value, Mapping if hint is dict else list):
            raise _Mismatch
        return value
    scalar = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}.get(hint)
    return value if scalar is None else scalar(value)


def _says_none(value: Any) -> bool:
    """``--opt key=none``: YAML reads ``none`` as a string, the messages offer it as None."""
    return isinstance(value, str) and value.strip().lower() == "none"


def _coerce_tuple(value: Any, args: tuple) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise _Mismatch
    item = args[0] if args else Any
    return tuple(_coerce(v, item) for v in value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise _Mismatch


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Mismatch
    if isinstance(value, int):
        return value
    number = _to_float(value)
    if not math.isfinite(number) or number != int(number):
        raise _Mismatch
    return int(number)


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Mismatch
    try:
        return float(value)
    except ValueError:
        raise _Mismatch from None


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, datetime.date)) and not isinstance(value, bool):
        return str(value)  # YAML reads runtime_version: 1.20 or date: 2026-11-21 as such
    raise _Mismatch


def yaml_error_text(exc: Exception) -> str:
    """A one-line summary of a YAML parse error ('line 3: found unexpected end of stream')."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    text = str(problem or exc).splitlines()[0] if str(problem or exc) else type(exc).__name__
    return f"line {mark.line + 1}: {text}" if mark is not None else text


def parse_options(items: list[str]) -> dict:
    """``["lam=1e-4", "variant=kq"]`` -> ``{"lam": 1e-4, "variant": "kq"}`` (YAML scalars)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--opt {item!r}: expected KEY=VALUE")
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UserError(
                f"--opt {item!r}: {value!r} is not valid YAML (an unclosed bracket or quote?)"
            ) from None
    return out
