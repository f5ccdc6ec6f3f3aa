"""The suffix strategy: contract conformance and the exact vLLM arguments it writes."""

from __future__ import annotations

import pytest

from sage.llm import InvalidParameterError, get_strategy
from sage.llm.testing import StrategyConformanceTests
from sage_llm_strategy_suffix import ArcticInferenceMissingError, SuffixStrategy
from sage_llm_strategy_suffix import strategy as strategy_module
from sage_llm_strategy_suffix.proposer import arctic_available


class TestSuffixConformance(StrategyConformanceTests):
    strategy_name = "suffix"
    valid_params = {"num_speculative_tokens": 8, "max_spec_factor": 2.0}
    invalid_params = [
        {"num_speculative_tokens": 0},
        {"max_tree_depth": 1},
        {"min_match_length": 0},
        {"min_match_length": 8, "max_tree_depth": 8},
        {"max_cached_requests": -1},
        {"min_token_prob": 1.5},
        {"max_spec_factor": -1.0},
        {"backend": "cuda"},
        {"num_speculative_tokens": "many"},
    ]


@pytest.fixture
def without_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strategy_module, "_vllm_installed", lambda: False)


@pytest.mark.usefixtures("without_vllm")
def test_apply_writes_exactly_the_suffix_config() -> None:
    config: dict = {"model": "m"}
    get_strategy(
        "suffix",
        num_speculative_tokens=16,
        max_tree_depth=32,
        max_cached_requests=100,
        max_spec_factor=2.0,
        min_token_prob=0.2,
    ).apply(config)
    assert config == {
        "model": "m",
        "speculative_config": {
            "method": "suffix",
            "num_speculative_tokens": 16,
            "suffix_decoding_max_tree_depth": 32,
            "suffix_decoding_max_cached_requests": 100,
            "suffix_decoding_max_spec_factor": 2.0,
            "suffix_decoding_min_token_prob": 0.2,
        },
    }


def test_defaults_and_the_vllm_arguments_they_write() -> None:
    """vLLM 0.32's suffix_decoding_* defaults, except two tuned on this CPU
    (docs/notes/suffix-tuning.md), which vLLM then receives too: a depth of 64 (vLLM: 24) and
    a spec factor of 2 (vLLM: 1)."""
    strategy = SuffixStrategy()
    assert strategy.vllm_speculative_config() == {
        "method": "suffix",
        "num_speculative_tokens": 24,
        "suffix_decoding_max_tree_depth": 64,
        "suffix_decoding_max_cached_requests": 10000,
        "suffix_decoding_max_spec_factor": 2.0,
        "suffix_decoding_min_token_prob": 0.1,
    }
    # reference engine only: not vLLM arguments
    assert (strategy.min_match_length, strategy.cache_min_match_length) == (2, 3)


def test_string_form_parses_types() -> None:
    strategy = get_strategy("suffix:max_spec_factor=1.5,min_token_prob=0.3,backend=python")
    assert isinstance(strategy, SuffixStrategy)
    assert (strategy.max_spec_factor, strategy.min_token_prob) == (1.5, 0.3)


def test_range_error_names_parameter_and_bound() -> None:
    with pytest.raises(InvalidParameterError, match=r"suffix: parameter 'min_token_prob'"):
        SuffixStrategy(min_token_prob=2.0)


def test_min_match_length_must_leave_room_in_the_tree() -> None:
    with pytest.raises(InvalidParameterError, match=r"min_match_length \(24\) must be below"):
        SuffixStrategy(min_match_length=24, max_tree_depth=24)
    assert SuffixStrategy(min_match_length=23, max_tree_depth=24).min_match_length == 23
    with pytest.raises(InvalidParameterError, match=r"cache_min_match_length \(24\) must be"):
        SuffixStrategy(cache_min_match_length=24, max_tree_depth=24)


def test_vllm_without_arctic_is_refused_before_vllm_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(strategy_module, "_vllm_installed", lambda: True)
    monkeypatch.setattr("sage_llm_strategy_suffix.proposer.arctic_available", lambda: False)
    with pytest.raises(ArcticInferenceMissingError, match=r"pip install arctic-inference"):
        SuffixStrategy().apply({})
    with pytest.raises(ArcticInferenceMissingError, match=r"backend='arctic'"):
        SuffixStrategy(backend="arctic")


def test_vllm_accepts_the_config() -> None:
    """On vLLM: its SpeculativeConfig takes our arguments, or (no arctic-inference, as in the
    CI's vllm session) our strategy refuses first with the install command."""
    pytest.importorskip("vllm", reason="vLLM not installed: checked in the `vllm` nox session")
    from vllm.config import SpeculativeConfig

    strategy = SuffixStrategy(num_speculative_tokens=12, max_spec_factor=2.0, min_token_prob=0.2)
    config: dict = {}
    if not arctic_available():
        with pytest.raises(ArcticInferenceMissingError, match="pip install arctic-inference"):
            strategy.apply(config)
        with pytest.raises(ImportError, match="arctic"):  # what vLLM would have said
            SpeculativeConfig(**strategy.vllm_speculative_config())
        return
    strategy.apply(config)
    parsed = SpeculativeConfig(**config["speculative_config"])
    assert (parsed.method, parsed.num_speculative_tokens) == ("suffix", 12)
    assert parsed.suffix_decoding_max_tree_depth == 64
    assert parsed.suffix_decoding_max_cached_requests == 10000
    assert parsed.suffix_decoding_max_spec_factor == 2.0
    assert parsed.suffix_decoding_min_token_prob == 0.2
