"""Imports point down the layers of docs/interfaces.md, never up or across; and no two files of one
package import each other, directly or around a loop. Read from the source with ``ast`` (every
import, lazy ones inside functions included; ``if TYPE_CHECKING:`` blocks left out)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Top-level package -> the packages of this repository it may import (besides itself). Top to
# bottom: the command layer, then web and worker side by side, then jobs, then store and models.
ALLOWED: dict[str, frozenset[str]] = {
    "shapehint": frozenset({"api", "worker", "jobs", "store", "models"}),
    "benchmarks": frozenset({"api", "jobs", "store", "models"}),
    "api": frozenset({"jobs", "store", "models"}),
    "worker": frozenset({"jobs", "store", "models"}),
    "jobs": frozenset({"store", "models"}),
    "migrations": frozenset({"store"}),
    "store": frozenset(),
    "models": frozenset(),
}
# The API process and the jobs package never import torch: of models, only these modules.
TORCH_FREE_MODELS = frozenset(
    {
        "models",
        "models.units",
        "models.bounds",
        "models.config",
        "models.budget",
        "models.channels",
        "models.synthetic",
    }
)
NO_TORCH_PACKAGES = frozenset({"api", "jobs"})
# Old module paths kept as thin re-exports for callers a change could not update, each with the
# one upward import it may make (none today). Remove an entry together with its file.
SHIMS: dict[str, frozenset[str]] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


SOURCES = _sources()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(module: str) -> set[str]:
    """Modules of this repository that ``module`` imports (``from a import b`` counts as a.b
    when b is a module)."""
    path = SOURCES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base]
            names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
        for name in names:
            if name.split(".")[0] in ALLOWED and name in SOURCES:
                found.add(name)
    return found - {module}


def _top(name: str) -> str:
    return name.split(".")[0]


def test_the_layer_table_has_no_cycle() -> None:
    seen: dict[str, int] = {}

    def visit(package: str) -> None:
        assert seen.get(package) != 1, f"layer cycle through {package}"
        if seen.get(package) == 2:
            return
        seen[package] = 1
        for lower in ALLOWED[package]:
            visit(lower)
        seen[package] = 2

    for package in ALLOWED:
        visit(package)


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_imports_point_down_the_layers(module: str) -> None:
    top = _top(module)
    allowed_up = SHIMS.get(module, frozenset())
    wrong = sorted(
        n for n in imports_of(module) - allowed_up if _top(n) != top and _top(n) not in ALLOWED[top]
    )
    assert not wrong, f"{module} imports {wrong}; {top} may import only {sorted(ALLOWED[top])}"
    if top in NO_TORCH_PACKAGES:
        heavy = sorted(
            n for n in imports_of(module) if _top(n) == "models" and n not in TORCH_FREE_MODELS
        )
        assert not heavy, f"{module} imports {heavy}; {top} stays torch-free"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop in ``graph`` (as a list of modules, first = last), else None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (loop := visit(nxt)) is not None:
                return loop
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (loop := visit(node)) is not None:
            return loop
    return None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_cycle_between_files_of_a_package(package: str) -> None:
    graph = {
        m: {n for n in imports_of(m) if _top(n) == package and not _is_parent(n, m)}
        for m in SOURCES
        if _top(m) == package
    }
    loop = _cycle(graph)
    assert loop is None, "import cycle: " + " -> ".join(loop or [])


def _is_parent(candidate: str, module: str) -> bool:
    """Importing ``a.b`` runs ``a/__init__.py`` first; that edge is not a file importing another."""
    return module.startswith(candidate + ".")


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    """The table is enforced on real edges: the known downward ones are found."""
    assert "jobs.queue" in imports_of("jobs.reaper")
    assert "jobs.state" in imports_of("worker.runner")  # ``from jobs import state``
    assert not any(_top(n) == "worker" for m in SOURCES if _top(m) == "api" for n in imports_of(m))
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
