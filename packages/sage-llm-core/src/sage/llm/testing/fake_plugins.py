"""Fake plugin distributions made on disk, for testing code that discovers strategies.

``plugins.add(...)`` writes a module and a ``*.dist-info`` folder (METADATA, entry_points.txt)
into a directory, exactly what pip would install, and points :mod:`sage.llm.discovery` at the
fake distributions only, so whatever else is installed does not leak into the test::

    def test_something(tmp_path, monkeypatch):
        with fake_plugins(tmp_path, monkeypatch) as plugins:
            plugins.add("my-dist", {"mine": "my_mod:Mine"}, SOURCE, module="my_mod")
            assert get_strategy("mine")
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, PathDistribution
from pathlib import Path

import pytest

from sage.llm import discovery, registry

__all__ = ["FakePlugins", "fake_plugins"]


@dataclass
class FakePlugins:
    root: Path
    monkeypatch: pytest.MonkeyPatch
    dists: list[PathDistribution] = field(default_factory=list)
    modules: set[str] = field(default_factory=set)
    sources: dict[str, str] = field(default_factory=dict)

    def add(
        self,
        dist_name: str,
        entry_points: dict[str, str],
        source: str = "",
        *,
        module: str | None = None,
        aliases: dict[str, str] | None = None,
        version: str = "1.0.0",
        requires: tuple[str, ...] = ("sage-llm-core>=1.0,<2",),
    ) -> PathDistribution:
        site = self.root / f"site{len(self.dists)}"
        site.mkdir()
        if module:
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            self.modules.add(module)
            self.sources[module] = source
            self.monkeypatch.syspath_prepend(str(site))
        info = site / f"{dist_name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        meta = ["Metadata-Version: 2.1", f"Name: {dist_name}", f"Version: {version}"]
        meta += [f"Requires-Dist: {r}" for r in requires]
        (info / "METADATA").write_text("\n".join(meta) + "\n")
        lines = ["[sage.llm.speculative]"] + [f"{k} = {v}" for k, v in entry_points.items()]
        if aliases:
            lines += ["", "[sage.llm.speculative.aliases]"]
            lines += [f"{k} = {v}" for k, v in aliases.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        dist = PathDistribution(info)
        self.dists.append(dist)
        registry.reset()
        return dist

    def entry_points(self, *, group: str) -> list[EntryPoint]:
        """Stands in for ``importlib.metadata.entry_points`` inside sage.llm.discovery."""
        return [ep for d in self.dists for ep in d.entry_points if ep.group == group]

    def cleanup(self) -> None:
        registry.reset()
        for name in self.modules:
            sys.modules.pop(name, None)


@contextmanager
def fake_plugins(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlugins]:
    """Point discovery at fake distributions made under ``root`` (and nothing else)."""
    fake = FakePlugins(root, monkeypatch)
    monkeypatch.setattr(discovery, "entry_points", fake.entry_points)
    for var in (discovery.PLUGINS_ENV, discovery.STRICT_ENV):
        monkeypatch.delenv(var, raising=False)
    registry.reset()
    try:
        yield fake
    finally:
        fake.cleanup()
