"""The reference engine reads 'no strategy' and bad values as every other API does, and returns
the one result type."""

from __future__ import annotations

from typing import Any

import pytest

from sage.llm import InvalidParameterError
from sage.llm.engines.transformers import GenerationResult as ExportedResult
from sage.llm.engines.transformers.engine import GenerationResult, TransformersEngine
from sage.llm.engines.transformers.sampling import SamplingParams
from sage.llm.registry import resolve_optional_strategy
from sage.llm.results import GenerationResult as OneResult


@pytest.mark.parametrize("value", [None, "", "none", " None ", "plain"])
def test_no_strategy_means_no_proposer(value: Any) -> None:
    engine = TransformersEngine(object())
    assert engine.make_proposer(value, SamplingParams(0.0, None, None)) is None


def test_a_value_that_is_no_strategy_gets_the_registry_message() -> None:
    engine = TransformersEngine(object())
    with pytest.raises(InvalidParameterError) as expected:
        resolve_optional_strategy(7)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError) as raised:
        engine.make_proposer(7, SamplingParams(0.0, None, None))  # type: ignore[arg-type]
    assert str(raised.value) == str(expected.value)


def test_the_old_import_paths_name_the_one_result_type() -> None:
    assert GenerationResult is OneResult
    assert ExportedResult is OneResult
