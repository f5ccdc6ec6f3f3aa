"""The plugin-authoring page shows the example project's files as they are, and every hook."""

from __future__ import annotations

import importlib.util
import re

from conftest import ROOT

from sage.llm.hookspecs import SPEC_NAMES

PAGE = ROOT / "docs" / "plugin-authoring.md"


def _snippets():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "doc_snippets", ROOT / "scripts" / "doc_snippets.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_page_snippets_are_the_example_files() -> None:
    module = _snippets()
    text = PAGE.read_text()
    paths = module.snippets(text)
    assert "examples/sage-llm-strategy-lookahead-example/pyproject.toml" in paths
    assert len(paths) >= 4
    assert module.render(text) == text, "run: python scripts/doc_snippets.py"


def test_page_lists_every_hook() -> None:
    listed = set(re.findall(r"^\| `(\w+)\(", PAGE.read_text(), re.M))
    assert listed == set(SPEC_NAMES)
