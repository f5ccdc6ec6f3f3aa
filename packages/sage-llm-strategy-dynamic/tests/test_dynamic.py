"""The dynamic-lookahead strategy: conformance, the static vLLM schedule, bounds."""

from __future__ import annotations

import itertools

import pytest

from sage.llm import InvalidParameterError, get_strategy
from sage.llm.testing import StrategyConformanceTests
from sage_llm_strategy_dynamic import DynamicLookaheadStrategy


class TestDynamicConformance(StrategyConformanceTests):
    strategy_name = "dynamic-lookahead"
    valid_params = {"min_tokens": 2, "max_tokens": 6}
    invalid_params = [
        {"min_tokens": 7},
        {"max_tokens": 0},
        {"min_tokens": -1},
        {"prompt_lookup_min": 5},
        {"draft_model_id": " "},
        {"cumulative_confidence_threshold": 1.5},
        {"cumulative_confidence_threshold": -0.1},
    ]


def _check_schedule(rows: list[list[int]], lo: int, hi: int) -> None:
    """vLLM's rules: start at 1, sorted, no overlap, start <= end, k within [lo, hi]."""
    assert rows[0][0] == 1
    for (_, e1, _), (s2, _, _) in itertools.pairwise(rows):
        assert s2 == e1 + 1
    for start, end, k in rows:
        assert 1 <= start <= end
        assert lo <= k <= hi
    assert rows[0][2] == hi
    assert rows[-1][2] == lo


@pytest.mark.parametrize(("lo", "hi"), [(0, 1), (0, 10), (3, 10), (5, 5), (1, 64)])
def test_schedule_is_valid_for_vllm(lo: int, hi: int) -> None:
    _check_schedule(
        DynamicLookaheadStrategy(min_tokens=lo, max_tokens=hi).batch_size_schedule(), lo, hi
    )


def test_apply_writes_exactly_the_static_config() -> None:
    config: dict = {}
    get_strategy("dynamic", mode="static", min_tokens=3, max_tokens=10).apply(config)
    assert config == {
        "speculative_config": {
            "method": "ngram",
            "num_speculative_tokens": 10,
            "prompt_lookup_max": 4,
            "prompt_lookup_min": 2,
            "num_speculative_tokens_per_batch_size": [[1, 4, 10], [5, 16, 5], [17, 64, 3]],
        }
    }


def test_min_tokens_zero_switches_speculation_off_for_large_batches() -> None:
    rows = DynamicLookaheadStrategy(min_tokens=0, max_tokens=4).batch_size_schedule()
    assert rows[-1][2] == 0


def test_draft_mode_writes_the_draft_model() -> None:
    config: dict = {}
    DynamicLookaheadStrategy(
        draft_model_id="small", max_tokens=4, min_tokens=1, mode="static"
    ).apply(config)
    section = config["speculative_config"]
    assert (section["method"], section["model"], section["num_speculative_tokens"]) == (
        "draft_model",
        "small",
        4,
    )
    assert "prompt_lookup_max" not in section


def test_min_greater_than_max_is_a_clear_error() -> None:
    with pytest.raises(
        InvalidParameterError, match=r"min_tokens \(7\) must be <= max_tokens \(6\)"
    ):
        DynamicLookaheadStrategy(min_tokens=7, max_tokens=6)


@pytest.mark.parametrize(("lo", "hi"), [(0, 4), (3, 10)])
def test_vllm_accepts_the_config_and_schedule(lo: int, hi: int) -> None:
    pytest.importorskip("vllm", reason="vLLM not installed: checked in the `vllm` nox session")
    from vllm.config import SpeculativeConfig
    from vllm.v1.spec_decode.dynamic.utils import validate_and_normalize_dynamic_sd_schedule

    config: dict = {}
    DynamicLookaheadStrategy(min_tokens=lo, max_tokens=hi, mode="static").apply(config)
    section = config["speculative_config"]
    parsed = SpeculativeConfig(**section)
    assert parsed.num_speculative_tokens == hi
    validate_and_normalize_dynamic_sd_schedule(section["num_speculative_tokens_per_batch_size"])


def test_a_cumulative_stop_for_a_proposer_without_one_is_refused() -> None:
    """A threshold the proposer cannot honour is an error, not a silent no-op; left unset,
    a proposer without the stop is simply run without it."""
    from sage.llm.proposing import Proposal

    class Draft:
        def start(self, prompt_ids: list[int]) -> None: ...

        def propose(self, context_ids: list[int], max_tokens: int) -> Proposal:
            return Proposal([])

        def on_verified(self, num_proposed: int, num_accepted: int) -> None: ...

    strategy = get_strategy("dynamic-lookahead:cumulative_confidence_threshold=0.4")
    with pytest.raises(ValueError, match="cumulative confidence stop"):
        strategy.wrap_proposer(Draft())  # type: ignore[attr-defined]
    default = get_strategy("dynamic-lookahead").wrap_proposer(Draft())  # type: ignore[attr-defined]
    assert not default.controller.draft_stops
