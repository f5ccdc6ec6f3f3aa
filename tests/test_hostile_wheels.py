"""Issue 10 from the user's side: the built wheels next to hostile distributions, fresh venv."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Venv


def test_listing_survives_and_reports_each_hostile_plugin(hostile: Venv) -> None:
    proc = hostile.sage_llm("strategies", "list", "--json")
    rows = {(r["name"], r["distribution"]): r for r in json.loads(proc.stdout)}  # only JSON
    assert rows[("ngram", "sage-llm-strategy-ngram")]["status"] == "ok"
    assert "is not 'module:Class'" in rows[("bad", "bad-value")]["error"]
    assert "SystemExit(3)" in rows[("exiter", "exiter")]["error"]
    assert "alias 'ngram' is ignored" in rows[("squat", "squatter")]["warnings"][0]
    assert "chatty plugin says hello" in proc.stderr


def test_seed_imports_and_names_belong_to_the_builtins(hostile: Venv) -> None:
    out = hostile.python(
        """
        import sys
        from typing import Any
        from sage.llm import NgramStrategy, DraftModelStrategy, SpeculativeStrategy
        from sage.llm import build_engine_args, get_strategy

        class MyCustomStrategy(SpeculativeStrategy):
            def __init__(self, **kwargs):
                self.config = kwargs
            def apply(self, engine_config: dict[str, Any]) -> None:
                engine_config["num_speculative_tokens"] = 5

        import warnings
        warnings.simplefilter("ignore")
        args = build_engine_args(MyCustomStrategy())
        print(NgramStrategy.__module__, type(get_strategy("ngram")).__module__)
        print(args["speculative_config"]["num_speculative_tokens"])
        print(sorted(m for m in ("squat_mod", "exiter_mod", "chatty_mod") if m in sys.modules))
        """
    ).stdout.split("\n")
    assert out[0] == "sage_llm_strategy_ngram.strategy sage_llm_strategy_ngram.strategy"
    assert out[1] == "5"
    assert out[2] == "[]"  # resolving and naming imported no other plugin


def test_json_outputs_stay_clean(hostile: Venv) -> None:
    for args in (
        ("strategies", "show", "chatty", "--json"),
        ("vllm-args", "--strategy", "chatty", "--json"),
    ):
        proc = hostile.sage_llm(*args)
        json.loads(proc.stdout)
        assert "chatty" in proc.stderr


def test_allow_list_and_strict_mode(hostile: Venv) -> None:
    rows = hostile.strategies_json(env={"SAGE_LLM_PLUGINS": "ngram"})
    assert list(rows) == ["ngram"]
    assert rows["ngram"]["distribution"] == "sage-llm-strategy-ngram"
    proc = hostile.sage_llm("strategies", "list", env={"SAGE_LLM_PLUGINS": ""})
    assert "installed, but SAGE_LLM_PLUGINS=''" in proc.stdout
    proc = hostile.sage_llm(
        "vllm-args", "--strategy", "ngram", env={"SAGE_LLM_STRICT_PLUGINS": "1"}, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: strategy 'bad' from bad-value")
    assert "Traceback" not in proc.stderr
