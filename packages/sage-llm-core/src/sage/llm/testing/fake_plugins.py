"""Plugin distributions built as real wheels on disk, for testing code that discovers strategies.

``plugins.add(...)`` builds a wheel (module, METADATA, WHEEL, entry_points.txt, RECORD) with
:func:`build_wheel`, installs it into its own directory the way pip does (a wheel is a zip that
is unpacked into site-packages), and points :mod:`sage.llm.discovery` at these distributions
only, so whatever else is installed does not leak into the test. The same wheels can be
``pip install``-ed into a fresh virtualenv (the cross-package tests do)::

    def test_something(tmp_path, monkeypatch):
        with fake_plugins(tmp_path, monkeypatch) as plugins:
            plugins.add("my-dist", {"mine": "my_mod:Mine"}, SOURCE, module="my_mod")
            assert get_strategy("mine")
"""

from __future__ import annotations

import base64
import hashlib
import sys
import textwrap
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PathDistribution
from pathlib import Path

import pytest

from sage.llm import discovery, registry

__all__ = ["FakePlugins", "build_wheel", "fake_plugins"]


def build_wheel(
    out_dir: Path,
    dist_name: str,
    entry_points: Mapping[str, str],
    source: str = "",
    *,
    module: str | None = None,
    aliases: Mapping[str, str] | None = None,
    version: str = "1.0.0",
    requires: tuple[str, ...] = ("sage-llm-core>=1.0,<2",),
    groups: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Write ``<dist>-<version>-py3-none-any.whl`` into ``out_dir`` and return its path.

    ``entry_points`` are strategies (``sage.llm.speculative``); ``groups`` adds entry points of
    other groups (``{"sage.llm.control_plane": {"exporter": "mod:Exporter"}}``). Entry-point
    values are written as given, malformed ones included: hostile distributions are what this
    is for.
    """
    stem = f"{dist_name.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {dist_name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    lines = []
    if entry_points or not groups:
        lines += ["[sage.llm.speculative]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    if aliases:
        lines += ["", "[sage.llm.speculative.aliases]"]
        lines += [f"{k} = {v}" for k, v in aliases.items()]
    for group, named in (groups or {}).items():
        lines += ["", f"[{group}]"] + [f"{k} = {v}" for k, v in named.items()]
    files: dict[str, str] = {}
    if module:
        files[f"{module}.py"] = textwrap.dedent(source)
    files[f"{info}/METADATA"] = "\n".join(meta) + "\n"
    files[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: sage.llm.testing\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
    )
    files[f"{info}/entry_points.txt"] = "\n".join(lines) + "\n"
    record = []
    for path, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{path},sha256={b64},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


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
        groups: dict[str, dict[str, str]] | None = None,
    ) -> PathDistribution:
        index = len(self.dists)
        wheel = build_wheel(
            self.root / f"wheels{index}",
            dist_name,
            entry_points,
            source,
            module=module,
            aliases=aliases,
            version=version,
            requires=requires,
            groups=groups,
        )
        site = self.root / f"site{index}"
        with zipfile.ZipFile(wheel) as zf:  # what installing a pure-Python wheel does
            zf.extractall(site)
        if module:
            self.modules.add(module)
            self.sources[module] = source
            self.monkeypatch.syspath_prepend(str(site))
        dist = PathDistribution(site / f"{dist_name.replace('-', '_')}-{version}.dist-info")
        self.dists.append(dist)
        self.monkeypatch.setattr(discovery, "search_path", self.search_path)
        registry.reset()
        return dist

    @property
    def search_path(self) -> list[str]:
        """The folders the fake distributions were installed into, newest first."""
        return [str(d.locate_file("")) for d in reversed(self.dists)]

    def cleanup(self) -> None:
        registry.reset()
        for name in self.modules:
            sys.modules.pop(name, None)


@contextmanager
def fake_plugins(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlugins]:
    """Point discovery at fake distributions made under ``root`` (and nothing else)."""
    fake = FakePlugins(root, monkeypatch)
    monkeypatch.setattr(discovery, "search_path", [])
    for var in (discovery.PLUGINS_ENV, discovery.STRICT_ENV):
        monkeypatch.delenv(var, raising=False)
    registry.reset()
    try:
        yield fake
    finally:
        fake.cleanup()
