"""The draft strategy: conformance, exact vLLM arguments, the vLLM >= 0.14 requirement."""

from __future__ import annotations

import pytest
from packaging.version import Version

from sage.llm import InvalidParameterError, get_strategy, vllm_version
from sage.llm.errors import VLLMVersionError
from sage.llm.testing import StrategyConformanceTests
from sage_llm_strategy_draft import DraftModelStrategy


class TestDraftConformance(StrategyConformanceTests):
    strategy_name = "draft"
    valid_params = {"draft_model_id": "Qwen/Qwen2.5-0.5B-Instruct", "num_speculative_tokens": 3}
    invalid_params = [
        {"num_speculative_tokens": 0},
        {"draft_model_id": ""},
        {"draft_model_id": 5},
        {"draft_tensor_parallel_size": 0},
        {"max_model_len": -1},
    ]


def test_minimal_config_sets_method_explicitly() -> None:
    config: dict = {}
    get_strategy("draft-model", draft_model_id="small").apply(config)
    assert config == {
        "speculative_config": {
            "method": "draft_model",
            "model": "small",
            "num_speculative_tokens": 5,
        }
    }


def test_optional_fields_are_written_when_set() -> None:
    config: dict = {"tensor_parallel_size": 2}
    DraftModelStrategy(
        draft_model_id="small",
        num_speculative_tokens=4,
        draft_tensor_parallel_size=2,
        quantization="fp8",
        revision="main",
        max_model_len=2048,
    ).apply(config)
    assert config == {
        "tensor_parallel_size": 2,
        "speculative_config": {
            "method": "draft_model",
            "model": "small",
            "num_speculative_tokens": 4,
            "draft_tensor_parallel_size": 2,
            "quantization": "fp8",
            "revision": "main",
            "max_model_len": 2048,
        },
    }


def test_missing_draft_model_is_a_clear_error() -> None:
    with pytest.raises(InvalidParameterError, match=r"missing required parameter.*draft_model_id"):
        get_strategy("draft")


def test_old_vllm_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vllm_version, "installed_vllm_version", lambda: Version("0.13.2"))
    with pytest.raises(VLLMVersionError, match=r"needs vLLM >= 0\.14\.0.*0\.13\.2"):
        DraftModelStrategy(draft_model_id="small").apply({})


def test_supported_vllm_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vllm_version, "installed_vllm_version", lambda: Version("0.32.0"))
    config: dict = {}
    DraftModelStrategy(draft_model_id="small").apply(config)
    assert config["speculative_config"]["method"] == "draft_model"
