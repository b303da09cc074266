"""The wheel ships every package of the source tree (pyproject lists them by hand)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]


def _setuptools_config() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["tool"]["setuptools"]


def _source_packages() -> set[str]:
    """Every folder under edgeprune/ with an __init__.py, as a dotted name."""
    found = set()
    for init in (ROOT / "edgeprune").rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        found.add(".".join(rel.parts))
    return found


def test_every_package_is_listed():
    listed = set(_setuptools_config()["packages"])
    missing = _source_packages() - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_listed_packages_exist():
    cfg = _setuptools_config()
    mapped = cfg.get("package-dir", {})
    for name in cfg["packages"]:
        folder = ROOT / mapped[name] if name in mapped else ROOT / Path(*name.split("."))
        assert folder.is_dir(), f"pyproject lists {name} but {folder} does not exist"
