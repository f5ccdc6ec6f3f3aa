"""The cheap metadata reader finds what importlib.metadata finds, the same way."""

from __future__ import annotations

import sys

import pytest

from sage.llm import discovery
from sage.llm._metadata import _with_importlib, parse_entry_points, plugin_distributions
from sage.llm.testing.fake_plugins import FakePlugins

GROUPS = (discovery.GROUP, discovery.ALIAS_GROUP)


def test_reader_agrees_with_importlib_metadata(
    plugins: FakePlugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins.add("one-dist", {"one": "one_mod:One"}, "", module="one_mod", aliases={"uno": "one"})
    plugins.add(
        "two_dist",
        {"two": "two_mod:Two [extra]", "bad": "not :: valid"},
        "",
        module="two_mod",
        requires=("sage-llm-core>=1.0,<2", "numpy; extra == 'x'"),
    )
    plugins.add("one-dist", {"shadowed": "x:Y"}, version="0.9")  # later on the path: not seen
    for site in plugins.search_path:
        monkeypatch.syspath_prepend(site)
    mine = {d.name: d for d in plugin_distributions(GROUPS) if d.name in ("one-dist", "two_dist")}
    theirs = {d.name: d for d in _with_importlib(GROUPS) if d.name in ("one-dist", "two_dist")}
    assert mine == theirs
    assert mine["one-dist"].version == "1.0.0"  # first on sys.path wins; 0.9 is shadowed
    assert mine["two_dist"].requires == ("sage-llm-core>=1.0,<2", "numpy; extra == 'x'")
    assert sys.path[0] in plugins.search_path


def test_entry_points_format() -> None:
    text = "# comment\n[console_scripts]\na = b:c\n\n[sage.llm.speculative]\nx = m:C\n; other\n"
    assert parse_entry_points(text) == [
        ("console_scripts", "a", "b:c"),
        ("sage.llm.speculative", "x", "m:C"),
    ]
