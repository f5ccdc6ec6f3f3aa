"""vLLM's own validation as the referee: what our strategies write, it accepts; what we reject,
it rejects too (later, and less clearly). No engine is started here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_vllm_checks import LookupStrategy
from vllm_testutils import CPU_ENGINE_ARGS, needs_builtins, needs_vllm

from sage.llm import EngineConfigError, SpeculativeStrategy, get_strategy
from sage.llm.engines.vllm.service import VLLMService, VLLMServiceConfig
from sage.llm.engines.vllm.validation import precheck_engine_args
from sage.llm.testing.vllm_reference import validate_with_vllm

pytestmark = [needs_vllm, needs_builtins]


def strategies(draft: Path) -> dict[str, SpeculativeStrategy]:
    return {
        "ngram": get_strategy("ngram", n=3, num_speculative_tokens=4),
        "ngram-defaults": get_strategy("ngram"),
        "draft": get_strategy(
            "draft",
            draft_model_id=str(draft),
            num_speculative_tokens=3,
            max_model_len=128,
            draft_tensor_parallel_size=1,
        ),
        "dynamic": get_strategy("dynamic", min_tokens=0, max_tokens=6),
        "dynamic-draft": get_strategy(
            "dynamic", mode="static", min_tokens=1, max_tokens=4, draft_model_id=str(draft)
        ),
        "custom-class": LookupStrategy(k=2),
    }


@pytest.mark.parametrize(
    "name", ["ngram", "ngram-defaults", "draft", "dynamic", "dynamic-draft", "custom-class"]
)
def test_every_strategy_is_accepted_by_vllm(name: str, tiny_model: Path, tiny_draft: Path) -> None:
    strategy = strategies(tiny_draft)[name]
    config = VLLMServiceConfig(
        model_id=str(tiny_model), speculative_strategy=strategy, engine_args=dict(CPU_ENGINE_ARGS)
    )
    args = VLLMService(config).prepare_engine_args()
    vllm_config = validate_with_vllm(args)
    written = args["speculative_config"]
    assert vllm_config.speculative_config.method == written["method"]
    assert (
        vllm_config.speculative_config.num_speculative_tokens == written["num_speculative_tokens"]
    )


def _args(target: Path, **section: Any) -> dict[str, Any]:
    return {"model": str(target), **CPU_ENGINE_ARGS, "speculative_config": section}


def invalid_cases(model: Path, other_vocab: Path) -> dict[str, dict[str, Any]]:
    return {
        "lookup-min-above-max": _args(
            model,
            method="ngram",
            num_speculative_tokens=3,
            prompt_lookup_min=4,
            prompt_lookup_max=2,
        ),
        "k-zero": _args(model, method="ngram", num_speculative_tokens=0),
        "unknown-method": _args(model, method="ngramm", num_speculative_tokens=3),
        "unknown-key": _args(model, method="ngram", num_speculative_tokens=3, lookahead=4),
        "draft-vocab": _args(
            model, method="draft_model", model=str(other_vocab), num_speculative_tokens=3
        ),
        "draft-tp": _args(
            model,
            method="draft_model",
            model=str(model),
            num_speculative_tokens=3,
            draft_tensor_parallel_size=2,
        ),
        "custom-without-class": _args(model, method="custom_class", num_speculative_tokens=3),
    }


CASES = {
    # case: what vLLM itself says about it, later
    "lookup-min-above-max": "prompt_lookup_min=4 must be <= prompt_lookup_max=2",
    "k-zero": "greater than 0",
    "unknown-method": "Input should be",
    "unknown-key": "Unexpected keyword argument",
    "draft-vocab": "same vocabulary size",
    "draft-tp": "cannot be other value than 1 or target model tensor_parallel_size",
    "custom-without-class": "requires 'model'",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_input_is_ours_first_and_vllm_agrees(
    case: str, tiny_model: Path, other_vocab_model: Path, tmp_path: Path
) -> None:
    args = invalid_cases(tiny_model, other_vocab_model)[case]
    with pytest.raises(EngineConfigError) as ours:
        precheck_engine_args(dict(args, speculative_config=dict(args["speculative_config"])))
    assert "speculative_config" in str(ours.value) or "draft" in str(ours.value)
    with pytest.raises(ValueError, match=re.escape(CASES[case])):
        validate_with_vllm(args)


def test_bad_schedule_passes_vllm_config_but_not_ours(tiny_model: Path) -> None:
    """vLLM checks the per-batch-size table only when the engine core starts; we check it
    before anything starts. Its own validator agrees the table is wrong."""
    from vllm.v1.spec_decode.dynamic.utils import validate_and_normalize_dynamic_sd_schedule

    table = [[2, 8, 2]]
    args = _args(
        tiny_model,
        method="ngram",
        num_speculative_tokens=2,
        num_speculative_tokens_per_batch_size=table,
    )
    from vllm.engine.arg_utils import EngineArgs

    EngineArgs(**args).create_engine_config()  # accepted at config time
    with pytest.raises(ValueError, match="must start at 1"):
        validate_and_normalize_dynamic_sd_schedule(table)
    with pytest.raises(EngineConfigError, match="must start at batch size 1"):
        precheck_engine_args(args)


def test_unknown_key_suggests_the_right_one() -> None:
    args = {
        "speculative_config": {
            "method": "ngram",
            "num_speculative_tokens": 3,
            "prompt_lookup_maxx": 3,
        }
    }
    with pytest.raises(EngineConfigError, match="did you mean 'prompt_lookup_max'"):
        precheck_engine_args(args)


def test_missing_draft_is_ours_first_and_vllm_agrees(tiny_model: Path, tmp_path: Path) -> None:
    """vLLM retries a missing local draft as a hub id before failing; we fail at once."""
    from sage.llm.engines.vllm.errors import ModelResolutionError

    missing = tmp_path / "no-draft-here"
    args = _args(tiny_model, method="draft_model", model=str(missing), num_speculative_tokens=3)
    with pytest.raises(ModelResolutionError, match="no such directory"):
        precheck_engine_args(dict(args, speculative_config=dict(args["speculative_config"])))
    with pytest.raises(ValueError, match="Invalid repository ID or local directory"):
        validate_with_vllm(args)
