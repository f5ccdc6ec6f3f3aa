"""Resolving names: aliases, parameters, unknown and ambiguous names, broken and filtered
plugins."""

from __future__ import annotations

import sys

import pytest

from sage.llm import (
    AmbiguousStrategyError,
    InvalidParameterError,
    StrategyDisabledError,
    StrategyLoadError,
    StrategySpecError,
    UnknownStrategyError,
    get_strategy,
    get_strategy_class,
    list_strategies,
)
from sage.llm.registry import STATUS_FAILED, STATUS_INCOMPATIBLE, STATUS_OK
from sage.llm.testing.fake_plugins import FakePlugins


def test_get_strategy_by_name_with_parameters(echo: FakePlugins) -> None:
    strategy = get_strategy("echo", k=8, label="x")
    assert type(strategy).__name__ == "EchoStrategy"
    assert strategy.to_dict() == {"k": 8, "label": "x", "greedy": True, "ratio": 0.5}


def test_alias_resolves_to_the_canonical_class(echo: FakePlugins) -> None:
    assert get_strategy_class("echo-alias") is get_strategy_class("echo")
    assert get_strategy("echo-alias").strategy_name() == "echo"


def test_string_form_coerces_declared_types(echo: FakePlugins) -> None:
    strategy = get_strategy("echo:k=3,label=none,greedy=false,ratio=0.25")
    assert strategy.to_dict() == {"k": 3, "label": None, "greedy": False, "ratio": 0.25}
    assert get_strategy(strategy.to_string()).to_dict() == strategy.to_dict()


