"""The plugin-authoring page shows the example project's files as they are, every hook, and
files enough to build the plugin from the page alone."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from conftest import ROOT, build_wheel, make_venv, wheel

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


EXAMPLE = "examples/sage-llm-strategy-lookahead-example/"


def test_page_files_build_a_plugin_that_resolves(tmp_path: Path) -> None:
    """The files the page prints, and nothing else, are a project that builds and works."""
    bodies = _snippets().snippet_bodies(PAGE.read_text())
    project = tmp_path / "my-sage-strategy"
    for path, body in bodies.items():
        assert path.startswith(EXAMPLE), path
        target = project / path.removeprefix(EXAMPLE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    built = build_wheel(project, tmp_path / "wheel")
    env = make_venv(tmp_path / "venv")
    env.pip_install(wheel("sage-llm-core"), built)
    rows = env.strategies_json()
    assert {name: rows[name]["status"] for name in ("my-custom", "my-lookup")} == {
        "my-custom": "ok",
        "my-lookup": "ok",
    }
    assert "make_proposer" in rows["my-custom"]["hooks"]
    out = env.python(
        """
        from sage.llm import get_strategy
        from sage.llm.proposing import Proposer, ProposerContext
        for spec in ("my-custom:k=2", "ml:k=2"):
            proposer = get_strategy(spec).make_proposer(ProposerContext())
            assert isinstance(proposer, Proposer)
            proposer.start([5, 6, 7, 8, 5, 6])
            print(proposer.propose([5, 6, 7, 8, 5, 6], max_tokens=4).token_ids)
        """
    ).stdout.split("\n")
    assert out[:2] == ["[7, 8]", "[7, 8]"]


def test_doc_links_resolve() -> None:
    """Every relative link and image in docs/ and README.md names a file that exists and, for
    an anchor, a heading of that file (pages move sections into docs/notes/)."""
    spec = importlib.util.spec_from_file_location(
        "check_doc_links", ROOT / "scripts" / "check_doc_links.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.broken(ROOT) == []
