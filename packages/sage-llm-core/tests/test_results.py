"""GenerationResult: one type for every engine, one prompt or a vLLM batch."""

from __future__ import annotations

from sage.llm.engines.vllm import GenerationResult as VLLMExported
from sage.llm.engines.vllm.generate import GenerationResult as FromGenerate
from sage.llm.engines.vllm.service import GenerationResult as FromService
from sage.llm.metrics import SpecDecodeMetrics
from sage.llm.results import GenerationResult


def test_the_old_vllm_import_paths_name_the_one_type() -> None:
    assert VLLMExported is FromService is FromGenerate is GenerationResult


def test_one_prompt_fills_the_batch_fields_from_its_own() -> None:
    metrics = SpecDecodeMetrics(num_generated_tokens=3)
    result = GenerationResult("abc", [1, 2, 3], [7, 8], "eos", metrics)
    assert result.texts == ["abc"]
    assert result.batch_token_ids == [[1, 2, 3]]
    assert result.prompt_tokens == 2
    assert result.usage == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert result.to_json() == {
        "text": "abc",
        "token_ids": [1, 2, 3],
        "prompt_tokens": 2,
        "finish_reason": "eos",
        "metrics": metrics.to_json(),
    }


def test_a_batch_keeps_every_prompt() -> None:
    metrics = SpecDecodeMetrics(num_generated_tokens=3)
    result = GenerationResult(
        "a",
        [1],
        [7, 8],
        "stop",
        metrics,
        texts=["a", "bc"],
        batch_token_ids=[[1], [2, 3]],
        prompt_tokens=5,
    )
    assert (result.text, result.token_ids) == ("a", [1])
    data = result.to_json()
    assert data["texts"] == ["a", "bc"]
    assert data["batch_token_ids"] == [[1], [2, 3]]
    assert data["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