def test_keyword_parameters_override_the_string(echo: FakePlugins) -> None:
    assert get_strategy("echo:k=3", k=5).to_dict()["k"] == 5


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"k": 0}, r"parameter 'k' must be >= 1, got 0"),
        ({"k": 17}, r"parameter 'k' must be <= 16, got 17"),
        ({"k": "4"}, r"parameter 'k' must be int, got '4' \(str\)"),
        ({"k": True}, r"parameter 'k' must be int"),
        ({"ratio": 2}, r"parameter 'ratio' must be <= 1"),
        ({"label": "bad"}, r"label may not be 'bad'"),
        (
            {"nope": 1},
            r"unknown parameter\(s\) nope\. This strategy takes: k, label, greedy, ratio\.",
        ),
    ],
)
def test_invalid_parameters_name_what_is_wrong(
    echo: FakePlugins, params: dict, message: str
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        get_strategy("echo", **params)


def test_unparseable_string_value_is_a_clear_error(echo: FakePlugins) -> None:
    with pytest.raises(InvalidParameterError, match=r"parameter 'k' must be int, could not read"):
        get_strategy("echo:k=many")


@pytest.mark.parametrize("text", ["", "a:b:c:d=1:x", "echo:=3", "echo:k=1,k=2", "echo:k=1,x"])
def test_malformed_strategy_strings(echo: FakePlugins, text: str) -> None:
    with pytest.raises(StrategySpecError):
        get_strategy(text)


def test_distribution_prefix_without_such_strategy(echo: FakePlugins) -> None:
    with pytest.raises(UnknownStrategyError, match="unknown speculative strategy 'echo:k'"):
        get_strategy("echo:k")


def test_unknown_name_lists_available_and_suggests(echo: FakePlugins) -> None:
    with pytest.raises(UnknownStrategyError) as info:
        get_strategy("ecko")
    text = str(info.value)
    assert "Did you mean: 'echo'" in text
    assert "Installed strategies: echo, echo-alias." in text


@pytest.mark.parametrize(
    ("name", "distribution"),
    [
        ("ngram", "sage-llm-strategy-ngram"),
        ("draft-model", "sage-llm-strategy-draft"),
        ("dynamic", "sage-llm-strategy-dynamic"),
    ],
)
def test_builtin_name_not_installed_says_what_to_install(
    echo: FakePlugins, name: str, distribution: str
) -> None:
    with pytest.raises(UnknownStrategyError, match=f"pip install {distribution}"):
        get_strategy(name)


def test_no_plugins_at_all(plugins: FakePlugins) -> None:
    with pytest.raises(UnknownStrategyError, match="No strategy plugin is installed"):
        get_strategy("whatever")
    assert list_strategies() == []


def test_resolving_one_name_imports_only_that_plugin(echo: FakePlugins) -> None:
    echo.add(
        "other-dist", {"other": "other_plugin:Other"}, "raise RuntimeError", module="other_plugin"
    )
    get_strategy("echo")
    assert "echo_plugin" in sys.modules
    assert "other_plugin" not in sys.modules


BROKEN = "import does_not_exist_anywhere\n"


def test_broken_plugin_is_reported_and_does_not_break_others(echo: FakePlugins) -> None:
    echo.add(
        "broken-dist",
        {"broken": "broken_plugin:Broken"},
        BROKEN,
        module="broken_plugin",
        version="0.3",
    )
    infos = {i.name: i for i in list_strategies()}
    assert infos["echo"].status == STATUS_OK
    broken = infos["broken"]
    assert broken.status == STATUS_FAILED
    assert (broken.distribution, broken.version) == ("broken-dist", "0.3")
    assert "ModuleNotFoundError" in (broken.error or "")
    assert "does_not_exist_anywhere" in (broken.error or "")
    assert "broken_plugin.py" in (broken.error or "")  # where it failed
    assert get_strategy("echo").strategy_name() == "echo"
    with pytest.raises(
        StrategyLoadError, match=r"'broken' from broken-dist 0\.3 could not be loaded"
    ):
        get_strategy("broken")


def test_strict_mode_turns_failures_into_errors(
    echo: FakePlugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    echo.add("broken-dist", {"broken": "broken_plugin:Broken"}, BROKEN, module="broken_plugin")
    monkeypatch.setenv("SAGE_LLM_STRICT_PLUGINS", "1")
    with pytest.raises(StrategyLoadError, match="broken-dist"):
        list_strategies()


def test_duplicate_name_is_an_error_naming_both(echo: FakePlugins) -> None:
    echo.add(
        "echo-fork",
        {"echo": "echo_fork:EchoStrategy"},
        echo.sources["echo_plugin"].replace("Echo: a test", "Fork: a test"),
        module="echo_fork",
    )
    with pytest.raises(AmbiguousStrategyError) as info:
        get_strategy("echo")
    message = str(info.value)
    assert "echo-dist" in message
    assert "echo-fork" in message
    assert "'echo-fork:echo'" in message
    fork = get_strategy("echo-fork:echo:k=2")
    assert type(fork).__module__ == "echo_fork"
    assert fork.to_dict()["k"] == 2
    assert type(get_strategy("echo", distribution="echo-dist")).__module__ == "echo_plugin"


def test_incompatible_plugin_is_reported_and_not_imported(echo: FakePlugins) -> None:
    echo.add(
        "future-dist",
        {"future": "future_plugin:Future"},
        "raise RuntimeError('must not be imported')",
        module="future_plugin",
        requires=("sage-llm-core>=2.0",),
    )
    info = {i.name: i for i in list_strategies()}["future"]
    assert info.status == STATUS_INCOMPATIBLE
    assert "needs sage-llm-core>=2.0" in (info.error or "")
    assert "sage-llm-core 1." in (info.error or "")
    assert "future_plugin" not in sys.modules


def test_plugins_env_limits_what_loads(echo: FakePlugins, monkeypatch: pytest.MonkeyPatch) -> None:
    echo.add("broken-dist", {"broken": "broken_plugin:Broken"}, BROKEN, module="broken_plugin")
    monkeypatch.setenv("SAGE_LLM_PLUGINS", "echo")
    assert [i.name for i in list_strategies()] == ["echo"]
    monkeypatch.setenv("SAGE_LLM_PLUGINS", "broken-dist")  # distribution names work too
    assert [i.name for i in list_strategies()] == ["broken"]
    monkeypatch.setenv("SAGE_LLM_PLUGINS", "")
    assert list_strategies() == []
    with pytest.raises(StrategyDisabledError, match="SAGE_LLM_PLUGINS"):
        get_strategy("echo")


def test_list_without_loading_imports_nothing(echo: FakePlugins) -> None:
    infos = list_strategies(load=False)
    assert [i.status for i in infos] == [STATUS_OK]
    assert "echo_plugin" not in sys.modules


def test_instance_passes_through(echo: FakePlugins) -> None:
    strategy = get_strategy("echo")
    assert get_strategy(strategy) is strategy
    with pytest.raises(InvalidParameterError):
        get_strategy(strategy, k=3)


@pytest.mark.parametrize(
    ("text", "name", "distribution", "params"),
    [
        ("ngram", "ngram", None, {}),
        ("ngram:", "ngram", None, {}),
        (
            "ngram:n=5,num_speculative_tokens=4",
            "ngram",
            None,
            {"n": "5", "num_speculative_tokens": "4"},
        ),
        ("my-dist:ngram", "ngram", "my-dist", {}),
        ("my-dist:ngram:n=2", "ngram", "my-dist", {"n": "2"}),
        ("draft:draft_model_id=C:/models/x", "draft", None, {"draft_model_id": "C:/models/x"}),
    ],
)
def test_parse_spec_forms(text: str, name: str, distribution: str | None, params: dict) -> None:
    from sage.llm.params import parse_spec

    spec = parse_spec(text)
    assert (spec.name, spec.distribution, dict(spec.params)) == (name, distribution, params)
