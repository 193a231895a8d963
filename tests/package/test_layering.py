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

from tests.support.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "cvgl_edge"

#: lowest first; a module may import its own layer's other packages only where listed as one unit
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cvgl_edge", "errors", "io", "progress", "views", "locks", "quiet", "extras", "descriptors",
     "cli_options", "model_catalog", "timing", "checks", "precisions", "native_tools"),
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


#: third-party packages worth deferring: absent from the deployment install, or slow to import
HEAVY = frozenset({"torch", "tensorrt", "tensorrt_rtx", "onnx", "onnxscript", "polygraphy", "scipy", "onnxruntime",
                   "faiss", "rasterio", "matplotlib", "pymavlink", "mamba_ssm", "cuda", "pycuda", "psutil"})


def _top_level_nodes(tree: ast.Module) -> list[ast.stmt]:
    """Module-level statements, looking into ``try`` / ``if`` blocks but not ``if TYPE_CHECKING``."""
    out: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, (ast.Try, ast.If)):
            out.extend(node.body)
            out.extend(getattr(node, "orelse", []))
            for handler in getattr(node, "handlers", []):
                out.extend(handler.body)
        else:
            out.append(node)
    return out


def import_facts(package: Path = PACKAGE) -> tuple[dict[str, set[str]], dict[str, set[str]], list[tuple[str, str, int]]]:
    """(module-level project imports, module-level heavy third-party imports, function-level project
    imports as (module, imported module, line))."""
    modules = {module_name(p, package): p for p in package.rglob("*.py")}

    def resolve(target: str) -> str | None:
        while target not in modules and "." in target:
            target = target.rsplit(".", 1)[0]
        return target if target in modules else None

    def project_targets(node: ast.stmt) -> list[str]:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cvgl_edge") and not node.level:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                     for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("cvgl_edge")]
        else:
            return []
        return [t for t in map(resolve, names) if t]

    def heavy_targets(node: ast.stmt) -> set[str]:
        if isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            return set()
        return {n.split(".")[0] for n in names} & HEAVY

    top: dict[str, set[str]] = defaultdict(set)
    heavy: dict[str, set[str]] = defaultdict(set)
    lazy: list[tuple[str, str, int]] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        top_nodes = _top_level_nodes(tree)
        for node in top_nodes:
            top[name].update(t for t in project_targets(node) if t != name)
            heavy[name] |= heavy_targets(node)
        ids = {id(n) for n in top_nodes}
        type_checking = {id(n) for node in tree.body if isinstance(node, ast.If)
                         and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in ids | type_checking:
                lazy.extend((name, target, node.lineno) for target in project_targets(node) if target != name)
        # a package's __init__ runs before any of its submodules
        parent = name.rsplit(".", 1)[0]
        if parent != name and parent in modules:
            top[name].add(parent)
    return top, heavy, lazy


def heavy_closure(module: str, top: dict[str, set[str]], heavy: dict[str, set[str]]) -> set[str]:
    """Heavy packages importing ``module`` loads, through its module-level imports."""
    seen, stack, found = set(), [module], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        found |= heavy.get(current, set())
        stack.extend(top.get(current, ()))
    return found


def needless_lazy_imports(package: Path = PACKAGE) -> list[str]:
    """Function-level project imports that defer no heavy package the importing module lacks."""
    top, heavy, lazy = import_facts(package)
    found = []
    for module, target, line in lazy:
        if not heavy_closure(target, top, heavy) - heavy_closure(module, top, heavy):
            found.append(f"{module}:{line} imports {target} inside a function, deferring nothing heavy")
    return sorted(set(found))


def test_lazy_imports_only_defer_heavy_packages():
    """A project module imported inside a function must keep a heavy package (torch, TensorRT, ...) out of
    the importing module's load; otherwise the import belongs at module level (or hides a cycle)."""
    assert needless_lazy_imports() == []
