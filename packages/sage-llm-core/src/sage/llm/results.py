"""``GenerationResult``: what one ``generate`` call returns, on every engine.

The reference engine (``TransformersEngine.generate``) and vLLM (``VLLMService.generate``,
``generate_cli``) fill the same dataclass, so a caller — ``sage-llm generate`` among them —
reports both with one code path. The first (for the reference engine, the only) completion's
fields are the plain ones (``text``, ``token_ids``, ``finish_reason``); a vLLM call on several
prompts also fills ``texts`` and ``batch_token_ids``, one entry per prompt. ``metrics`` always
covers the whole call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sage.llm.metrics import SpecDecodeMetrics


@dataclass
class GenerationResult:
    """The outputs of one ``generate`` call, with usage and speculative metrics.

    ``token_ids`` are the generated ids only (no prompt) of the first completion.
    """

    text: str
    token_ids: list[int]
    prompt_token_ids: list[int]
    finish_reason: str
    """``"eos"``, ``"length"`` (max tokens) or ``"stop"`` (a stop string) from the reference
    engine; vLLM's own reason (``"stop"``, ``"length"``, ...) from vLLM."""
    metrics: SpecDecodeMetrics = field(default_factory=SpecDecodeMetrics)
    """Speculative counters and times of this call only (zeros when speculation is off)."""
    texts: list[str] = field(default_factory=list)
    """Every prompt's completion, in order; ``[text]`` for one prompt."""
    batch_token_ids: list[list[int]] = field(default_factory=list)
    """Every prompt's generated ids, in order; ``[token_ids]`` for one prompt."""
    prompt_tokens: int = -1
    """Prompt tokens of every prompt of the call; ``len(prompt_token_ids)`` for one prompt."""
    outputs: list[Any] = field(default_factory=list, repr=False)
    """The engine's raw outputs (vLLM's ``RequestOutput`` objects), for anything not here."""

    def __post_init__(self) -> None:
        if not self.texts:
            self.texts = [self.text]
        if not self.batch_token_ids:
            self.batch_token_ids = [list(self.token_ids)]
        if self.prompt_tokens < 0:
            self.prompt_tokens = len(self.prompt_token_ids)

    @property
    def usage(self) -> dict[str, int]:
        """Prompt, completion and total tokens of the call, as OpenAI's APIs count them."""
        generated = self.metrics.num_generated_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": generated,
            "total_tokens": self.prompt_tokens + generated,
        }

    def to_json(self) -> dict[str, Any]:
        """The first completion and the call's metrics (and every prompt's, for a batch)."""
        data: dict[str, Any] = {
            "text": self.text,
            "token_ids": list(self.token_ids),
            "prompt_tokens": self.prompt_tokens,
            "finish_reason": self.finish_reason,
            "metrics": self.metrics.to_json(),
        }
        if len(self.texts) > 1:
            data["texts"] = list(self.texts)
            data["batch_token_ids"] = [list(ids) for ids in self.batch_token_ids]
            data["usage"] = self.usage
        return data
