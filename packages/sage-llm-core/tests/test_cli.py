"""``sage-llm strategies list|show`` output, including failed and duplicate plugins."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from sage.llm.cli.main import cli, main
from sage.llm.testing.fake_plugins import FakePlugins


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_list_json_reports_ok_and_failed(echo: FakePlugins) -> None:
    echo.add("broken-dist", {"broken": "broken_plugin:B"}, "1/0\n", module="broken_plugin")
    rows = {row["name"]: row for row in json.loads(_run("strategies", "list", "--json"))}
    assert set(rows) == {"echo", "broken"}
    for row in rows.values():
        assert {"name", "distribution", "version", "target", "status", "error"} <= set(row)
    assert rows["echo"]["status"] == "ok"
    assert rows["echo"]["target"] == "echo_plugin:EchoStrategy"
    assert rows["echo"]["aliases"] == ["echo-alias"]
    assert rows["echo"]["error"] is None
    assert rows["broken"]["status"] == "failed"
    assert "ZeroDivisionError" in rows["broken"]["error"]


def test_list_table_shows_the_failure_reason(echo: FakePlugins) -> None:
    echo.add("broken-dist", {"broken": "broken_plugin:B"}, "1/0\n", module="broken_plugin")
    out = _run("strategies", "list")
    assert "echo-dist" in out
    assert "failed" in out
    assert "ZeroDivisionError" in out


def test_show_lists_parameters_with_defaults_and_docs(echo: FakePlugins) -> None:
    data = json.loads(_run("strategies", "show", "echo-alias", "--json"))
    assert data["name"] == "echo"
    params = {p["name"]: p for p in data["parameters"]}
    assert params["k"] == {
        "name": "k",
        "type": "int",
        "required": False,
        "default": 4,
        "doc": "tokens per step",
        "ge": 1,
        "le": 16,
        "choices": None,
        "draft_model": False,
    }
    assert params["label"]["type"] == "str | None"
    table = _run("strategies", "show", "echo")
    assert "tokens per step" in table
    assert ">= 1, <= 16" in table


def test_unknown_name_is_one_clear_line_and_exit_2(
    echo: FakePlugins, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["sage-llm", "strategies", "show", "ecko"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: unknown speculative strategy 'ecko'.")
    assert "Traceback" not in err
