"""``sage-llm bench`` end to end on a fake engine: table, JSON, plot, exit status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sage.llm.bench import methods as methods_module
from sage.llm.cli.main import cli
from sage.llm.testing.fake_plugins import FakePlugins


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine: Any) -> Path:
    monkeypatch.setattr(methods_module, "load_engine", lambda path, *args, **kwargs: engine)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return model


def _bench(model: Path, out: Path, *strategies: str) -> tuple[int, str]:
    args = ["bench", "--model", str(model), "--no-peers", "-n", "1", "-c", "qa", "-c", "rag"]
    args += ["--max-tokens", "5", "--out", str(out)]
    for spec in strategies:
        args += ["--strategy", spec]
    result = CliRunner().invoke(cli, args)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_bench_writes_table_json_and_plot(
    echo: FakePlugins, fake_engine: Path, tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "results"
    code, output = _bench(fake_engine, out, "echo:k=3")
    assert code == 0, output
    assert "vs transformers" in output
    (json_path,) = out.glob("bench-*.json")
    (png_path,) = out.glob("bench-*.png")
    assert png_path.read_bytes()[:4] == b"\x89PNG"
    data = json.loads(json_path.read_text())
    assert data["methods"] == ["plain", "echo:k=3"]
    assert {r["category"] for r in data["summary"]} == {"qa", "rag", "all"}
    assert len(data["records"]) == 4
    assert data["machine"]["cpu_count"]


def test_mismatch_with_plain_greedy_fails_the_run(
    echo: FakePlugins, fake_engine: Path, tmp_path: Path
) -> None:
    code, output = _bench(fake_engine, tmp_path / "r", "echo:k=3", "echo:k=7")
    assert code == 1
    assert "FAILED" in output
    assert "echo:k=7 (2 of 2)" in output
    assert "echo:k=3 (" not in output


def test_low_precision_reports_differences_without_failing(
    echo: FakePlugins, fake_engine: Path, tmp_path: Path, engine: Any
) -> None:
    engine.dtype = "torch.bfloat16"
    code, output = _bench(fake_engine, tmp_path / "r", "echo:k=3", "echo:k=7")
    assert code == 0, output
    assert "FAILED" not in output
    assert "bfloat16: outputs that differ from plain greedy are reported" in output
    assert "echo:k=7 2/2" in output
    saved = json.loads(next((tmp_path / "r").glob("*.json")).read_text())
    assert saved["dtype"] == "bfloat16"
    assert saved["exact"] is False
    overall = {r["method"]: r for r in saved["summary"] if r["category"] == "all"}
    assert overall["echo:k=7"]["mismatches"] == 2
    assert overall["echo:k=7"]["first_mismatch"] is not None


def test_unknown_strategy_fails_before_loading(echo: FakePlugins, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", "--strategy", "nope", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "nope" in str(result.exception)


def test_without_matplotlib_the_plot_is_skipped_with_a_hint(
    echo: FakePlugins, fake_engine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out = tmp_path / "r"
    code, output = _bench(fake_engine, out, "echo:k=3")
    assert code == 0, output
    assert "pip install matplotlib" in output
    assert list(out.glob("bench-*.json"))
    assert not list(out.glob("bench-*.png"))


def test_logged_output_gets_a_line_per_run(
    echo: FakePlugins, fake_engine: Path, tmp_path: Path
) -> None:
    # CliRunner's output is not a terminal: a line per finished run instead of a silent bar.
    code, output = _bench(fake_engine, tmp_path / "r", "echo:k=3")
    assert code == 0, output
    lines = [line for line in output.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] + "]" for line in lines] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert all("tokens/s" in line for line in lines)
    data = json.loads(next((tmp_path / "r").glob("bench-*.json")).read_text())
    assert set(data["host_load"]) == {"other_share", "load_average", "cores", "busy"}
