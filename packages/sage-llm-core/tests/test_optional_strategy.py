"""'No strategy' is read one way everywhere: the registry's resolve_optional_strategy.

Every API that takes a strategy or nothing — ``build_engine_args``, ``VLLMServiceConfig``, the
control plane's ``start_engine`` and ``sage-llm generate`` — gives the same answer for the same
value, and the same message for a value that is no strategy at all.
"""

from __future__ import annotations

from typing import Any

import pytest

from sage.llm import InvalidParameterError, UnknownStrategyError, build_engine_args
from sage.llm.cli.generate import _strategy_spec
from sage.llm.control_plane.errors import InvalidRequestError
from sage.llm.control_plane.manager import resolve_strategy
from sage.llm.engines.vllm.service import VLLMServiceConfig
from sage.llm.registry import means_no_strategy, resolve_optional_strategy
from sage.llm.testing.control_plane import ScriptedStrategy
from sage.llm.testing.fake_plugins import FakePlugins

NO_STRATEGY = [None, "", "  ", "none", "None", " NONE ", "plain", "Plain"]


def _service(value: Any) -> Any:
    return VLLMServiceConfig(model_id="m", speculative_strategy=value).speculative_strategy


def _engine_args(value: Any) -> Any:
    args = build_engine_args(value, {"model": "m"})
    return args.get("speculative_config")


ENTRY_POINTS = {
    "registry": resolve_optional_strategy,
    "control plane": resolve_strategy,
    "VLLMServiceConfig": _service,
}


@pytest.mark.parametrize("value", NO_STRATEGY)
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_every_spelling_of_no_strategy_means_none(entry: str, value: Any) -> None:
    assert ENTRY_POINTS[entry](value) is None


@pytest.mark.parametrize("value", NO_STRATEGY)
def test_no_strategy_writes_no_engine_arguments(value: Any) -> None:
    assert means_no_strategy(value)
    assert _engine_args(value) is None


@pytest.mark.parametrize("value", NO_STRATEGY[1:])
def test_the_cli_reads_no_strategy_the_same_way(value: str) -> None:
    assert _strategy_spec(value, None, explicit=True) is None


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_an_instance_is_returned_unchanged(entry: str) -> None:
    strategy = ScriptedStrategy()
    assert ENTRY_POINTS[entry](strategy) is strategy


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_string_is_resolved_through_the_registry(entry: str, echo: FakePlugins) -> None:
    strategy = ENTRY_POINTS[entry](" echo:k=3 ")
    assert strategy is not None
    assert strategy.to_string() == "echo:k=3"
    assert _engine_args("echo:k=3") == {"method": "ngram", "num_speculative_tokens": 3}
    with pytest.raises(UnknownStrategyError, match="'nosuch'"):
        ENTRY_POINTS[entry]("nosuch")


@pytest.mark.parametrize("value", [3, 2.5, ["ngram"], {"name": "ngram"}, object()])
@pytest.mark.parametrize("entry", [*sorted(ENTRY_POINTS), "build_engine_args"])
def test_a_value_that_is_no_strategy_gets_one_message(entry: str, value: Any) -> None:
    call = {**ENTRY_POINTS, "build_engine_args": _engine_args}[entry]
    with pytest.raises(InvalidParameterError) as expected:
        resolve_optional_strategy(value)
    message = str(expected.value)
    assert message.startswith("speculative_strategy: expected a strategy object")
    assert type(value).__name__ in message
    error = InvalidRequestError if entry == "control plane" else InvalidParameterError
    with pytest.raises(error) as raised:
        call(value)
    assert str(raised.value) == message
