"""build_engine_args: legacy keys migrated, misplaced or missing fields rejected."""

from __future__ import annotations

from typing import Any

import pytest

from sage.llm import EngineConfigError, SpeculativeStrategy, build_engine_args
from sage.llm.engines.vllm.config import check_speculative_config, migrate_legacy_keys


class Writes(SpeculativeStrategy):
    name = "writes"

    def __init__(self, **values: Any) -> None:
        self.values = values

    def apply(self, engine_config: dict[str, Any]) -> None:
        engine_config.update(self.values)


def test_caller_config_is_not_modified() -> None:
    base = {"model": "m", "speculative_config": {"enforce_eager": True}}
    args = build_engine_args(Writes(speculative_config={"method": "ngram"}), base)
    assert base == {"model": "m", "speculative_config": {"enforce_eager": True}}
    assert args["speculative_config"] == {"method": "ngram"}


def test_no_strategy_means_no_speculation() -> None:
    assert build_engine_args(None, {"model": "m"}) == {"model": "m"}


@pytest.mark.parametrize(
    ("legacy", "expected"),
    [
        (
            {
                "num_speculative_tokens": 3,
                "ngram_prompt_lookup_max": 4,
                "ngram_prompt_lookup_min": 2,
            },
            {
                "method": "ngram",
                "num_speculative_tokens": 3,
                "prompt_lookup_max": 4,
                "prompt_lookup_min": 2,
            },
        ),
        (
            {"speculative_model": "[ngram]", "num_speculative_tokens": 2},
            {"method": "ngram", "num_speculative_tokens": 2},
        ),
        (
            {"speculative_model": "small/draft", "num_speculative_tokens": 4},
            {"method": "draft_model", "model": "small/draft", "num_speculative_tokens": 4},
        ),
    ],
)
def test_legacy_keys_move_into_speculative_config(legacy: dict, expected: dict) -> None:
    with pytest.warns(DeprecationWarning, match="writes wrote legacy"):
        args = build_engine_args(Writes(**legacy), {"model": "m", "seed": 1})
    assert args == {"model": "m", "seed": 1, "speculative_config": expected}


def test_conflicting_legacy_and_new_keys_are_an_error() -> None:
    config = {"num_speculative_tokens": 3, "speculative_config": {"num_speculative_tokens": 4}}
    with pytest.raises(EngineConfigError, match="conflicts with"):
        migrate_legacy_keys(config, "s")


def test_tensor_parallel_size_inside_speculative_config_is_rejected() -> None:
    strategy = Writes(
        speculative_config={"method": "draft_model", "model": "d", "tensor_parallel_size": 2}
    )
    with pytest.raises(EngineConfigError, match="draft_tensor_parallel_size"):
        build_engine_args(strategy)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"num_speculative_tokens": 3}, "has no 'method'"),
        ({"method": "ngram", "num_speculative_tokens": 0}, "must be an integer >= 1"),
        ("ngram", "must be a dict"),
    ],
)
def test_malformed_speculative_config(section: Any, message: str) -> None:
    with pytest.raises(EngineConfigError, match=message):
        check_speculative_config({"speculative_config": section})


def test_speculative_config_helper_refuses_non_dict() -> None:
    with pytest.raises(EngineConfigError, match="must be a dict"):
        SpeculativeStrategy.speculative_config({"speculative_config": "ngram"})
