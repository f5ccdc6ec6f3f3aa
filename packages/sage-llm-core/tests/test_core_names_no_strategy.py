"""The core never names a strategy in code (docs/architecture.md): it finds strategies through
entry points and asks them through the contract (sage/llm/hookspecs.py), so a third party's
strategy gets every tool the built-in ones get.

This reads every module of the core and fails on a built-in strategy's name (a string that is
the name or a ``"name:k=v"`` spec), class name or parameter name outside docstrings and
comments. Allowed: ``sage/llm/known.py`` (install hints for ``from sage.llm import
NgramStrategy``, and ``DEFAULT_STRATEGY``, the value ``--strategy`` takes when none is given),
and vLLM's own ``speculative_config['method']`` values (``"ngram"`` is vLLM's method too) where
the statement is about a ``method``, or anywhere in the vLLM adapter (``engines/vllm/``), which
speaks vLLM's vocabulary: its checks of EAGLE heads and MTP checkpoints key on vLLM's methods
(``"eagle3"``), so any strategy that writes that method gets them, not one named so.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sage.llm.known import DEFAULT_STRATEGY, KNOWN_STRATEGIES, VLLM_METHODS

SOURCE = Path(__file__).resolve().parents[1] / "src" / "sage" / "llm"
ALLOWED_FILES = {SOURCE / "known.py"}

NAMES = {"ngram", "draft", "dynamic", "dynamic-lookahead", "draft-model"} | {
    name for known in KNOWN_STRATEGIES for name in (known.name, *known.aliases)
}
CLASS_NAMES = {"NgramStrategy", "DraftModelStrategy", "DynamicLookaheadStrategy"} | {
    known.class_name for known in KNOWN_STRATEGIES
}
OTHER_VOCABULARIES = {Path("server") / "protocol.py": {"suffix"}}
"""Words that are a strategy's name and also another protocol's: OpenAI's completions request
has a ``suffix`` field (text after the completion), which the server refuses by that name."""
PARAMETER_NAMES = {"draft_model_id"}
"""A built-in strategy's own parameter names that are not also vLLM's keys."""


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (module, class, function, attribute)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for i, stmt in enumerate(body):
            is_string = (
                isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            )
            if is_string and (i == 0 or isinstance(body[i - 1], (ast.Assign, ast.AnnAssign))):
                found.add(id(stmt.value))
    return found


def _mentions_method(statement: ast.AST) -> bool:
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and node.id == "method":
            return True
        if isinstance(node, ast.keyword) and node.arg == "method":
            return True
        if isinstance(node, ast.Constant) and node.value == "method":
            return True
    return False


def _names_a_strategy(text: str) -> bool:
    value = text.strip().lower()
    return (
        value in NAMES
        or (value.split(":", 1)[0] in NAMES and ":" in value)
        or any(name in text for name in CLASS_NAMES)
        or value in PARAMETER_NAMES
        or any(f"{name}=" in value for name in PARAMETER_NAMES)
    )


def offences(path: Path, root: Path = SOURCE) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    docstrings = _docstrings(tree)
    in_vllm_adapter = path.is_relative_to(root / "engines" / "vllm")
    found: list[str] = []
    statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
    for statement in statements:
        for node in ast.iter_child_nodes(statement):
            for inner in ast.walk(node):
                if isinstance(inner, ast.stmt):
                    continue  # nested statements are visited on their own
                where = f"{path.relative_to(root)}:{getattr(inner, 'lineno', 0)}"
                if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                    if id(inner) in docstrings or not _names_a_strategy(inner.value):
                        continue
                    if inner.value in VLLM_METHODS and _mentions_method(statement):
                        continue  # vLLM's method name, e.g. section["method"] = "ngram"
                    if in_vllm_adapter and inner.value.lower() in VLLM_METHODS:
                        continue  # the vLLM adapter's own vocabulary
                    if inner.value in OTHER_VOCABULARIES.get(path.relative_to(root), ()):
                        continue
                    found.append(f"{where}: {inner.value!r}")
                elif isinstance(inner, ast.Name) and inner.id in CLASS_NAMES | PARAMETER_NAMES:
                    found.append(f"{where}: {inner.id}")
                elif (
                    isinstance(inner, ast.Attribute) and inner.attr in CLASS_NAMES | PARAMETER_NAMES
                ):
                    found.append(f"{where}: .{inner.attr}")
                elif isinstance(inner, ast.keyword) and inner.arg in PARAMETER_NAMES:
                    found.append(f"{where}: {inner.arg}=")
                elif isinstance(inner, ast.alias) and inner.name in CLASS_NAMES:
                    found.append(f"{where}: import {inner.name}")
    return sorted(set(found))


def core_modules() -> list[Path]:
    return sorted(p for p in SOURCE.rglob("*.py") if p not in ALLOWED_FILES)


def test_the_core_names_no_strategy_outside_the_known_names_table() -> None:
    assert SOURCE / "cli" / "generate.py" in core_modules()  # the scan sees the core
    found = [line for path in core_modules() for line in offences(path)]
    assert not found, (
        "the core names a built-in strategy; ask the strategy through a hook of "
        "sage/llm/hookspecs.py or a parameter declaration instead:\n" + "\n".join(found)
    )


def test_the_one_default_is_a_known_strategy() -> None:
    assert any(known.name == DEFAULT_STRATEGY for known in KNOWN_STRATEGIES)


@pytest.mark.parametrize(
    ("code", "caught"),
    [
        ('x = "ngram"', True),
        ('get_strategy("draft:draft_model_id=m")', True),
        ("if name in ('draft', 'dynamic'): pass", True),
        ("from sage.llm import NgramStrategy", True),
        ("s = NgramStrategy(n=3)", True),
        ("getattr(strategy, 'draft_model_id', None)", True),
        ('section["method"] = "ngram"', False),  # vLLM's method
        ('def f():\n    """Uses ngram and "draft" in prose."""\n', False),
        ('msg = "a draft model proposes"', False),
    ],
)
def test_the_check_catches_names_and_spares_prose(tmp_path: Path, code: str, caught: bool) -> None:
    """The check itself can fail: each snippet is judged as the core's code would be."""
    module = tmp_path / "snippet.py"
    module.write_text(code + "\n")
    assert bool(offences(module, tmp_path)) is caught
