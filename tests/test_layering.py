"""Imports go one way through the package's layers, and no module imports itself in a circle.

Every ``import cvgl_edge...`` counts, at module level or inside a function: a lazy import of a
project module is how a cycle hides, so it is not an exception. (Lazy imports of optional
third-party packages - torch on the deployment side, tensorrt, pycuda - are not edges here.)
``if TYPE_CHECKING:`` imports count too: an annotation that needs a higher layer is coupling.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cvgl_edge"

#: lowest first; a module may import its own layer's other packages only where listed as one unit
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cvgl_edge", "errors", "io", "progress", "views", "locks", "quiet", "extras", "descriptors",
     "cli_options", "model_catalog", "timing", "checks"),
    ("ops",),
    ("data",),
    ("models", "losses"),
    ("runtime",),
    ("eval",),
    ("export",),
    ("train", "bench"),
    ("localize",),
    ("demo", "doctor"),
    ("cli",),
)
#: packages that share a layer but must not import each other (peers, not one unit)
PEERS = {frozenset({"train", "bench"}), frozenset({"models", "losses"}), frozenset({"demo", "doctor"})}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """{module: project modules it imports}, from the source (nothing is imported)."""
    modules = {module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = name.rsplit(".", node.level - (path.name == "__init__.py"))[0]
                targets = [f"{base}.{node.module}" if node.module else base]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cvgl_edge"):
                # ``from pkg import submodule`` depends on the submodule; ``from pkg import name`` on pkg
                targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules
                           else node.module for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.startswith("cvgl_edge")]
            else:
                continue
            for target in targets:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def unit(module: str) -> str:
    """The layer unit of a module: its top-level subpackage or module (cli.py and cli/ are 'cli')."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(unit_name: str) -> int:
    for index, names in enumerate(LAYERS):
        if unit_name in names:
            return index
    raise AssertionError(f"cvgl_edge.{unit_name} is in no layer: add it to LAYERS in {Path(__file__).name}")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            a, b = unit(source), unit(target)
            if a == b or b == "cvgl_edge" and target == "cvgl_edge":
                continue
            if layer_of(b) > layer_of(a) or frozenset({a, b}) in PEERS:
                found.append(f"{source} -> {target}")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
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
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(set(graph) | {t for ts in graph.values() for t in ts}):
        if node not in index:
            visit(node)
    return found


def test_every_package_has_a_layer():
    for module in import_graph():
        layer_of(unit(module))


def test_no_upward_imports():
    assert upward_imports(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_checker_sees_an_upward_import_and_a_cycle(tmp_path):
    package = tmp_path / "cvgl_edge"
    (package / "data").mkdir(parents=True)
    (package / "localize").mkdir()
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("")
    (package / "localize" / "__init__.py").write_text("")
    (package / "data" / "pairs.py").write_text("def f():\n    from cvgl_edge.localize.mission import g\n")
    (package / "localize" / "mission.py").write_text("from cvgl_edge.data import pairs\n")
    graph = import_graph(package)
    assert upward_imports(graph) == ["cvgl_edge.data.pairs -> cvgl_edge.localize.mission"]
    assert cycles(graph) == [["cvgl_edge.data.pairs", "cvgl_edge.localize.mission"]]
