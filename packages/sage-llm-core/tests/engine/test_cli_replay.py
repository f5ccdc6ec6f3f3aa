"""``sage-llm replay`` on committed traces: the same summary as the older module command, and
strategies taking part through the contract (no names in the core)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from sage.llm.bench.replay import main
from sage.llm.cli.main import cli

TRACES = Path(__file__).resolve().parents[4] / "benchmarks" / "traces"
NGRAM = TRACES / "qwen2.5-coder-0.5b-specbench-5.json"
DRAFT = TRACES / "qwen2.5-coder-1.5b-draft-0.5b-fresh-25-26.json"


def replay(*args: str) -> str:
    result = CliRunner().invoke(cli, ["replay", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_command_and_its_module_alias_write_the_same_summary(tmp_path: Path) -> None:
    args = ["run", str(NGRAM), "--inner", "ngram:n=4,num_speculative_tokens=6", "--max-k", "4"]
    args += ["-s", "dynamic-lookahead", "--orders", "2"]
    printed = replay(*args, "--json", str(tmp_path / "cli.json"))
    assert main([*args, "--json", str(tmp_path / "module.json")]) == 0
    summary = json.loads((tmp_path / "cli.json").read_text())
    assert summary == json.loads((tmp_path / "module.json").read_text())
    assert "| dynamic-lookahead |" in printed
    assert set(summary["orders"]) == {"count", "dynamic-lookahead"}


def test_a_strategy_with_a_draft_model_replays_over_the_recorded_draft(tmp_path: Path) -> None:
    """--inner names a strategy whose draft-model parameter is required: the baselines run
    over the traces' draft; the draft strategy takes part through wrap_proposer (its fixed k),
    so it replays exactly as fixed-k does."""
    fixed = "draft:draft_model_id=recorded,num_speculative_tokens=2"
    replay(
        "run", str(DRAFT), "--inner", "draft", "--max-k", "3", "-s", fixed,
        "--json", str(tmp_path / "s.json"),
    )  # fmt: skip
    summary = json.loads((tmp_path / "s.json").read_text())
    for row in summary["speedup"].values():
        assert "hf-assisted:default" in row
        assert row[fixed] == row["fixed-2"]


def test_a_strategy_that_cannot_wrap_a_draft_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["replay", "run", str(DRAFT), "--inner", "draft", "--max-k", "2", "-s", "ngram"]
    )
    assert result.exit_code == 1
    assert "'ngram' cannot run around another proposer" in result.output
    assert "Traceback" not in result.output
