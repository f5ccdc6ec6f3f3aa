"""The cross-request cache: earlier requests' outputs in one suffix tree, bounded and LRU.

Agents send the same templates, the same files and answers quoting earlier answers again and
again; what one request generated is then often what a later one generates. The cache holds
finished outputs (not prompts: a request's own prompt is in its per-request tree) until it
holds more than ``max_requests`` outputs or ``max_tokens`` tokens, then drops the least
recently used: the one added, or proposed from and accepted, longest ago.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from sage_llm_strategy_suffix.index import Draft, Matcher, SuffixTree


class ResponseCache:
    """Finished outputs of earlier requests, shared by every request of one proposer."""

    def __init__(self, max_depth: int, max_requests: int, max_tokens: int) -> None:
        if max_requests < 0 or max_tokens < 0:
            raise ValueError(
                f"max_requests and max_tokens must be >= 0, got {max_requests}, {max_tokens}."
            )
        self.tree = SuffixTree(max_depth)
        self.max_requests = max_requests
        self.max_tokens = max_tokens
        self._recent: OrderedDict[int, int] = OrderedDict()  # seq -> tokens, oldest first
        self._tokens = 0
        self._next_seq = 0

    @property
    def enabled(self) -> bool:
        return self.max_requests > 0 and self.max_tokens > 0

    def __len__(self) -> int:
        return len(self._recent)

    @property
    def num_tokens(self) -> int:
        return self._tokens

    def add(self, token_ids: Sequence[int]) -> None:
        """Cache one finished output (truncated to its last ``max_tokens`` tokens)."""
        if not self.enabled or not token_ids:
            return
        tokens = list(token_ids[-self.max_tokens :])
        seq = self._next_seq
        self._next_seq += 1
        self.tree.extend(seq, tokens)
        self._recent[seq] = len(tokens)
        self._tokens += len(tokens)
        while len(self._recent) > self.max_requests or self._tokens > self.max_tokens:
            oldest, size = self._recent.popitem(last=False)
            self.tree.remove(oldest)
            self._tokens -= size

    def touch(self, seq: int) -> None:
        """An output a proposal came from was accepted: it becomes the most recently used."""
        if seq in self._recent:
            self._recent.move_to_end(seq)

    def speculate(
        self,
        context: Sequence[int],
        max_spec_tokens: int,
        max_spec_factor: float,
        min_token_prob: float,
        min_match_length: int = 1,
    ) -> Draft:
        """The best continuation of ``context`` in the cached outputs (one-off: a request's
        steps use :meth:`matcher` and :meth:`speculate_from`)."""
        matcher = self.matcher()
        matcher.extend(context)
        return self.speculate_from(
            matcher, max_spec_tokens, max_spec_factor, min_token_prob, min_match_length
        )

    def matcher(self) -> Matcher:
        """A :class:`Matcher` for one request's context; valid until the next :meth:`add`."""
        return Matcher(self.tree)

    def speculate_from(
        self,
        matcher: Matcher,
        max_spec_tokens: int,
        max_spec_factor: float,
        min_token_prob: float,
        min_match_length: int = 1,
    ) -> Draft:
        """:meth:`speculate` for the context ``matcher`` has followed."""
        if not self._recent:
            return Draft()
        return self.tree.speculate_from(
            matcher.nodes,
            max_spec_tokens,
            max_spec_factor,
            min_token_prob=min_token_prob,
            min_match_length=min_match_length,
        )
