"""The house rules: layers import only downward, no import cycle in ``core/``, plugin families apart.

Imports are read from the source with :mod:`ast`, so imports inside functions (lazy ones) count
as much as module-level ones: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "core"
PLUGINS = REPO / "plugins"

# Lowest first.  A module may import modules of its own layer and of the layers before it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("records", ("facepipe.errors", "facepipe.specs", "facepipe.plugin_config", "facepipe.hookspecs", "facepipe.files",
                 "facepipe.devices", "facepipe.progress")),
    ("weights", ("facepipe.weights",)),
    ("kernel", ("facepipe.types", "facepipe.preprocess", "facepipe.plugin_hygiene", "facepipe.registry",
                "facepipe.model_cache", "facepipe.testing", "facepipe.pytest_plugin", "facepipe.vectors")),
    ("engines", ("facepipe.engines",)),
    ("pipeline", ("facepipe.pipeline",)),
    ("gallery", ("facepipe.gallery",)),
    ("apps", ("facepipe.apps", "facepipe.functions")),
    ("package", ("facepipe",)),
]


def module_name(path: Path) -> str:
    if path.is_relative_to(CORE):
        parts = ["facepipe", *path.relative_to(CORE).with_suffix("").parts]
    else:
        parts = ["facepipe", "plugins", *path.relative_to(PLUGINS).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every ``facepipe...`` module a file imports, at any depth of the code (TYPE_CHECKING blocks excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("facepipe"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.startswith("facepipe"):
                for alias in node.names:
                    found.add(f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base)
    return found


def _is_module(name: str) -> bool:
    return name in ALL_MODULES


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


ALL_MODULES = {module_name(p) for p in _files(CORE) + _files(PLUGINS)}


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS in {__file__}"
    return best


def core_graph() -> dict[str, set[str]]:
    graph = {}
    for path in _files(CORE):
        name = module_name(path)
        if name.startswith("facepipe.plugins"):
            continue
        graph[name] = {m for m in imported_modules(path) if m in ALL_MODULES and not m.startswith("facepipe.plugins")}
    return graph


def test_every_core_module_has_a_layer() -> None:
    for name in core_graph():
        layer_of(name)


def test_core_never_imports_a_plugin() -> None:
    offenders = [f"{module_name(p)} imports {m}" for p in _files(CORE)
                 for m in imported_modules(p) if m.startswith("facepipe.plugins.")]
    assert not offenders, "the core must not know plugins by name:\n" + "\n".join(offenders)


def test_layers_import_only_downward() -> None:
    upward = []
    for name, imports in core_graph().items():
        for target in imports:
            if target == "facepipe" and name != "facepipe":
                continue  # `from facepipe import hookimpl`-style: resolved below, checked by its own module
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_in_core() -> None:
    graph = core_graph()
    # `from facepipe import hookimpl` and the like name the package; what it hands out lives in the
    # kernel modules, so the package itself is not an edge target.
    graph = {k: {m for m in v if m != "facepipe"} for k, v in graph.items()}
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("family", ["detectors", "recognizers", "analyzers", "antispoofers"])
def test_plugin_families_are_independent(family: str) -> None:
    offenders = []
    for path in _files(PLUGINS / family):
        for target in imported_modules(path):
            if target.startswith("facepipe.plugins.") and not target.startswith(f"facepipe.plugins.{family}"):
                offenders.append(f"{module_name(path)} imports {target}")
            elif target.startswith(("facepipe.pipeline", "facepipe.gallery", "facepipe.apps", "facepipe.functions")):
                offenders.append(
                    f"{module_name(path)} imports {target} (plugins stand on the kernel, engines, weights)")
    assert not offenders, "\n".join(offenders)
