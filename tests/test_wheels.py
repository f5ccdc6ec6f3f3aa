"""Built wheels in fresh venvs: what a user gets from ``pip install``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from conftest import EXAMPLE_PLUGIN, wheel

if TYPE_CHECKING:
    from conftest import Venv


def test_dynamic_alone_pulls_in_core_and_resolves_every_name(dynamic_only: Venv) -> None:
    out = dynamic_only.python(
        """
        from importlib.metadata import version
        from sage.llm import get_strategy
        a = get_strategy("dynamic-lookahead", min_tokens=2, max_tokens=4)
        b = get_strategy("dynamic")
        print(version("sage-llm-core"), version("sage-llm-strategy-ngram"))
        print(type(a).__name__, a.to_string(), type(b) is type(a))
        """
    ).stdout.split()
    assert out[2:] == [
        "DynamicLookaheadStrategy",
        "dynamic-lookahead:min_tokens=2,max_tokens=4",
        "True",
    ]


def test_missing_builtins_get_install_hints(dynamic_only: Venv) -> None:
    proc = dynamic_only.python(
        "from sage.llm import get_strategy; get_strategy('draft-model')", check=False
    )
    assert proc.returncode != 0
    assert "UnknownStrategyError" in proc.stderr
    assert "pip install sage-llm-strategy-draft" in proc.stderr
    proc = dynamic_only.python("from sage.llm import DraftModelStrategy", check=False)
    assert "StrategyNotInstalledError" in proc.stderr
    assert "pip install sage-llm-strategy-draft" in proc.stderr


def test_core_alone(core_only: Venv) -> None:
    assert core_only.strategies_json() == {}
    for module in ("sage.llm", "sage.llm.engines.vllm", "sage.llm.engines.vllm.speculative"):
        for cls, dist in [
            ("NgramStrategy", "sage-llm-strategy-ngram"),
            ("DraftModelStrategy", "sage-llm-strategy-draft"),
            ("DynamicLookaheadStrategy", "sage-llm-strategy-dynamic"),
        ]:
            proc = core_only.python(f"from {module} import {cls}", check=False)
            assert proc.returncode != 0
            assert f"pip install {dist}" in proc.stderr, proc.stderr
    proc = core_only.sage_llm("strategies", "show", "ngram", check=False)
    assert proc.returncode == 2
    assert "pip install sage-llm-strategy-ngram" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_import_stays_light(core_only: Venv, full: Venv) -> None:
    for env in (core_only, full):
        out = env.python(
            """
            import json, sys
            import sage.llm
            heavy = [m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "vllm")]
            print(json.dumps(heavy))
            """
        ).stdout
        assert json.loads(out) == []


def test_all_strategies_and_the_seed_api(full: Venv) -> None:
    rows = full.strategies_json()
    assert {n: r["status"] for n, r in rows.items()} == {
        "ngram": "ok",
        "draft": "ok",
        "dynamic-lookahead": "ok",
        "my-custom": "ok",
        "my-lookup": "ok",
    }
    assert rows["my-custom"]["distribution"] == "my-sage-strategy"
    out = full.python(
        """
        from sage.llm import NgramStrategy, DraftModelStrategy, DynamicLookaheadStrategy
        from sage.llm.engines.vllm import NgramStrategy as N2
        from sage.llm.engines.vllm.speculative import DynamicLookaheadStrategy as D2
        from sage.llm.engines.vllm.speculative import SpeculativeStrategy
        from sage.llm import get_strategy, build_engine_args
        assert N2 is NgramStrategy and D2 is DynamicLookaheadStrategy
        s = get_strategy("ngram", n=5, num_speculative_tokens=4)
        assert isinstance(s, NgramStrategy) and isinstance(s, SpeculativeStrategy)
        d = DraftModelStrategy(
            draft_model_id="Qwen/Qwen2.5-0.5B-Instruct",
            num_speculative_tokens=5,
            auto_download=True,
        )
        print(build_engine_args(s)["speculative_config"]["prompt_lookup_max"], d.to_string())
        m = get_strategy("my-custom", k=3)
        spec = build_engine_args(m)["speculative_config"]
        print(type(m).__name__, spec["num_speculative_tokens"])
        """
    ).stdout.split()
    assert out == ["5", "draft:draft_model_id=Qwen/Qwen2.5-0.5B-Instruct", "MyCustomStrategy", "3"]


def test_show_prints_parameters(full: Venv) -> None:
    data = json.loads(full.sage_llm("strategies", "show", "draft-model", "--json").stdout)
    params = {p["name"]: p for p in data["parameters"]}
    assert params["draft_model_id"]["required"] is True
    assert params["num_speculative_tokens"]["default"] == 5
    assert "Tokens the draft proposes" in params["num_speculative_tokens"]["doc"]


def test_broken_duplicate_and_incompatible_plugins(messy: Venv) -> None:
    rows = messy.strategies_json()
    assert rows["broken"]["status"] == "failed"
    assert rows["broken"]["distribution"] == "broken-plugin"
    assert "a_module_that_does_not_exist" in rows["broken"]["error"]
    assert "broken_plugin/__init__.py:2" in rows["broken"]["error"]
    assert rows["future"]["status"] == "incompatible"
    assert "needs sage-llm-core>=2.0" in rows["future"]["error"]
    assert rows["dynamic-lookahead"]["status"] == "ok"
    raw = json.loads(messy.sage_llm("strategies", "list", "--json").stdout)
    ngram = {r["distribution"]: r["conflicts"] for r in raw if r["name"] == "ngram"}
    assert ngram == {
        "ngram-fork": ["sage-llm-strategy-ngram"],
        "sage-llm-strategy-ngram": ["ngram-fork"],
    }
    table = messy.sage_llm("strategies", "list").stdout
    assert "failed" in table
    assert "incompatible" in table

    proc = messy.python("from sage.llm import get_strategy; get_strategy('ngram')", check=False)
    assert "AmbiguousStrategyError" in proc.stderr
    assert "ngram-fork" in proc.stderr
    assert "sage-llm-strategy-ngram" in proc.stderr
    out = messy.python(
        """
        from sage.llm import get_strategy
        print(type(get_strategy("sage-llm-strategy-ngram:ngram:n=3")).__name__)
        print(type(get_strategy("ngram-fork:ngram")).__name__)
        print(get_strategy("dynamic").to_string())
        """
    ).stdout.split()
    assert out == ["NgramStrategy", "ForkedNgram", "dynamic-lookahead"]


def test_strict_mode_and_plugin_filter(messy: Venv) -> None:
    proc = messy.sage_llm("strategies", "list", env={"SAGE_LLM_STRICT_PLUGINS": "1"}, check=False)
    assert proc.returncode == 2
    assert "could not be loaded" in proc.stderr
    rows = messy.strategies_json(env={"SAGE_LLM_PLUGINS": "dynamic-lookahead,draft"})
    assert sorted(rows) == ["draft", "dynamic-lookahead"]
    rows = messy.strategies_json(env={"SAGE_LLM_PLUGINS": "sage-llm-strategy-dynamic"})
    assert sorted(rows) == ["dynamic-lookahead"]
    assert messy.strategies_json(env={"SAGE_LLM_PLUGINS": "dynamic"}) == {}  # an alias: no
    assert messy.strategies_json(env={"SAGE_LLM_PLUGINS": ""}) == {}


def test_example_project_passes_its_tests_from_its_wheel(full: Venv) -> None:
    """The project docs/plugin-authoring.md shows, built and installed as a user would."""
    full.pip_install(f"{wheel('sage-llm-core')}[testing]")
    proc = full.run(
        str(full.bin / "python"),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(EXAMPLE_PLUGIN / "tests"),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout
