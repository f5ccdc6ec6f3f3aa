"""Plugin validation against the hookspec, the seed's custom strategy, lazy imports."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import warnings

import pytest

import sage.llm
from sage.llm import (
    StrategyLoadError,
    StrategyNotInstalledError,
    build_engine_args,
    get_strategy,
    list_strategies,
)
from sage.llm.registry import STATUS_FAILED
from sage.llm.testing.fake_plugins import FakePlugins

SEED_CUSTOM = '''
from sage.llm.engines.vllm.speculative import SpeculativeStrategy
from typing import Any

class MyCustomStrategy(SpeculativeStrategy):
    """自定义 speculative decoding 策略"""

    def __init__(self, **kwargs):
        self.config = kwargs

    def apply(self, engine_config: dict[str, Any]) -> None:
        engine_config["num_speculative_tokens"] = self._compute_optimal_k()

    def _compute_optimal_k(self) -> int:
        return 5
'''


def test_seed_custom_strategy_works_with_one_entry_point(plugins: FakePlugins) -> None:
    plugins.add(
        "my-plugin", {"my-name": "my_plugin:MyCustomStrategy"}, SEED_CUSTOM, module="my_plugin"
    )
    strategy = get_strategy("my-name", alpha=0.5)
    assert type(strategy).__name__ == "MyCustomStrategy"
    assert strategy.to_dict() == {"alpha": 0.5}
    assert strategy.to_string() == "my-name:alpha=0.5"
    assert get_strategy("my-name:alpha=0.5").to_dict() == {"alpha": 0.5}
    with pytest.warns(DeprecationWarning, match="legacy top-level engine argument"):
        args = build_engine_args(strategy, {"model": "m"})
    assert args == {
        "model": "m",
        "speculative_config": {"num_speculative_tokens": 5, "method": "ngram"},
    }


def _reason(plugins: FakePlugins, source: str) -> str:
    plugins.add("bad-dist", {"bad": "bad_plugin:Bad"}, source, module="bad_plugin", version="2.1")
    info = {i.name: i for i in list_strategies()}["bad"]
    assert info.status == STATUS_FAILED
    with pytest.raises(StrategyLoadError, match=r"'bad' from bad-dist 2\.1"):
        get_strategy("bad")
    return info.error or ""


def test_hook_with_wrong_argument_names_the_plugin_and_hook(plugins: FakePlugins) -> None:
    reason = _reason(
        plugins,
        """
        from sage.llm import SpeculativeStrategy
        class Bad(SpeculativeStrategy):
            def apply(self, config, extra):
                pass
        """,
    )
    assert "'apply'" in reason
    assert "extra" in reason
    assert "apply(self, engine_config" in reason  # the contract is quoted


def test_missing_required_hook(plugins: FakePlugins) -> None:
    reason = _reason(
        plugins,
        """
        from sage.llm import SpeculativeStrategy
        class Bad(SpeculativeStrategy):
            pass
        """,
    )
    assert "does not implement the required hook(s) apply" in reason


def test_misspelled_marked_hook(plugins: FakePlugins) -> None:
    reason = _reason(
        plugins,
        """
        from sage.llm import SpeculativeStrategy, hookimpl
        class Bad(SpeculativeStrategy):
            def apply(self, engine_config):
                pass
            @hookimpl
            def make_propser(self, context):
                pass
        """,
    )
    assert "unknown hook 'make_propser'" in reason


def test_not_a_strategy_class(plugins: FakePlugins) -> None:
    reason = _reason(plugins, "class Bad:\n    def apply(self, engine_config): pass\n")
    assert "does not derive from sage.llm.SpeculativeStrategy" in reason


def test_declared_name_must_match_entry_point(plugins: FakePlugins) -> None:
    reason = _reason(
        plugins,
        """
        from sage.llm import SpeculativeStrategy
        class Bad(SpeculativeStrategy):
            name = "other"
            def apply(self, engine_config):
                pass
        """,
    )
    assert "name = 'other'" in reason


def test_seed_class_imports_resolve_through_entry_points(echo: FakePlugins) -> None:
    from sage.llm import EchoStrategy  # type: ignore[attr-defined]
    from sage.llm.engines.vllm import EchoStrategy as FromEngine  # type: ignore[attr-defined]
    from sage.llm.engines.vllm.speculative import (  # type: ignore[attr-defined]
        EchoStrategy as FromModule,
    )

    assert EchoStrategy is FromEngine is FromModule
    assert EchoStrategy is type(get_strategy("echo"))


@pytest.mark.parametrize(
    ("class_name", "distribution"),
    [
        ("NgramStrategy", "sage-llm-strategy-ngram"),
        ("DraftModelStrategy", "sage-llm-strategy-draft"),
        ("DynamicLookaheadStrategy", "sage-llm-strategy-dynamic"),
    ],
)
@pytest.mark.parametrize(
    "module", ["sage.llm", "sage.llm.engines.vllm", "sage.llm.engines.vllm.speculative"]
)
def test_missing_seed_class_names_the_distribution(
    plugins: FakePlugins, class_name: str, distribution: str, module: str
) -> None:
    mod = importlib.import_module(module)
    with pytest.raises(StrategyNotInstalledError, match=f"pip install {distribution}"):
        getattr(mod, class_name)
    with pytest.raises(ImportError, match=distribution):
        exec(f"from {module} import {class_name}", {})


def test_unknown_attribute_is_an_attribute_error(plugins: FakePlugins) -> None:
    assert not hasattr(sage.llm, "NoSuchThing")


def test_import_is_light() -> None:
    code = (
        "import json, sys; import sage.llm; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('torch', 'transformers', 'vllm', 'numpy', 'rich', 'click'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_no_deprecation_warning_for_modern_strategies(echo: FakePlugins) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        args = build_engine_args("echo:k=3", {"model": "m"})
    assert args == {
        "model": "m",
        "speculative_config": {"method": "ngram", "num_speculative_tokens": 3},
    }
