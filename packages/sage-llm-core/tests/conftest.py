"""Fixtures: fake plugin distributions, so core tests need no installed strategy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sage.llm.testing.fake_plugins import FakePlugins, fake_plugins


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlugins]:
    with fake_plugins(tmp_path, monkeypatch) as fake:
        yield fake


GOOD_PLUGIN = '''
from dataclasses import dataclass
from typing import ClassVar
from sage.llm import SpeculativeStrategy, InvalidParameterError, param

@dataclass(frozen=True, kw_only=True)
class EchoStrategy(SpeculativeStrategy):
    """Echo: a test strategy."""
    name: ClassVar[str] = "echo"
    k: int = param(4, doc="tokens per step", ge=1, le=16)
    label: str | None = param(None, doc="free text")
    greedy: bool = param(True, doc="a flag")
    ratio: float = param(0.5, doc="a ratio", ge=0, le=1)

    def validate(self):
        if self.label == "bad":
            raise InvalidParameterError(self.name, "label may not be 'bad'", "label")

    def apply(self, engine_config):
        self.speculative_config(engine_config).update(method="ngram", num_speculative_tokens=self.k)
'''


@pytest.fixture
def echo(plugins: FakePlugins) -> FakePlugins:
    plugins.add(
        "echo-dist",
        {"echo": "echo_plugin:EchoStrategy"},
        GOOD_PLUGIN,
        module="echo_plugin",
        aliases={"echo-alias": "echo"},
    )
    return plugins
