"""Prompt lookup with an incremental index: the ngram strategy's per-step proposer.

Each step looks up the last ``n`` committed tokens (``n`` from ``max_n`` down to ``min_n``,
longest first, as vLLM and transformers do) in a hash index of every earlier n-gram and proposes
the tokens that followed an earlier occurrence. The index is extended with the n-grams that end
in newly committed tokens only, so a step costs O(new tokens x n), not a rescan of the whole
context.

Which occurrence: by default the first, as transformers' prompt lookup does, so both propose the
same tokens and any speed difference is the engine's own. ``prefer="recent"`` takes the most
recent one instead; neither rule needed fewer target steps on every category (figures in
docs/notes/reference-engine-history.md, "N-gram occurrence rule").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sage.llm.proposing import Proposal


class NgramProposer:
    """Propose up to ``num_speculative_tokens`` tokens by n-gram lookup in the context."""

    def __init__(
        self,
        num_speculative_tokens: int,
        max_n: int,
        min_n: int = 1,
        prefer: Literal["first", "recent"] = "first",
    ) -> None:
        if prefer not in ("first", "recent"):
            raise ValueError(f"prefer must be 'first' or 'recent', got {prefer!r}.")
        if num_speculative_tokens < 1 or min_n < 1 or max_n < min_n:
            raise ValueError(
                "NgramProposer needs num_speculative_tokens >= 1 and 1 <= min_n <= max_n, got "
                f"num_speculative_tokens={num_speculative_tokens}, min_n={min_n}, max_n={max_n}."
            )
        self.num_speculative_tokens = num_speculative_tokens
        self.max_n = max_n
        self.min_n = min_n
        self.prefer_recent = prefer == "recent"
        self._index: dict[int, dict[tuple[int, ...], int]] = {}
        self._next_start: dict[int, int] = {}
        self._length = 0

    def start(self, prompt_ids: Sequence[int]) -> None:
        self._index = {n: {} for n in range(self.min_n, self.max_n + 1)}
        self._next_start = dict.fromkeys(self._index, 0)
        self._length = 0

    def _extend(self, context: Sequence[int]) -> None:
        """Index every n-gram that now has a following token (so never the suffix itself)."""
        length = len(context)
        if length < self._length:  # a new request that did not call start(): begin again
            self.start(())
        self._length = length
        for n, table in self._index.items():
            last_start = length - n - 1  # the n-gram at last_start is followed by one token
            first = self._next_start[n]
            for i in range(first, last_start + 1):
                key = tuple(context[i : i + n])
                if self.prefer_recent or key not in table:
                    table[key] = i
            if last_start + 1 > first:
                self._next_start[n] = last_start + 1

    def propose(self, context_ids: Sequence[int], max_tokens: int) -> Proposal:
        k = min(self.num_speculative_tokens, max_tokens)
        if not self._index:
            self.start(())
        self._extend(context_ids)
        length = len(context_ids)
        if k <= 0:
            return Proposal([])
        for n in range(min(self.max_n, length - 1), self.min_n - 1, -1):
            found = self._index[n].get(tuple(context_ids[length - n :]))
            if found is None:
                continue
            begin = found + n
            return Proposal(list(context_ids[begin : begin + k]))
        return Proposal([])

    def on_verified(self, num_proposed: int, num_accepted: int) -> None:
        """Prompt lookup keeps no acceptance state."""
