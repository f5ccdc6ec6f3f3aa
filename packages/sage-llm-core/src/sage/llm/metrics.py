"""Speculative-decoding metrics, with vLLM's names and formulas, shared by every engine.

Both the reference engine and the vLLM service fill :class:`SpecDecodeMetrics`, so a number
read from one compares one to one with the same number read from the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SpecDecodeMetrics:
    """Counters of one request or of a whole run (``merge`` adds them up)."""

    num_drafts: int = 0
    """Verification steps that had at least one proposed token."""
    num_draft_tokens: int = 0
    num_accepted_tokens: int = 0
    accepted_per_position: list[int] = field(default_factory=list)
    """``accepted_per_position[i]``: drafts whose token at position ``i`` was accepted."""
    num_generated_tokens: int = 0
    num_steps: int = 0
    """Target forward passes during generation (with or without a proposal)."""
    prefill_time_s: float = 0.0
    """Time to process the prompt (included in ``wall_time_s``)."""
    draft_time_s: float = 0.0
    verify_time_s: float = 0.0
    plain_verify_time_s: float = 0.0
    """The part of ``verify_time_s`` spent in steps without a proposal (``num_steps -
    num_drafts`` of them): a forward pass over one token, a plain decoding step. A speculative
    request thereby measures its own plain step cost, at the same context length, so the
    cost of speculating can be read within one request instead of against another request
    with a different prompt (the control plane's ``adaptive`` policy does)."""
    wall_time_s: float = 0.0

    @property
    def acceptance_rate(self) -> float:
        """Accepted draft tokens / proposed draft tokens (vLLM's ``draft acceptance rate``)."""
        return self.num_accepted_tokens / self.num_draft_tokens if self.num_draft_tokens else 0.0

    @property
    def mean_accepted_length(self) -> float:
        """Tokens produced per draft step, counting the bonus token: ``1 + accepted / drafts``."""
        return 1.0 + self.num_accepted_tokens / self.num_drafts if self.num_drafts else 1.0

    @property
    def per_position_acceptance(self) -> list[float]:
        """Share of drafts whose ``i``-th token was accepted."""
        if not self.num_drafts:
            return [0.0 for _ in self.accepted_per_position]
        return [n / self.num_drafts for n in self.accepted_per_position]

    @property
    def num_plain_steps(self) -> int:
        """Steps without a proposal (plain decoding steps, also inside speculative runs)."""
        return self.num_steps - self.num_drafts

    @property
    def tokens_per_second(self) -> float:
        return self.num_generated_tokens / self.wall_time_s if self.wall_time_s > 0 else 0.0

    def record_step(self, num_proposed: int, num_accepted: int) -> None:
        """Count one verification step in which ``num_proposed`` tokens were checked."""
        self.num_steps += 1
        if num_proposed <= 0:
            return
        self.num_drafts += 1
        self.num_draft_tokens += num_proposed
        self.num_accepted_tokens += num_accepted
        if len(self.accepted_per_position) < num_proposed:
            self.accepted_per_position.extend(
                [0] * (num_proposed - len(self.accepted_per_position))
            )
        for i in range(num_accepted):
            self.accepted_per_position[i] += 1

    def merge(self, other: SpecDecodeMetrics) -> SpecDecodeMetrics:
        """Add ``other`` into ``self`` (per-run totals from per-request metrics)."""
        self.num_drafts += other.num_drafts
        self.num_draft_tokens += other.num_draft_tokens
        self.num_accepted_tokens += other.num_accepted_tokens
        n = max(len(self.accepted_per_position), len(other.accepted_per_position))
        self.accepted_per_position = [
            (self.accepted_per_position[i] if i < len(self.accepted_per_position) else 0)
            + (other.accepted_per_position[i] if i < len(other.accepted_per_position) else 0)
            for i in range(n)
        ]
        self.num_generated_tokens += other.num_generated_tokens
        self.num_steps += other.num_steps
        self.prefill_time_s += other.prefill_time_s
        self.draft_time_s += other.draft_time_s
        self.verify_time_s += other.verify_time_s
        self.plain_verify_time_s += other.plain_verify_time_s
        self.wall_time_s += other.wall_time_s
        return self

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            acceptance_rate=self.acceptance_rate,
            mean_accepted_length=self.mean_accepted_length,
            per_position_acceptance=self.per_position_acceptance,
            tokens_per_second=self.tokens_per_second,
        )
        return data
