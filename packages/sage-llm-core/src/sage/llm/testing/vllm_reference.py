"""Test helpers for the vLLM engine: vLLM's own validation, and a reference proposer.

Neither is needed to run vLLM through sage-llm; tests (ours and plugin authors') use them to
prove that a strategy's engine arguments are accepted by the installed vLLM and that the
``custom_class`` path works end to end. Needs vLLM only when a function runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sage.llm.engines.vllm.proposer import VLLMProposer
from sage.llm.engines.vllm.validation import SCHEDULE_KEY

__all__ = ["PromptLookupProposer", "validate_with_vllm"]


def validate_with_vllm(engine_args: Mapping[str, Any]) -> Any:
    """vLLM's own validation of ``engine_args``, without starting an engine.

    Returns vLLM's ``VllmConfig``. Raises what vLLM raises (pydantic ``ValidationError``, a
    ``ValueError``) — this is the referee, not the friendly front door.
    """
    from vllm.engine.arg_utils import EngineArgs

    config = EngineArgs(**dict(engine_args)).create_engine_config()
    section = engine_args.get("speculative_config") or {}
    if section.get(SCHEDULE_KEY) is not None:
        from vllm.v1.spec_decode.dynamic.utils import (
            validate_and_normalize_dynamic_sd_schedule,
        )

        validate_and_normalize_dynamic_sd_schedule(section[SCHEDULE_KEY])
    return config


class PromptLookupProposer(VLLMProposer):
    """Reference proposer: the tokens that followed the latest earlier match of the last n.

    The same idea as vLLM's built-in ``ngram`` method, in plain Python, so that the
    ``custom_class`` path can be tested end to end with drafts that do get accepted.
    """

    max_ngram = 3
    min_ngram = 1

    def propose_one(self, context_ids: Sequence[int], max_tokens: int) -> Sequence[int]:
        tokens = list(context_ids)
        for n in range(min(self.max_ngram, len(tokens) - 1), self.min_ngram - 1, -1):
            tail = tokens[-n:]
            for start in range(len(tokens) - n - 1, -1, -1):
                if tokens[start : start + n] == tail:
                    follow = tokens[start + n : start + n + max_tokens]
                    if follow:
                        return follow
        return []
