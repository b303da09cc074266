"""The package layering: every import in edgeprune/ (module-level and inside functions) read
with ``ast``; nothing reaches up into the CLI or the workflows, and packages form no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "edgeprune"

# Low to high; a package may import only packages of its own layer or below. Top-level
# modules (edgeprune/X.py) are packages of their own; ``deploy_agent`` is the standalone
# device agent (deploy/, installed as edgeprune.deploy_agent) and sits at the bottom.
LAYERS: list[set[str]] = [
    {"__init__", "__version__", "errors", "fileio", "config_io", "log", "search", "deploy_agent"},
    {"models", "data", "targets"},
    {"surgery", "cost", "devices", "export", "train", "runtimes", "bench", "quant"},
    {"budget", "methods"},
    {"report"},
    {"workflows"},
    {"cli", "__main__"},  # ``python -m edgeprune`` is the CLI's other door
]
LAYER = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement reaches (``from a import b`` gives a and a.b)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: resolve against this module's package
        pkg = module.split(".") if is_package else module.split(".")[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)]
        base = ".".join(pkg + ([node.module] if node.module else []))
    return [base] + [f"{base}.{a.name}" for a in node.names]


def _package(dotted: str) -> str | None:
    """``edgeprune.X...`` -> X (the subpackage or top-level module); None outside edgeprune."""
    parts = dotted.split(".")
    if parts[0] != "edgeprune":
        return None
    if len(parts) == 1:
        return "__init__"
    name = parts[1]
    if name == "deploy_agent" or (ROOT / name).is_dir() or (ROOT / f"{name}.py").is_file():
        return name
    return "__init__"  # an attribute of edgeprune/__init__.py (``from edgeprune import x``)


def import_edges() -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> the import lines, for every edgeprune module."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        src = _package(module) or "__init__"
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            for name in _imported(node, module, path.name == "__init__.py"):
                dst = _package(name)
                if dst is not None and dst != src:
                    edges.setdefault((src, dst), []).append(f"{module} imports {name}")
    return edges


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                return path[path.index(w) :] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        path.pop()
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_every_package_has_a_layer():
    pkgs = {p for edge in import_edges() for p in edge}
    assert not pkgs - set(LAYER), f"add these to LAYERS: {sorted(pkgs - set(LAYER))}"


def test_nothing_outside_the_cli_imports_it():
    bad = [
        line
        for (src, dst), lines in import_edges().items()
        if dst == "cli" and src not in ("cli", "__main__")
        for line in lines
    ]
    assert not bad, bad


def test_only_the_cli_imports_the_workflows():
    bad = [
        line
        for (src, dst), lines in import_edges().items()
        if dst == "workflows" and src not in ("cli", "__main__")
        for line in lines
    ]
    assert not bad, bad


def test_package_imports_have_no_cycle():
    graph: dict[str, set[str]] = {}
    for src, dst in import_edges():
        graph.setdefault(src, set()).add(dst)
    cycle = _cycle(graph)
    if cycle:
        edges = import_edges()
        why = [edges[(a, b)][0] for a, b in zip(cycle, cycle[1:], strict=False)]
        raise AssertionError(f"import cycle {' -> '.join(cycle)}: {why}")


def test_modules_have_no_cycle():
    """Inside packages too (surgery.apply <-> surgery.plan once): a module may import its
    own package's ``__init__`` (registries), nothing that imports it back."""
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}

    def owner(dotted: str) -> str | None:  # the module file a dotted name lives in
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in paths:
                return ".".join(parts[:i])
        return None

    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for name in _imported(node, module, path.name == "__init__.py"):
                dst = owner(name)
                if dst and dst != module and not module.startswith(dst + "."):
                    graph.setdefault(module, set()).add(dst)
    assert _cycle(graph) is None, f"import cycle {' -> '.join(_cycle(graph))}"


def test_no_lower_layer_imports_a_higher_one():
    bad = [
        lines[0]
        for (src, dst), lines in import_edges().items()
        if src in LAYER and dst in LAYER and LAYER[dst] > LAYER[src]
    ]
    assert not bad, bad


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    code = "def f():\n    from edgeprune.cli.main import main\nfrom .plan import Plan\n"
    tree = ast.parse(code)
    names = [
        n for node in ast.walk(tree) for n in _imported(node, "edgeprune.surgery.apply", False)
    ]
    assert "edgeprune.cli.main" in names and "edgeprune.surgery.plan" in names
    assert (
        _package("edgeprune.cli.main") == "cli" and _package("edgeprune.__version__") == "__init__"
    )
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None
