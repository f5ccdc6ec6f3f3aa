"""The core's import graph: no cycle at module level, and the contract imports nothing above it.

Read from the source with ``ast`` (nothing is imported). A module-level import is one that runs
when the module is imported: statements at top level, in module-level ``if``/``try``/``with``
blocks and in class bodies, but not inside functions and not under ``if TYPE_CHECKING:``.
Importing ``a.b.c`` also runs the ``__init__`` of ``a.b`` (unless the importer lives inside
``a.b``, which Python has then already started importing), so that counts as an edge too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "sage.llm"
CONTRACT = ("sage.llm.strategy", "sage.llm.hookspecs", "sage.llm.params")
"""The strategy contract: what every layer (registry, engines, control plane) builds on."""
CONTRACT_MAY_ASK = {
    ("sage.llm.strategy", "sage.llm.registry"): "strategy_name() asks the registry which entry "
    "point registers a class that sets no ``name`` (inside the method, after import)",
}
"""Imports inside a contract module's functions that reach a module above it, with the reason."""


def _modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "sage" / "llm").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(body: list[ast.stmt], *, functions: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements in ``body``: those that run on import, or (``functions``) any."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if functions:
                yield from _imports(node.body, functions=True)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _imports(node.orelse, functions=functions)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    stmts = [c for c in children if isinstance(c, ast.stmt)]
                    for handler in (c for c in children if isinstance(c, ast.ExceptHandler)):
                        stmts.extend(handler.body)
                    yield from _imports(stmts, functions=functions)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The modules of this package that ``node`` imports, with the packages that run first."""
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        base = node.module or ""
        if node.level:
            is_package = MODULES[module].name == "__init__.py"
            anchor = module.split(".")
            anchor = anchor if is_package else anchor[:-1]
            anchor = anchor[: len(anchor) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        names = {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    found = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            inside = module == prefix or module.startswith(prefix + ".")
            if prefix in MODULES and prefix.startswith(PACKAGE) and not inside:
                found.add(prefix)
    return found


def _graph(*, functions: bool) -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges: set[str] = set()
        for node in _imports(tree.body, functions=functions):
            edges |= _targets(module, node)
        graph[module] = edges - {module}
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for nxt in graph.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def test_the_walk_sees_the_core() -> None:
    graph = _graph(functions=False)
    assert "sage.llm.registry" in graph["sage.llm"]
    assert "sage.llm.strategy" in graph["sage.llm.registry"]
    # importing a submodule of another package runs that package's __init__ first
    assert "sage.llm.engines.vllm" in graph["sage.llm.control_plane.vllm_backend"]
    # imports under TYPE_CHECKING and inside functions are not module level
    assert "sage.llm.proposer" not in graph["sage.llm.strategy"]
    assert "sage.llm.vllm_version" not in graph["sage.llm.strategy"]
    assert "sage.llm.vllm_version" in _graph(functions=True)["sage.llm.strategy"]


def test_a_cycle_is_found() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_core_has_no_import_cycle_at_module_level() -> None:
    cycle = _find_cycle(_graph(functions=False))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("contract", CONTRACT)
def test_the_contract_imports_nothing_above_it(contract: str) -> None:
    """Nothing the contract imports, even inside a function, imports the contract back."""
    graph = _graph(functions=True)
    above = {
        target
        for target in graph[contract]
        if contract in _reachable(graph, target) and (contract, target) not in CONTRACT_MAY_ASK
    }
    assert not above, f"{contract} imports {sorted(above)}, which import it back"
